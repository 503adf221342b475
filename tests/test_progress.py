"""The progress indicator's bookkeeping (autograder/progress.py), without a kernel."""
from __future__ import annotations

import pytest

from autograder import progress


@pytest.fixture(autouse=True)
def fresh():
    progress.reset()
    yield
    progress.reset()


def test_a_step_is_done_when_all_its_checks_pass(capsys):
    progress.record("step3_engine_is_async", True)
    progress.record("step3_engine_pool_size", True)
    assert progress.done_steps() == []
    progress.record("step3_engine_connects", True)
    assert progress.done_steps() == [3]
    assert capsys.readouterr().out == "Step 3 done. Progress: 1/4 steps done. Next: step 1, the database URL.\n"


def test_a_later_failure_undoes_the_step(capsys):
    progress.record("step1_database_url", True)
    progress.record("step1_database_url", False)
    assert progress.done_steps() == [] and progress.next_step() == 1
    progress.record("step1_database_url", True)
    assert capsys.readouterr().out.count("Step 1 done.") == 2  # said again when it passes again


def test_hidden_and_quiz_checks_do_not_count(capsys):
    progress.record("step3_pool_size_uses_variable", True)
    progress.record("quiz01_url_driver", True)
    assert progress.done_steps() == [] and capsys.readouterr().out == ""


def test_all_done_points_to_the_quizzes():
    for _, needed in progress.STEPS.values():
        for check in needed:
            progress.record(check, True)
    assert progress.summary() == "Progress: 4/4 steps done. All four steps pass: on to the quizzes."


def test_every_step_check_exists_and_is_graded():
    """The checks the panel waits for are real checks, each the visible part of a graded cell."""
    from autograder import checks
    from course import graded_cells

    cells = graded_cells()
    for _, needed in progress.STEPS.values():
        for name in needed:
            assert callable(getattr(checks, name)), name
            assert name in cells, f"{name} is not a graded cell"
