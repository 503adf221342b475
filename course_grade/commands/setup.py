"""`course-grade setup students|exchange`: what a course needs before its first release, made
from the course's own nbgrader_config.py (its course id and exchange folder are read from it,
never typed twice).

- `setup students [--write PATH [--force]]`: the students' nbgrader config (course id and
  exchange folder), without which a student's first `nbgrader list` fails with "Unwritable
  directory".
- `setup exchange`: makes the exchange folder, mode 1777 (below), and says what it made."""
from __future__ import annotations

import argparse
import os
import stat
import sys
from pathlib import Path
from typing import TextIO

from course_grade.course import UsageError, atomic_write

HELP = "make what students need before the first release: their nbgrader config, the exchange folder"

# nbgrader documents the exchange as writable by everyone (`chmod ugo+rw`), and its
# release_assignment insists on 0777 in the permission bits; the sticky bit (kept by nbgrader,
# which compares only those bits) stops a student from renaming or removing what others put
# there, the course's own folder first.
EXCHANGE_MODE = 0o1777
FOLDER_MODE = 0o755  # parents made for the exchange: everyone must pass through them
CONFIG_MODE = 0o644  # the students' config: everyone reads it
EVERY_USER = Path("/etc/jupyter/nbgrader_config.py")
ONE_USER = "~/.jupyter/nbgrader_config.py"

EPILOG = f"""\
students: put the printed file at {EVERY_USER} (every user of this machine: a
  JupyterHub) or at {ONE_USER} (one student), or let --write put it there.
exchange: made with mode 1777 (everyone writes, only a file's owner renames or removes it), its
  missing parents with 0755; an existing path (a link, a file, a folder with other modes) is
  never changed: the command says what to do. `nbgrader release_assignment` never makes it
  (the course's config refuses to: nbgrader_ext/release_into_existing_exchange.py).
"""


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.epilog = parser.epilog or EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    students = actions.add_parser("students", help="print (or --write) the students' nbgrader config")
    students.add_argument("--write", type=Path, metavar="PATH",
                          help=f"write it there ({EVERY_USER} or {ONE_USER}), atomically, never through a link")
    students.add_argument("--force", action="store_true", help="replace an existing PATH that says something else")
    exchange = actions.add_parser("exchange", help="make the exchange folder with the modes nbgrader needs")
    for sub in (students, exchange):
        sub.add_argument("--course", type=Path, default=Path("."),
                         help="the course folder (where nbgrader_config.py is); default: here")
    return parser


def load_config(path: Path):
    """One nbgrader config file, as nbgrader loads it (traitlets' loader); ConfigFileNotFound
    when there is none."""
    from traitlets.config.loader import PyFileConfigLoader

    return PyFileConfigLoader(path.name, path=str(path.parent)).load_config()


def settings(config) -> tuple[str, str]:
    """The course id and the exchange folder that `config` gives nbgrader, unchecked."""
    from nbgrader.coursedir import CourseDirectory
    from nbgrader.exchange.default import Exchange

    coursedir = CourseDirectory(config=config)
    return coursedir.course_id, Exchange(config=config, coursedir=coursedir).root


def course_settings(course: Path) -> tuple[str, str]:
    """The course id and the exchange folder, as nbgrader reads them from the course's config."""
    from traitlets.config.loader import ConfigFileNotFound

    try:
        config = load_config(course / "nbgrader_config.py")
    except ConfigFileNotFound:
        raise UsageError(f"no nbgrader_config.py in {course}: run this in the course folder or pass --course") from None
    course_id, root = settings(config)
    if not course_id:
        raise UsageError(f"{course / 'nbgrader_config.py'} sets no c.CourseDirectory.course_id: set it, then run "
                         f"this again")
    if not os.path.isabs(root):
        raise UsageError(f"the exchange folder {root!r} is relative: set c.Exchange.root (or NBGRADER_EXCHANGE) to an "
                         f"absolute path")
    return course_id, root


def students_config(course_id: str, root: str) -> str:
    return (f"# nbgrader settings for the students of {course_id}, made by `course-grade setup students`\n"
            f"# from the course's nbgrader_config.py. Put it at {EVERY_USER} (every user)\n"
            f"# or {ONE_USER} (one user).\n"
            f"c = get_config()  # noqa: F821 - provided by nbgrader\n"
            f"c.CourseDirectory.course_id = {course_id!r}\n"
            f"c.Exchange.root = {root!r}\n")


def _foreign_link(path: Path) -> Path | None:
    """The first folder of `path` that is a link owned by someone other than root or whoever runs
    this (e.g. a student's ~/.jupyter made a link to a file of root's), else None."""
    for folder in reversed(path.absolute().parents):
        try:
            st = folder.lstat()
        except FileNotFoundError:
            return None
        if stat.S_ISLNK(st.st_mode) and st.st_uid not in (0, os.geteuid()):
            return folder
    return None


