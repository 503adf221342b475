"""The extended red-team gallery (tests/support/red_team.py) under both runners, and the fallback.

One course; every entry plus the solution and one honest look-alike graded in one stock
`nbgrader autograde` run and one `python -m course_grade grade` run (each in its own copy of the
course), then a few entries with COURSE_SANDBOX=off. For each runner: the expected score of
every cell, nothing a submission started alive afterwards (the process table), nothing reached
the test's server on 127.0.0.1, and the honest submissions' grades intact in the gradebook.
"""
from __future__ import annotations

import contextlib
import csv
import os
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import nbformat
import psutil
import pytest

from course_grade.kernels import sandbox
from tests.support import red_team
from tests.support.course import ASSIGNMENT, BIN, autograde, graded_cells, make_course, submit_as, tool_env
from tests.support.red_team import expect_cells

COMMAND = "course_grade"

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("bwrap_works")]

NAMES = [e.name for e in red_team.entries(0)]
GAPS = {e.name: e.known_gap for e in red_team.entries(0) if e.known_gap}


def _param(name):
    marks = [pytest.mark.xfail(strict=True, reason=GAPS[name])] if name in GAPS else []
    return pytest.param(name, marks=marks, id=name)


ENTRY_PARAMS = [_param(n) for n in NAMES]


class Listener:
    """A server on the grader's 127.0.0.1 that records every connection it accepts."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.accepted: list = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, addr = self.sock.accept()
            except OSError:
                return
            self.accepted.append(addr)
            conn.close()

    def close(self):
        self.sock.close()


def alive(*markers: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        line = " ".join(proc.info["cmdline"] or [])
        if any(m in line for m in markers) and proc.pid != os.getpid():
            found.append(proc)
    return found


def survivors(*markers: str, wait: float = 10) -> list[str]:
    psutil.wait_procs(alive(*markers), timeout=wait)
    return [" ".join(p.cmdline())[:200] for p in alive(*markers) if p.is_running()]


def kill_ours() -> None:
    """Only processes carrying this run's token (a submission of this gallery started them)."""
    for proc in alive(red_team.TOKEN):
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()


@pytest.fixture(scope="module")
def gallery(tmp_path_factory):
    listener = Listener()
    base = make_course(tmp_path_factory.mktemp("red-team") / "base", red_team.CONFIG)
    yield base, listener, {e.name: e for e in red_team.entries(listener.port)}
    listener.close()
    kill_ours()


def _course(gallery, name: str, subs) -> Path:
    base, _, _ = gallery
    course = base.parent / name
    shutil.copytree(base, course)
    for sub in subs:
        submit_as(course, sub)
    return course


def _all_subs(entries):
    return [e.sub for e in entries.values()] + red_team.HONEST


@pytest.fixture(scope="module")
def stock(gallery):
    _, listener, entries = gallery
    course = _course(gallery, "stock", _all_subs(entries))
    done, seconds = autograde(course)
    print(f"\nstock nbgrader autograde, {len(entries) + 2} submissions: {seconds:.0f} s")
    return course, done, seconds, survivors(red_team.TOKEN, str(course)), list(listener.accepted)


@pytest.fixture(scope="module")
def command(gallery, stock):
    _, listener, entries = gallery
    course = _course(gallery, "command", _all_subs(entries))
    before = len(listener.accepted)
    start = time.perf_counter()
    done = subprocess.run([str(BIN / "python"), "-m", COMMAND, "grade", ASSIGNMENT, "--jobs", "2",
                           "--submission-timeout", "300", "--no-feedback", "--verbose"], cwd=course, env=tool_env(),
                          capture_output=True, text=True, timeout=1800)
    seconds = time.perf_counter() - start
    print(f"\nthe grading command, {len(entries) + 2} submissions, 2 jobs: {seconds:.0f} s")
    with open(course / "grading-report.csv") as f:
        rows = {row["student"]: row for row in csv.DictReader(f)}
    return course, done, rows, survivors(red_team.TOKEN, str(course)), listener.accepted[before:]


