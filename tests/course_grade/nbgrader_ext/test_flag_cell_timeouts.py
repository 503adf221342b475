"""course_grade/nbgrader_ext/flag_cell_timeouts.py: under stock `nbgrader autograde`, a cell stopped at the per-cell
time limit is named and the notebook flagged for review (the formgrader's flag)."""
from __future__ import annotations

import nbformat
import pytest

from tests.support.course import (
    ASSIGNMENT,
    answers_file,
    autograde,
    make_course,
    right_answers,
    solutions,
    student_notebook,
    submit,
)

STEP1 = "step1_database_url_solution"


@pytest.mark.slow
def test_stock_autograde_flags_a_cell_stopped_at_its_time_limit(tmp_path):
    from nbgrader.api import Gradebook

    course = make_course(tmp_path / "course", "c.Execute.timeout = 8\n")
    slow = {**solutions(), STEP1: "import time\ntime.sleep(60)\n" + solutions()[STEP1]}
    submit(course, "sleeper", student_notebook(slow), answers_file(right_answers()))
    submit(course, "prompt", student_notebook(solutions()), answers_file(right_answers()))
    done, _ = autograde(course)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"stopped at the per-cell time limit (c.Execute.timeout): {STEP1}" in done.stderr
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        sleeper, prompt = (gb.find_submission(ASSIGNMENT, s) for s in ("sleeper", "prompt"))
        assert sleeper.notebooks[0].flagged and sleeper.score < prompt.score
        assert not prompt.notebooks[0].flagged and prompt.score == pytest.approx(23)
    graded = nbformat.read(course / "autograded" / "sleeper" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)
    assert graded.metadata["course"]["timed_out"] == [STEP1]
