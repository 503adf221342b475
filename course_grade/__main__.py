"""Command line: `course-grade grade ASSIGNMENT` (also `python -m course_grade`): the instructor's
commands, plus a self-learner's `selfgrade`, and `workspace`/`reset` (as `python -m autograder`)."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from autograder import workspace


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="course-grade",
        description="The course's commands: grade a class (instructors), grade your own notebook, make or reset your working copy.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    grade = commands.add_parser("grade", help="autograde everything in submitted/ for one assignment")
    grade.add_argument("assignment", help="the assignment's name, e.g. connection-pooling")
    grade.add_argument("--course", type=Path, default=Path("."), help="the course folder (where nbgrader_config.py is); default: here")
    grade.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                       help="worker processes of the local Dask cluster, one submission each at a time (default: one per core)")
    grade.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                       help="grade on a running Dask cluster instead of this machine "
                            "(default: $COURSE_GRADE_SCHEDULER, else a local cluster of --jobs workers)")
    grade.add_argument("--student", action="append", metavar="ID", dest="students",
                       help="grade only this student (repeat for several); everyone else's grades and feedback stay as they are")
    grade.add_argument("--resume", action="store_true",
                       help="grade only the submissions not graded yet (after a stopped run); default: grade everything")
    grade.add_argument("--submission-timeout", type=float, default=600,
                       help="seconds one submission may take before it is stopped (default: 600)")
    grade.add_argument("--no-feedback", action="store_true", help="do not run nbgrader generate_feedback")
    grade.add_argument("--no-spare-kernels", action="store_true",
                       help="start each submission's kernel when it is needed, as nbgrader does (slower; "
                            "by default each worker keeps the next kernel booting while it grades)")
    selfgrade = commands.add_parser("selfgrade", help="grade your own copy of the lesson, hidden tests included")
    selfgrade.add_argument("notebook", type=Path, nargs="?",
                           help="your notebook (default: connection-pooling.ipynb here, else in workspace/connection-pooling/)")
    selfgrade.add_argument("--course", type=Path, help="the course repository (default: found above the notebook)")
    selfgrade.add_argument("--warm", action="store_true",
                           help="only start the self-grading service in the background (if it is not running) and return")
    report = commands.add_parser("report", help="the item analysis of a graded assignment: reports/ASSIGNMENT.html and .csv")
    report.add_argument("assignment", help="the assignment's name, e.g. connection-pooling")
    report.add_argument("--course", type=Path, default=Path("."), help="the course folder (where gradebook.db is); default: here")
    from course_grade.commands import export as lms

    lms.add_arguments(commands.add_parser("export", help=lms.HELP))
    workspace.add_commands(commands)
    args = parser.parse_args(argv)
    if args.command == "export":
        return lms.main(args)
    if args.command == "report":
        from course_grade.reports import item_report

        return item_report.main(args.course, args.assignment)

    from course_grade.commands.grade import UsageError, run

    if args.command == "selfgrade":
        from course_grade.selfgrade import client as sg

        return sg.main(args.notebook, args.course, warm=args.warm)
    if args.command in ("workspace", "reset"):
        return workspace.run_command(args)

    if args.jobs < 1:
        print(f"error: --jobs {args.jobs}: give at least 1 worker process", file=sys.stderr)
        return 2
    if args.submission_timeout <= 0:
        print(f"error: --submission-timeout {args.submission_timeout:g}: give a positive number of seconds, e.g. 600",
              file=sys.stderr)
        return 2
    try:
        return run(args.course, args.assignment, args.jobs, args.submission_timeout, feedback=not args.no_feedback,
                   spare_kernels=not args.no_spare_kernels, scheduler=args.scheduler, resume=args.resume,
                   only=args.students)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
