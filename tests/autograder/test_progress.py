"""The progress indicator's bookkeeping (autograder/progress.py), without a kernel.

Its steps come from the checks' declarations (autograder.registry)."""
from __future__ import annotations

import pytest

from autograder import checks, progress, registry, report  # noqa: F401 - importing the checks declares them
from autograder.records import CheckRecord


def hear(check: str, passed: bool, stand_in: bool = False) -> None:
    """The record a check's run hands the panel."""
    progress.hear(CheckRecord(check, 0, 1, passed, stand_in=stand_in))


@pytest.fixture(autouse=True)
def fresh():
    report.reset()
    progress.reset()
    yield
    report.reset()
    progress.reset()


def test_the_panel_waits_for_each_steps_visible_checks():
    steps = progress.steps()
    assert list(steps) == [1, 2, 3, 4]
    for n, (title, needed) in steps.items():
        assert title == registry.STEPS[n]
        assert set(needed) == {c.name for c in registry.declared() if c.step == n and not c.hidden}
    assert "step4_connections_returned" in steps[4][1], "the leak check is visible, so the panel waits for it"


def test_a_step_is_done_when_all_its_checks_pass(capsys):
    hear("step3_engine_is_async", True)
    hear("step3_engine_pool_size", True)
    assert progress.done_steps() == []
    hear("step3_engine_connects", True)
    assert progress.done_steps() == [3]
    assert capsys.readouterr().out == "Step 3 done. Progress: 1/4 steps done. Next: step 1, the database URL.\n"


def test_a_pass_with_a_stand_in_does_not_count(capsys):
    hear("step3_engine_is_async", True)
    hear("step3_engine_pool_size", True)
    hear("step3_engine_connects", True, stand_in=True)
    assert progress.done_steps() == [] and capsys.readouterr().out == ""


def test_a_later_failure_undoes_the_step(capsys):
    hear("step1_database_url", True)
    hear("step1_database_url", False)
    assert progress.done_steps() == [] and progress.next_step() == 1
    hear("step1_database_url", True)
    assert capsys.readouterr().out.count("Step 1 done.") == 2  # said again when it passes again


def test_hidden_and_quiz_checks_do_not_count(capsys):
    hear("step3_pool_size_uses_variable", True)
    hear("quiz01_url_driver", True)
    assert progress.done_steps() == [] and capsys.readouterr().out == ""


def test_all_done_points_to_the_quizzes():
    for _, needed in progress.steps().values():
        for check in needed:
            hear(check, True)
    assert progress.summary() == "Progress: 4/4 steps done. All four steps pass: on to the quizzes."


def test_every_declared_check_is_a_graded_cell_with_its_points():
    """The lesson's test cells are made from the declarations: same names, points, hidden parts."""
    import nbformat

    from tests.support.course import SOURCE_NB, graded_cells

    cells = graded_cells()
    sources = {c.id: c.source for c in nbformat.read(SOURCE_NB, as_version=4).cells}
    for c in registry.declared():
        assert cells.get(c.name) == c.points, c.name
        assert ("### BEGIN HIDDEN TESTS" in sources[c.name]) == c.hidden, c.name
    steps = {n for n, _ in registry.STEPS.items()}
    assert {gid for gid in cells if gid.startswith("step")} == {c.name for c in registry.declared()}
    assert steps == {c.step for c in registry.declared()}
