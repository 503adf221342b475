"""The whole nbgrader workflow through a filesystem exchange, as an instructor and a student.

release_assignment -> fetch_assignment -> (complete) -> submit -> collect -> grade (our command:
autograde, generate_feedback, export) -> release_feedback -> fetch_feedback.
"""
from __future__ import annotations

import csv
import getpass
import subprocess

import nbformat
import pytest

from tests.support.course import ANSWERS_FILE, ASSIGNMENT, BIN, answers_file, make_course, right_answers, tool_env
from tests.support.submissions import WRONG, Submission

pytestmark = pytest.mark.slow

COURSE_ID = "fastapi-connection-pooling"


def run(args: list[str], cwd, exchange, check=True) -> subprocess.CompletedProcess:
    done = subprocess.run(args, cwd=cwd, env=tool_env(NBGRADER_EXCHANGE=str(exchange)),
                          capture_output=True, text=True, timeout=900)
    assert not check or done.returncode == 0, f"{' '.join(args)}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def test_release_fetch_submit_collect_grade_and_feedback(tmp_path):
    exchange, student_home = tmp_path / "exchange", tmp_path / "student"
    exchange.mkdir()
    student_home.mkdir()
    exchange.chmod(0o777)
    course = make_course(tmp_path / "course")
    nbgrader = str(BIN / "nbgrader")
    as_student = ["--course", COURSE_ID, f"--Exchange.root={exchange}"]

    run([nbgrader, "release_assignment", ASSIGNMENT], course, exchange)
    run([nbgrader, "fetch_assignment", ASSIGNMENT, *as_student], student_home, exchange)
    fetched = student_home / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"

    # the student completes the lesson with a leaking dependency, and answers the quiz
    leaking: Submission = next(s for s in WRONG if s.name == "leaking_connections")
    nb = nbformat.read(fetched, as_version=4)
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in leaking.answers():
            cell.source = leaking.answers()[grade_id]
    nbformat.write(nb, fetched)
    (fetched.parent / ANSWERS_FILE).write_text(answers_file(right_answers()))

    run([nbgrader, "submit", ASSIGNMENT, *as_student], student_home, exchange)
    run([nbgrader, "collect", ASSIGNMENT], course, exchange)
    student = getpass.getuser()
    assert (course / "submitted" / student / ASSIGNMENT / ANSWERS_FILE).exists(), (
        "the quiz answers travel with the notebook")

    graded = run([str(BIN / "python"), "-m", "course_grade", "grade", ASSIGNMENT, "--jobs", "1"], course, exchange)
    assert "1/1 graded" in graded.stdout
    run([nbgrader, "release_feedback", ASSIGNMENT], course, exchange)
    run([nbgrader, "fetch_feedback", ASSIGNMENT, *as_student], student_home, exchange)

    (html_file,) = (student_home / ASSIGNMENT / "feedback").glob(f"*/{ASSIGNMENT}.html")
    html = html_file.read_text()
    assert "leaks connections" in html and "TimeoutError" in html  # every check's message...
    for secret in ("BEGIN HIDDEN TESTS", "step4_concurrent_requests_share_the_pool(globals())", "check_answer("):
        assert secret not in html, f"feedback shows hidden test code: {secret}"  # ...but no hidden test
    with open(course / "grades.csv") as f:
        (row,) = [r for r in csv.DictReader(f) if r["student_id"] == student]
    assert float(row["raw_score"]) == 21 and float(row["max_score"]) == 23
