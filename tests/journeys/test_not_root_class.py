"""The class-sized galleries graded by an instructor who is not root, as on a course server.

The grader here is an ordinary account (tests/support/unprivileged.py) with the environment
`make hub` builds for instructors: the sandbox takes its user-namespace form and no zygote
forks the kernels. It runs `course-grade grade` on two courses of its own:
- the grading gallery of tests/course_grade/commands/test_grade.py (honest kinds, attacks,
  honest look-alikes, a corrupt notebook);
- the red-team gallery of tests/journeys/test_red_team.py, with its listener on 127.0.0.1;
and bench/parallel_grading.py grades a small class both as root and as that grader.
Every submission must get what those files assert for root: the same status, reason, flag and
score of every cell (the galleries' declared expectations, `red_team.expect_row`), every graded
row with the sandbox on, and nothing reaching the grader's 127.0.0.1.
"""
from __future__ import annotations

import csv
import os
import shutil

import pytest

from tests.journeys.test_red_team import Listener, kill_ours, survivors
from tests.support import red_team
from tests.support.course import ASSIGNMENT, make_course, submit_as
from tests.support.red_team import expect_row
from tests.support.submissions import ADVERSARIAL, HONEST, HONEST_LOOKALIKES
from tests.support.unprivileged import NotRoot, give, grade_as, grader, grader_env, public_folder

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("bwrap_works")]

GALLERY = HONEST + ADVERSARIAL + HONEST_LOOKALIKES
GALLERY_CONFIG = "c.Execute.timeout = 20"  # test_grade.py's
RED_TEAM = [e for e in red_team.entries(0) if not e.known_gap]  # a known gap fails as root does (xfail there)


@pytest.fixture(scope="module")
def account():
    try:
        user = grader()
    except NotRoot as exc:
        (pytest.fail if os.environ.get("CI") else pytest.skip)(str(exc))
    return user, grader_env()


@pytest.fixture(scope="module")
def folder():
    base = public_folder("course-not-root-")
    yield base
    shutil.rmtree(base, ignore_errors=True)


def graded(account, course, *args):
    """`course-grade grade` run by the grader in `course` (handed to them first); the report's rows."""
    user, env = account
    give(course, user)
    done = grade_as(user, env, course, ASSIGNMENT, "--jobs", "2", "--submission-timeout", "300", "--no-feedback",
                    "--verbose", *args)
    assert "Traceback" not in done.stdout + done.stderr, done.stdout[-3000:] + done.stderr[-3000:]
    with open(course / "grading-report.csv", newline="") as f:
        return done, {row["student"]: row for row in csv.DictReader(f)}


@pytest.fixture(scope="module")
def gallery(account, folder):
    course = make_course(folder / "gallery", GALLERY_CONFIG)
    for sub in GALLERY:
        submit_as(course, sub)
    done, rows = graded(account, course)
    return course, done, rows


@pytest.fixture(scope="module")
def red_team_graded(account, folder):
    listener = Listener()
    try:
        entries = {e.name: e for e in red_team.entries(listener.port) if not e.known_gap}
        course = make_course(folder / "red-team", red_team.CONFIG)
        for sub in [e.sub for e in entries.values()] + red_team.HONEST:
            submit_as(course, sub)
        done, rows = graded(account, course)
        yield course, done, rows, survivors(red_team.TOKEN, str(course)), list(listener.accepted)
    finally:
        listener.close()
        kill_ours()


def test_the_gallery_is_graded_as_root_grades_it(gallery):
    course, done, rows = gallery
    output = f"--- stdout\n{done.stdout[-4000:]}\n--- stderr\n{done.stderr[-4000:]}"
    failed = [s.name for s in GALLERY if s.status != "graded"]
    assert done.returncode == 1 and failed, "the corrupt notebook is not graded, and the exit status says so\n" + output
    assert set(rows) == {s.name for s in GALLERY}
    assert done.stderr == "", output
    sandbox = {r["student"]: r["sandbox"] for r in rows.values() if r["status"] == "graded" and r["sandbox"] != "on"}
    assert not sandbox, f"the non-root grader graded without its user-namespace sandbox: {sandbox}"


@pytest.mark.parametrize("sub", GALLERY, ids=lambda s: s.name)
def test_gallery_submission(gallery, sub):
    course, _, rows = gallery
    expect_row(course, rows[sub.name], sub)


def test_the_red_team_gallery_is_graded_as_root_grades_it(red_team_graded):
    course, done, rows, left, accepted = red_team_graded
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    sandbox = {r["student"]: r["sandbox"] for r in rows.values() if r["sandbox"] != "on"}
    assert not sandbox, f"the non-root grader graded without its user-namespace sandbox: {sandbox}"
    assert left == [], left
    assert accepted == [], "a submission reached the grader's 127.0.0.1"


@pytest.mark.parametrize("sub", [e.sub for e in RED_TEAM] + red_team.HONEST, ids=lambda s: s.name)
def test_red_team_submission(red_team_graded, sub):
    course, _, rows, _, _ = red_team_graded
    expect_row(course, rows[sub.name], sub)


def test_the_bench_grades_a_class_alike_as_root_and_not_root(account, tmp_path):
    """bench/parallel_grading.py's root / not-root comparison, on a small class, one round: the
    same scores both ways, each with its sandbox on (the figures are the bench's to print)."""
    from bench.parallel_grading import not_root_side_by_side
    from tests.support.submissions import CORRECT_VARIANTS, QUIZ_CASES, WRONG

    chosen = [CORRECT_VARIANTS[0], WRONG[0], QUIZ_CASES[0], CORRECT_VARIANTS[1]]
    graders = not_root_side_by_side(chosen, 2, tmp_path, rounds=1)
    assert graders.n == len(chosen)
    assert graders.identical(), graders.scores
    assert graders.sandbox == {"root": {"on"}, "not root": {"on"}}, graders.sandbox
