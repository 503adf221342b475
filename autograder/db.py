"""Direct access to the lesson's SQLite table, bypassing the student's code.

The checks use the standard library's sqlite3 to learn what `items` really holds and to
put other rows in it while a check runs (restoring the original rows afterwards).
"""
from __future__ import annotations

import contextlib
import os
import random
import sqlite3

from autograder import reference as ref
from autograder.report import fail

_NO_TABLE = (
    "table `items` does not exist in ./test.db: run the setup cell at the top of the "
    "notebook (it creates the table and fills it), then run your cells again."
)


def _connect(path: str) -> sqlite3.Connection:
    if not os.path.exists(path):
        fail(_NO_TABLE)
    con = sqlite3.connect(path, timeout=5)
    con.row_factory = sqlite3.Row
    return con


def table_rows(path: str = ref.DB_FILE) -> list[dict]:
    """Every row of `items`, as dicts."""
    con = _connect(path)
    try:
        try:
            return [dict(row) for row in con.execute(f"SELECT * FROM {ref.TABLE}")]
        except sqlite3.OperationalError:
            fail(_NO_TABLE)
    finally:
        con.close()


def random_rows(count: int) -> list[dict]:
    """Rows no student could have typed in: fresh ids, names and prices every time."""
    rng = random.Random(os.urandom(16))
    ids = rng.sample(range(1000, 1_000_000), count)
    return [
        {"id": i, "name": f"grader-{rng.getrandbits(40):010x}", "price": round(rng.uniform(0.5, 999), 2)}
        for i in ids
    ]


@contextlib.contextmanager
def rows_replaced(rows: list[dict], path: str = ref.DB_FILE):
    """Make `items` hold exactly `rows` inside the block; put the original rows back after."""
    original = table_rows(path)
    columns = ["id", "name", "price"]

    def fill(new_rows):
        con = _connect(path)
        try:
            with con:  # one transaction: the table is never seen half-filled
                con.execute(f"DELETE FROM {ref.TABLE}")
                con.executemany(
                    f"INSERT INTO {ref.TABLE} ({', '.join(columns)}) VALUES (?, ?, ?)",
                    [tuple(row.get(c) for c in columns) for row in new_rows],
                )
        finally:
            con.close()

    fill(rows)
    try:
        yield rows
    finally:
        fill(original)
