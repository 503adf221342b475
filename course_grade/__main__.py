"""`course-grade COMMAND` (also `python -m course_grade`): the instructor's commands, a
self-learner's `selfgrade`, and `workspace`/`reset` (also `python -m autograder`). Each command
is a module of `course_grade.commands` with `HELP`, `add_arguments(parser)` and `main(args)`;
this module only dispatches to them."""
from __future__ import annotations

import argparse
import sys

from autograder import workspace
from course_grade.commands import doctor, export, grade, report, roster, selfgrade, setup
from course_grade.course import UsageError

COMMANDS = {"grade": grade, "selfgrade": selfgrade, "report": report, "export": export, "roster": roster,
            "setup": setup, "doctor": doctor}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="course-grade",
        description="The course's commands: grade a class (instructors), grade your own notebook, "
                    "make or reset your working copy.")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, command in COMMANDS.items():
        command.add_arguments(commands.add_parser(name, help=command.HELP))
    workspace.add_commands(commands)
    args = parser.parse_args(argv)
    if args.command not in COMMANDS:
        return workspace.run_command(args)
    try:
        return COMMANDS[args.command].main(args)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
