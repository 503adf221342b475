"""autograder/guard.py: the audit hook every grading kernel installs before the first cell.

Each case runs in a fresh interpreter (an audit hook cannot be removed), from a working
folder that is not under /tmp, with the lesson's own app working under the hook."""
from __future__ import annotations

import ast
import subprocess
import sys
import textwrap

import pytest

PROBE = textwrap.dedent('''
    import os, sys
    os.chdir(sys.argv[1])
    import autograder.guard
    autograder.guard.install()
    def attempt(f):
        try:
            f()
            return "allowed"
        except PermissionError as error:
            assert str(error).startswith("blocked while grading: "), error
            return "refused"
        except __import__("sqlite3").DatabaseError as error:  # the authorizer's refusal
            assert "not authorized" in str(error), error
            return "refused"
    import socket, subprocess, gc
    print({
        "write here": attempt(lambda: open("answers.txt", "w").write("x")),
        "read here": attempt(lambda: open("answers.txt").read()),
        "write /tmp": attempt(lambda: open("/tmp/guard-probe.txt", "w").close()),
        "read the system": attempt(lambda: open("/etc/hostname").read()),
        "write outside": attempt(lambda: open("../outside.txt", "w")),
        "open the gradebook": attempt(lambda: open("../gradebook.db")),
        "open a notebook outside": attempt(lambda: open("../source.ipynb")),
        "open the graded notebook": attempt(lambda: open("connection-pooling.ipynb", "w")),
        "sqlite outside": attempt(lambda: __import__("sqlite3").connect("../gradebook.db")),
        "sqlite here": attempt(lambda: __import__("sqlite3").connect("test.db").close()),
        "start a process": attempt(lambda: subprocess.Popen(["true"])),
        "shell command": attempt(lambda: os.system("true")),
        "network": attempt(lambda: socket.create_connection(("127.0.0.1", 9), timeout=1)),
        "gc objects": attempt(lambda: gc.get_objects()),
        "ctypes": attempt(lambda: __import__("ctypes").CDLL(None)),
        "symlink here": attempt(lambda: os.symlink("/etc/hostname", "link.txt")),
        "hard link here": attempt(lambda: os.link("answers.txt", "hard.txt")),
        "rename here": attempt(lambda: os.rename("answers.txt", "renamed.txt")),
        "remove here": attempt(lambda: os.remove("renamed.txt")),
        "mkdir here": attempt(lambda: os.mkdir("sub")),
        "rename outside": attempt(lambda: os.rename("../outside-probe.txt", "stolen.txt")),
        "remove outside": attempt(lambda: os.remove("../outside-probe.txt")),
        "chmod outside": attempt(lambda: os.chmod("../outside-probe.txt", 0o777)),
        "utime outside": attempt(lambda: os.utime("../outside-probe.txt")),
        "remove the answers": attempt(lambda: os.remove("quiz_answers.json")),
        "rename the notebook": attempt(lambda: os.replace("quiz_answers.json", "connection-pooling.ipynb")),
        "write the answers": attempt(lambda: open("quiz_answers.json", "w")),
        "read the answers": attempt(lambda: open("quiz_answers.json").read()),
        "write timestamp": attempt(lambda: open("timestamp.txt", "a")),
        "open a folder outside": attempt(lambda: os.open("..", os.O_RDONLY)),
        "dir_fd": attempt(lambda: os.remove("x", dir_fd=os.open(".", os.O_RDONLY))),
        "sqlite uri outside": attempt(lambda: __import__("sqlite3").connect(
            "file:" + os.path.abspath("../uri.db") + "?mode=rwc", uri=True).execute("create table t(x)")),
        "sqlite uri here": attempt(lambda: __import__("sqlite3").connect("file:uri.db?mode=rwc", uri=True).close()),
        "sqlite attach outside": attempt(lambda: __import__("sqlite3").connect("test.db").execute(
            "ATTACH ? AS o", (os.path.abspath("../attached.db"),))),
        "sqlite attach outside, literal": attempt(lambda: __import__("sqlite3").connect("test.db").execute(
            f"ATTACH '{os.path.abspath('../attached.db')}' AS o")),
        "sqlite attach here": attempt(lambda: __import__("sqlite3").connect("test.db").execute(
            "ATTACH 'here.db' AS h")),
        "write /dev/null": attempt(lambda: open("/dev/null", "w").write("x")),
        "write /dev/shm": attempt(lambda: open("/dev/shm/guard-probe", "w")),
        "chdir": attempt(lambda: os.chdir("..")),
    })
''')

