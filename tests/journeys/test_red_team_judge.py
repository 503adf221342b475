"""The judge's red-team gallery (tests/support/red_team_judge.py) under both runners.

Each attack is a submission whose step cells build nothing correct (or a wrong thing) but try to
score: code run from strings through the library routes the syntax-tree allow-list lets through,
patching `autograder.checks` or `autograder.report`; pool events forged on engine.pool; fake apps;
httpx and uvicorn patched in the notebook's own process. Each must score exactly what the judge
(course_grade/judge/) saw done, and where the in-kernel checks were fooled the notebook is
flagged for review (the gradebook's flag; the grading command's reason "judge disagreed").
Correct programs (the solution and variants of tests/support/variants.py) keep full marks,
unflagged. One course; every submission graded in one stock `nbgrader autograde` run and one
`python -m course_grade grade` run, each in its own copy of the course.

Before the judge (stock `nbgrader autograde` at c9d32ca, the parent of "The judge: build steps
decided outside the kernel", one run of this whole gallery), build-step points of 13:

    every string route (annotations: typing.get_type_hints, functools.singledispatch,
    a pydantic forward reference, pydantic.TypeAdapter, a FastAPI route's annotation,
    SQLAlchemy's Mapped['...']; resolvers: logging.config.dictConfig "()" + "ext://",
    logging.config.fileConfig's args; import by name: importlib.import_module,
    pkgutil.resolve_name, pydoc.locate, pydantic's ImportString, SQLAlchemy's
    PluginLoader and util.preloaded)                                       13, unflagged
    httpx patched in process (`app` has no route), httpx + uvicorn patched 13, unflagged
    the judge's hands (autograder.serve) patched, nothing built            13, unflagged
    forged pool events + sqlite3 per request / + a held file handle        7 (step 4 whole)
    forged pool events + a fixed list                                       5
    str/int subclasses with a forged repr                                   0

No route was stopped by the allow-list: every one reached the checks. With the judge, the known
gaps (the judge wrong) are strict xfails, each with its reason: see Entry.known_gap and
JUDGE_FAILS_CORRECT in the support module.
"""
from __future__ import annotations

import csv
import shutil
import subprocess
import time
from pathlib import Path

import nbformat
import pytest

from course_grade.nbgrader_ext.judge_build_steps import DISAGREED, JUDGED
from tests.support import red_team_judge as rtj
from tests.support.course import ASSIGNMENT, BIN, autograde, make_course, submit_as, tool_env
from tests.support.red_team import CONFIG, expect_cells

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("bwrap_works")]

ENTRIES = {e.name: e for e in rtj.entries()}
HONEST = {s.name: s for s in rtj.honest()}
RUNNERS = ["stock", "command"]


def _entry_param(name: str):
    gap = ENTRIES[name].known_gap
    return pytest.param(name, marks=[pytest.mark.xfail(strict=True, reason=gap)] if gap else [], id=name)


def _honest_param(name: str):
    variant = name.removeprefix("variant_")
    gap = rtj.JUDGE_FAILS_CORRECT.get(variant)
    return pytest.param(name, marks=[pytest.mark.xfail(strict=True, reason=gap)] if gap else [], id=name)


ENTRY_PARAMS = [_entry_param(n) for n in ENTRIES]
HONEST_PARAMS = [_honest_param(n) for n in HONEST]


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return make_course(tmp_path_factory.mktemp("red-team-judge") / "base", CONFIG)


def _course(base: Path, name: str) -> Path:
    course = base.parent / name
    shutil.copytree(base, course)
    for sub in [e.sub for e in ENTRIES.values()] + list(HONEST.values()):
        submit_as(course, sub)
    return course


@pytest.fixture(scope="module")
def stock(base):
    course = _course(base, "stock")
    done, seconds = autograde(course)
    print(f"\nstock nbgrader autograde, {len(ENTRIES) + len(HONEST)} submissions: {seconds:.0f} s")
    return {"course": course, "done": done}


