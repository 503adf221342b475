"""The grading command's summary of a class (commands/progress.class_summary, grade._summary):
mean, median, a histogram of the total and the students who passed each step, from a known
class fabricated without kernels (tests/support/graded_class.py) and read by the item analysis."""
from __future__ import annotations

import pytest

from course_grade.commands.grade import _summary
from course_grade.commands.progress import class_summary, histogram
from course_grade.engine.bundles import Graded
from course_grade.reports.item_analysis import build
from tests.support.course import ASSIGNMENT, graded_cells, make_course, right_answers
from tests.support.graded_class import fabricate, failed, quiz_cells

STEP4 = [g for g in graded_cells() if g.startswith("step4_")]
BUILD = [g for g in graded_cells() if g.startswith("step")]


def lost(*cells: str) -> dict:
    right = right_answers()
    return {"cells": {**quiz_cells(right), **{g: failed(g, "It is not right yet.") for g in cells}}, "answers": right}


@pytest.fixture(scope="module")
def analysis(tmp_path_factory):
    course = make_course(tmp_path_factory.mktemp("summary") / "course")
    fabricate(course, {"ana": lost(), "ben": lost("step1_database_url"),
                       "cat": lost("step4_items_returns_all_rows", "step4_items_reads_the_table"),
                       "dan": lost(*STEP4), "eve": lost(*BUILD)})
    return build(course, ASSIGNMENT)


def test_the_summary_gives_mean_median_distribution_and_steps_of_a_known_class(analysis):
    totals = [sum(st.scores[k] for st in analysis.steps) for k in range(len(analysis.students))]
    assert totals == [23, 22, 19, 16, 10], f"the class as fabricated: {totals}"
    rows = [Graded(s, status="graded") for s in analysis.students] + [Graded("fay", status="failed")]
    lines = _summary(analysis, rows, 5)
    assert lines[0] == "5 of 6 submission(s) graded.", lines
    assert lines[1] == "Score of 23 (after late penalties), 5 student(s): mean 18.0, median 19, lowest 10, highest 23"
    counts = {line.split()[0]: int(line.split()[-1]) for line in lines[2:8]}
    assert counts == {"0-3": 0, "4-7": 0, "8-11": 1, "12-15": 0, "16-19": 2, "20-23": 2}, lines[2:8]
    assert lines[8] == "By step, of 5 graded student(s):", lines
    steps = {line[2:34].strip(): line[34:].split() for line in lines[10:15]}
    assert steps == {"Step 1 (the database URL)": ["3", "0.6/1", "1"], "Step 2 (the pool size)": ["4", "0.8/1", "1"],
                     "Step 3 (the pooled async engine)": ["4", "3.2/4", "4"],
                     "Step 4 (the FastAPI route)": ["2", "3.4/7", "3"], "Quiz": ["5", "10.0/10", "10"]}, lines
    assert lines[-1] == "To look at: nobody.", "every one of them answered, on time, in the sandbox"


def test_a_histogram_puts_partial_and_full_scores_in_their_bins():
    lines = histogram([0, 0.5, 3.99, 4, 22.5, 23], 23)
    assert [int(line.split()[-1]) for line in lines] == [3, 1, 0, 0, 0, 2], lines
    assert [int(line.split()[-1]) for line in histogram([1, 2], 2)] == [0, 1, 1], "bins 0, 1, 2 for 2 points"


def test_the_attention_list_is_grouped_by_reason_with_what_to_do_and_capped():
    from course_grade.reasons import ANSWERS_MISSING, LATE, TO_DO
    from course_grade.reports.attention import Attention

    late = [Attention(f"s{i:02}", LATE, "late by 1 h: penalty 2 points (PerHour)", TO_DO[LATE]) for i in range(12)]
    missing = [Attention("amy", ANSWERS_MISSING, "no quiz_answers.json", TO_DO[ANSWERS_MISSING])]
    lines = class_summary({a.student: 21.0 for a in late}, 23, [], missing + late, (12, 12), "reports/x.html")
    assert lines[-3] == "To look at: 13 student(s), each flagged in the formgrader; why and what to do: reports/x.html"
    assert lines[-2] == f"  answers missing (1): amy -> {TO_DO[ANSWERS_MISSING]}"
    assert lines[-1].startswith("  late (12): s00 late by 1 h: penalty 2 points (PerHour); s01 ")
    assert lines[-1].endswith(f" and 2 more -> {TO_DO[LATE]}") and "s10" not in lines[-1], lines[-1]
