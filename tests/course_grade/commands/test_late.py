"""A late submission's penalty is the same figure, with the same reason, everywhere: the
gradebook, grading-report.csv, the command's summary, the item analysis, the LMS export and
the student's feedback page (course_grade/late.py). Real nbgrader, through the command: one
class under penalty_method "zero", one under a course's own per-hour plugin (with an
extension), each graded once."""
from __future__ import annotations

import csv
import datetime
import subprocess
from pathlib import Path

import pytest

from tests.support.course import ASSIGNMENT, BIN, make_course, submit_as, tool_env
from tests.support.submissions import HONEST

pytestmark = pytest.mark.slow

DUE = datetime.datetime(2026, 11, 1, 12)
LATE_BY = datetime.timedelta(hours=2, minutes=10)
TOTAL = 23
ZERO = 'c.Execute.timeout = 20\nc.LateSubmissionPlugin.penalty_method = "zero"'
PER_HOUR = '''c.Execute.timeout = 20
import math
from nbgrader.plugins import LateSubmissionPlugin


class PerHour(LateSubmissionPlugin):
    """2 points per started hour late."""

    def late_submission_penalty(self, student_id, score, total_seconds_late):
        return 2 * math.ceil(total_seconds_late / 3600)


c.AssignLatePenalties.plugin_class = PerHour'''

# student -> (late by, penalty, the reason's sentence), per class
EXPECTED = {
    "zero": {"on_time": ("", 0, ""), "late": ("2 h 10 min", 23, "late by 2 h 10 min: penalty 23 points (zero)")},
    "per_hour": {"late": ("2 h 10 min", 6, "late by 2 h 10 min: penalty 6 points (PerHour)"),
                 "extended": ("1 h 10 min", 4, "late by 1 h 10 min: penalty 4 points (PerHour)")},
}


def course_grade(course: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "python"), "-m", "course_grade", *args], cwd=course, env=tool_env(),
                          capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def classes(tmp_path_factory):
    """name -> (course, the grading command's run, the canvas export's run), each graded once."""
    from nbgrader.api import Gradebook

    solution = {s.name: s for s in HONEST}["solution"]
    out = {}
    for name, config in (("zero", ZERO), ("per_hour", PER_HOUR)):
        course = make_course(tmp_path_factory.mktemp(name) / "course", config)
        with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
            gb.update_or_create_assignment(ASSIGNMENT, duedate=DUE)
            if "extended" in EXPECTED[name]:
                gb.update_or_create_student("extended")
                gb.update_or_create_submission(ASSIGNMENT, "extended", extension=datetime.timedelta(hours=1))
        for student in EXPECTED[name]:
            submit_as(course, type(solution)(**{**solution.__dict__, "name": student}))
            when = DUE - datetime.timedelta(hours=1) if student == "on_time" else DUE + LATE_BY
            (course / "submitted" / student / ASSIGNMENT / "timestamp.txt").write_text(
                when.strftime("%Y-%m-%d %H:%M:%S.%f UTC"))
        graded = course_grade(course, "grade", ASSIGNMENT, "--jobs", "2")
        assert graded.returncode == 0, graded.stdout + graded.stderr
        roster = course / "roster.csv"
        roster.write_text("nbgrader_id,canvas_id\n" + "".join(f"{s},{i}\n" for i, s in enumerate(EXPECTED[name], 1)))
        exported = course_grade(course, "export", ASSIGNMENT, "--lms", "canvas", "--roster", str(roster))
        assert exported.returncode == 0, exported.stdout + exported.stderr
        out[name] = course, graded, exported
    return out


def cases():
    return [(name, student) for name, students in EXPECTED.items() for student in students]


@pytest.mark.parametrize(("name", "student"), cases())
def test_the_penalty_is_the_same_in_the_gradebook_the_report_the_export_and_the_feedback(classes, name, student):
    from nbgrader.api import Gradebook

    course, graded, exported = classes[name]
    late_by, penalty, why = EXPECTED[name][student]
    after = TOTAL - penalty
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        sub = gb.find_submission(ASSIGNMENT, student)
        got = (sub.score, sub.late_submission_penalty or 0)
    assert got == pytest.approx((TOTAL, penalty)), f"gradebook (score, penalty) of {student}: {got}"
    with open(course / "grading-report.csv", newline="") as f:
        row = {r["student"]: r for r in csv.DictReader(f)}[student]
    assert (row["late_by"], float(row["penalty"]), float(row["score_after_penalty"])) == (late_by, penalty, after), row
    assert float(row["score"]) == TOTAL and why in row["note"], row
    assert _canvas_cell(course, name, student) == str(after), "the LMS export's cell"
    page = (course / "feedback" / student / ASSIGNMENT / f"{ASSIGNMENT}.html").read_text()
    if why:
        rule = "zero" if name == "zero" else "PerHour"
        line = (f"Submitted {late_by} after the due date, so the late rule ({rule}) took {penalty} points off: "
                f"{TOTAL} / {TOTAL} before the penalty, {after} / {TOTAL} after it.")
        assert line in page, f"the feedback page of {student} says why its score is {after}"
        assert f"late: {student}: {why}: {TOTAL}/{TOTAL} before the penalty, {after} in the file" in exported.stdout
        assert f"{student} {why}" in graded.stdout, graded.stdout
        report = (course / "reports" / f"{ASSIGNMENT}.html").read_text()
        assert why in report and f"<td class=\"num\">{after}/{TOTAL}</td>" in report, "the item analysis"
    else:
        assert "Late submission" not in page and f"late: {student}" not in exported.stdout


def _canvas_cell(course: Path, name: str, student: str) -> str:
    with open(course / "exports" / f"{ASSIGNMENT}-canvas.csv", newline="") as f:
        rows = list(csv.reader(f))
    canvas_id = str(list(EXPECTED[name]).index(student) + 1)
    return next(r[-1] for r in rows[2:] if r[1] == canvas_id)


def test_the_summary_gives_the_class_after_its_penalties_and_no_per_student_dump(classes):
    _, graded, _ = classes["zero"]
    summary = graded.stdout.split("\nSummary\n", 1)[1]
    assert "2 of 2 submission(s) graded." in summary
    assert "Score of 23 (after late penalties), 2 student(s): mean 11.5, median 11.5, lowest 0, highest 23" in summary
    assert "  late (1): late late by 2 h 10 min: penalty 23 points (zero) -> " in summary
    assert "Quiz" in summary and "reports/connection-pooling.html" in summary
    assert "student                  status" not in graded.stdout, "the per-student table needs --verbose"
