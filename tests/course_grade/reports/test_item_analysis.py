"""The item-analysis report (course_grade/reports/item_analysis.py): its numbers on classes whose
answers are known.

Fast tier: a course folder with the real assignment (make_course runs generate_assignment,
a few seconds, once per module) and a class fabricated from it WITHOUT kernels: each
student's gradebook grades and autograded notebook come from a submission graded by the
in-shell harness (tests/support/harness.py: a few catalogue mistakes and a correct variant, graded
once each, copied to several students), and their quiz answers file is written beside it.
Slow tier: the real grading command on a small class, and the report against its gradebook.
"""
from __future__ import annotations

import csv
import io
import re
import shutil
import subprocess
import sys

import pytest

from course_grade.__main__ import main as cli
from course_grade.reports import failures, item_report, statistics
from course_grade.reports import item_analysis as ia
from course_grade.reports.items import QUIZ_STEP, UNANSWERED
from tests.support.course import ASSIGNMENT, ROOT, graded_cells, make_course, quiz_key, right_answers, tool_env
from tests.support.graded_class import fabricate, from_harness, quiz_cells, synthetic_class


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    return make_course(tmp_path_factory.mktemp("item-analysis") / "template")


@pytest.fixture
def course(template, tmp_path):
    dest = tmp_path / "course"
    shutil.copytree(template, dest)
    return dest


@pytest.fixture(scope="module")
def catalogue_results():
    """Three submissions graded once each by the in-shell harness."""
    from tests.support.harness import grade_many
    from tests.support.mistakes import MISTAKES
    from tests.support.variants import VARIANTS

    named = {m.name: m for m in MISTAKES}
    graded = grade_many({"return": (named["return_inside_async_with"].changes, None),
                         "size": (named["size_string"].changes, None),
                         "right": (VARIANTS[0].changes, None)}, jobs=2)
    for name, g in graded.items():
        assert g.ok, f"{name}: {g.error}"
    return graded


# ----------------------------------------------------------------------------- the statistics

def test_point_biserial_against_a_hand_computed_example():
    # Five students, one item. item = [1, 1, 1, 0, 0], rest score = [4, 3, 2, 2, 1].
    # p = 3/5 = 0.6, q = 0.4, sqrt(p q) = sqrt(0.24) = 0.489898
    # M1 = (4 + 3 + 2) / 3 = 3, M0 = (2 + 1) / 2 = 1.5, M1 - M0 = 1.5
    # mean rest = 12/5 = 2.4; deviations 1.6, 0.6, -0.4, -0.4, -1.4; squares 2.56, 0.36, 0.16,
    # 0.16, 1.96: sum 5.2; population variance 5.2/5 = 1.04, s_n = sqrt(1.04) = 1.019804
    # r = 1.5 / 1.019804 * 0.489898 = 0.720577
    assert statistics.point_biserial([1, 1, 1, 0, 0], [4, 3, 2, 2, 1]) == pytest.approx(0.720577, abs=1e-6)
    # reversed roles: r < 0
    assert statistics.point_biserial([0, 0, 0, 1, 1], [4, 3, 2, 2, 1]) == pytest.approx(-0.720577, abs=1e-6)
    # undefined: everyone right, everyone wrong, no spread in the rest score, one student
    assert statistics.point_biserial([1, 1, 1], [1, 2, 3]) is None
    assert statistics.point_biserial([0, 0, 0], [1, 2, 3]) is None
    assert statistics.point_biserial([1, 0, 1], [2, 2, 2]) is None
    assert statistics.point_biserial([1], [3]) is None


def test_quiz_flags_on_a_constructed_example():
    assert statistics.quiz_flags(0.95, 0.3, {"A": 19, "B": 1, "C": 0, "D": 0, "unanswered": 0}, "A") == [
        "too easy (p > 0.9)", "distractors nobody chose: C, D"]
    flags = statistics.quiz_flags(0.1, -0.2, {"A": 2, "B": 6, "C": 6, "D": 6, "unanswered": 0}, "A")
    assert flags[0] == "too hard (p < 0.2)" and flags[1].startswith("negatively discriminating")
    assert len(flags) == 2
    assert statistics.quiz_flags(0.5, None, {"A": 5, "B": 3, "C": 1, "D": 1, "unanswered": 0}, "A") == []
    assert statistics.quiz_flags(None, None, {}, "A") == []  # no students: nothing to say