# ------------------------------------------------------------------ stock nbgrader autograde

FAILED = {e.name for e in red_team.entries(0) if e.sub.status != "graded"}


def test_stock_autograde_finishes(stock):
    course, done, seconds, _, _ = stock
    failed = {line.rsplit("'", 2)[-2] for line in done.stderr.splitlines()
              if "There was an error processing assignment 'connection-pooling' for student" in line}
    assert failed == FAILED and done.returncode == (1 if FAILED else 0), done.stderr[-3000:]
    assert "sandbox OFF" not in done.stderr


@pytest.mark.parametrize("name", ENTRY_PARAMS)
def test_stock_scores(stock, gallery, name):
    entry = gallery[2][name]
    if entry.sub.status != "graded":  # nbgrader removed it: no grades at all
        assert not (stock[0] / "autograded" / name / ASSIGNMENT).exists()
        return
    expect_cells(stock[0], entry.sub, entry.sub.loses)


@pytest.mark.parametrize("sub", red_team.HONEST, ids=lambda s: s.name)
def test_stock_honest_keep_full_marks(stock, sub):
    expect_cells(stock[0], sub, {})


def test_stock_nothing_survives_and_nothing_reached_the_network(stock):
    _, _, _, left, accepted = stock
    assert left == [], left
    assert accepted == [], "a submission reached the grader's 127.0.0.1"


def test_stock_flags_what_the_analysis_catches(stock, gallery):
    from nbgrader.api import Gradebook

    course = stock[0]
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        for name, entry in gallery[2].items():
            assert gb.find_submission_notebook(ASSIGNMENT, ASSIGNMENT, name).flagged == entry.sub.flagged, name


def test_stock_disk_fill_stopped_at_the_file_size_limit(stock):
    """The file-size limit stops the loop ("File too large", in the entry's expected messages),
    and the file stays in the sandbox's own working folder: nothing of it reaches the host."""
    folder = stock[0] / "autograded" / "rt_disk_fill" / ASSIGNMENT
    assert folder.is_dir() and not (folder / "big.bin").exists(), sorted(p.name for p in folder.iterdir())


def test_stock_fork_bomb_never_started(stock):
    """The event-loop fork bomb is removed for review before it runs (the sandbox's process
    limit, its second line, is shown by tests/course_grade/kernels/test_sandbox.py)."""
    folder = stock[0] / "autograded" / "rt_fork_bomb_through_the_event_loop" / ASSIGNMENT
    graded = nbformat.read(folder / f"{ASSIGNMENT}.ipynb", as_version=4)
    assert "# removed for review | _bomb = await" in graded.cells[-1].source, graded.cells[-1].source
    assert not (folder / "fork-refused").exists()


# ------------------------------------------------------------------ the grading command

def test_command_grades_everything(command, gallery):
    _, done, rows, _, _ = command
    assert done.returncode == (1 if FAILED else 0), done.stdout[-3000:] + done.stderr[-3000:]
    assert set(rows) == set(gallery[2]) | {s.name for s in red_team.HONEST}
    assert {n for n, row in rows.items() if row["status"] != "graded"} == FAILED, rows
    assert all(row["sandbox"] == "on" for row in rows.values()), rows


@pytest.mark.parametrize("name", ENTRY_PARAMS)
def test_command_scores_and_review(command, gallery, name):
    course, done, rows, _, _ = command
    entry = gallery[2][name]
    row = rows[name]
    if entry.sub.status != "graded":  # not graded: the row says why
        assert row["status"] != "graded" and row["note"], row
        print(f"\n{name}: {row['status']}: {row['note']}")
        return
    expect_cells(course, entry.sub, entry.sub.loses)
    if entry.sub.reason:  # flagged for its reason (a cell stopped at its limit), which the row gives
        assert entry.sub.reason in row["reason"].split("; ") and row["removed_cells"] == "", row
        assert entry.sub.reason in row["attention"].split("; "), row
    elif entry.sub.flagged:  # REVIEW, with the cells the analysis removed statements from
        assert row["removed_cells"] and "REVIEW" in next(line for line in done.stdout.splitlines()
                                                         if line.startswith(name + " "))
        assert "tampering" in row["attention"].split("; "), row  # on the attention list, for its reason
    else:  # the analysis passed it: the row says only that the sandbox was on
        assert row["removed_cells"] == "" and row["sandbox"] == "on", row


