"""The judge's folder: the databases it makes and lends the sandbox, and the sockets it reaches.

The judge makes `test.db` (the lesson's table and seed rows, as the set-up cell would) and a
second database in a folder of its own, which no sandbox can write: the sandbox gets the two
files bound writable in its working folder, so the server reads and writes the judge's files
and cannot replace them. The server's sockets are in the kernel's private folder, which the
sandbox can write: each is opened by the judge with O_PATH and O_NOFOLLOW, checked to be a
socket, and reached through /proc/self/fd, so a link left there leads nowhere.
"""
from __future__ import annotations

import os
import secrets
import shutil
import sqlite3
import stat
import tempfile
from dataclasses import dataclass

from autograder import reference as ref


class JudgeError(RuntimeError):
    """The judge could not observe something; the message says what."""


@dataclass(frozen=True)
class Database:
    path: str  # on the host, in the judge's own folder
    name: str  # its name in the sandbox's working folder

    def identity(self) -> tuple[int, int]:
        """(device, inode): what an open file in the server must be to count as this database."""
        found = os.stat(self.path, follow_symlinks=False)
        return found.st_dev, found.st_ino

    def url(self) -> str:
        return f"sqlite+aiosqlite:///./{self.name}"


def _make(path: str, rows) -> None:
    with sqlite3.connect(path) as db:
        db.execute(f"CREATE TABLE {ref.TABLE} (id INTEGER PRIMARY KEY, name TEXT NOT NULL, price REAL NOT NULL)")
        db.executemany(f"INSERT INTO {ref.TABLE} (id, name, price) VALUES (:id, :name, :price)", rows)
    db.close()
    os.chmod(path, 0o666)  # the sandbox's user (a fresh uid when grading as root) reads and writes it


class JudgeFolder:
    """A folder only the judge writes, holding the databases the sandbox is lent."""

    def __init__(self):
        self.path = tempfile.mkdtemp(prefix="course-judge-")
        os.chmod(self.path, 0o755)
        self.main = Database(os.path.join(self.path, ref.DB_FILE), ref.DB_FILE)
        other = f"judge-{secrets.token_hex(4)}.db"  # a name no submission can know in advance
        self.other = Database(os.path.join(self.path, other), other)
        _make(self.main.path, ref.SEED_ROWS)
        _make(self.other.path, ())

    def files(self) -> list[str]:
        return [self.main.path, self.other.path]

    def close(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


class Socket:
    """A Unix socket the server made in a folder it can write, reached without following a link."""

    def __init__(self, folder: str, name: str):
        self.name = name
        self.fd: int | None = None
        try:
            folder_fd = os.open(folder, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW)
        except OSError as exc:
            raise JudgeError(f"the kernel's folder is gone ({exc.strerror})") from None
        try:
            self.fd = os.open(name, os.O_PATH | os.O_NOFOLLOW, dir_fd=folder_fd)
        except OSError as exc:
            raise JudgeError(f"the server made no socket {name} ({exc.strerror})") from None
        finally:
            os.close(folder_fd)
        if not stat.S_ISSOCK(os.fstat(self.fd).st_mode):
            self.close()
            raise JudgeError(f"{name} is not a socket")

    @property
    def path(self) -> str:
        return f"/proc/self/fd/{self.fd}"

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
