"""How long the item-analysis report takes for a big class, and how big it is.

    .venv/bin/python -m bench.report_time [--students 500] [--keep DIR]

Builds a synthetic class (a course folder with the real assignment, then N graded
submissions fabricated without kernels: gradebook rows, autograded notebooks whose cells
show real failure messages, quiz answers, grading-report.csv; tests/support/graded_class.py's
`fabricate` and `synthetic_class`), then times `item_analysis.build` and `write` and prints
the HTML's and CSV's sizes. Targets: under 10 s and under 2 MB for 500 submissions.
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
        total = written - fabricated
        size = html_path.stat().st_size
        print(f"total  {total:6.2f} s  (target < 10 s: {'ok' if total < 10 else 'OVER'})")
        print(f"HTML   {size / 1e6:6.3f} MB (target < 2 MB: {'ok' if size < 2e6 else 'OVER'}), "
              f"CSV {csv_path.stat().st_size / 1e3:.1f} kB")
        if args.keep:
            print(f"report: {html_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
