"""A runtime guard for grading kernels: a PEP 578 audit hook, installed before any student code.

The grading kernel manager (course_grade/sandbox.py) starts every grading kernel with
`import autograder.guard; autograder.guard.install()` among IPython's startup lines, so the
hook is in place before the first cell, sandbox or not. An audit hook cannot be removed. It
refuses, with a PermissionError that says so, what no solution of this lesson does and what
the syntax-tree analysis (course_grade/tamper.py) may have missed because it was reached at
run time:

- starting processes (`subprocess`, `os.system`, `os.exec*`, `os.posix_spawn*`, `os.fork`);
- network connections to anything but a Unix socket;
- `ctypes` (which could do anything) and the garbage collector's object lists
  (`gc.get_objects`, `get_referrers`, `get_referents`: a way to find the checks' functions);
- writing a file outside the notebook's folder and `/tmp` (SQLite databases included), and
  opening the grader's files anywhere: a gradebook, `nbgrader_config.py`, and any notebook,
  the one being graded too (it holds the restored hidden tests);
- changing the working folder once the first cell has run (the grader may move a spare
  kernel into the submission's folder before that).

It never runs in a student's own kernel: only grading kernels install it.
"""
from __future__ import annotations

import os
import sys

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
GRADERS_FILES = ("gradebook.db", "nbgrader_config.py")
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
_state = {"installed": False, "sealed": False}


class Refused(PermissionError):
    """What the grading kernel does not allow; the message says what and why."""


def _refuse(what: str) -> None:
    raise Refused(f"blocked while grading: {what} is not part of this lesson's code")


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


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
    if name in GRADERS_FILES or name.endswith(".ipynb"):  # the notebook being graded holds the hidden tests
        _refuse(f"opening the grader's file {path}")
    if _inside(full, here):
        return
    if writing and not (_inside(full, "/tmp") or full.startswith("/dev/")):
        _refuse(f"writing {path} outside the notebook's folder")


def _hook(event: str, args: tuple) -> None:
    if event in REFUSED_EVENTS or event.startswith("ctypes."):
        _refuse(REFUSED_EVENTS.get(event, "ctypes"))
    if event == "open" and args:
        _check_open(*(tuple(args) + (None, None))[:3])
    elif event == "sqlite3.connect" and args:  # SQLite opens its file itself, unseen by "open"
        _check_open(args[0], "r+", None)
    elif event == "socket.connect" and args:
        sock = args[0]
        if getattr(sock, "family", None) != getattr(__import__("socket"), "AF_UNIX", None):
            _refuse("a network connection")
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
    try:
        from IPython import get_ipython

        shell = get_ipython()
    except Exception:
        shell = None
    if shell is None:  # not in a kernel: seal at once
        _seal()
    else:
        shell.events.register("pre_run_cell", _seal)
