"""grading-report.csv, one row per student (status, score, reasons, log), and the logs of the
tasks that failed."""
from __future__ import annotations

import csv
from pathlib import Path

from course_grade import safe_csv
from course_grade.course import LOGS, REPORT_FILE, Course, atomic_write
from course_grade.engine.bundles import Graded

REPORT_COLUMNS = ["student", "status", "score", "max_score", "seconds", "note", "left_out", "removed_cells",
                  "sandbox", "worker", "reason", "log"]


def _read_report(course: Course) -> dict[str, list[str]]:
    """The rows of the last report, by student (kept for students this run does not grade)."""
    try:
        with open(course.root / REPORT_FILE, newline="", encoding="utf-8") as f:
            rows = list(safe_csv.reader(f))
    except OSError:
        return {}
    if not rows or rows[0][:len(REPORT_COLUMNS) - 2] != REPORT_COLUMNS[:len(REPORT_COLUMNS) - 2]:
        return {}
    return {row[0]: row + [""] * (len(REPORT_COLUMNS) - len(row)) for row in rows[1:] if row}


def write_report(course: Course, outcomes: dict[str, Graded]) -> None:
    """grading-report.csv: this run's rows, and the last report's rows for everyone else."""
    rows = _read_report(course)
    for o in outcomes.values():
        rows[o.student] = [o.student, o.status, "" if o.score is None else o.score,
                           "" if o.max_score is None else o.max_score, f"{o.seconds:.1f}", o.note,
                           " ".join(o.left_out), "; ".join(o.tampering), o.sandbox, o.worker, "; ".join(o.reasons),
                           o.log_file]
    with atomic_write(course.root / REPORT_FILE, newline="") as f:
        writer = safe_csv.Writer(f)
        writer.writerow(REPORT_COLUMNS)
        for student in sorted(rows):
            writer.writerow(rows[student])


def keep_log(course: Course, o: Graded) -> str:
    """The log of a task that did not grade its submission (nbgrader's log and the traceback)
    in LOGS/ASSIGNMENT/STUDENT.log; returns its course-relative path. A student graded now has
    the log of an earlier failure removed."""
    path = course.root / LOGS / course.assignment / f"{o.student}.log"
    if o.status == "graded":
        path.unlink(missing_ok=True)
        return ""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{o.student}: {o.status}: {o.note}\n\n{o.log or '(no log: the task itself failed)'}\n",
                    encoding="utf-8")
    return str(path.relative_to(course.root))


def read_grading_report(course_root: Path) -> dict[str, dict[str, str]] | None:
    """student -> row of grading-report.csv (column -> text); None when there is none."""
    try:
        with open(course_root / REPORT_FILE, newline="", encoding="utf-8") as f:
            rows = [{k: safe_csv.restore(v or "") for k, v in row.items() if k} for row in csv.DictReader(f)]
        return {row["student"]: row for row in rows if row.get("student")}
    except (OSError, KeyError, csv.Error, UnicodeDecodeError):
        return None
