"""The course folder as the instructor's side knows it, declared once: where things are, the
assignment, opening the gradebook, replacing a file in one step, bad usage, and the
environment of the tools it runs. Every other module of `course_grade` may import this one;
it imports none of them."""
from __future__ import annotations

import contextlib
import os
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

from autograder.course import (
    ANSWERS_FILE,
    ASSIGNMENT,
    COURSE_FILES,
    LEFTOVERS,
    NBGRADER_FILES,
    SUBMISSION_FILES,
    UsageError,
    atomic_write,
    tool_env,
)
from course_grade import NOT_IMPORTED

__all__ = ["ANSWERS_FILE", "ASSIGNMENT", "COURSE_FILES", "LEFTOVERS", "LOGS", "NBGRADER_FILES", "REPORTS_DIR",
           "REPORT_FILE", "SUBMISSION_FILES", "Course", "UsageError", "atomic_write", "nbgrader_command",
           "one_transaction", "open_course", "open_gradebook", "timestamp_in", "tool_env"]

REPORT_FILE = "grading-report.csv"  # the grading command's per-student report, in the course folder
REPORTS_DIR = "reports"  # the item analysis (ASSIGNMENT.html, .csv) and the logs
LOGS = f"{REPORTS_DIR}/logs"  # the log of every task that failed: LOGS/ASSIGNMENT/STUDENT.log

# `nbgrader ARGS...` for this package's steps (feedback, export, generate_assignment): nbgrader's
# own entry point, in this interpreter, without NOT_IMPORTED.
NBGRADER_LAUNCH = (f"import sys; sys.modules.update(dict.fromkeys({NOT_IMPORTED!r})); "
                   "from nbgrader.apps.nbgraderapp import main; sys.exit(main())")


def nbgrader_command() -> list[str]:
    """The command line of `nbgrader` (followed by its arguments), started faster."""
    return [sys.executable, "-c", NBGRADER_LAUNCH]


@contextlib.contextmanager
def open_gradebook(path: str | os.PathLike):
    """nbgrader's `Gradebook` on the SQLite file `path` (or a database URL, as nbgrader gives its
    preprocessors), closed at the end of the block. The
    SQLAlchemy warnings nbgrader's own queries raise (autoflush notices) are not shown: they are
    about nbgrader's code, and a grading step writes nothing to stderr."""
    from nbgrader.api import Gradebook
    from sqlalchemy.exc import SAWarning

    warnings.filterwarnings("ignore", category=SAWarning, module="nbgrader")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # and whatever opening (creating its tables) says
        where = os.fspath(path)
        gradebook = Gradebook(where if "://" in where else f"sqlite:///{where}")
    try:
        yield gradebook
    finally:
        gradebook.close()


@contextlib.contextmanager
def one_transaction(gradebook):
    """nbgrader's Gradebook calls commit after each change: inside this block its changes are
    only flushed, then committed together when the block ends, or all rolled back."""
    session = gradebook.db
    commit = session.commit
    session.commit = session.flush
    try:
        yield gradebook
        del session.commit
        commit()
    except BaseException:
        session.__dict__.pop("commit", None)
        session.rollback()
        raise


@dataclass
class Course:
    root: Path
    assignment: str
    notebooks: list[str]  # notebook names of the assignment, from the gradebook
    students: list[str]

    @property
    def gradebook(self) -> Path:
        return self.root / "gradebook.db"

    def submitted(self, student: str) -> Path:
        return self.root / "submitted" / student / self.assignment


def timestamp_in(folder: Path):
    """The time in `folder`'s timestamp.txt (nbgrader's, UTC), or None when there is none or it
    cannot be read: what nbgrader's CourseDirectory.get_existing_timestamp reads."""
    from nbgrader.utils import parse_utc

    try:
        fd = os.open(folder / "timestamp.txt", os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        text = os.read(fd, 200).decode("utf-8", "replace").strip()
    except OSError:
        return None
    finally:
        os.close(fd)
    try:
        return parse_utc(text) if text else None
    except ValueError:
        return None


def open_course(root: Path, assignment: str) -> Course:
    """Check everything before anything is written; raise UsageError with one line."""
    from nbgrader.api import MissingEntry

    root = root.resolve()
    if not (root / "nbgrader_config.py").is_file():
        raise UsageError(f"no nbgrader_config.py in {root}: run this in the course folder or pass --course")
    if not (root / "gradebook.db").is_file():
        raise UsageError(f"no gradebook.db in {root}: "
                         f"create the assignment first with `nbgrader generate_assignment {assignment}`")
    with open_gradebook(root / 'gradebook.db') as gb:
        try:
            notebooks = [nb.name for nb in gb.find_assignment(assignment).notebooks]
        except MissingEntry:
            known = ", ".join(a.name for a in gb.assignments) or "none"
            raise UsageError(f"unknown assignment {assignment!r} (the gradebook has: {known})") from None
    folder = root / "submitted"
    students = sorted(p.parent.name for p in folder.glob(f"*/{assignment}") if p.is_dir()) if folder.is_dir() else []
    if not students:
        raise UsageError(f"no submissions in {folder}/*/{assignment}/: "
                         f"collect them first (nbgrader collect {assignment})")
    return Course(root, assignment, notebooks, students)


LOGS = "reports/logs"  # the log of every task that failed: LOGS/ASSIGNMENT/STUDENT.log