def test_failures_are_grouped_by_what_their_records_say():
    from autograder.records import CheckRecord

    def shown(**found):
        return failures.Shown(CheckRecord("step3_engine_is_async", 3, 1, False, **found))

    # the record names the mistake: its words need not be in any table
    said = ("Your step 3 cell stopped with an error: `create_async_engine` is not defined in your step 3 cell: "
            "import it first, `from sqlalchemy.ext.asyncio import create_async_engine`.")
    key, kind, label = failures.classify(shown(mistake="name_error", message=said))
    assert (key, kind) == ("named:name_error", "named")
    assert label == "`create_async_engine` is not defined in your step 3 cell"  # whole words, real values
    # no named mistake: the first sentence with the variable bits normalised
    fix = "write the number without quotes: POOL_SIZE = 5."
    a = failures.classify(shown(message=f"`POOL_SIZE` is the string '5'; {fix}"))
    b = failures.classify(shown(message=f"`POOL_SIZE` is the string '10'; {fix}"))
    assert a[:2] == b[:2] and a[1] == "message"
    pointer = failures.classify(shown(message="anything", mistake="closed_connection", same_as="step1_database_url"),
                          {"step1_database_url": "Step 1: y"})
    assert pointer == ("pointer:step1_database_url", "pointer", "same reason as “Step 1: y” above")
    assert failures.classify(shown(message="anything", waiting_for=("step1_database_url",)))[1] == "gate"
    assert failures.classify(failures.Shown(stderr=True))[1] == "silent"
    # a cell that failed before its check gave a record
    assert failures.classify(failures.Shown(error="CellTimeoutError: a cell timed out"))[1] == "message"
    assert failures.quiz_group({"url_driver": "A"}, "saved", "url_driver")[0] == "quiz:A"
    assert failures.quiz_group({}, "saved", "url_driver")[0] == "quiz:unanswered"
    assert failures.quiz_group(None, "damaged", "url_driver")[0] == "quiz:damaged"


# ------------------------------------------------------------------- a class from the catalogue

def catalogue_class(results) -> tuple[dict, dict]:
    """3 students with `return` inside `async with`, 2 with POOL_SIZE = "5", 4 correct.
    Quiz: everyone right, except question 1 (2 chose A, 1 unanswered: 6/9 right) and one
    correct student with no answers file at all (so 5/9 on question 1, 8/9 elsewhere)."""
    right = right_answers()
    students, report = {}, {}
    for k in range(3):
        students[f"ret{k}"] = {"cells": from_harness(results["return"]), "answers": dict(right)}
    for k in range(2):
        students[f"size{k}"] = {"cells": from_harness(results["size"]), "answers": dict(right)}
    for k in range(4):
        students[f"ok{k}"] = {"cells": from_harness(results["right"]), "answers": dict(right)}
    students["ret0"]["answers"]["url_driver"] = "A"
    students["size0"]["answers"]["url_driver"] = "A"
    del students["ok0"]["answers"]["url_driver"]
    students["ok1"]["answers"] = None
    for sid, spec in students.items():
        spec["cells"].update(quiz_cells(spec["answers"]))
        report[sid] = {"status": "graded", "seconds": "2.5", "sandbox": "on"}
    report["ok2"]["removed_cells"] = "cell 12: line 3 import of os.system"
    report["ok3"]["sandbox"] = "off (bwrap cannot create a user namespace)"
    report["late"] = {"status": "timed out", "note": "grading took longer than 600 s and was stopped",
                      "seconds": "600.0"}
    return students, report


