"""After grading, the instructor knows whom to help and with what: a class of 31, graded once by
the grading command with real nbgrader, as an instructor meets one.

The class: correct variants (tests/support/variants.py) and catalogue mistakes
(tests/support/mistakes.py; the leak four times, the closed connection three times), three
blank notebooks and a nearly blank one, a corrupt one, one that loops past the cell time limit,
three without quiz_answers.json, a damaged one and a partial one, two late ones (penalty "zero"),
one that tampers with the checks. The roster comes in first, from a semicolon-separated file as
Excel writes it in many locales.

Asserted: the attention list holds every student who needs a look, with the right reason, and
no one else, alike in the item analysis, grading-report.csv, the students file, the summary and
the formgrader's flag; "what to teach again" starts with the build mistake that cost the class
most points (the closed connection: 6 points each; checked against the gradebook's own scores),
holds the leak's four students together, and names who made them; blanks are no mistake.
"""
from __future__ import annotations

import csv
import datetime
import subprocess
from pathlib import Path

import pytest

from course_grade import reasons
from tests.support import mistakes, variants
from tests.support.course import (
    ASSIGNMENT,
    BIN,
    make_course,
    right_answers,
    student_notebook,
    submit,
    submit_as,
    tool_env,
)
from tests.support.submissions import ADVERSARIAL, Submission

pytestmark = pytest.mark.slow

DUE = datetime.datetime(2026, 11, 1, 12)
CONFIG = 'c.Execute.timeout = 30\nc.LateSubmissionPlugin.penalty_method = "zero"'
LOOP = 'DATABASE_URL = "sqlite+aiosqlite:///./test.db"\nwhile True:\n    pass'
OTHER_MISTAKES = ["url_sync_driver", "size_string", "engine_nullpool", "rows_fetchall_tuples", "hard_coded_rows"]


def _mistake(name: str) -> mistakes.Mistake:
    return next(m for m in mistakes.MISTAKES if m.name == name)


def _class() -> tuple[list[Submission], dict[str, set[str]], dict[str, str]]:
    """(submissions, student -> the attention codes expected, student -> the mistake made)."""
    subs, expected, made = [], {}, {}
    right = right_answers()
    for v in variants.VARIANTS[:4]:
        subs.append(Submission(f"ok_{v.name}"[:40], v.changes))
    for k, name in enumerate(["leak_connect_never_closed"] * 2 + ["leak_returned_never_closed"] * 2
                             + ["return_inside_async_with"] * 3 + OTHER_MISTAKES):
        student = f"m{k:02d}_{name}"[:40]
        subs.append(Submission(student, _mistake(name).changes))
        made[student] = name
    wrong = dict(right, url_driver="A" if right["url_driver"] != "A" else "B")
    subs.append(Submission("quiz_wrong", {}, quiz=f'{{"format": 1, "answers": {_json(wrong)}}}'))
    for k in range(3):
        subs.append(Submission(f"no_answers{k}", {}, quiz=""))
        expected[f"no_answers{k}"] = {reasons.ANSWERS_MISSING}
    subs.append(Submission("damaged_answers", {}, quiz='{"format": 1, "answers": {'))
    expected["damaged_answers"] = {reasons.ANSWERS_DAMAGED}
    partial = {q: a for q, a in right.items() if q != "url_driver"}
    subs.append(Submission("partial_answers", {}, quiz=f'{{"format": 1, "answers": {_json(partial)}}}'))
    expected["partial_answers"] = {reasons.ANSWERS_PARTIAL}
    subs.append(Submission("loops", {mistakes.STEP1: LOOP}))
    expected["loops"] = {reasons.CELL_TIME_LIMIT}
    tamper = next(s for s in ADVERSARIAL if s.name == "attack_monkeypatch_checks")
    subs.append(Submission("tampers", tamper.changes))
    expected["tampers"] = {reasons.TAMPERING}
    for k in range(2):
        subs.append(Submission(f"late{k}", {}))
        expected[f"late{k}"] = {reasons.LATE}
    return subs, expected, made


def _json(answers: dict[str, str]) -> str:
    import json

    return json.dumps(answers)


def run(course: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "python"), "-m", "course_grade", *args], cwd=course, env=tool_env(),
                          capture_output=True, text=True, timeout=1800)


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    from nbgrader.api import Gradebook

    subs, expected, made = _class()
    course = make_course(tmp_path_factory.mktemp("instructor-view") / "course", CONFIG)
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        gb.update_or_create_assignment(ASSIGNMENT, duedate=DUE)
    for sub in subs:
        submit_as(course, sub)
    for k in range(3):  # the released notebook as it came, no quiz answers
        submit(course, f"blank{k}", student_notebook({}))
        expected[f"blank{k}"] = {reasons.BLANK}
    submit(course, "nearly_blank", student_notebook({mistakes.STEP1: 'DATABASE_URL = "sqlite+aiosqlite:///./test.db"'}))
    expected["nearly_blank"] = {reasons.NEARLY_BLANK}
    submit(course, "corrupt", '{"cells": [')
    expected["corrupt"] = {reasons.CORRUPT}
    students = sorted(p.name for p in (course / "submitted").iterdir())
    for student in students:
        when = DUE + (datetime.timedelta(hours=2) if student.startswith("late") else -datetime.timedelta(hours=1))
        (course / "submitted" / student / ASSIGNMENT / "timestamp.txt").write_text(
            when.strftime("%Y-%m-%d %H:%M:%S.%f UTC"))
    # the roster, as Excel saves it in many locales: semicolons, a byte-order mark, Windows line ends
    roster = course / "roster.csv"
    lines = ["nbgrader_id;first_name;last_name;email"] + [f"{s};First{k};Last{k};{s}@uni.example"
                                                          for k, s in enumerate(students)]
    roster.write_bytes(("\ufeff" + "\r\n".join(lines) + "\r\n").encode("utf-8"))
    imported = run(course, "roster", "import", str(roster))
    assert imported.returncode == 0, imported.stdout + imported.stderr
    done = run(course, "grade", ASSIGNMENT, "--jobs", "2")
    print(done.stdout[-6000:])
    return course, done, expected, made, students


