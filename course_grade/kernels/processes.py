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
    kill(family)
    psutil.wait_procs(family, timeout=10)  # reaps those that are this process's children


def kill(procs) -> None:
    """Send SIGKILL to each process still there."""
    import psutil

    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.kill()


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


def running(processes: list, within: float) -> list:
    """Those of `processes` still running after waiting up to `within` s for them to end (a
    zombie has ended: its parent, not us, reaps it)."""
    import psutil

    def still(p) -> bool:
        try:
            return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
        except psutil.Error:
            return False

    deadline = time.monotonic() + within
    left = [p for p in processes if still(p)]
    while left and time.monotonic() < deadline:
        time.sleep(0.005)
        left = [p for p in left if still(p)]
    return left