def test_report_numbers_on_a_class_from_the_catalogue(course, catalogue_results):
    students, report = catalogue_class(catalogue_results)
    fabricate(course, students, report)
    a = ia.build(course, ASSIGNMENT)
    assert len(a.students) == 9
    items = {i.grade_id: i for i in a.items}

    rows = items["step4_items_returns_all_rows"]
    assert (rows.n, rows.passed) == (9, 6) and rows.p == pytest.approx(6 / 9)
    assert [(g.key, g.count) for g in rows.groups] == [("named:closed_connection", 3)]
    assert sorted(rows.groups[0].students) == ["ret0", "ret1", "ret2"]
    # the later step-4 cells point up or are gated: never counted as new mistakes
    for gid in ("step4_connections_returned", "step4_items_reads_the_table",
                "step4_concurrent_requests_share_the_pool"):
        assert items[gid].passed == 6, gid
        assert all(not g.is_mistake for g in items[gid].groups) and sum(g.count for g in items[gid].groups) == 3, gid
    pointer = items["step4_connections_returned"].groups[0]
    assert pointer.kind == "pointer" and "closed connection" in pointer.label  # resolved to the mistake above

    size = items["step2_pool_size"]
    assert size.passed == 7 and [g.count for g in size.groups] == [2] and size.groups[0].kind == "message"
    assert "POOL_SIZE" in size.groups[0].label
    assert items["step1_database_url"].p == 1.0 and items["step1_database_url"].groups == []

    q1 = items["quiz01_url_driver"]
    assert q1.correct == quiz_key()["url_driver"]["correct"] == "B"
    assert q1.options == {"A": 2, "B": 5, "C": 0, "D": 0, "unanswered": 2}
    assert q1.p == pytest.approx(5 / 9)
    assert "distractors nobody chose: C, D" in q1.flags
    q2 = items["quiz02_what_is_pooled"]
    assert q2.p == pytest.approx(8 / 9) and q2.options[UNANSWERED] == 1

    # steps: score distributions per student
    steps = {st.step: st for st in a.steps}
    assert list(steps) == [1, 2, 3, 4, "quiz"]
    assert sorted(steps[4].scores) == [1, 1, 1] + [7] * 6  # the route cell (1 point) is all they keep
    assert sorted(steps[2].scores) == [0, 0] + [1] * 7

    # what to teach again, by points lost: the closed connection (3 students, 6 points each) first,
    # then POOL_SIZE and question 1's A (2 students, a point each); an answer not given is no mistake
    assert (a.teach[0].key, a.teach[0].students, a.teach[0].step) == ("closed_connection", ["ret0", "ret1", "ret2"], 4)
    assert a.teach[0].points_lost == pytest.approx(18) and a.teach[0].heading.startswith("Step 4")
    assert {(t.count, t.step, t.points_lost) for t in a.teach[1:3]} == {(2, 2, 2), (2, QUIZ_STEP, 2)}
    # ids a spreadsheet can hold: the named key, the question and letter, or an unnamed message's first words
    assert {t.key for t in a.teach[1:3]} == {"unnamed:pool_size_is_the_string_5", "url_driver:A"}
    assert all("above" not in t.label and "hidden check" not in t.label for t in a.teach)
    assert not any("unanswered" in t.key or "missing" in t.key for t in a.teach), [t.key for t in a.teach]

    # the attention list: each reason once, in its order, and no one else
    assert [(x.student, x.code) for x in a.attention] == [
        ("late", "timed out"), ("ok0", "answers partial"), ("ok1", "answers missing"), ("ok2", "tampering"),
        ("ok3", "no sandbox")]
    assert "grading took longer than 600 s" in a.attention[0].found and "--submission-timeout" in a.attention[0].to_do

    html_path, csv_path = item_report.write(a, course / "reports")
    page = html_path.read_text()
    assert re.search(r"3 students</strong>: <code>get_connection</code> handed the route a closed connection", page)
    assert re.search(r"2 students</strong>: <code>POOL_SIZE</code> is the string", page)
    assert "NaN" not in page and "nan<" not in page
    with open(csv_path, newline="") as f:
        rows_csv = {r["id"]: r for r in csv.DictReader(f)}
    assert rows_csv["step4_items_returns_all_rows"]["pass_rate"] == "0.667"
    assert rows_csv["step4_items_returns_all_rows"]["mistakes"].startswith("closed_connection=3")
    assert rows_csv["quiz01_url_driver"]["difficulty"] == "0.556" and rows_csv["quiz01_url_driver"]["A"] == "2"
    assert rows_csv["step4"]["kind"] == "step" and rows_csv["step4"]["passed"] == "6"


