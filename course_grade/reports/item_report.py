"""`course-grade report ASSIGNMENT`: the item analysis written to reports/ASSIGNMENT.html and
.csv, the ranked mistakes to ASSIGNMENT-teach.csv, one line per student to
ASSIGNMENT-students.csv. The numbers come from course_grade/reports/item_analysis.py (`build`), the page from
course_grade/reports/item_analysis_html.py (`render`); this module puts them on disk, replacing each
file in one step, and is what the grading command calls at the end of every run."""
from __future__ import annotations

import logging
from pathlib import Path

from course_grade import safe_csv
from course_grade.course import REPORTS_DIR, atomic_write
from course_grade.reports.attention import flag
from course_grade.reports.grading_report import set_attention
from course_grade.reports.item_analysis import (
    CSV_COLUMNS,
    STUDENT_COLUMNS,
    TEACH_COLUMNS,
    Analysis,
    build,
    csv_rows,
    student_rows,
    teach_rows,
)
from course_grade.reports.item_analysis_html import render

log = logging.getLogger("course_grade.reports.item_analysis")


def write(analysis: Analysis, out_dir: Path | None = None) -> tuple[Path, Path]:
    """Write ASSIGNMENT.html and ASSIGNMENT.csv into `out_dir` (default: the course's reports/),
    each replaced in one step; returns their paths."""
    out_dir = Path(out_dir) if out_dir is not None else analysis.course_root / REPORTS_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    html_path, csv_path = out_dir / f"{analysis.assignment}.html", out_dir / f"{analysis.assignment}.csv"
    page = render(analysis, out_dir)
    with atomic_write(html_path) as f:
        f.write(page)
    for path, columns, rows in [(csv_path, CSV_COLUMNS, csv_rows(analysis)),
                                (out_dir / f"{analysis.assignment}-teach.csv", TEACH_COLUMNS, teach_rows(analysis)),
                                (out_dir / f"{analysis.assignment}-students.csv", STUDENT_COLUMNS,
                                 student_rows(analysis))]:
        with atomic_write(path, newline="") as f:
            writer = safe_csv.DictWriter(f, fieldnames=columns, restval="")
            writer.writeheader()
            writer.writerows(rows)
    return html_path, csv_path


def publish(analysis: Analysis) -> tuple[Path, Path]:
    """Write the report's files into the course's reports/, flag every submission on the
    attention list in the gradebook (the formgrader's flag) and fill grading-report.csv's
    attention column."""
    written = write(analysis)
    gradebook = analysis.course_root / "gradebook.db"
    if analysis.attention and gradebook.is_file():
        flag(gradebook, analysis.assignment, {a.student for a in analysis.attention})
    set_attention(analysis.course_root, {s: [a.code for a in why] for s, why in analysis.to_look_at.items()})
    return written


def report_after_grading(course_root: Path, assignment: str, out=None) -> Path | None:
    """Write the report at the end of a grading run; never raises. Returns the HTML path, or
    None (after one line, on `out` if given, else logged) when it could not be written."""
    written = analysis_after_grading(course_root, assignment, out)
    return written[0] if written else None


def analysis_after_grading(course_root: Path, assignment: str, out=None) -> tuple[Path, Analysis] | None:
    """report_after_grading's work: (the HTML path, the analysis written), or None."""
    try:
        analysis = build(Path(course_root), assignment)
        html_path, _csv = publish(analysis)
        return html_path, analysis
    except Exception as exc:  # a report must never fail a grading run
        why = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        if out is not None:
            print(f"WARNING: the item analysis was not written ({why}); run `course-grade report {assignment}` "
                  f"to try again", file=out)
        else:
            log.warning("item analysis not written: %s", why)
        return None
