"""A runtime guard for grading kernels: a PEP 578 audit hook, installed before any student code.

The grading kernel manager (course_grade/kernels/sandbox.py) starts every grading kernel with
`import autograder.guard; autograder.guard.install()` among IPython's startup lines, so the
hook is in place before the first cell, sandbox or not. An audit hook cannot be removed. It
refuses, with a PermissionError that says so, what no solution of this lesson does and what
the syntax-tree analysis (course_grade/nbgrader_ext/tamper_analysis.py) may have missed because it was reached at
run time:

- starting processes (`subprocess`, `os.system`, `os.exec*`, `os.posix_spawn*`, `os.fork`);
- network connections to anything but a Unix socket;
- `ctypes` (which could do anything) and the garbage collector's object lists
  (`gc.get_objects`, `get_referrers`, `get_referents`: a way to find the checks' functions);
- writing a file outside the notebook's folder and `/tmp` (SQLite databases included, by a
  URI file name or ATTACH too; of `/dev`, only `/dev/null` and the standard streams), and
  opening the grader's files anywhere: a gradebook, `nbgrader_config.py`, and any notebook,
  the one being graded too (it holds the restored hidden tests);
- changing the working folder once the first cell has run (the grader may move a spare
  kernel into the submission's folder before that);
- making links (`os.symlink`, `os.link`), which the grader could follow later; and renaming,
  removing, truncating or changing the modes or times of anything outside the notebook's
  folder and `/tmp`, or of the grader's files anywhere (the notebook, the quiz answers,
  nbgrader's timestamp); paths relative to an open folder (`dir_fd`), and opening a folder
  outside the notebook's, which could carry a write past these checks.

The sandbox (course_grade/kernels/sandbox.py) is the boundary; this hook is the same rule inside the
kernel, so a sandboxed or unsandboxed kernel is refused the same things, with a sentence.

It never runs in a student's own kernel: only grading kernels install it.
"""
from __future__ import annotations

import os
import sys

from autograder.course import COURSE_FILES, SUBMISSION_FILES

REFUSED_EVENTS = {
    "subprocess.Popen": "starting a process",
    "os.system": "running a shell command",
    "os.exec": "replacing the kernel with another program",
    "os.posix_spawn": "starting a process",
    "os.spawn": "starting a process",
    "os.fork": "starting a process",
    "os.forkpty": "starting a process",
    "pty.spawn": "starting a process",
    "gc.get_objects": "listing every object in the kernel",
    "gc.get_referrers": "walking the garbage collector's references",
    "gc.get_referents": "walking the garbage collector's references",
}
# path events: the event's arguments that name paths, and what the event does
PATH_EVENTS = {
    "os.rename": ((0, 1), "renaming"), "os.remove": ((0,), "removing"), "os.rmdir": ((0,), "removing"),
    "os.truncate": ((0,), "truncating"), "os.chmod": ((0,), "changing the modes of"),
    "os.chown": ((0,), "changing the owner of"), "os.utime": ((0,), "changing the times of"),
    "os.mkdir": ((0,), "making a folder at"), "os.chflags": ((0,), "changing the flags of"),
}
DIR_FD = {"os.rename": (2, 3), "os.remove": (1,), "os.rmdir": (1,), "os.chmod": (2,), "os.chown": (3,),
          "os.utime": (3,), "os.mkdir": (2,), "os.symlink": (2,), "os.link": (2, 3)}
DEVICES = ("/dev/null", "/dev/stdout", "/dev/stderr", "/dev/tty")  # written outside the folder
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
_state = {"installed": False, "sealed": False}


class Refused(PermissionError):
    """What the grading kernel does not allow; the message says what and why."""


def _refuse(what: str) -> None:
    raise Refused(f"blocked while grading: {what} is not part of this lesson's code")


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _where(path) -> tuple[str, str] | None:
    """(the path as given, its real path) or None for a file descriptor or an unreadable name."""
    if not isinstance(path, (str, bytes, os.PathLike)):
        return None
    try:
        path = os.fsdecode(path)
        return path, os.path.realpath(path)
    except (OSError, ValueError, TypeError):
        return None


