"""The grading command's own bookkeeping, without a kernel (fast tier): merges are whole,
the report keeps everyone, progress is a bar on a terminal and plain lines elsewhere, and a
task never writes outside its folder."""
from __future__ import annotations

import csv
import datetime
import io
import os
import sys
import warnings
from pathlib import Path

import pytest
from nbgrader.api import Gradebook, MissingEntry

from course_grade.grading import (REPORT_FILE, Course, Progress, _nbgrader_steps, _write_report, already_graded,
                                  course_gradebook, merge)
from course_grade.task import Graded, write_files
from hostile_cells import HOSTILE, cells, raw_formulas

ASSIGNMENT = "hw"


@pytest.fixture
def course(tmp_path, monkeypatch) -> Course:
    # nbgrader creates a gradebook with alembic, found on PATH
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    with warnings.catch_warnings(), Gradebook(f"sqlite:///{tmp_path / 'gradebook.db'}") as gb:
        warnings.simplefilter("ignore")
        gb.update_or_create_assignment(ASSIGNMENT)
        gb.update_or_create_notebook("nb", ASSIGNMENT)
        for name in ("q1", "q2"):
            gb.update_or_create_grade_cell(name, "nb", ASSIGNMENT, max_score=1, cell_type="code")
    return Course(tmp_path, ASSIGNMENT, ["nb"], ["ana", "ben"])


def graded(student: str, q1: float, q2: float, text: str = "graded", grade_names=("q1", "q2"),
           feedback: str | None = None) -> Graded:
    scores = dict(zip(grade_names, (q1, q2)))
    rows = {"timestamp": datetime.datetime(2026, 11, 1), "extension": None, "score": q1 + q2, "max_score": 2,
            "notebooks": [{"name": "nb", "flagged": False, "late_submission_penalty": None,
                           "grades": [{"name": n, "auto_score": v, "manual_score": None, "extra_credit": None,
                                       "needs_manual_grade": False} for n, v in scores.items()],
                           "comments": []}]}
    return Graded(student, status="graded", score=q1 + q2, max_score=2, rows=rows,
                  files={"nb.ipynb": text.encode(), "sub/extra.txt": b"x"}, modes={"nb.ipynb": 0o444},
                  feedback=None if feedback is None else {"nb.html": feedback.encode(), "extra.txt": b"x"},
                  feedback_modes={"nb.html": 0o644, "extra.txt": 0o640})


def scores(course: Course) -> dict[str, float]:
    with warnings.catch_warnings(), Gradebook(f"sqlite:///{course.gradebook}") as gb:
        warnings.simplefilter("ignore")
        return {s.student_id: s.score for s in gb.find_assignment(ASSIGNMENT).submissions}


def folder(course: Course, student: str) -> Path:
    return course.root / "autograded" / student / ASSIGNMENT


def test_a_merge_replaces_the_students_grades_and_folder(course):
    merge(course, graded("ana", 1, 0, "first"))
    merge(course, graded("ana", 1, 1, "second"))
    merge(course, graded("ben", 0, 0))
    assert scores(course) == {"ana": 2, "ben": 0}, "one submission per student, the latest grades"
    assert (folder(course, "ana") / "nb.ipynb").read_text() == "second"
    assert (folder(course, "ana") / "sub" / "extra.txt").exists()
    assert already_graded(course) == {"ana", "ben"}
    assert sorted(p.name for p in (course.root / "autograded" / "ana").iterdir()) == [ASSIGNMENT]


def test_a_merge_that_fails_changes_nothing(course):
    merge(course, graded("ana", 1, 0, "first"))
    broken = graded("ana", 1, 1, "second", grade_names=("q1", "no_such_cell"))
    with pytest.raises(MissingEntry):
        merge(course, broken)
    assert scores(course) == {"ana": 1}, "the earlier grades stay, not a half-written mix"
    assert (folder(course, "ana") / "nb.ipynb").read_text() == "first"
    assert sorted(p.name for p in (course.root / "autograded" / "ana").iterdir()) == [ASSIGNMENT]
    with pytest.raises(MissingEntry):
        merge(course, graded("ben", 1, 1, grade_names=("q1", "no_such_cell")))
    assert "ben" not in scores(course) and not (course.root / "autograded" / "ben" / ASSIGNMENT).exists()


def test_merges_into_one_open_gradebook_commit_each_and_survive_a_failed_one(course):
    """The command keeps the gradebook open for the run: each merge is still its own
    transaction, visible to other readers at once, and one that fails leaves it usable."""
    with course_gradebook(course) as gradebook:
        merge(course, graded("ana", 1, 0, "first"), gradebook)
        assert scores(course) == {"ana": 1}, "committed when the merge returns"
        with pytest.raises(MissingEntry):
            merge(course, graded("ana", 1, 1, "second", grade_names=("q1", "no_such_cell")), gradebook)
        merge(course, graded("ben", 1, 1), gradebook)
        merge(course, graded("ana", 0, 1, "third"), gradebook)
        assert scores(course) == {"ana": 1, "ben": 2}
    assert (folder(course, "ana") / "nb.ipynb").read_text() == "third"
    assert already_graded(course) == {"ana", "ben"}


def feedback_page(course: Course, student: str) -> Path:
    return course.root / "feedback" / student / ASSIGNMENT / "nb.html"


