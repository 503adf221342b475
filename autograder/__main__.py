"""A learner's command line: make or reset the working copy of the lesson.

    python -m autograder workspace   # make the copy if it is missing (never overwrites)
    python -m autograder reset       # start over; the old copy is kept as a backup

Grading commands live on the instructor's side: `course-grade` (python -m course_grade).
"""
from __future__ import annotations

import argparse
import sys

from autograder import workspace


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograder",
                                     description="Make or reset your working copy of the lesson.")
    commands = parser.add_subparsers(dest="command", required=True)
    workspace.add_commands(commands)
    args = parser.parse_args(argv)
    return workspace.run_command(args)


if __name__ == "__main__":
    sys.exit(main())
