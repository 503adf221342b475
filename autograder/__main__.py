"""Command line: `python -m autograder grade ASSIGNMENT` (also installed as `course-grade`)."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m autograder",
        description="Grade every submission of an assignment in parallel with nbgrader, then write feedback and grades.csv.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    grade = commands.add_parser("grade", help="autograde everything in submitted/ for one assignment")
    grade.add_argument("assignment", help="the assignment's name, e.g. connection-pooling")
    grade.add_argument("--course", type=Path, default=Path("."), help="the course folder (where nbgrader_config.py is); default: here")
    grade.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="submissions graded at once (default: one per core)")
    grade.add_argument("--submission-timeout", type=float, default=600,
                       help="seconds one submission may take before it is stopped (default: 600)")
    grade.add_argument("--no-feedback", action="store_true", help="do not run nbgrader generate_feedback")
    grade.add_argument("--no-spare-kernels", action="store_true",
                       help="start each submission's kernel when it is needed, as nbgrader does (slower; "
                            "by default each worker keeps the next kernel booting while it grades)")
    args = parser.parse_args(argv)

    from autograder.grading import UsageError, run

    if args.jobs < 1 or args.submission_timeout <= 0:
        print("error: --jobs must be at least 1 and --submission-timeout positive", file=sys.stderr)
        return 2
    try:
        return run(args.course, args.assignment, args.jobs, args.submission_timeout, feedback=not args.no_feedback,
                   spare_kernels=not args.no_spare_kernels)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
