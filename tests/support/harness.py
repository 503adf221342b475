"""Grade a submission in seconds: the source notebook's cells, hidden tests included, run in an
IPython shell in a forked process, without nbgrader or a kernel.

    from tests.support.harness import grade_in_shell, grade_many
    cells = grade_in_shell({"step2_pool_size_solution": 'POOL_SIZE = "5"'})
    cells["step2_pool_size"].passed, cells["step2_pool_size"].message

What it does, as nbgrader's autograde would:
- runs every code cell of `source/` in order (the notebook's own test cells, hidden tests kept),
  with the solution cells replaced by the submission's code (a cell it does not give keeps
  the solution, `course.solutions()`); an error in a cell does not stop the run;
- in a fresh working folder (the setup cell makes `test.db` there) holding
  `quiz_answers.json` (the right answers unless `quiz` says otherwise);
- in a fresh `InteractiveShell` (`get_ipython()` is that shell) with `store_history=True`, so
  `In` holds the cells run, and inside a running asyncio loop, as in ipykernel: a cell with
  top-level `await` is awaited on that loop, any other cell runs synchronously;
- scores each graded cell as nbgrader does (`nbgrader.utils.determine_grade`): 0 for an error
  or for anything written to stderr, a number shown as the cell's result as partial credit,
  otherwise full points.

Isolation: every submission runs in a child forked from one fresh server process (a new
interpreter, started per batch, which has imported IPython, FastAPI, SQLAlchemy, httpx,
aiosqlite and the checks' dependencies once), so nothing a submission or an earlier test did
carries over; the `autograder` package itself is imported afresh inside each child's shell,
as a kernel would. `grade_many` runs several children at once (2 by default) and stops one
that takes longer than `timeout`.
"""
from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import io
import json
import multiprocessing
import multiprocessing.connection
import os
import pickle
import re
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

# First: the server goes without jsonschema's "iri" parser, as the grading processes do
# (course_grade.NOT_IMPORTED: ~2 s of CPU to import).
import course_grade  # noqa: F401

# isort: split
import nbformat

from tests.support.course import (
    ANSWERS_FILE,
    ROOT,
    SOURCE_NB,
    answers_file,
    grade_id,
    graded_cells,
    right_answers,
    solutions,
)

# The release notebook's solution cell: what a student who skipped a step submits.
BLANK = "# YOUR CODE HERE\nraise NotImplementedError()"
SUBMISSION_TIMEOUT = 90  # seconds for a whole submission
CELL_TIMEOUT = 60  # seconds for one cell, as nbgrader_config.py's ExecutePreprocessor.timeout
_STEP_CELL = re.compile(r"^step(\d)_")


@dataclasses.dataclass
class CellResult:
    """One graded cell, as nbgrader would score it."""
    grade_id: str
    points: float
    max_points: float
    passed: bool  # no error and nothing on stderr
    ename: str = ""  # the exception's class name, "" when the cell raised nothing
    message: str = ""  # str() of the exception (for CheckFailed, its one sentence)
    stdout: str = ""  # what the cell printed (the error is not in it: see `traceback`)
    stderr: str = ""
    traceback: str = ""  # what IPython shows for the error (CheckFailed: its one line)
    seconds: float = 0.0
    shown_data: list = dataclasses.field(default_factory=list)  # the display data the cell published

    @property
    def full(self) -> bool:
        return abs(self.points - self.max_points) < 1e-9

    @property
    def records(self) -> list:
        """The check records the cell showed (autograder.records)."""
        from autograder.records import records_of

        return records_of([{"output_type": "display_data", "data": data} for data in self.shown_data])

    @property
    def record(self):
        """The last record of this cell's own check, or None."""
        own = [r for r in self.records if r.check == self.grade_id]
        return own[-1] if own else None

    @property
    def shown(self) -> str:
        """"Name: text", as an nbgrader error output shows it (tests/support/course.py: results)."""
        return f"{self.ename}: {self.message}" if self.ename else ""


@dataclasses.dataclass
class CellRun:
    """A cell the student wrote or may edit (solution cells and the steps' try-it cells)."""
    cell_id: str
    step: int | None
    raised: bool
    ename: str = ""
    message: str = ""
    stdout: str = ""
    stderr: str = ""
    traceback: str = ""
    seconds: float = 0.0


@dataclasses.dataclass
class Graded:
    """One submission: every graded cell, the student's own cells, the lesson's other cells
    (read-only, such as the cell that calls GET /items), and how long it took."""
    cells: dict[str, CellResult]
    student_cells: dict[str, CellRun]
    seconds: float
    error: str = ""  # the harness could not grade it (timeout, a child that died): why
    lesson_cells: dict[str, CellRun] = dataclasses.field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.error

    def step_done_while_raised(self) -> list[str]:
        """Cells that said "Step N passes" (its visible checks) while a student cell of step N raised."""
        raised = {run.step for run in self.student_cells.values() if run.raised and run.step}
        return [gid for gid, cell in self.cells.items()
                for n in raised if f"Step {n} passes" in cell.stdout]