EXPECTED = {"write here": "allowed", "read here": "allowed", "write /tmp": "allowed", "read the system": "allowed",
            "write outside": "refused", "open the gradebook": "refused", "open a notebook outside": "refused",
            "open the graded notebook": "refused", "sqlite outside": "refused", "sqlite here": "allowed",
            "start a process": "refused", "shell command": "refused", "network": "refused",
            "gc objects": "refused", "ctypes": "refused", "chdir": "refused",
            "symlink here": "refused", "hard link here": "refused", "rename here": "allowed",
            "remove here": "allowed", "mkdir here": "allowed", "rename outside": "refused",
            "remove outside": "refused", "chmod outside": "refused", "utime outside": "refused",
            "remove the answers": "refused", "rename the notebook": "refused", "write the answers": "refused",
            "read the answers": "allowed", "write timestamp": "refused", "open a folder outside": "refused",
            "dir_fd": "refused", "sqlite uri outside": "refused", "sqlite uri here": "allowed",
            "sqlite attach outside": "refused", "sqlite attach outside, literal": "refused",
            "sqlite attach here": "allowed", "write /dev/null": "allowed",
            "write /dev/shm": "refused"}

LESSON = textwrap.dedent('''
    import asyncio, os, sqlite3, sys
    os.chdir(sys.argv[1])
    import autograder.guard
    autograder.guard.install()
    import httpx
    from sqlalchemy.ext.asyncio import create_async_engine
    from autograder.solution import build_app
    with sqlite3.connect("test.db") as con:
        con.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, price REAL)")
        con.execute("INSERT INTO items VALUES (1, 'cup', 4.5)")
    async def main():
        engine = create_async_engine("sqlite+aiosqlite:///./test.db", pool_size=5)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=build_app(engine)), base_url="http://t") as c:
            print((await c.get("/items")).json())
        await engine.dispose()
    asyncio.run(main())
''')


@pytest.fixture
def folder(tmp_path_factory):
    base = tmp_path_factory.getbasetemp()
    if str(base).startswith("/tmp"):  # writing to /tmp is allowed: work from a folder outside it
        import tempfile
        base = __import__("pathlib").Path(tempfile.mkdtemp(dir="/var/tmp"))
    work = base / "course" / "autograded" / "student"
    work.mkdir(parents=True, exist_ok=True)
    return work


def test_the_guard_refuses_what_no_solution_does(folder):
    (folder / "quiz_answers.json").write_text("{}")
    outside = folder.parent / "outside-probe.txt"
    outside.write_text("canary")
    outside.chmod(0o600)
    before = outside.stat()
    done = subprocess.run([sys.executable, "-c", PROBE, str(folder)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert ast.literal_eval(done.stdout) == EXPECTED
    after = outside.stat()
    assert outside.read_text() == "canary"
    assert (after.st_mode, after.st_mtime_ns) == (before.st_mode, before.st_mtime_ns)
    assert (folder / "quiz_answers.json").read_text() == "{}"
    assert not (folder / "link.txt").exists() and not (folder / "hard.txt").exists()
    assert not (folder.parent / "uri.db").exists() and not (folder.parent / "attached.db").exists()


def test_the_lessons_app_runs_under_the_guard(folder):
    done = subprocess.run([sys.executable, "-c", LESSON, str(folder)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[{'id': 1, 'name': 'cup', 'price': 4.5}]"