def test_a_merge_puts_the_workers_feedback_and_nbgraders_file_modes_in_place(course):
    merge(course, graded("ana", 1, 0, "first", feedback="page one"))
    assert feedback_page(course, "ana").read_text() == "page one"
    assert oct(folder(course, "ana").joinpath("nb.ipynb").stat().st_mode & 0o777) == "0o444", \
        "nbgrader makes autograded notebooks read-only; the merged copy must be too"
    assert oct(feedback_page(course, "ana").with_name("extra.txt").stat().st_mode & 0o777) == "0o640"
    merge(course, graded("ana", 1, 1, "second", feedback="page two"))  # over read-only files
    assert feedback_page(course, "ana").read_text() == "page two"
    assert (folder(course, "ana") / "nb.ipynb").read_text() == "second"
    merge(course, graded("ana", 0, 0, "third"))  # a worker that made no feedback: the last page stays
    assert feedback_page(course, "ana").read_text() == "page two"
    assert sorted(p.name for p in (course.root / "feedback" / "ana").iterdir()) == [ASSIGNMENT]


def test_a_merge_that_fails_keeps_the_earlier_feedback(course):
    merge(course, graded("ana", 1, 0, "first", feedback="page one"))
    with pytest.raises(MissingEntry):
        merge(course, graded("ana", 1, 1, "second", grade_names=("q1", "no_such_cell"), feedback="page two"))
    assert feedback_page(course, "ana").read_text() == "page one"
    assert (folder(course, "ana") / "nb.ipynb").read_text() == "first"
    assert sorted(p.name for p in (course.root / "feedback" / "ana").iterdir()) == [ASSIGNMENT]
    with pytest.raises(MissingEntry):
        merge(course, graded("ben", 1, 1, grade_names=("q1", "no_such_cell"), feedback="page"))
    assert not (course.root / "feedback" / "ben" / ASSIGNMENT).exists()


def test_nbgrader_makes_only_the_feedback_a_worker_could_not(course):
    """After grading: `generate_feedback` for each graded student whose worker made no page,
    then the grades CSV; with --no-feedback, the CSV alone."""
    rows = [Graded("ana", status="graded", feedback={}), Graded("ben", status="graded"),
            Graded("cy", note="the kernel died")]
    steps = _nbgrader_steps(course, rows, feedback=True)
    assert steps[:-1] == [["generate_feedback", ASSIGNMENT, "--force", "--student=ben"]]
    assert steps[-1][0] == "export"
    assert _nbgrader_steps(course, rows, feedback=False) == [steps[-1]]


def test_resume_counts_only_students_with_grades_and_notebooks(course):
    merge(course, graded("ana", 1, 0))
    merge(course, graded("ben", 1, 0))
    (folder(course, "ben") / "nb.ipynb").unlink()
    assert already_graded(course) == {"ana"}


def test_the_report_keeps_the_rows_of_students_this_run_did_not_grade(course):
    _write_report(course, {"ana": Graded("ana", status="graded", score=2, max_score=2, sandbox="on"),
                           "ben": Graded("ben", note="the kernel died")})
    _write_report(course, {"ben": Graded("ben", status="graded", score=1, max_score=2, worker="w1:7")})
    with open(course.root / REPORT_FILE) as f:
        rows = {r["student"]: r for r in csv.DictReader(f)}
    assert rows["ana"]["status"] == "graded" and rows["ana"]["sandbox"] == "on"
    assert rows["ben"]["status"] == "graded" and rows["ben"]["score"] == "1" and rows["ben"]["worker"] == "w1:7"


def test_the_report_holds_no_formula_and_reads_hostile_ids_back(course):
    """A student id (or a note) a spreadsheet would run is written with a leading ', and read
    back as it was: by the next run, which keeps the row once, and by the item analysis."""
    from course_grade.item_analysis import read_grading_report

    _write_report(course, {sid: Graded(sid, status="graded", score=1.5, max_score=2, note=sid, tampering=[sid],
                                       worker="-w1") for sid in HOSTILE})
    path = course.root / REPORT_FILE
    assert raw_formulas(path) == []
    first = cells(path)
    assert len(first) == 1 + len(HOSTILE)  # no row split by a comma, a quote or a newline
    _write_report(course, {"ana": Graded("ana", status="graded", score=2, max_score=2)})
    assert [row for row in cells(path) if row[0] != "ana"] == first  # kept as they were: no second quote
    report = read_grading_report(course.root)
    assert set(report) == {*HOSTILE, "ana"}
    for sid in HOSTILE:
        assert (report[sid]["status"], report[sid]["score"], report[sid]["note"], report[sid]["removed_cells"],
                report[sid]["worker"]) == ("graded", "1.5", sid, sid, "-w1")


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_a_bar_on_a_terminal_and_plain_lines_elsewhere():
    tty, plain = Terminal(), io.StringIO()
    for out in (tty, plain):
        progress = Progress(2, out)
        progress.update(Graded("ana", status="graded", score=2, max_score=2))
        progress.update(Graded("ben", note="the kernel died"))
    assert "\r[###############...............] 1/2 graded, 0 failed" in tty.getvalue()
    assert "2/2 graded, 1 failed" in tty.getvalue() and tty.getvalue().endswith("\n")
    assert "ben" in tty.getvalue() and "the kernel died" in tty.getvalue(), "a failure is printed above the bar"
    lines = plain.getvalue().splitlines()
    assert lines[0].startswith("[1/2, 0 failed] ana") and lines[1].startswith("[2/2, 1 failed] ben")
    assert "\r" not in plain.getvalue()


@pytest.mark.parametrize("name", ["../escape.txt", "/etc/evil", "a/../../b", ""])
def test_a_task_never_writes_outside_its_folder(tmp_path, name):
    with pytest.raises(ValueError, match="leaves its folder"):
        write_files(tmp_path / "inside", {"fine.txt": b"ok", name: b"x"})
    assert [p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()] == ["inside/fine.txt"]
    assert not Path("/etc/evil").exists()
