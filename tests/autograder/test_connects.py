"""autograder/connects.py: the SQLite connections a process opens, counted by any route to SQLite.

Runs in a fresh interpreter (an audit hook cannot be removed), with the grading kernels' guard
installed first, from a working folder outside /tmp, so that the guard's own hook on the same
event is seen to keep deciding alone."""
from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

PROBE = textwrap.dedent('''
    import asyncio, os, sqlite3, sys
    os.chdir(sys.argv[1])
    import autograder.guard
    autograder.guard.install()
    import aiosqlite
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine
    from sqlalchemy.pool import NullPool
    from autograder import connects

    def counted(f):
        with connects.counting() as opened:
            f()
        return opened.count

    async def pooled(times, **pool):
        engine = create_async_engine("sqlite+aiosqlite:///./test.db", **pool)
        with connects.counting() as opened:
            for _ in range(times):
                async with engine.connect() as conn:
                    await conn.execute(text("SELECT 1"))
        await engine.dispose()
        return opened.count

    async def through_aiosqlite():
        with connects.counting() as opened:
            async with aiosqlite.connect("test.db") as conn:  # sqlite3.connect in aiosqlite's thread
                await conn.execute("SELECT 1")
        return opened.count

    sqlite3.connect("test.db").close()  # outside a window: not counted, and nothing raised
    with connects.counting() as outer:
        inner = counted(lambda: sqlite3.connect("test.db").close())
    try:
        sqlite3.connect("../outside.db")
        guard = "allowed"
    except PermissionError:
        guard = "refused"
    print({
        "sqlite3.connect": counted(lambda: sqlite3.connect("test.db").close()),
        "sqlite3.Connection": counted(lambda: sqlite3.Connection("test.db").close()),
        "nested": (outer.count, inner),
        "aiosqlite": asyncio.run(through_aiosqlite()),
        "pool of 5, 3 uses": asyncio.run(pooled(3, pool_size=5)),
        "NullPool, 3 uses": asyncio.run(pooled(3, poolclass=NullPool)),
        "guard outside the folder": guard,
        "counted after the blocks": counted(lambda: None),
    })
''')


def test_every_route_to_sqlite_is_counted_and_the_guard_still_decides(tmp_path_factory):
    base = tmp_path_factory.getbasetemp()
    made = str(base).startswith("/tmp")  # the guard allows /tmp: work from a folder outside it
    if made:
        base = Path(tempfile.mkdtemp(dir="/var/tmp"))
    folder = base / "course" / "student"
    folder.mkdir(parents=True, exist_ok=True)
    try:
        done = subprocess.run([sys.executable, "-c", PROBE, str(folder)], capture_output=True, text=True, timeout=60)
    finally:
        if made:
            shutil.rmtree(base, ignore_errors=True)
    assert done.returncode == 0, done.stderr
    assert ast.literal_eval(done.stdout.strip().splitlines()[-1]) == {
        "sqlite3.connect": 1,
        "sqlite3.Connection": 1,
        "nested": (1, 1),  # both blocks open count the one connection
        "aiosqlite": 1,
        "pool of 5, 3 uses": 1,  # the pool's one connection, reused
        "NullPool, 3 uses": 3,
        "guard outside the folder": "refused",
        "counted after the blocks": 0,
    }