@pytest.fixture(scope="module")
def command(base, stock):
    course = _course(base, "command")
    start = time.perf_counter()
    done = subprocess.run([str(BIN / "python"), "-m", "course_grade", "grade", ASSIGNMENT, "--jobs", "2",
                           "--submission-timeout", "300", "--no-feedback"], cwd=course, env=tool_env(),
                          capture_output=True, text=True, timeout=1800)
    print(f"\nthe grading command, {len(ENTRIES) + len(HONEST)} submissions, 2 jobs: "
          f"{time.perf_counter() - start:.0f} s")
    with open(course / "grading-report.csv", newline="") as f:
        rows = {row["student"]: row for row in csv.DictReader(f)}
    # one line per submission: "[i/n, f failed] student status score seconds note"
    lines = {line.split("] ", 1)[1].split()[0]: line for line in done.stdout.splitlines()
             if line.startswith("[") and "] " in line}
    return {"course": course, "done": done, "rows": rows, "lines": lines}


def _flagged(course: Path, student: str) -> bool:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        return gb.find_submission_notebook(ASSIGNMENT, ASSIGNMENT, student).flagged


def _graded_nb(course: Path, student: str):
    return nbformat.read(course / "autograded" / student / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)


def _overruled(course: Path, student: str) -> dict[str, tuple]:
    """grade_id -> (the kernel's outcome, the judge's) for each cell where the judge overruled it."""
    found = {}
    for cell in _graded_nb(course, student).cells:
        mine = cell.metadata.get("course", {})
        if "judge" in mine and mine.get("kernel_passed") != mine["judge"]["passed"]:
            found[cell.metadata["nbgrader"]["grade_id"]] = (mine["kernel_passed"], mine["judge"]["passed"])
    return found


# ------------------------------------------------------------------ both runners

def test_stock_autograde_finishes_and_the_judge_ran(stock):
    done, course = stock["done"], stock["course"]
    assert done.returncode == 0, done.stderr[-3000:]
    for student in [*ENTRIES, *HONEST]:
        assert _graded_nb(course, student).metadata["course"][JUDGED] is True, student


def test_command_grades_everything(command):
    done, rows = command["done"], command["rows"]
    assert set(rows) == set(ENTRIES) | set(HONEST), rows
    assert {n for n, row in rows.items() if row["status"] != "graded"} == set(), rows
    assert all(row["sandbox"] == "on" for row in rows.values()), rows
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


@pytest.mark.parametrize("runner", RUNNERS)
@pytest.mark.parametrize("name", ENTRY_PARAMS)
def test_attack_scores_what_the_judge_saw_and_is_flagged_when_the_kernel_was_fooled(request, runner, name):
    run = request.getfixturevalue(runner)
    course, entry = run["course"], ENTRIES[name]
    expect_cells(course, entry.sub, entry.sub.loses)
    overruled = _overruled(course, name)
    if entry.kernel_fooled:  # the kernel passed cells the judge failed: the judge's record decides
        assert overruled and all(kernel and not judge for kernel, judge in overruled.values()), overruled
        assert set(overruled) <= set(entry.sub.loses), overruled
    else:
        assert overruled == {}, overruled
    assert _flagged(course, name) == entry.kernel_fooled
    if runner == "command":
        row = run["rows"][name]
        assert ("judge disagreed" in row["reason"].split("; ")) == entry.kernel_fooled, row
        if entry.kernel_fooled:
            assert "the judge outside the kernel decided" in run["lines"][name], run["lines"].get(name)
            assert set(_graded_nb(course, name).metadata["course"][DISAGREED]), name


@pytest.mark.parametrize("runner", RUNNERS)
@pytest.mark.parametrize("name", HONEST_PARAMS)
def test_correct_programs_keep_full_marks_unflagged(request, runner, name):
    run = request.getfixturevalue(runner)
    course = run["course"]
    expect_cells(course, HONEST[name], {})
    assert _overruled(course, name) == {}
    assert not _flagged(course, name)
    if runner == "command":
        assert run["rows"][name]["reason"] == "", run["rows"][name]