@pytest.mark.parametrize("sub", red_team.HONEST, ids=lambda s: s.name)
def test_command_honest_keep_full_marks_unflagged(command, sub):
    course, _, rows, _, _ = command
    expect_cells(course, sub, {})
    assert rows[sub.name]["removed_cells"] == "" and "REVIEW" not in rows[sub.name]["note"]


def test_command_nothing_survives_and_nothing_reached_the_network(command):
    _, _, _, left, accepted = command
    assert left == [], left
    assert accepted == [], "a submission reached the grader's 127.0.0.1"


@pytest.mark.parametrize("runner", ["stock", "command"])
def test_every_grade_survives_in_the_gradebook(request, runner):
    """After everything (the gradebook attacks included), every submission has all its grades,
    and the honest ones still have full marks."""
    from nbgrader.api import Gradebook

    course = request.getfixturevalue(runner)[0]
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        graded = (set(NAMES) - FAILED) | {s.name for s in red_team.HONEST}
        assert graded <= {s.id for s in gb.students}
        for student in graded:
            assert len(gb.find_submission(ASSIGNMENT, student).notebooks[0].grades) == len(graded_cells()), student
    for sub in red_team.HONEST:
        expect_cells(course, sub, {})


# ------------------------------------------------------------------ the fallback (COURSE_SANDBOX=off)

@pytest.fixture(scope="module")
def fallback(gallery, command):
    _, listener, entries = gallery
    chosen = {n: e for n, e in entries.items() if e.fallback}
    course = _course(gallery, "fallback", [e.sub for e in chosen.values()] + [red_team.SOLUTION])
    before = len(listener.accepted)
    start = time.perf_counter()
    done = subprocess.run([str(BIN / "nbgrader"), "autograde", ASSIGNMENT, "--create", "--force"], cwd=course,
                          env=tool_env(**{sandbox.SWITCH: "off"}), capture_output=True, text=True, timeout=900)
    seconds = time.perf_counter() - start
    left = survivors(red_team.TOKEN, wait=3)
    kill_ours()  # the fallback cannot stop them: the test does
    missing = {
        "processes outlived grading": left,
        "connections reached the grader's 127.0.0.1": len(listener.accepted) - before,
        "the course folder was readable (answers file written from source/)":
            (course / "autograded" / "rt_key_through_static_files" / ASSIGNMENT / "quiz_answers.json").exists(),
    }
    print(f"\nCOURSE_SANDBOX=off, {len(chosen) + 1} submissions: {seconds:.0f} s; missing protections seen: {missing}")
    return course, done, chosen, missing


def test_fallback_says_what_is_missing_once(fallback):
    _, done, _, _ = fallback
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [line for line in done.stderr.splitlines() if "sandbox OFF" in line]
    assert len(lines) == 1 and "COURSE_SANDBOX=off" in lines[0] and "no PID namespace" in lines[0], lines


def test_fallback_scores_still_right_for_what_the_analysis_catches(fallback):
    course, _, chosen, _ = fallback
    for entry in chosen.values():
        expect_cells(course, entry.sub, entry.sub.loses if entry.fallback_loses is None else entry.fallback_loses)
    expect_cells(course, red_team.SOLUTION, {})


def test_without_the_sandbox_the_runtime_guard_still_holds(fallback):
    """Without the sandbox, the runtime guard (autograder/guard.py) still refuses what only the
    sandbox stopped in the gallery: the grader's 127.0.0.1 hears nothing, and the course's
    files are not read (no answers file written from source/); the quiz is graded outside the
    kernel either way."""
    _, _, _, missing = fallback
    assert missing["connections reached the grader's 127.0.0.1"] == 0
    assert not missing["the course folder was readable (answers file written from source/)"]
    assert not missing["processes outlived grading"]