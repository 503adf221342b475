"""The server's connections to a database file, seen from outside its process.

Each SQLite connection holds the database file open. The judge counts the file descriptors,
in every process of the sandbox, whose file is the database's inode (/proc/PID/fd, read from
outside), and every new open of that file (inotify): a file held open beside a connection
made per request keeps the count steady, but each request's open is still counted.
"""
from __future__ import annotations

import asyncio
import contextlib
import os
import time


def sandbox_processes(km) -> list[int]:
    """The host pids of every process in the kernel's sandbox (its PID namespace), or of the
    kernel and its children when it runs unsandboxed."""
    import psutil

    inside = km.sandbox_pid() if getattr(km, "sandboxed", False) else None
    if inside is not None:
        try:
            namespace = os.readlink(f"/proc/{inside}/ns/pid")
        except OSError:
            return []
        found = []
        for name in os.listdir("/proc"):
            if name.isdigit():
                with contextlib.suppress(OSError):
                    if os.readlink(f"/proc/{name}/ns/pid") == namespace:
                        found.append(int(name))
        return found
    process = getattr(km.provisioner, "process", None)
    if process is None:
        return []
    try:
        top = psutil.Process(process.pid)
        return [top.pid, *(p.pid for p in top.children(recursive=True))]
    except psutil.Error:
        return []


def open_connections(pids: list[int], identity: tuple[int, int]) -> int:
    """How many file descriptors of these processes are the file `identity` (device, inode)."""
    count = 0
    for pid in pids:
        try:
            names = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for name in names:
            with contextlib.suppress(OSError):
                found = os.stat(f"/proc/{pid}/fd/{name}")
                if (found.st_dev, found.st_ino) == identity:
                    count += 1
    return count


async def settled(count, *, quiet: float = 0.05, longest: float = 2.0, poll: float = 0.02) -> int:
    """`count()` once it has stopped changing for `quiet` seconds (at most `longest`)."""
    deadline = time.monotonic() + longest
    last, since = count(), time.monotonic()
    while time.monotonic() < deadline:
        await asyncio.sleep(poll)
        now = count()
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            break
    return last


class Opens:
    """Counts every open of one file, by any process (inotify's IN_OPEN on its inode, so an
    open inside the sandbox, through its bind mount, counts too): the opens between two
    `take()` calls are how many new connections the server made meanwhile."""

    IN_OPEN, IN_NONBLOCK, IN_CLOEXEC = 0x20, 0o4000, 0o2000000
    EVENT = 16  # struct inotify_event without a name (a watch on a file names nothing)

    def __init__(self, path: str):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        self.fd = libc.inotify_init1(self.IN_NONBLOCK | self.IN_CLOEXEC)
        if self.fd < 0 or libc.inotify_add_watch(self.fd, os.fsencode(path), self.IN_OPEN) < 0:
            error = ctypes.get_errno()
            if self.fd >= 0:
                os.close(self.fd)
            raise OSError(error, f"cannot watch {path}: {os.strerror(error)}")

    def take(self) -> int:
        """The opens since the last call."""
        count = 0
        while True:
            try:
                count += len(os.read(self.fd, 4096 * self.EVENT)) // self.EVENT
            except BlockingIOError:
                return count

    def close(self) -> None:
        os.close(self.fd)