def test_discrimination_and_difficulty_in_the_report_match_the_hand_computed_example(course):
    """Five students with every build point; their quiz answers make question 1 the
    hand-computed item above: right for s1, s2, s3 (item = [1, 1, 1, 0, 0]), and questions
    3..5 lost [0, 1, 2, 2, 3] times, so the rest score (total minus question 1) is
    23 - 1 - lost = [22, 21, 20, 20, 19] = [4, 3, 2, 2, 1] + 18: the same r (a constant
    added to the rest score changes neither M1 - M0 nor s_n)."""
    right = right_answers()
    others = ["asgi_transport", "yield_cleanup", "return_in_async_with"]
    lost = {"s1": 0, "s2": 1, "s3": 2, "s4": 2, "s5": 3}
    q1 = {"s1": 1, "s2": 1, "s3": 1, "s4": 0, "s5": 0}
    students = {}
    for sid in lost:
        answers = dict(right)
        for qid in others[:lost[sid]]:
            answers[qid] = "A" if right[qid] != "A" else "B"
        if not q1[sid]:
            answers["url_driver"] = "A"   # the key is B
        students[sid] = {"cells": quiz_cells(answers), "answers": answers}
    fabricate(course, students)
    a = ia.build(course, ASSIGNMENT)
    assert [sum(st.scores[k] for st in a.steps) for k in range(5)] == [23, 22, 21, 20, 19]
    quiz = {i.qid: i for i in a.quiz}
    item = quiz["url_driver"]
    assert item.p == pytest.approx(0.6)                       # 3 of 5
    assert item.r == pytest.approx(0.720577, abs=1e-6)        # as worked out above
    assert item.options == {"A": 2, "B": 3, "C": 0, "D": 0, "unanswered": 0}
    # everybody right on question 10: p = 1, r undefined, shown as a dash, never NaN
    q10 = quiz["pre_ping"]
    assert q10.p == 1.0 and q10.r is None and "too easy (p > 0.9)" in q10.flags
    html_path, _csv = item_report.write(a, course / "reports")
    page = html_path.read_text()
    assert "NaN" not in page and "—" in page and "0.72" in page


# ------------------------------------------------------------------------ the page and the CLI

def test_the_csv_holds_no_formula_and_reads_back_as_the_analysis(course):
    """A failure message a submission wrote (its first clause names the mistake in the teach
    list's `what` column and the students file's `mistakes`) that a spreadsheet would run is
    written with a leading ', and every cell of the three CSV files reads back
    (safe_csv.restore) as the analysis has it; a negative discrimination stays a number."""
    from course_grade import safe_csv
    from tests.support.hostile_cells import HOSTILE, raw_formulas

    build_cells = [gid for gid in graded_cells() if not gid.startswith("quiz")]
    students = {f"s{k}": {"cells": {gid: (0.0, "CheckFailed", f"{text} {k}", "")}, "answers": right_answers()}
                for k, (gid, text) in enumerate(zip(build_cells, HOSTILE, strict=False))}
    students["all"] = {"cells": {}, "answers": right_answers()}
    fabricate(course, students)
    a = ia.build(course, ASSIGNMENT)
    files = {"": (ia.CSV_COLUMNS, ia.csv_rows(a)), "-teach": (ia.TEACH_COLUMNS, ia.teach_rows(a)),
             "-students": (ia.STUDENT_COLUMNS, ia.student_rows(a))}
    said = [row["what"] for row in files["-teach"][1]] + [row["mistakes"] for row in files["-students"][1]]
    assert sum(m.startswith(("=", "+", "-", "@")) for m in said) >= 5, said  # the test has teeth
    assert any(row.get("discrimination", "").startswith("-") for row in files[""][1])
    item_report.write(a, course / "reports")
    for suffix, (columns, rows) in files.items():
        path = course / "reports" / f"{ASSIGNMENT}{suffix}.csv"
        assert raw_formulas(path) == [], path
        expected = [{column: row.get(column, "") for column in columns} for row in rows]
        with open(path, newline="", encoding="utf-8") as f:
            assert [dict(zip(columns, row, strict=True)) for row in list(safe_csv.reader(f))[1:]] == expected, path


