"""The real nbgrader pipeline grades right, wrong and blank submissions as intended."""
from __future__ import annotations

import pytest

from tests.support.course import graded_cells
from tests.support.submissions import BLANK, CORRECT_VARIANTS, QUIZ_CASES, WRONG

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def graded(stock_graded):
    return stock_graded[1]


def _summary(cells) -> str:
    return "\n".join(f"  {gid}: {c.score}/{c.max_score} {c.message}" for gid, c in cells.items())


@pytest.mark.parametrize("sub", CORRECT_VARIANTS, ids=lambda s: s.name)
def test_correct_submission_earns_full_marks(graded, sub):
    cells = graded[sub.name]
    assert all(c.full for c in cells.values()), f"{sub.name} lost points:\n{_summary(cells)}"


@pytest.mark.parametrize("sub", WRONG + QUIZ_CASES, ids=lambda s: s.name)
def test_wrong_submission_loses_only_its_own_cells(graded, sub):
    cells = graded[sub.name]
    for gid, cell in cells.items():
        if gid in sub.loses:
            assert cell.score == 0, f"{sub.name}: {gid} should score 0:\n{_summary(cells)}"
            assert cell.message.startswith("CheckFailed: "), f"{gid}: not one of our messages: {cell.message!r}"
            assert sub.loses[gid] in cell.message, f"{gid}: expected {sub.loses[gid]!r} in {cell.message!r}"
        else:
            assert cell.full, f"{sub.name}: {gid} should keep its points:\n{_summary(cells)}"


def test_blank_release_scores_zero_with_a_message_of_ours_in_every_cell(graded):
    cells = graded[BLANK]
    assert set(cells) == set(graded_cells())
    for gid, cell in cells.items():
        assert cell.score == 0, f"{gid} gave points to an empty notebook"
        # one sentence from the autograder package: no NameError, NotImplementedError or timeout
        assert cell.message.startswith("CheckFailed: "), f"{gid}: {cell.message!r}"
        assert "\n" not in cell.message and len(cell.message) < 400, f"{gid}: {cell.message!r}"


def test_blank_release_step_messages_say_what_to_do(graded):
    cells = graded[BLANK]
    assert "DATABASE_URL` is not defined" in cells["step1_database_url"].message
    assert "POOL_SIZE` is not defined" in cells["step2_pool_size"].message
    assert "`engine` is not defined" in cells["step3_engine_is_async"].message
    assert "`app` is not defined" in cells["step4_app_has_items_route"].message
    # one message per mistake: the other step 4 cells point to it, or wait for it (hidden ones)
    assert "for the reason given above" in cells["step4_items_returns_all_rows"].message
    assert "only counts once these checks above pass" in cells["step4_items_reads_the_table"].message
    assert "quiz_answers.json is missing" in cells["quiz01_url_driver"].message


def test_no_graded_cell_writes_to_stderr(graded):
    noisy = {(name, gid): c.stderr for name, cells in graded.items() for gid, c in cells.items() if c.stderr}
    assert not noisy, f"graded cells wrote to stderr (nbgrader would give them 0): {noisy}"


def test_quiz_scores_count_the_right_answers(graded):
    def quiz_score(name):
        return sum(c.score for gid, c in graded[name].items() if gid.startswith("quiz"))

    assert quiz_score("solution") == 10
    assert quiz_score("quiz_all_wrong") == 0
    assert quiz_score("quiz_partly_right") == 6
    assert quiz_score("quiz_missing_file") == 0
    assert quiz_score("quiz_malformed_file") == 0


def test_quiz_feedback_explains_the_right_answer(graded):
    message = graded["quiz_all_wrong"]["quiz04_max_overflow"].message
    assert "you chose B (5)" in message and "The answer is A" in message and "15 at once" in message
