"""course_grade/nbgrader_ext/flag_unreadable.py: under stock `nbgrader autograde`, a submitted notebook that
cannot be graded (empty, corrupt, no cells) is in the gradebook with 0, flagged, and the log
says why; an honest student in the same run is graded as usual."""
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


@pytest.mark.slow
def test_stock_autograde_flags_notebooks_it_cannot_read(tmp_path):
    from nbgrader.api import Gradebook

    course = make_course(tmp_path / "course")
    submit(course, "corrupt", "{this is not json")
    submit(course, "blank", "")
    submit(course, "no_cells", nbformat.writes(nbformat.v4.new_notebook()))
    submit(course, "honest", student_notebook(solutions()), answers_file(right_answers()))
    done, _ = autograde(course)
    assert done.returncode == 1, "nbgrader says some submissions failed"
    for student, why in (("corrupt", "not a readable .ipynb"), ("blank", "empty"), ("no_cells", "empty")):
        assert f"of {student}: the notebook" in done.stderr and why in done.stderr, done.stderr[-2000:]
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        for student in ("corrupt", "blank", "no_cells"):
            sub = gb.find_submission(ASSIGNMENT, student)
            assert (sub.score, sub.max_score, sub.notebooks[0].flagged) == (0, 23, True), student
        honest = gb.find_submission(ASSIGNMENT, "honest")
        assert honest.score == pytest.approx(23) and not honest.notebooks[0].flagged
