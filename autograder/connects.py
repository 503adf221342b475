"""How many SQLite connections this process opens while a block runs, whatever opens them.

Every way to SQLite (SQLAlchemy's pool, aiosqlite's thread, `sqlite3.connect`, `sqlite3.Connection`
itself) raises the `sqlite3.connect` audit event (PEP 578) as it opens a database. One audit hook,
added the first time `counting()` is used, counts those events while a block is open:

    with connects.counting() as opened:
        ...  # requests to the app
    opened.count  # new SQLite connections, in any thread

The hook only counts: it never raises, and it leaves any other hook (autograder.guard's, which
also watches `sqlite3.connect`) to decide on its own. An audit hook cannot be removed; outside a
`counting()` block it returns at once.
"""
from __future__ import annotations

import contextlib
import sys
from dataclasses import dataclass

EVENT = "sqlite3.connect"


@dataclass
class Opened:
    count: int = 0


_open: list[Opened] = []  # the blocks now counting
_installed: list[bool] = []


def _hook(event: str, _args: tuple) -> None:
    if event == EVENT and _open:
        for opened in tuple(_open):
            opened.count += 1


def install() -> None:
    """Add the hook (once per process)."""
    if not _installed:
        _installed.append(True)
        sys.addaudithook(_hook)


@contextlib.contextmanager
def counting():
    """Count the SQLite connections opened, in any thread, while the block runs."""
    install()
    opened = Opened()
    _open.append(opened)
    try:
        yield opened
    finally:
        _open.remove(opened)
