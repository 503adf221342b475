"""Facts both sides of the course share, declared once: the assignment's name, the files that
travel with a submission, how a command says it was used wrongly, how a file is replaced in
one step, and the tools' environment. The instructor's side (`course_grade.course`) builds on
this module; nothing here imports it."""
from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

ASSIGNMENT = "connection-pooling"  # the Makefile reads this line too

# The files of a submission besides its notebooks: the quiz's answers (written by each click),
# and what nbgrader's submit and collect write beside it. Grading reads them, never changes them.
ANSWERS_FILE = "quiz_answers.json"
NBGRADER_FILES = ("timestamp.txt", "submission_secret.txt")
SUBMISSION_FILES = (ANSWERS_FILE, *NBGRADER_FILES)
# The course's own files a grading kernel may neither read nor touch.
COURSE_FILES = ("gradebook.db", "nbgrader_config.py")
# A kernel's leftovers, never copied from a folder into another (the source folder, a release).
LEFTOVERS = (".ipynb_checkpoints", "__pycache__", "*.db", "*.db-journal")


class UsageError(Exception):
    """Bad arguments or course layout: one line saying what to do; nothing was written."""


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w", *, encoding: str = "utf-8", newline: str | None = None):
    """A file object for writing `path` whole or not at all: it writes a new file beside
    `path` (the umask's usual mode, never through a link), which replaces `path` in one step,
    on disk, when the block ends without error, and is removed when it does not."""
    path = Path(path)
    partial = path.with_name(f".{path.name}.{os.urandom(4).hex()}.partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o666)
    text = {} if "b" in mode else {"encoding": encoding, "newline": newline}
    try:
        with os.fdopen(fd, mode, **text) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(partial, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(partial)
        raise


def tool_env() -> dict:
    """The environment for a child process: this interpreter's tools (nbgrader, alembic) first
    on PATH, as a venv's activation would put them."""
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
