"""The red-team gallery of files (tests/support/red_team_files.py) under both runners.

One course; every entry, the blank submissions under formula-like ids and the honest solution
graded in one stock `nbgrader autograde` run (then stock generate_feedback, export,
`course-grade report` and the LMS export) and one `python -m course_grade grade` run with
feedback (then the LMS export), each in its own copy of the course. Canaries sit in a folder
beside the courses. For each runner: every entry's scores (or its reason for not being
graded), what stopped it (the added cell's own output), the canaries unchanged, only the
notebook and nbgrader's files in autograded/ and only the feedback page (and nbgrader's
files) in feedback/, the honest student's grades intact, no CSV cell starting a formula.
Known gaps are strict xfails whose reason says what happens and where the fix lands.
"""
from __future__ import annotations

import csv
import datetime
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import pytest

from tests.support import red_team
from tests.support import red_team_files as rtf
from tests.support.course import (
    ASSIGNMENT,
    BIN,
    autograde,
    graded_cells,
    make_course,
    nbgrader,
    submit,
    submit_as,
    tool_env,
)
from tests.support.red_team import expect_cells

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("bwrap_works")]

ENTRIES = {e.name: e for e in rtf.entries(Path("/nonexistent"))}  # names and expectations (paths differ)
GAPS = {n: e.known_gap for n, e in ENTRIES.items() if e.known_gap}
FAILED = {n for n, e in ENTRIES.items() if e.sub.status != "graded"}
CSV_IDS = set(rtf.CSV_STUDENTS)
HONEST_SUBS = [red_team.SOLUTION]  # (the look-alike is graded by tests/journeys/test_red_team.py)
HONEST = {s.name for s in HONEST_SUBS}
RUNNERS = ["stock", "command"]
# what nbgrader and our steps may leave in a graded student's folders
AUTOGRADED_FILES = {f"{ASSIGNMENT}.ipynb", "timestamp.txt", "submission_secret.txt"}
FEEDBACK_FILES = {f"{ASSIGNMENT}.html", "timestamp.txt", "submission_secret.txt"}


def _param(name):
    marks = [pytest.mark.xfail(strict=True, reason=GAPS[name])] if name in GAPS else []
    return pytest.param(name, marks=marks, id=name)


ENTRY_PARAMS = [_param(n) for n in ENTRIES]


@pytest.fixture(scope="module")
def gallery(tmp_path_factory):
    top = tmp_path_factory.mktemp("red-team-files")
    canaries = rtf.make_canaries(top / "canaries")
    before = rtf.canary_state(canaries)
    base = make_course(top / "base", rtf.FILES_CONFIG)
    return base, canaries, before, {e.name: e for e in rtf.entries(canaries)}


def _course(gallery, name: str) -> Path:
    base, canaries, _, entries = gallery
    course = base.parent / name
    shutil.copytree(base, course)
    for entry in entries.values():
        if entry.notebook_text is not None:
            submit(course, entry.name, entry.notebook_text, entry.sub.quiz_file(), entry.sub.extra_files)
        else:
            submit_as(course, entry.sub)
    for student, links in rtf.LINKS.items():
        for name, target in links.items():
            (course / "submitted" / student / ASSIGNMENT / name).symlink_to(canaries / target)
    for sub in rtf.csv_submissions() + HONEST_SUBS:
        submit_as(course, sub)
    return course


def _roster(course: Path) -> Path:
    students = sorted(p.name for p in (course / "submitted").iterdir())
    roster = course.parent / f"roster-{course.name}.csv"
    with open(roster, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["nbgrader_id", "name", "canvas_id"])
        writer.writerows([s, f"Student {i}", str(1000 + i)] for i, s in enumerate(students))
    return roster


def _course_grade(course: Path, *args: str, timeout: int = 1800) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "python"), "-m", "course_grade", *args], cwd=course, env=tool_env(),
                          capture_output=True, text=True, timeout=timeout)


def _lms_export(course: Path) -> subprocess.CompletedProcess:
    return _course_grade(course, "export", ASSIGNMENT, "--lms", "canvas", "--roster", str(_roster(course)), timeout=300)


@pytest.fixture(scope="module")
def stock(gallery):
    course = _course(gallery, "stock")
    done, seconds = autograde(course)
    start = time.perf_counter()
    steps = {"generate_feedback": nbgrader("generate_feedback", ASSIGNMENT, cwd=course),
             "export": nbgrader("export", cwd=course),
             "report": _course_grade(course, "report", ASSIGNMENT, timeout=600),
             "lms": _lms_export(course)}
    print(f"\nstock nbgrader autograde, {len(ENTRIES) + len(CSV_IDS) + len(HONEST)} submissions: {seconds:.0f} s; "
          f"feedback, export, report, LMS: {time.perf_counter() - start:.0f} s")
    failed = {line.rsplit("'", 2)[-2] for line in done.stderr.splitlines()
              if "There was an error processing assignment 'connection-pooling' for student" in line}
    return {"course": course, "done": done, "steps": steps, "failed": failed, "log": done.stdout + done.stderr}


