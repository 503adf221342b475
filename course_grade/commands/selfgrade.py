"""`course-grade selfgrade [NOTEBOOK]`: a self-learner grades their own copy of the lesson,
hidden tests included (course_grade/selfgrade/)."""
from __future__ import annotations

import argparse
from pathlib import Path

from course_grade.course import ASSIGNMENT

HELP = "grade your own copy of the lesson, hidden tests included"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("notebook", type=Path, nargs="?",
                        help=f"your notebook (default: {ASSIGNMENT}.ipynb here, else in workspace/{ASSIGNMENT}/)")
    parser.add_argument("--course", type=Path, help="the course repository (default: found above the notebook)")
    only = parser.add_mutually_exclusive_group()
    only.add_argument("--json", dest="as_json", action="store_true",
                      help="print the grading as JSON: the report's text and each graded cell's score")
    only.add_argument("--warm", action="store_true",
                      help="only start the self-grading service in the background (if it is not running) and return")
    only.add_argument("--status", dest="service_only", action="store_const", const="status",
                      help="only say whether this course's background self-grading service is running")
    only.add_argument("--stop", dest="service_only", action="store_const", const="stop",
                      help="only stop this course's background self-grading service (it also stops by itself "
                           "after 30 idle minutes)")


def main(args: argparse.Namespace) -> int:
    from course_grade.selfgrade import client

    return client.main(args.notebook, args.course, warm=args.warm, service_only=args.service_only,
                       as_json=args.as_json)