def test_a_semicolon_roster_imports_and_names_reach_the_page(graded):
    course, _, _, made, students = graded
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        names = {s.id: (s.first_name, s.last_name, s.email) for s in gb.students}
    leaker = "m00_leak_connect_never_closed"
    k = students.index(leaker)
    assert names[leaker] == (f"First{k}", f"Last{k}", f"{leaker}@uni.example")
    page = (course / "reports" / f"{ASSIGNMENT}.html").read_text()
    assert f"First{k} Last{k} ({leaker})" in page


def test_the_attention_list_is_complete_and_names_no_one_else(graded):
    from course_grade.reports.item_analysis import build

    course, done, expected, _, _ = graded
    analysis = build(course, ASSIGNMENT)
    found = {}
    for a in analysis.attention:
        found.setdefault(a.student, set()).add(a.code)
        assert a.found and a.to_do, a
    wrong = {s: (found.get(s, set()), expected.get(s, set())) for s in set(found) | set(expected)
             if found.get(s) != expected.get(s)}
    assert not wrong, f"student: (found, expected): {wrong}"
    # grading-report.csv's attention column, the students file and the formgrader's flag say the same
    with open(course / "grading-report.csv", newline="") as f:
        report = {row["student"]: set(filter(None, row["attention"].split("; "))) for row in csv.DictReader(f)}
    assert {s: c for s, c in report.items() if c} == expected
    with open(course / "reports" / f"{ASSIGNMENT}-students.csv", newline="") as f:
        rows = {row["student"]: row for row in csv.DictReader(f)}
    assert {s: set(filter(None, r["attention"].split("; "))) for s, r in rows.items() if r["attention"]} == expected
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        flagged = {sub.student_id for sub in gb.find_assignment(ASSIGNMENT).submissions
                   if any(nb.flagged for nb in sub.notebooks)}
    assert flagged == set(expected), flagged ^ set(expected)
    # the summary: everyone counted, each reason's line with what to do
    summary = done.stdout.split("\nSummary\n", 1)[1]
    assert f"To look at: {len(expected)} student(s), each flagged in the formgrader" in summary, summary
    for code in {c for codes in expected.values() for c in codes}:
        n = sum(code in codes for codes in expected.values())
        assert f"  {code} ({n}): " in summary and reasons.TO_DO[code] in summary, (code, summary)


def test_what_to_teach_again_starts_with_the_costliest_build_mistake_and_names_who(graded):
    from nbgrader.api import Gradebook

    from course_grade.reports.item_analysis import build

    course, _, expected, made, _ = graded
    analysis = build(course, ASSIGNMENT)
    top = analysis.teach[0]
    # the points each group of the catalogue lost, from the gradebook's own scores
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        lost = {s: gb.find_submission(ASSIGNMENT, s).max_score - gb.find_submission(ASSIGNMENT, s).score
                for s in made}
    by_mistake: dict[str, float] = {}
    for student, name in made.items():
        family = "leak" if name.startswith("leak_") else name
        by_mistake[family] = by_mistake.get(family, 0) + lost[student]
    costliest = max(by_mistake, key=by_mistake.get)
    who = sorted(s for s, name in made.items() if name == costliest or (costliest == "leak" and "leak" in name))
    assert isinstance(top.step, int) and top.students == who, (by_mistake, [(t.key, t.students)
                                                                           for t in analysis.teach])
    assert top.points_lost == pytest.approx(by_mistake[costliest])
    leakers = sorted(s for s, name in made.items() if name.startswith("leak_"))
    assert any(t.students == leakers and t.step == 4 for t in analysis.teach[:3]), [(t.key, t.students)
                                                                                     for t in analysis.teach]
    # blanks and answers not given are no mistake; the page and the CSV name who
    nobody = {s for s, codes in expected.items() if codes & {reasons.BLANK, reasons.NEARLY_BLANK}}
    assert not any(nobody & set(t.students) for t in analysis.teach)
    assert not any(t.key.endswith((":missing", ":damaged", ":unanswered")) for t in analysis.teach)
    with open(course / "reports" / f"{ASSIGNMENT}-teach.csv", newline="") as f:
        first = next(csv.DictReader(f))
    assert first["rank"] == "1" and first["mistake"] == top.key and first["student_ids"].split() == who
    with open(course / "reports" / f"{ASSIGNMENT}-teach.csv", newline="") as f:
        ids = [row["mistake"] for row in csv.DictReader(f)]
    assert all(" " not in i and len(i) < 60 for i in ids), f"ids, not sentences: {ids}"
    leak = next(t for t in analysis.teach if t.students == leakers)
    assert leak.key == "connection_leak", "the leak is a named mistake, whatever the count left out"