@pytest.fixture(scope="module")
def command(gallery, stock):
    course = _course(gallery, "command")
    start = time.perf_counter()
    done = _course_grade(course, "grade", ASSIGNMENT, "--jobs", "2", "--submission-timeout", "300")
    seconds = time.perf_counter() - start
    steps = {"lms": _lms_export(course)}
    print(f"\nthe grading command with feedback, {len(ENTRIES) + len(CSV_IDS) + len(HONEST)} submissions, "
          f"2 jobs: {seconds:.0f} s")
    with open(course / "grading-report.csv", newline="", encoding="utf-8") as f:
        rows = {row["student"]: row for row in csv.DictReader(f)}
    failed = {n for n, row in rows.items() if row["status"] != "graded"}
    return {"course": course, "done": done, "steps": steps, "failed": failed, "rows": rows,
            "log": done.stdout + done.stderr}


def _run(request, runner):
    return request.getfixturevalue(runner)


def _graded(run) -> set[str]:
    return (set(ENTRIES) | CSV_IDS | HONEST) - run["failed"]


# ------------------------------------------------------------------ the run itself

@pytest.mark.parametrize("runner", RUNNERS)
def test_run_finishes_and_fails_only_the_bombs(request, runner):
    """A bomb fails its own submission at most: the run goes on and grades everyone else."""
    run = _run(request, runner)
    assert run["failed"] - set(GAPS) == FAILED, run["log"][-3000:]
    assert run["done"].returncode == 1, run["log"][-3000:]
    for name, step in run["steps"].items():
        assert step.returncode == 0, f"{name}: {step.stdout[-2000:]}{step.stderr[-2000:]}"
    if runner == "command":
        assert all(row["sandbox"] == "on" for row in run["rows"].values()), run["rows"]


