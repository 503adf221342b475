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
    assert capsys.readouterr().out == (
        "Step 3 passes its visible checks; its 1 hidden check runs when your notebook is graded. "
        "Progress: 1/4 steps pass their visible checks. Next: step 1, the database URL.\n")


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
    assert capsys.readouterr().out.count("Step 1 passes its checks.") == 2  # said again when it passes again


def test_hidden_and_quiz_checks_do_not_count(capsys):
    hear("step3_pool_size_uses_variable", True)
    hear("quiz01_url_driver", True)
    assert progress.done_steps() == [] and capsys.readouterr().out == ""


def pass_every_visible_check() -> None:
    for _, needed in progress.steps().values():
        for check in needed:
            hear(check, True)


def test_all_visible_checks_passing_is_not_called_done_the_hidden_ones_run_when_graded(capsys):
    pass_every_visible_check()
    assert progress.summary() == (
        "Progress: 4/4 steps pass their visible checks; hidden checks run only when your notebook is graded "
        "(press Grade my notebook at the end).")
    said = capsys.readouterr().out
    assert "Step 1 passes its checks." in said and "Step 2 passes its checks." in said
    assert "Step 4 passes its visible checks; its 2 hidden checks run when your notebook is graded." in said
    assert "done" not in said.lower() and "all four steps pass" not in said.lower()


def graded_cells(lost: dict[str, float] | None = None) -> list[dict]:
    """What the Grade my notebook button hands the panel: every graded cell of the lesson, in
    order, with full marks but for `lost` (grade_id -> the score it got)."""
    from tests.support.course import graded_cells as points

    lost = lost or {}
    return [{"grade_id": gid, "score": lost.get(gid, p), "points": p} for gid, p in points().items()]


def test_a_grading_shows_the_score_and_names_the_hidden_checks_that_failed():
    pass_every_visible_check()
    progress.graded(graded_cells({"step4_items_reads_the_table": 0, "step3_pool_size_uses_variable": 0,
                                  "quiz03_asgi_transport": 0}))
    said = progress.summary()
    assert said.startswith("Graded at ") and "(your saved notebook): 19/23 points." in said, said
    assert ("Hidden checks not passed: “Step 3 (hidden): the pool size comes from POOL_SIZE, not a typed-in "
            "number”; “Step 4 (hidden): rows put in the table at grading time come back, and an empty table "
            "gives []”.") in said, said
    assert "Other checks not passed: quiz question 3." in said and said.endswith("Why: under Grade my notebook.")
    html = progress._html()
    assert html.count("course-progress-done") == 2, "steps 3 and 4 lost a hidden check: not ticked"
    assert "hidden ones included" in html


def test_a_full_grading_says_every_check_passes():
    progress.graded(graded_cells())
    assert progress.summary().endswith("(your saved notebook): 23/23 points. Every check passes, hidden ones included.")
    assert progress._html().count("course-progress-done") == 4


def test_a_check_run_after_the_grading_puts_the_kernels_count_back_and_says_when_it_last_graded():
    progress.graded(graded_cells({"step2_pool_size": 0}))
    assert "Checks not passed: “Step 2: POOL_SIZE is the integer 5”." in progress.summary()
    hear("step2_pool_size", True)
    said = progress.summary()
    assert said.startswith("Progress: 1/4 steps pass their visible checks. Next: step 1, the database URL."), said
    assert "(Last graded at " in said and ": 22/23 points, before the checks you ran since.)" in said


def test_a_grading_the_panel_cannot_read_changes_nothing():
    progress.graded([{"grade_id": "step1_database_url"}])  # no score: not a grading
    progress.graded("not a list of cells")
    assert progress.summary().startswith("Progress: 0/4 steps pass their visible checks.")


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
