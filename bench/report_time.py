"""How long the item-analysis report takes for a big class, and how big it is.

    .venv/bin/python -m bench.report_time [--students 500] [--keep DIR]

Builds a synthetic class (a course folder with the real assignment, then N graded
submissions fabricated without kernels: gradebook rows, autograded notebooks whose cells
show real failure messages, quiz answers, grading-report.csv; tests/support/graded_class.py's
`fabricate` and `synthetic_class`), then times `item_analysis.build` and `write`, and the
attention list's share of the build, and prints the HTML's and CSV's sizes. Targets: under
10 s and under 2 MB for 500 submissions.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from course_grade.reports import item_analysis as ia
from course_grade.reports import item_report
from tests.support.course import ASSIGNMENT, make_course
from tests.support.graded_class import fabricate, synthetic_class


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=500)
    parser.add_argument("--keep", type=Path, help="make the course here and keep it (default: a temporary folder)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="report-bench-") as scratch:
        course = args.keep or Path(scratch) / "course"
        start = time.perf_counter()
        make_course(course)
        made = time.perf_counter()
        students, report = synthetic_class(args.students)
        fabricate(course, students, report)
        fabricated = time.perf_counter()
        analysis = ia.build(course, ASSIGNMENT)
        built = time.perf_counter()
        html_path, csv_path = item_report.write(analysis, course / "reports")
        written = time.perf_counter()
        print(f"course made in {made - start:.1f} s; "
              f"{args.students} submissions fabricated in {fabricated - made:.1f} s")
        print(f"build  {built - fabricated:6.2f} s  "
              f"(gradebook, {args.students} autograded notebooks, answers, report csv)")
        print(f"write  {written - built:6.2f} s")
        seconds, listed = _attention_alone(course, analysis)
        print(f"of the build, the attention list alone: {seconds:.2f} s ({seconds / (built - fabricated):.0%}), "
              f"{listed} entries; teach-again: {len(analysis.teach)} mistakes, "
              f"top {analysis.teach[0].points_lost:g} points lost by {analysis.teach[0].count} students")
        total = written - fabricated
        size = html_path.stat().st_size
        print(f"total  {total:6.2f} s  (target < 10 s: {'ok' if total < 10 else 'OVER'})")
        print(f"HTML   {size / 1e6:6.3f} MB (target < 2 MB: {'ok' if size < 2e6 else 'OVER'}), "
              f"CSV {csv_path.stat().st_size / 1e3:.1f} kB")
        if args.keep:
            print(f"report: {html_path}")
    return 0


def _attention_alone(course: Path, analysis) -> tuple[float, int]:
    """The attention list made again for everyone, as build makes it: (seconds, entries)."""
    import json

    from course_grade.nbgrader_ext.grade_quiz_answers import QUIZ_CELL
    from course_grade.reports.attention import answer_cells, assess, read_facts
    from course_grade.reports.grading_report import read_grading_report
    from course_grade.reports.readers import gradebook_scores, quiz_answers_state

    cells, _sources, subs = gradebook_scores(course / "gradebook.db", ASSIGNMENT)
    start = time.perf_counter()
    report = read_grading_report(course) or {}
    released = answer_cells(json.loads((course / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").read_text()))
    questions = [m["qid"] for gid, _, _ in cells if (m := QUIZ_CELL.fullmatch(gid))]
    listed = 0
    for s in sorted(set(subs) | set(report)):
        facts = read_facts(course, ASSIGNMENT, s, report.get(s, {}), subs.get(s),
                           quiz_answers_state(course / "submitted" / s / ASSIGNMENT))
        listed += len(assess(facts, released, questions))
    return time.perf_counter() - start, listed


if __name__ == "__main__":
    sys.exit(main())
