"""`course-grade report ASSIGNMENT`: the item analysis of a graded assignment, written to
reports/ASSIGNMENT.html and .csv (and -teach.csv, -students.csv); every submission on its
attention list is flagged in the gradebook."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from course_grade.course import ASSIGNMENT

HELP = "the item analysis of a graded assignment: reports/ASSIGNMENT.html and .csv"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("assignment", help=f"the assignment's name, e.g. {ASSIGNMENT}")
    parser.add_argument("--course", type=Path, default=Path("."),
                        help="the course folder (where gradebook.db is); default: here")


def main(args: argparse.Namespace) -> int:
    """Build and write the report; prints both paths on one line. Bad input raises
    ReportError (a UsageError): one line, nothing written."""
    from course_grade.reports.item_analysis import build
    from course_grade.reports.item_report import publish

    html_path, csv_path = publish(build(Path(args.course), args.assignment))
    print(f"Item analysis of {args.assignment}: {html_path} {csv_path}", file=sys.stdout)
    return 0