def write_config(path: Path, text: str, force: bool) -> str:
    """Write `text` at `path` whole or not at all, never through a link; what happened, in words."""
    foreign = _foreign_link(path)
    if foreign is not None:
        raise UsageError(f"{foreign} is a link another user made: it is never followed; write the file where no "
                         f"other user's link leads, such as {EVERY_USER}")
    try:
        st = path.lstat()
    except FileNotFoundError:
        st = None
    if st is not None:
        if stat.S_ISLNK(st.st_mode):
            raise UsageError(f"{path} is a link: it is never followed; remove it, or write somewhere else")
        if not stat.S_ISREG(st.st_mode):
            raise UsageError(f"{path} exists and is not a file: remove it, or write somewhere else")
        if path.read_bytes() == text.encode():
            return f"{path} already says this: nothing to do"
        if not force:
            raise UsageError(f"{path} exists and says something else: compare it with the output of "
                             f"`course-grade setup students`, then add --force to replace it")
    try:
        made = make_folders(path.parent)
        with atomic_write(path) as f:
            f.write(text)
            os.fchmod(f.fileno(), CONFIG_MODE)
    except PermissionError:
        raise UsageError(f"cannot write {path}: permission denied: run this as root (sudo) for {EVERY_USER}, or "
                         f"write {ONE_USER}") from None
    folders = f" (made {', '.join(map(str, made))})" if made else ""
    return f"{'replaced' if st is not None else 'wrote'} {path}{folders}"


def make_folders(folder: Path) -> list[Path]:
    """Make `folder` and its missing parents, each 0755 whatever the umask; the ones made."""
    missing = [p for p in [folder, *folder.parents] if not os.path.lexists(p)][::-1]
    for path in missing:
        os.mkdir(path)
        _chmod(path, FOLDER_MODE)
    return missing


def _chmod(folder: Path, mode: int) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        os.fchmod(fd, mode)
    finally:
        os.close(fd)


def existing_exchange(root: Path) -> bool:
    """Whether the exchange is there, exactly a folder with EXCHANGE_MODE (False: it is missing);
    anything else there is a UsageError saying what to do."""
    want = f"{EXCHANGE_MODE:o}"
    try:
        st = root.lstat()
    except FileNotFoundError:
        return False
    if stat.S_ISLNK(st.st_mode):
        raise UsageError(f"the exchange {root} is a link: set c.Exchange.root (or NBGRADER_EXCHANGE) to the folder "
                         f"it points to, or remove the link")
    if not stat.S_ISDIR(st.st_mode):
        raise UsageError(f"the exchange {root} exists and is not a folder: remove it, or choose another exchange")
    have = f"{stat.S_IMODE(st.st_mode):o}"
    if have != want:
        raise UsageError(f"the exchange {root} exists with mode {have}, not {want}: if it is the exchange, run "
                         f"`chmod {want} {root}`; nothing was changed")
    return True


def unreachable(root: Path) -> str | None:
    """Why students could not reach `root` (a folder above it closed to other users), else None."""
    existing = next(p for p in root.parents if os.path.lexists(p))
    for parent in [existing, *existing.parents]:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            return (f"students could not reach the exchange {root}: {parent} has mode {stat.S_IMODE(mode):o}, "
                    f"closed to other users; run `chmod o+x {parent}`, or choose another exchange")
    return None


def make_exchange(root: Path) -> str:
    """Make the exchange folder with EXCHANGE_MODE; refuse, with what to do, anything already there
    that is not exactly that."""
    want = f"{EXCHANGE_MODE:o}"
    if existing_exchange(root):
        return f"the exchange {root} is there with mode {want}: nothing to do"
    closed = unreachable(root)
    if closed:
        raise UsageError(closed)
    try:
        made = make_folders(root.parent)
        os.mkdir(root)
        _chmod(root, EXCHANGE_MODE)
    except PermissionError:
        raise UsageError(f"cannot make the exchange {root}: permission denied: run this as root (sudo), or set "
                         f"NBGRADER_EXCHANGE to a folder you may make") from None
    parents = f"; made {', '.join(map(str, made))} too (mode {FOLDER_MODE:o})" if made else ""
    return (f"made the exchange {root} with mode {want} (every user writes into it, only a file's owner "
            f"renames or removes it){parents}")


def main(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = sys.stdout if out is None else out
    course_id, root = course_settings(args.course)
    if args.action == "exchange":
        print(make_exchange(Path(root)), file=out)
        return 0
    text = students_config(course_id, root)
    if args.write is None:
        out.write(text)
    else:
        print(write_config(args.write.expanduser(), text, args.force), file=out)
    return 0