@pytest.mark.slow  # a class of 500: bench.report_time measures the same
def test_html_is_self_contained_and_small_for_500_submissions(course):
    students, report = synthetic_class(500)
    fabricate(course, students, report)
    a = ia.build(course, ASSIGNMENT)
    html_path, csv_path = item_report.write(a, course / "reports")
    page = html_path.read_text()
    assert html_path.stat().st_size < 2_000_000, html_path.stat().st_size
    assert "<script" not in page.lower() and "<link" not in page.lower() and "@import" not in page
    outside = [u for u in re.findall(r'(?:src|href)\s*=\s*"([^"]*)"', page)
               if not u.startswith("#") and not u.startswith(f"../release/{ASSIGNMENT}/{ASSIGNMENT}.ipynb")]
    assert not outside, outside[:5]
    assert not re.search(r"url\(\s*['\"]?https?:", page)
    assert page.count("<svg") >= 6 and page.count("<title id=") == page.count("<svg")
    assert 'lang="en"' in page and "<th scope=" in page and "<caption>" in page
    assert "NaN" not in page
    assert len(list(csv.DictReader(io.StringIO(csv_path.read_text())))) == len(graded_cells()) + 5


def test_main_prints_both_paths_and_bad_input_exits_2_writing_nothing(course, tmp_path, catalogue_results, capsys):
    def report(root, assignment):
        code = cli(["report", assignment, "--course", str(root)])
        return code, capsys.readouterr()

    # nothing graded yet
    code, said = report(course, ASSIGNMENT)
    assert code == 2 and "nothing" in said.err and "course-grade grade" in said.err and said.err.count("\n") == 1
    assert not (course / "reports").exists()
    # unknown assignment
    code, said = report(course, "no-such-thing")
    assert code == 2 and "unknown assignment" in said.err
    # no gradebook
    code, said = report(tmp_path / "nowhere", ASSIGNMENT)
    assert code == 2 and "no gradebook.db" in said.err
    assert item_report.report_after_grading(tmp_path / "nowhere", ASSIGNMENT) is None
    # a graded class (no grading-report.csv: stock nbgrader): both paths on one line
    students, _ = catalogue_class(catalogue_results)
    fabricate(course, students)
    code, said = report(course, ASSIGNMENT)
    assert code == 0 and not said.err
    out = io.StringIO(said.out)
    line = out.getvalue().strip()
    assert "\n" not in line
    assert str(course / "reports" / f"{ASSIGNMENT}.html") in line
    assert str(course / "reports" / f"{ASSIGNMENT}.csv") in line
    page = (course / "reports" / f"{ASSIGNMENT}.html").read_text()
    assert "No grading-report.csv" in page
    assert item_report.report_after_grading(course, ASSIGNMENT) == course / "reports" / f"{ASSIGNMENT}.html"


# --------------------------------------------------------------------- the real grading command

@pytest.mark.slow
def test_report_after_the_real_grading_command_agrees_with_the_gradebook(template, tmp_path):
    from nbgrader.api import Gradebook

    from tests.support.course import submit_as
    from tests.support.submissions import CORRECT_VARIANTS, WRONG

    course = tmp_path / "course"
    shutil.copytree(template, course)
    class_ = CORRECT_VARIANTS[:2] + WRONG[:3]
    for sub in class_:
        submit_as(course, sub)
    done = subprocess.run([sys.executable, "-m", "course_grade", "grade", ASSIGNMENT, "--course", str(course),
                           "--jobs", "2", "--no-feedback"], cwd=ROOT, env=tool_env(), capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert (course / "reports" / f"{ASSIGNMENT}.html").is_file(), "the grading run writes the report"
    a = ia.build(course, ASSIGNMENT)
    assert set(a.students) == {sub.name for sub in class_}
    html_path, csv_path = item_report.write(a, course / "reports")
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        for item in a.items:
            full = sum(1 for s in a.students
                       if gb.find_grade(item.grade_id, ASSIGNMENT, ASSIGNMENT, s).score
                       >= gb.find_grade(item.grade_id, ASSIGNMENT, ASSIGNMENT, s).max_score - 1e-9)
            assert item.passed == full, item.grade_id
            assert sum(g.count for g in item.groups) == item.n - item.passed, item.grade_id
    assert {s.student for s in a.submissions} == {sub.name for sub in class_}
    assert all(s.seconds is not None for s in a.submissions)
    assert html_path.stat().st_size > 0 and csv_path.stat().st_size > 0
