"""The learner's working copy of the lesson: workspace/connection-pooling/connection-pooling.ipynb.

    python -m autograder workspace         # make the copy if it is missing (never overwrites)
    python -m autograder reset             # start over: a fresh copy; the old one is kept as a backup

The committed student notebook in release/ is never edited: JupyterLab opens the copy.
Resetting moves the old notebook and its quiz_answers.json aside with a timestamp, so
nothing a learner wrote is lost.
"""
from __future__ import annotations

import shutil
import time
from pathlib import Path

from autograder.course import ANSWERS_FILE, ASSIGNMENT, UsageError


def paths(course: Path, folder: Path | None = None) -> tuple[Path, Path]:
    """The release notebook and the working copy (in `folder`, default workspace/connection-pooling/)."""
    release = course / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    if not release.is_file():
        raise UsageError(f"no {release.relative_to(course)}: run this in the course repository (or pass --course)")
    return release, (course / (folder or Path("workspace") / ASSIGNMENT)) / f"{ASSIGNMENT}.ipynb"


def ensure(course: Path, folder: Path | None = None) -> tuple[Path, bool]:
    """The working copy, made from release/ if missing; returns (path, made now)."""
    release, copy = paths(course, folder)
    if copy.exists():
        return copy, False
    copy.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(release, copy)
    return copy, True


def reset(course: Path, folder: Path | None = None) -> tuple[Path, list[Path]]:
    """A fresh working copy; returns it and the backups made of the old files."""
    release, copy = paths(course, folder)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    backups = []
    for old in (copy, copy.parent / ANSWERS_FILE):
        if old.exists():
            backup = old.with_name(f"{old.stem}.backup-{stamp}{old.suffix}")
            old.rename(backup)
            backups.append(backup)
    copy.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(release, copy)
    return copy, backups


def add_commands(commands) -> None:
    """The `workspace` and `reset` subcommands, for `python -m autograder` and `course-grade`."""
    for name, text in (("workspace", "make your working copy of the lesson in workspace/ if it is missing"),
                       ("reset", "start the lesson over: a fresh working copy (the old one is kept as a backup)")):
        sub = commands.add_parser(name, help=text)
        sub.add_argument("--course", type=Path, default=Path("."), help="the course repository (default: here)")
        sub.add_argument("--to", type=Path,
                         help="the folder of the copy, inside the course (default: workspace/connection-pooling)")


def run_command(args) -> int:
    import sys

    try:
        if args.command == "reset":
            copy, backups = reset(args.course.resolve(), args.to)
            for backup in backups:
                print(f"kept your previous work as {backup}")
            print(f"fresh copy of the lesson: {copy}")
        else:
            copy, made = ensure(args.course.resolve(), args.to)
            print(f"{'made' if made else 'kept'} your copy of the lesson: {copy}")
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