@pytest.mark.parametrize("name", ENTRY_PARAMS)
@pytest.mark.parametrize("runner", RUNNERS)
def test_scores(request, runner, name):
    """Every graded entry scores what the honest code beside it earns (the attack gains nothing);
    a bomb that cannot be graded says why."""
    run = _run(request, runner)
    entry = ENTRIES[name]
    if entry.sub.status != "graded":
        assert name in run["failed"]
        assert not (run["course"] / "autograded" / name / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").exists()
        return
    assert name not in run["failed"], run["log"][-3000:]
    expect_cells(run["course"], entry.sub, entry.sub.loses)


@pytest.mark.parametrize("name", sorted(FAILED))
@pytest.mark.parametrize("runner", RUNNERS)
def test_a_bomb_says_why(request, runner, name):
    """A bomb that cannot be graded says why: stock nbgrader's log names the error, the
    command's report row names the file."""
    run = _run(request, runner)
    entry = ENTRIES[name]
    if runner == "command":
        assert entry.note in run["rows"][name]["note"], run["rows"][name]
    else:
        assert entry.failed_reason in run["log"], run["log"][-3000:]


def _last_cell_output(course: Path, name: str) -> str:
    nb = nbformat.read(course / "autograded" / name / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)
    return "".join(o.get("text", "") + o.get("evalue", "") for o in nb.cells[-1].get("outputs", []))


SHOWS = [n for n, e in ENTRIES.items() if e.shows]


@pytest.mark.parametrize("name", SHOWS)
@pytest.mark.parametrize("runner", RUNNERS)
def test_what_stopped_it(request, runner, name):
    """The attack's own output says what stopped it (the guard's sentence, ENOSPC, SQLite unable
    to open a file the sandbox does not show)."""
    out = _last_cell_output(_run(request, runner)["course"], name)
    for words in ENTRIES[name].shows:
        assert words in out, out[-2000:]
    assert "linked" not in out.replace("blocked", "") and "ran DELETE" not in out and "uri: made" not in out, out


@pytest.mark.parametrize("runner", RUNNERS)
def test_flags_what_the_analysis_catches(request, runner):
    from nbgrader.api import Gradebook

    from course_grade.reports.item_analysis import build

    course = _run(request, runner)["course"]
    look = build(course, ASSIGNMENT).to_look_at  # the report flags its attention list too
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        for name, entry in ENTRIES.items():
            if entry.sub.status == "graded" and name not in GAPS and name not in rtf.LINKS:
                flagged = gb.find_submission_notebook(ASSIGNMENT, ASSIGNMENT, name).flagged
                assert flagged == (entry.sub.flagged or name in look), (name, look.get(name))


# ------------------------------------------------------------------ the host and the other students

@pytest.mark.parametrize("runner", RUNNERS)
def test_canaries_untouched(request, runner, gallery):
    """Content, mode and mtime of every canary, and the canary folder's listing, as made."""
    _run(request, runner)
    _, canaries, before, _ = gallery
    assert rtf.canary_state(canaries) == before


@pytest.mark.parametrize("runner", RUNNERS)
def test_only_the_graders_files_in_autograded_and_feedback(request, runner):
    """After grading and feedback, each graded student's folders hold regular files only: the
    notebook (its page in feedback/) and nbgrader's own files, nothing the kernel wrote."""
    course = _run(request, runner)["course"]
    run = _run(request, runner)
    for student in _graded(run):
        for step, allowed, must in (("autograded", AUTOGRADED_FILES, f"{ASSIGNMENT}.ipynb"),
                                    ("feedback", FEEDBACK_FILES, f"{ASSIGNMENT}.html")):
            folder = course / step / student / ASSIGNMENT
            found = {p.relative_to(folder).as_posix(): os.lstat(p).st_mode for p in folder.rglob("*")}
            assert must in found and set(found) <= allowed, (step, student, sorted(found))
            assert all(stat.S_ISREG(mode) for mode in found.values()), (step, student, found)
    page = (course / "feedback" / "rf_leaves_files_for_feedback" / ASSIGNMENT / f"{ASSIGNMENT}.html").read_text()
    assert page.lstrip().lower().startswith("<!doctype html>"), page[:200]


@pytest.mark.parametrize("sub", HONEST_SUBS, ids=lambda s: s.name)
@pytest.mark.parametrize("runner", RUNNERS)
def test_honest_keep_full_marks(request, runner, sub):
    expect_cells(_run(request, runner)["course"], sub, {})


@pytest.mark.parametrize("runner", RUNNERS)
def test_every_grade_in_the_gradebook(request, runner):
    from nbgrader.api import Gradebook

    run = _run(request, runner)
    with Gradebook(f"sqlite:///{run['course'] / 'gradebook.db'}") as gb:
        for student in _graded(run):
            assert len(gb.find_submission(ASSIGNMENT, student).notebooks[0].grades) == len(graded_cells()), student


@pytest.mark.parametrize("runner", [pytest.param("stock", marks=pytest.mark.xfail(
    strict=True, reason="stock nbgrader reads submitted/<student>/timestamp.txt (open() follows links) before any "
    "preprocessor runs: a link there makes the grader read a host file and take it as the submission time")),
    "command"])
def test_a_linked_timestamp_is_not_read(request, runner):
    """submitted/<student>/timestamp.txt is a link to a host file holding 2001-02-03: the grader
    never takes it (the command reads submissions with O_NOFOLLOW)."""
    from nbgrader.api import Gradebook

    run = _run(request, runner)
    student, _ = rtf.LINKED_TIMESTAMP
    with Gradebook(f"sqlite:///{run['course'] / 'gradebook.db'}") as gb:
        when = gb.find_submission(ASSIGNMENT, student).timestamp
    assert when is None or when.date() != datetime.date(2001, 2, 3), when


@pytest.mark.parametrize("runner", RUNNERS)
def test_the_item_report_reads_no_linked_answers(request, runner):
    """The canary answers file (a wrong letter for every question, linked from one submission)
    is never counted: no graded student chose those letters."""
    course = _run(request, runner)["course"]
    with open(course / "reports" / f"{ASSIGNMENT}.csv", newline="", encoding="utf-8") as f:
        rows = {row["id"]: row for row in csv.DictReader(f) if row["kind"] == "quiz"}
    from tests.support.submissions import _quiz_cells

    cells = _quiz_cells()
    counted = {qid: rows[cells[qid]][letter] for qid, letter in rtf.canary_answers().items()}
    assert all(n in ("", "0") for n in counted.values()), counted


READ_ANSWERS = "import sys\nfrom pathlib import Path\nfrom course_grade.reports.readers import quiz_answers\n" \
               "print(quiz_answers(Path(sys.argv[1])))\n"


def test_the_item_report_never_waits_on_a_fifo(tmp_path):
    """A submission folder whose quiz_answers.json is a FIFO nobody writes: the report's reader
    returns (no answers) at once."""
    os.mkfifo(tmp_path / "quiz_answers.json")
    try:
        done = subprocess.run([sys.executable, "-c", READ_ANSWERS, str(tmp_path)], capture_output=True, text=True,
                              timeout=10)
    except subprocess.TimeoutExpired:
        pytest.fail("the report's reader waited on the FIFO")
    assert done.returncode == 0 and done.stdout.strip() == "None", done.stderr


# ------------------------------------------------------------------ formulas in every CSV

def _csv_files(course: Path, runner: str) -> dict[str, Path]:
    files = {"grades.csv": course / "grades.csv", "reports": course / "reports" / f"{ASSIGNMENT}.csv",
             "lms": course / "exports" / f"{ASSIGNMENT}-canvas.csv"}
    if runner == "command":
        files["grading-report.csv"] = course / "grading-report.csv"
    return files


CSV_CASES = [(r, f) for r in RUNNERS for f in ("grades.csv", "reports", "lms", "grading-report.csv")
             if not (r == "stock" and f == "grading-report.csv")]


@pytest.mark.parametrize("runner,which", [pytest.param(r, f, id=f"{r}-{f}") for r, f in CSV_CASES])
def test_no_cell_starts_a_formula(request, runner, which):
    """Read back with csv.reader, no cell of any CSV the course writes starts with a formula
    character (the ids in rtf.CSV_STUDENTS are graded under both runners)."""
    path = _csv_files(_run(request, runner)["course"], runner)[which]
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    width = len(rows[0])
    assert all(len(row) == width for row in rows if row), "a comma in an id split a row"
    cells = [cell for row in rows for cell in row if cell.startswith(rtf.FORMULA_START)
             and not _number(cell)]
    assert not cells, cells


def _number(cell: str) -> bool:
    try:
        float(cell)
        return True
    except ValueError:
        return False


@pytest.mark.parametrize("runner", RUNNERS)
def test_formula_ids_are_graded(request, runner):
    """The formula-like ids are real students of the run: graded, in the gradebook and (the
    command) in its report."""
    from nbgrader.api import Gradebook

    run = _run(request, runner)
    assert _graded(run) >= CSV_IDS
    with Gradebook(f"sqlite:///{run['course'] / 'gradebook.db'}") as gb:
        assert {s.id for s in gb.students} >= CSV_IDS
    if runner == "command":  # the report's ids as the course reads them back (safe_csv.restore)
        from course_grade.safe_csv import restore

        assert {restore(student) for student in run["rows"]} >= CSV_IDS


# ------------------------------------------------------------------ the guard alone (the fallback)

GUARD_BYPASS = r'''
import sqlite3, sys
import autograder.guard as guard
guard.install()
canaries = sys.argv[1]
db = sqlite3.connect("test.db")
for sql in (f"ATTACH DATABASE '{canaries}/canary.db' AS canary", "DELETE FROM canary.t"):
    try:
        db.execute(sql)
    except sqlite3.Error as exc:
        print("refused", exc)
db.commit()
try:
    sqlite3.connect(f"file:{canaries}/uri.db?mode=rwc", uri=True).execute("CREATE TABLE t(x)")
except (sqlite3.Error, PermissionError) as exc:
    print("refused", exc)
'''


@pytest.fixture
def outside_tmp():
    """A folder outside /tmp: the guard lets a kernel write its own /tmp (the sandbox's private one)."""
    folder = Path(tempfile.mkdtemp(dir="/var/tmp"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_without_the_sandbox_sqlite_cannot_write_outside(outside_tmp):
    canaries = rtf.make_canaries(outside_tmp / "canaries")
    before = rtf.canary_state(canaries)
    work = outside_tmp / "work"
    work.mkdir()
    done = subprocess.run([sys.executable, "-c", GUARD_BYPASS, str(canaries)], cwd=work, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert rtf.canary_state(canaries) == before, done.stdout
    assert done.stdout.count("refused") == 3, done.stdout


# ------------------------------------------------------------------ the timestamp's parse time

@pytest.mark.xfail(strict=True, reason="stock nbgrader reads timestamp.txt whole and dateutil parses a run of digits "
                   "in quadratic time: 150 KB take over a second, 2 MB about four minutes of the whole run "
                   "(the grading command refuses such a file before nbgrader: task.timestamp_problem, 'bad timestamp')")
def test_a_huge_timestamp_costs_the_grader_little(tmp_path):
    from nbgrader.coursedir import CourseDirectory

    (tmp_path / "timestamp.txt").write_text("9" * 150_000)
    start = time.perf_counter()
    with pytest.raises((ValueError, OverflowError)):
        CourseDirectory().get_existing_timestamp(str(tmp_path))
    assert time.perf_counter() - start < 0.5