class HarnessError(RuntimeError):
    pass


# ----------------------------------------------------------------------------- the cells

def _source_cells() -> list[tuple[str, str, str, dict]]:
    """(cell id, grade_id or "", source, nbgrader metadata) of every code cell of source/."""
    nb = nbformat.read(SOURCE_NB, as_version=4)
    return [(c.get("id", ""), grade_id(c) or "", c.source, c.metadata.get("nbgrader", {}))
            for c in nb.cells if c.cell_type == "code"]


_CELLS = _source_cells()
_SOLUTIONS = solutions()
_POINTS = graded_cells()
_RIGHT = right_answers()


def _plan(answers: dict[str, str]) -> list[dict]:
    unknown = set(answers) - set(_SOLUTIONS)
    if unknown:
        raise HarnessError(f"no such solution cells: {sorted(unknown)}")
    code = {**_SOLUTIONS, **answers}
    plan = []
    for cell_id, gid, source, meta in _CELLS:
        student = bool(meta.get("solution")) or not meta  # solution cells and unlocked plain cells
        step = _STEP_CELL.match(cell_id or gid)
        plan.append({
            "id": cell_id or gid, "grade_id": gid, "source": code[gid] if meta.get("solution") else source,
            "graded": bool(meta.get("grade")), "student": student, "step": int(step.group(1)) if step else None,
        })
    return plan


# ------------------------------------------------------------------------ in the child

class _CellTimeout(BaseException):
    """Raised into a cell that runs past CELL_TIMEOUT (nbgrader interrupts the kernel)."""


def _partial(value, max_points: float) -> float:
    """nbgrader.utils.get_partial_grade on a cell's result."""
    try:
        grade = float(repr(value))
    except (TypeError, ValueError):
        return max_points
    if grade < 0:
        return max_points
    return min(grade, max_points)


def _make_shell(ipython_dir: str):
    from IPython.core.displaypub import DisplayPublisher
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    class Recorder(DisplayPublisher):
        """Keep display_data out of stdout (a kernel sends it as its own output type)."""
        shown: list = []

        def publish(self, data, metadata=None, source=None, *, transient=None, update=False, **kwargs):
            self.shown.append(data)

    InteractiveShell.clear_instance()
    config = Config()
    config.HistoryManager.hist_file = ":memory:"
    config.InteractiveShell.colors = "nocolor"
    config.InteractiveShell.ipython_dir = ipython_dir
    config.InteractiveShell.xmode = "plain"
    shell = InteractiveShell.instance(config=config)
    shell.display_pub = Recorder(shell=shell, parent=shell)
    shell.shown_tracebacks = []

    def keep_traceback(etype, evalue, stb):
        """A kernel sends the error as an output of its own, not as stdout: keep it apart."""
        shell.shown_tracebacks.append(shell.InteractiveTB.stb2text(stb))

    shell._showtraceback = keep_traceback
    return shell


async def _run_cell(shell, source: str):
    """One cell as ipykernel runs it: awaited on the running loop when it has top-level
    await, synchronously otherwise. Returns (result, stdout, stderr, traceback shown, display data)."""
    out, err = io.StringIO(), io.StringIO()
    shell.shown_tracebacks.clear()
    shell.display_pub.shown.clear()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            transformed, preprocessing_exc = shell.transform_cell(source), None
        except Exception:
            transformed, preprocessing_exc = source, sys.exc_info()
        if shell.should_run_async(source, transformed_cell=transformed, preprocessing_exc_tuple=preprocessing_exc):
            # ipykernel.ipkernel.IPythonKernel.do_execute: a task on the running loop, then the
            # events that shell.run_cell would have triggered
            task = asyncio.ensure_future(shell.run_cell_async(
                source, store_history=True, transformed_cell=transformed, preprocessing_exc_tuple=preprocessing_exc))
            result = None
            try:
                result = await task
            finally:
                shell.events.trigger("post_execute")
                shell.events.trigger("post_run_cell", result)
        else:
            result = shell.run_cell(source, store_history=True)
    return result, out.getvalue(), err.getvalue(), "".join(shell.shown_tracebacks), list(shell.display_pub.shown)


def _error(result) -> tuple[str, str]:
    exc = result.error_in_exec or result.error_before_exec
    if exc is None:
        return "", ""
    return type(exc).__name__, str(exc)


