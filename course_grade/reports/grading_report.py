"""grading-report.csv, one row per student (status, score, reasons, log), and the logs of the
tasks that failed."""
from __future__ import annotations

import csv
from pathlib import Path

from course_grade import safe_csv
from course_grade.course import LOGS, REPORT_FILE, Course, atomic_write
from course_grade.engine.bundles import Graded
from course_grade.late import late_by, points

REPORT_COLUMNS = ["student", "status", "score", "max_score", "seconds", "note", "left_out", "removed_cells",
                  "sandbox", "worker", "reason", "log", "late_by", "penalty", "score_after_penalty", "attention"]
# the columns every report has had (an older report's rows are read with the new ones empty)
FIRST_COLUMNS = 10


def _read_report(root: Path) -> dict[str, list[str]]:
    """The rows of the last report, by student (kept for students this run does not grade)."""
    try:
        with open(root / REPORT_FILE, newline="", encoding="utf-8") as f:
            rows = list(safe_csv.reader(f))
    except OSError:
        return {}
    if not rows or rows[0][:FIRST_COLUMNS] != REPORT_COLUMNS[:FIRST_COLUMNS]:
        return {}
    return {row[0]: row + [""] * (len(REPORT_COLUMNS) - len(row)) for row in rows[1:] if row}


def _late_columns(o: Graded) -> list:
    """late_by, penalty, score_after_penalty: the figures of course_grade/late.py."""
    if o.score is None or not o.merged:
        return ["", "", ""]
    late = o.late
    return [late_by(late.seconds) if late is not None and late.is_late else "",
            points(late.penalty) if late is not None else "0", points(o.score_after_penalty)]


def write_report(course: Course, outcomes: dict[str, Graded]) -> None:
    """grading-report.csv: this run's rows, and the last report's rows for everyone else."""
    rows = _read_report(course.root)
    for o in outcomes.values():
        rows[o.student] = [o.student, o.status, "" if o.score is None else o.score,
                           "" if o.max_score is None else o.max_score, f"{o.seconds:.1f}", o.note,
                           " ".join(o.left_out), "; ".join(o.tampering), o.sandbox, o.worker, "; ".join(o.reasons),
                           o.log_file, *_late_columns(o), ""]
    with atomic_write(course.root / REPORT_FILE, newline="") as f:
        writer = safe_csv.Writer(f)
        writer.writerow(REPORT_COLUMNS)
        for student in sorted(rows):
            writer.writerow(rows[student])


def set_attention(course_root: Path, attention: dict[str, list[str]]) -> None:
    """Fill grading-report.csv's attention column (the attention list's codes, course_grade/reasons.py)
    for every row, from the item analysis; nothing when there is no report."""
    rows = _read_report(course_root)
    if not rows:
        return
    column = REPORT_COLUMNS.index("attention")
    with atomic_write(course_root / REPORT_FILE, newline="") as f:
        writer = safe_csv.Writer(f)
        writer.writerow(REPORT_COLUMNS)
        for student in sorted(rows):
            row = rows[student][:len(REPORT_COLUMNS)]
            row[column] = "; ".join(attention.get(student, []))
            writer.writerow(row)


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
