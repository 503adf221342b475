"""The judge's own writes to a database the server reads: rows nobody could know in advance,
and a lock that makes concurrent requests wait where the judge can count them."""
from __future__ import annotations

import contextlib
import random
import secrets
import sqlite3

from autograder import reference as ref
from course_grade.judge.folder import Database, JudgeError

BUSY_SECONDS = 5.0  # as long as SQLite's own default: the server's queries wait this long too


def random_rows(count: int) -> list[dict]:
    """`count` rows no submission can guess: fresh ids, names and prices each call."""
    chooser = random.SystemRandom()
    ids = chooser.sample(range(100, 1_000_000), count)
    return [{"id": i, "name": f"judge {secrets.token_hex(3)}", "price": round(chooser.uniform(1, 500), 2)}
            for i in sorted(ids)]


def _connect(database: Database) -> sqlite3.Connection:
    try:
        db = sqlite3.connect(database.path, timeout=BUSY_SECONDS, isolation_level=None)
        db.execute("PRAGMA trusted_schema = OFF")  # the file was writable by the submission
        return db
    except sqlite3.Error as exc:
        raise JudgeError(f"could not open {database.name} ({exc})") from None


def put_rows(database: Database, rows: list[dict]) -> None:
    """Make `rows` the whole table, in one transaction."""
    db = _connect(database)
    try:
        db.execute("BEGIN IMMEDIATE")
        db.execute(f"DELETE FROM {ref.TABLE}")
        db.executemany(f"INSERT INTO {ref.TABLE} (id, name, price) VALUES (:id, :name, :price)", rows)
        db.execute("COMMIT")
    except sqlite3.Error as exc:
        raise JudgeError(f"could not write the rows of {database.name} ({exc})") from None
    finally:
        db.close()


@contextlib.contextmanager
def locked(database: Database):
    """Hold the database's write lock: every query waits (up to SQLite's busy timeout) until
    the block ends, with its connection open."""
    db = _connect(database)
    try:
        db.execute("BEGIN EXCLUSIVE")
    except sqlite3.Error as exc:
        db.close()
        raise JudgeError(f"could not lock {database.name} ({exc})") from None
    try:
        yield
    finally:
        with contextlib.suppress(sqlite3.Error):
            db.execute("ROLLBACK")
        db.close()