def _jsonable(data) -> bool:
    try:
        json.dumps(data)
        return True
    except (TypeError, ValueError):
        return False


def _alarm(_signum, _frame):
    raise _CellTimeout(f"the cell ran past {CELL_TIMEOUT} s")


def _grade_here(plan: list[dict], quiz_text: str | None, folder: str) -> dict:
    """Run the cells in this (forked) process; returns plain picklable data."""
    import signal

    work = os.path.join(folder, "work")
    os.makedirs(work)
    if quiz_text is not None:
        Path(work, ANSWERS_FILE).write_text(quiz_text)
    os.chdir(work)

    shell = _make_shell(os.path.join(folder, "ipython"))
    # The course's own package is imported afresh by the notebook's cells, inside this shell,
    # as in a kernel: it keeps state (progress, messages already given) and installs IPython
    # hooks when imported. Its heavy dependencies stay imported from the server.
    for name in [m for m in sys.modules if m == "autograder" or m.startswith("autograder.")]:
        del sys.modules[name]
    cells, student, lesson = {}, {}, {}

    async def run_all():
        for cell in plan:
            signal.signal(signal.SIGALRM, _alarm)
            signal.alarm(CELL_TIMEOUT)
            started = time.perf_counter()
            try:
                result, stdout, stderr, shown, data = await _run_cell(shell, cell["source"])
            finally:
                signal.alarm(0)
            seconds = time.perf_counter() - started
            ename, message = _error(result)
            if cell["graded"]:
                max_points = float(_POINTS[cell["grade_id"]])
                passed = not ename and not stderr
                if not passed:
                    points = 0.0
                elif result.result is not None:
                    points = _partial(result.result, max_points)
                else:
                    points = max_points
                cells[cell["grade_id"]] = dataclasses.asdict(CellResult(
                    cell["grade_id"], points, max_points, passed, ename, message, stdout, stderr, shown, seconds,
                    [d for d in data if _jsonable(d)]))
            if not cell["graded"]:
                (student if cell["student"] else lesson)[cell["id"]] = dataclasses.asdict(CellRun(
                    cell["id"], cell["step"], bool(ename), ename, message, stdout, stderr, shown, seconds))

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    loop.run_until_complete(run_all())
    return {"cells": cells, "student_cells": student, "lesson_cells": lesson}


def _child(conn, plan, quiz_text):
    start = time.perf_counter()
    folder = tempfile.mkdtemp(prefix="harness-")
    try:
        payload = _grade_here(plan, quiz_text, folder)
        payload["error"] = ""
    except BaseException:  # reported to the parent, not raised in a child
        payload = {"cells": {}, "student_cells": {}, "error": "the harness failed:\n" + traceback.format_exc()}
    payload["seconds"] = time.perf_counter() - start
    try:
        conn.send(payload)
    finally:
        conn.close()
        os.chdir("/")
        shutil.rmtree(folder, ignore_errors=True)


# ----------------------------------------------------------------------- in the parent

def _preimport() -> None:
    """Import the heavy modules once, before forking, so each child starts in milliseconds."""
    import aiosqlite  # noqa: F401
    import fastapi
    import fastapi.routing  # noqa: F401
    import httpx  # noqa: F401
    import IPython.core.interactiveshell  # noqa: F401
    import ipywidgets  # noqa: F401
    import sqlalchemy.ext.asyncio
    import sqlalchemy.orm  # noqa: F401

    import autograder.checks
    import autograder.quiz
    import autograder.selfgrade  # noqa: F401


def _quiz_text(quiz: dict[str, str] | None) -> str:
    return answers_file(dict(_RIGHT) if quiz is None else quiz)


def _graded(payload: dict) -> Graded:
    return Graded(
        cells={gid: CellResult(**c) for gid, c in payload["cells"].items()},
        student_cells={cid: CellRun(**c) for cid, c in payload["student_cells"].items()},
        seconds=payload["seconds"], error=payload["error"],
        lesson_cells={cid: CellRun(**c) for cid, c in payload.get("lesson_cells", {}).items()},
    )


