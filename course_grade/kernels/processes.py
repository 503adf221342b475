"""Stopping processes: the one place that kills a process tree or waits for a child."""
from __future__ import annotations

import contextlib
import os
import time


def kernels_started_here() -> list:
    """The kernels (and their sandboxes) this process started."""
    import psutil

    found = []
    for proc in psutil.Process().children(recursive=False):
        try:
            cmd = " ".join(proc.cmdline())
        except psutil.Error:
            continue
        if "ipykernel" in cmd or "bwrap" in cmd or "prlimit" in cmd:
            found.append(proc)
    return found


def kill_tree(procs) -> None:
    """Kill each process and everything it started."""
    import psutil

    family = []
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            family += proc.children(recursive=True) + [proc]
    for proc in family:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(family, timeout=10)


def wait_child(pid: int, seconds: float) -> int | None:
    """The exit status of child `pid` once it ends, or None if it is still running after
    `seconds` (it is then killed and reaped)."""
    import select
    import signal

    try:
        fd = os.pidfd_open(pid)
    except (AttributeError, OSError):  # no pidfd (old kernel): poll
        fd = None
    try:
        end = time.monotonic() + seconds
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return os.waitstatus_to_exitcode(status)
            left = end - time.monotonic()
            if left <= 0:
                break
            if fd is not None:
                select.select([fd], [], [], left)
            else:
                time.sleep(min(left, 0.02))
    finally:
        if fd is not None:
            os.close(fd)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return None