def _check_path_event(event: str, args: tuple) -> None:
    if any(i < len(args) and args[i] not in (None, -1, -100) for i in DIR_FD.get(event, ())):
        _refuse(f"{event.split('.')[1]} relative to an open folder (dir_fd)")
    if event in ("os.symlink", "os.link"):
        _refuse("making a link")
    indexes, what = PATH_EVENTS[event]
    here = os.path.realpath(os.getcwd())
    for i in indexes:
        found = _where(args[i]) if i < len(args) else None
        if found is None:
            continue
        path, full = found
        # a link itself, not what it points to, is what rename/remove change
        full = os.path.join(os.path.realpath(os.path.dirname(os.path.abspath(path))), os.path.basename(path))
        name = os.path.basename(full)
        if name in COURSE_FILES + SUBMISSION_FILES or name.endswith(".ipynb"):
            _refuse(f"{what} the grader's file {path}")
        if not (_inside(full, here) or _inside(full, "/tmp")):
            _refuse(f"{what} {path} outside the notebook's folder")


def _sqlite_path(database):
    """The file an SQLite database name opens: a URI file name (`file:PATH?mode=rwc`) by its
    path, anything else as given."""
    if isinstance(database, bytes):
        database = os.fsdecode(database)
    if not isinstance(database, str) or not database.startswith("file:"):
        return database
    from urllib.parse import unquote

    path = database[len("file:"):].split("?", 1)[0].split("#", 1)[0]
    if path.startswith("//"):  # file://HOST/PATH: the host is empty or localhost
        path = "/" + path[2:].partition("/")[2]
    return unquote(path) or ":memory:"


def _sqlite_authorizer(action, first, *_):
    """SQLite opens an ATTACHed database itself: the same rule as any file it opens."""
    import sqlite3

    if action == sqlite3.SQLITE_ATTACH and first not in ("", ":memory:"):
        if first is None:  # a file name bound as a parameter: unknown until it runs
            return sqlite3.SQLITE_DENY
        try:
            _check_open(_sqlite_path(first), "r+", None)
        except Refused:
            return sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_OK


def _authorize_sqlite() -> None:
    """Every SQLite connection gets the authorizer (the audit event comes before the
    connection can take one): sqlite3.connect, as aiosqlite and SQLAlchemy call it, is wrapped."""
    import functools
    import sqlite3

    connect = sqlite3.connect

    @functools.wraps(connect)
    def guarded(*args, **kwargs):
        connection = connect(*args, **kwargs)
        connection.set_authorizer(_sqlite_authorizer)
        return connection

    sqlite3.connect = guarded


def _check_open(path, mode, flags) -> None:
    if not isinstance(path, (str, bytes, os.PathLike)):
        return  # a file descriptor
    try:
        path = os.fsdecode(path)
        full = os.path.realpath(path)
        here = os.path.realpath(os.getcwd())
    except (OSError, ValueError):
        return
    writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
        isinstance(flags, int) and flags & _WRITE_FLAGS and not isinstance(mode, str))
    name = os.path.basename(full)
    if name in COURSE_FILES or name.endswith(".ipynb"):  # the notebook being graded holds the hidden tests
        _refuse(f"opening the grader's file {path}")
    if writing and name in SUBMISSION_FILES:
        _refuse(f"writing the grader's file {path}")
    if _inside(full, here):
        return
    if writing and not (_inside(full, "/tmp") or full in DEVICES):
        _refuse(f"writing {path} outside the notebook's folder")
    if not isinstance(mode, str) and not _inside(full, "/tmp") and os.path.isdir(full):
        _refuse(f"opening the folder {path} outside the notebook's folder")  # a dir_fd for os.open


def _hook(event: str, args: tuple) -> None:
    if event in REFUSED_EVENTS or event.startswith("ctypes."):
        _refuse(REFUSED_EVENTS.get(event, "ctypes"))
    if event == "open" and args:
        _check_open(*(tuple(args) + (None, None))[:3])
    elif event == "sqlite3.connect" and args:  # SQLite opens its file itself, unseen by "open"
        _check_open(_sqlite_path(args[0]), "r+", None)
    elif event == "socket.connect" and args:
        sock = args[0]
        if getattr(sock, "family", None) != getattr(__import__("socket"), "AF_UNIX", None):
            _refuse("a network connection")
    elif event in PATH_EVENTS or event in ("os.symlink", "os.link"):
        _check_path_event(event, args)
    elif event == "os.chdir" and _state["sealed"]:
        _refuse("changing the working folder")


def _seal(*_args) -> None:
    _state["sealed"] = True


def install() -> None:
    """Install the hook (once per process) and seal the working folder at the first cell."""
    if _state["installed"]:
        return
    _state["installed"] = True
    sys.addaudithook(_hook)
    _authorize_sqlite()
    try:
        from IPython import get_ipython

        shell = get_ipython()
    except Exception:
        shell = None
    if shell is None:  # not in a kernel: seal at once
        _seal()
    else:
        shell.events.register("pre_run_cell", _seal)