def _grade_forked(items: list[tuple[str, list, str | None]], jobs: int, timeout: float) -> dict[str, dict]:
    """In the clean server process: fork one child per submission, `jobs` at a time."""
    _preimport()
    ctx = multiprocessing.get_context("fork")
    waiting = list(items)
    running: dict = {}  # reader connection -> (name, process, started)
    done: dict[str, dict] = {}
    while waiting or running:
        while waiting and len(running) < jobs:
            name, plan, quiz_text = waiting.pop(0)
            reader, writer = ctx.Pipe(duplex=False)
            process = ctx.Process(target=_child, args=(writer, plan, quiz_text), daemon=True)
            process.start()
            writer.close()
            running[reader] = (name, process, time.perf_counter())
        soonest = min(started + timeout for _, _, started in running.values())
        ready = multiprocessing.connection.wait(list(running), timeout=max(0.0, soonest - time.perf_counter()))
        for reader in ready:
            name, process, started = running.pop(reader)
            try:
                payload = reader.recv()
            except EOFError:
                process.join(5)
                payload = {"cells": {}, "student_cells": {}, "seconds": time.perf_counter() - started,
                           "error": f"the child grading it died (exit code {process.exitcode})"}
            reader.close()
            process.join(10)
            done[name] = payload
        now = time.perf_counter()
        for reader, (name, process, started) in list(running.items()):
            if now - started >= timeout:
                process.kill()
                process.join(5)
                reader.close()
                del running[reader]
                done[name] = {"cells": {}, "student_cells": {}, "seconds": now - started,
                              "error": f"timeout: not graded within {timeout:.0f} s"}
    return done


def _server_env() -> dict[str, str]:
    """The caller's environment, with the repository root first on PYTHONPATH: the server runs
    as `python -m tests.support.harness` in a scratch folder."""
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), path] if path else [str(ROOT)])}


def _serve(result_path: str) -> None:
    """`python -m tests.support.harness --serve RESULT`: read the batch (pickle) on stdin, grade it,
    write the results (pickle) to RESULT. A fresh interpreter, so no test that ran before in
    the caller's process (checks, progress, engines) can leak state into a submission."""
    batch = pickle.load(sys.stdin.buffer)
    done = _grade_forked(batch["items"], batch["jobs"], batch["timeout"])
    Path(result_path).write_bytes(pickle.dumps(done))


def grade_many(submissions: dict[str, tuple[dict[str, str], dict[str, str] | None]], *,
               jobs: int = 2, timeout: float = SUBMISSION_TIMEOUT) -> dict[str, Graded]:
    """Grade many submissions, `jobs` at a time, each in its own forked child of one fresh
    server process (which imports the heavy modules once).

    `submissions`: name -> (answers, quiz), as for grade_in_shell. A submission that takes
    longer than `timeout` seconds is stopped and comes back with `error` saying so."""
    items = [(name, _plan(answers), _quiz_text(quiz)) for name, (answers, quiz) in submissions.items()]
    batch = pickle.dumps({"items": items, "jobs": jobs, "timeout": timeout})
    with tempfile.TemporaryDirectory(prefix="harness-batch-") as folder:
        result_path = os.path.join(folder, "results.pickle")
        limit = 60 + timeout * (len(items) // max(jobs, 1) + 1)
        done = subprocess.run([sys.executable, "-m", "tests.support.harness", "--serve", result_path], input=batch,
                              capture_output=True, timeout=limit, cwd=folder, env=_server_env())
        if done.returncode != 0 or not os.path.exists(result_path):
            raise HarnessError(f"the grading server failed ({done.returncode}):\n"
                               f"{done.stdout.decode()[-3000:]}\n{done.stderr.decode()[-3000:]}")
        payloads = pickle.loads(Path(result_path).read_bytes())
    return {name: _graded(payloads[name]) for name in submissions}


def grade_submission(answers: dict[str, str], quiz: dict[str, str] | None = None, *,
                     timeout: float = SUBMISSION_TIMEOUT) -> Graded:
    """One submission, with its student cells and time (see grade_in_shell)."""
    return grade_many({"submission": (answers, quiz)}, jobs=1, timeout=timeout)["submission"]


def grade_in_shell(answers: dict[str, str], quiz: dict[str, str] | None = None, *,
                   timeout: float = SUBMISSION_TIMEOUT) -> dict[str, CellResult]:
    """grade_id -> CellResult for every graded cell of one submission.

    `answers`: solution cell grade_id -> the student's code (other solution cells keep the
    solution; `BLANK` is an untouched cell). `quiz`: question id -> letter written to
    quiz_answers.json (None: the right answers)."""
    graded = grade_submission(answers, quiz, timeout=timeout)
    if graded.error:
        raise HarnessError(graded.error)
    return graded.cells


if __name__ == "__main__" and sys.argv[1:2] == ["--serve"]:
    _serve(sys.argv[2])
elif __name__ == "__main__":  # a quick look, from the repository root: python -m tests.support.harness
    start = time.perf_counter()
    result = grade_submission({})
    for gid, cell in result.cells.items():
        print(f"{gid:45} {cell.points}/{cell.max_points} {cell.shown[:100]}")
    print(f"{result.seconds:.2f} s in the child, {time.perf_counter() - start:.2f} s in all", result.error)
