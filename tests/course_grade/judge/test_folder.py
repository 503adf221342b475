"""The judge's own files: the databases it lends the sandbox, and the sockets it reaches
without following a link the submission left."""
from __future__ import annotations

import os
import socket
import sqlite3
import threading
import time

import pytest

from autograder import reference as ref
from course_grade.judge import database as tables
from course_grade.judge.folder import JudgeError, JudgeFolder, Socket
from course_grade.judge.watch import open_connections


@pytest.fixture
def folder():
    made = JudgeFolder()
    yield made
    made.close()


def test_the_judges_folder_holds_the_lessons_table_and_a_second_database_under_a_fresh_name(folder):
    with sqlite3.connect(folder.main.path) as db:
        rows = db.execute("SELECT id, name, price FROM items ORDER BY id").fetchall()
    assert rows == [(r["id"], r["name"], r["price"]) for r in ref.SEED_ROWS]
    assert folder.main.url() == ref.DATABASE_URL
    other = JudgeFolder()
    try:
        assert other.other.name != folder.other.name and other.other.name.startswith("judge-")
    finally:
        other.close()
    assert oct(os.stat(folder.main.path).st_mode & 0o777) == "0o666"
    assert oct(os.stat(folder.path).st_mode & 0o777) == "0o755"


def test_rows_the_judge_writes_are_new_each_time_and_replace_the_table(folder):
    first, second = tables.random_rows(5), tables.random_rows(5)
    assert first != second and len({r["id"] for r in first}) == 5
    tables.put_rows(folder.main, first)
    with sqlite3.connect(folder.main.path) as db:
        assert db.execute("SELECT count(*) FROM items").fetchone() == (5,)
    tables.put_rows(folder.main, [])
    with sqlite3.connect(folder.main.path) as db:
        assert db.execute("SELECT count(*) FROM items").fetchone() == (0,)


def test_a_query_waits_while_the_judge_holds_the_lock_and_goes_on_after_it(folder):
    done = []

    def read():
        with sqlite3.connect(folder.main.path, timeout=5) as db:
            found = db.execute("SELECT count(*) FROM items").fetchone()
        done.append((time.monotonic(), found))

    with tables.locked(folder.main):
        reader = threading.Thread(target=read)
        reader.start()
        time.sleep(0.3)
        assert done == []
        released = time.monotonic()
    reader.join(5)
    assert done and done[0][0] >= released and done[0][1] == (3,)


def test_open_connections_counts_the_file_descriptors_of_that_database_only(folder):
    identity = folder.main.identity()
    before = open_connections([os.getpid()], identity)
    a, b = sqlite3.connect(folder.main.path), sqlite3.connect(folder.other.path)
    try:
        a.execute("SELECT 1 FROM items").fetchall()
        b.execute("SELECT 1 FROM items").fetchall()
        assert open_connections([os.getpid()], identity) == before + 1
    finally:
        a.close()
        b.close()
    assert open_connections([os.getpid()], identity) == before


def test_a_socket_is_reached_through_its_descriptor_and_a_link_in_its_place_is_refused(tmp_path):
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(tmp_path / "app.sock"))
    server.listen()
    try:
        found = Socket(str(tmp_path), "app.sock")
        client = socket.socket(socket.AF_UNIX)
        client.connect(found.path)  # /proc/self/fd/N: the very socket the judge checked
        client.close()
        found.close()
        os.symlink(str(tmp_path / "app.sock"), tmp_path / "link.sock")
        with pytest.raises(JudgeError, match="link.sock is not a socket"):  # the link itself, not followed
            Socket(str(tmp_path), "link.sock")
        (tmp_path / "plain.sock").write_text("not a socket")
        with pytest.raises(JudgeError, match="not a socket"):
            Socket(str(tmp_path), "plain.sock")
        with pytest.raises(JudgeError, match="no socket missing.sock"):
            Socket(str(tmp_path), "missing.sock")
    finally:
        server.close()
