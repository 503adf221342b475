"""The attention list's rules (course_grade/reports/attention.py), on made-up facts: what counts as
blank, nearly blank, or answered; each reason once, in reasons.ORDER; nobody listed without one.
Real nbgrader runs them on a graded class in tests/journeys/test_instructor_view.py."""
from __future__ import annotations

import json

import pytest

from course_grade import reasons
from course_grade.late import Late
from course_grade.reports.attention import Facts, answer_cells, answered, assess
from tests.support.course import RELEASE_NB, right_answers, solutions, student_notebook

RELEASED = answer_cells(json.loads(RELEASE_NB.read_text()))
QUESTIONS = sorted(right_answers())


def nb(changes: dict[str, str]) -> dict:
    return json.loads(json.dumps(student_notebook(changes)))


def facts(notebook: dict | None, answers: dict | None = None, state: str = "saved", **more) -> Facts:
    base = dict(student="s", row={"status": "graded", "sandbox": "on"}, in_gradebook=True, flagged=False, late=None,
                graded_nb=notebook, submitted=None, answers=answers, answers_state=state)
    return Facts(**{**base, **more})


def codes(f: Facts) -> list[str]:
    return [a.code for a in assess(f, RELEASED, QUESTIONS)]


STEP1 = "step1_database_url_solution"


@pytest.mark.parametrize("code", [
    "# YOUR CODE HERE\nraise NotImplementedError()",            # as released
    "",                                                           # emptied
    "# I will do this later\n\n",                                 # a comment only
    "# YOUR CODE HERE\nraise NotImplementedError\n    \n",       # spacing and the bare raise
    "pass",
])
def test_an_answer_cell_with_only_placeholders_is_not_answered(code):
    mine = answered(nb({STEP1: code}), RELEASED, {}, QUESTIONS)
    assert mine.cells == 0 and mine.nothing, mine


def test_real_code_counts_even_beside_the_placeholder():
    code = 'DATABASE_URL = "sqlite+aiosqlite:///./test.db"\nraise NotImplementedError()'
    assert answered(nb({STEP1: code}), RELEASED, {}, QUESTIONS).cells == 1


def test_blank_nearly_blank_and_answered():
    assert codes(facts(nb({}), None, "missing")) == [reasons.BLANK], "blank says it all: no 'answers missing'"
    one = nb({STEP1: 'DATABASE_URL = "x"'})
    assert codes(facts(one, None, "missing")) == [reasons.NEARLY_BLANK]
    # a quarter of 4 cells + the questions: one cell and one question is still nearly blank
    assert codes(facts(one, {QUESTIONS[0]: "A"})) == [reasons.NEARLY_BLANK]
    two = nb({k: v for k, v in solutions().items() if k.startswith(("step1", "step2"))})
    assert codes(facts(two, right_answers())) == [], "half the cells and the whole quiz: a real attempt"
    assert codes(facts(nb(solutions()), right_answers())) == []


def test_the_quiz_file_missing_damaged_or_partial():
    full = nb(solutions())
    assert codes(facts(full, None, "missing")) == [reasons.ANSWERS_MISSING]
    assert codes(facts(full, None, "damaged")) == [reasons.ANSWERS_DAMAGED]
    some = dict(list(right_answers().items())[1:])
    found = assess(facts(full, some), RELEASED, QUESTIONS)
    assert [a.code for a in found] == [reasons.ANSWERS_PARTIAL]
    assert f"{len(some)} of the {len(QUESTIONS)}" in found[0].found


def test_reasons_from_the_notebook_the_report_and_the_gradebook_in_order():
    from course_grade.nbgrader_ext.flag_cell_timeouts import TIMED_OUT
    from course_grade.nbgrader_ext.judge_build_steps import DISAGREED

    graded = nb(solutions())
    graded["metadata"]["course"] = {TIMED_OUT: ["step4_app_solution"], DISAGREED: ["step3_engine: judge failed"]}
    row = {"status": "graded", "sandbox": "off (no bwrap)", "removed_cells": "cell 9: eval"}
    late = Late(seconds=7800, penalty=23, score=23, max_score=23, method="zero")
    found = assess(facts(graded, right_answers(), row=row, late=late, flagged=True), RELEASED, QUESTIONS)
    assert [a.code for a in found] == [reasons.TAMPERING, reasons.JUDGE_DISAGREED, reasons.CELL_TIME_LIMIT,
                                       reasons.NO_SANDBOX, reasons.LATE]
    assert "step4_app_solution" in found[2].found and "late by 2 h 10 min: penalty 23 points" in found[4].found
    assert all(a.to_do == reasons.TO_DO[a.code] for a in found)


def test_not_graded_says_why_from_the_report_or_the_file():
    failed = {"status": "failed", "reason": "kernel died", "note": "the kernel died while running the notebook"}
    assert codes(facts(None, row=failed, in_gradebook=False)) == [reasons.KERNEL_DIED]
    assert codes(facts(None, row={"status": "timed out", "note": "over 600 s"}, in_gradebook=False)) == [
        reasons.TIMED_OUT]
    # stock nbgrader: no report; the submitted file says why
    assert codes(facts(None, row={}, in_gradebook=False, submitted=b'{"cells": [')) == [reasons.CORRUPT]
    assert codes(facts(None, row={}, in_gradebook=False, submitted=b"")) == [reasons.BLANK]
    good = json.dumps(nb(solutions())).encode()
    assert codes(facts(None, row={}, in_gradebook=False, submitted=good)) == [reasons.NOT_GRADED]


def test_a_flag_alone_is_listed_and_nothing_else_is():
    assert codes(facts(nb(solutions()), right_answers(), flagged=True)) == [reasons.FLAGGED]
    assert codes(facts(nb(solutions()), right_answers(), row={"status": "graded", "sandbox": "on"})) == []
    on_time = Late(seconds=0, penalty=0, score=23, max_score=23)
    assert codes(facts(nb(solutions()), right_answers(), late=on_time)) == []


def test_every_reason_has_what_to_do_and_a_place_in_the_order():
    assert set(reasons.TO_DO) == set(reasons.ORDER)
    assert all(text and not text.endswith(".") for text in reasons.TO_DO.values())


def test_a_link_or_a_pipe_left_as_the_notebook_is_never_followed(tmp_path):
    """The report runs as root after grading: a submitted notebook that is a link (to a real
    notebook, or to /dev/zero) or a pipe is not read, and is listed as no notebook."""
    import os

    from course_grade.reports.attention import read_facts

    real = tmp_path / "elsewhere.ipynb"
    real.write_text(json.dumps(nb(solutions())))
    for student, make in [("linked", lambda p: p.symlink_to(real)), ("zero", lambda p: p.symlink_to("/dev/zero")),
                          ("pipe", lambda p: os.mkfifo(p))]:
        folder = tmp_path / "submitted" / student / "a"
        folder.mkdir(parents=True)
        make(folder / "a.ipynb")
        facts = read_facts(tmp_path, "a", student, {}, None, (None, "missing"))
        assert facts.submitted is None and facts.graded_nb is None, student
        assert codes(facts) == [reasons.NO_NOTEBOOK], student
    (tmp_path / "submitted" / "plain" / "a").mkdir(parents=True)
    (tmp_path / "submitted" / "plain" / "a" / "a.ipynb").write_text(real.read_text())
    assert read_facts(tmp_path, "a", "plain", {}, None, (None, "missing")).submitted == real.read_bytes()
