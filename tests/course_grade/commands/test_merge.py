"""The grading command's own bookkeeping, without a kernel (fast tier): merges are whole,
the report keeps everyone, progress is a bar on a terminal and plain lines elsewhere, and a
task never writes outside its folder."""
from __future__ import annotations

import csv
import datetime
import io
import os
import shutil
import sys
import time
import warnings
from pathlib import Path

import nbformat
import pytest
from nbgrader.api import Gradebook, MissingEntry

from course_grade.commands.merge import already_graded, merge
from course_grade.commands.nbgrader_steps import after_grading
from course_grade.commands.progress import Progress
from course_grade.course import REPORT_FILE, Course, open_gradebook
from course_grade.engine.bundles import AssignmentBundle, Graded, SubmissionBundle
from course_grade.engine.task import _make_feedback, grade
from course_grade.files import write_files
from course_grade.nbgrader_ext.flag_cell_timeouts import timed_out_cells, timeout_ename
from course_grade.reasons import BLANK, CORRUPT, ERROR, LATE, NO_NOTEBOOK, NOTES
from course_grade.reports.grading_report import keep_log, write_report
from tests.support.course import blank_gradebook
from tests.support.hostile_cells import HOSTILE, cells, raw_formulas

ASSIGNMENT = "hw"


@pytest.fixture(scope="module")
def template_gradebook(tmp_path_factory) -> Path:
    """A gradebook with the assignment, made once (from the blank one: a new gradebook runs alembic, seconds)."""
    path = tmp_path_factory.mktemp("gradebook") / "gradebook.db"
    shutil.copy(blank_gradebook(), path)
    with warnings.catch_warnings(), Gradebook(f"sqlite:///{path}") as gb:
        warnings.simplefilter("ignore")
        gb.update_or_create_assignment(ASSIGNMENT)
        gb.update_or_create_notebook("nb", ASSIGNMENT)
        for name in ("q1", "q2"):
            gb.update_or_create_grade_cell(name, "nb", ASSIGNMENT, max_score=1, cell_type="code")
    return path


@pytest.fixture
def course(tmp_path, monkeypatch, template_gradebook) -> Course:
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    shutil.copy(template_gradebook, tmp_path / "gradebook.db")
    return Course(tmp_path, ASSIGNMENT, ["nb"], ["ana", "ben"])


def graded(student: str, q1: float, q2: float, text: str = "graded", grade_names=("q1", "q2"),
           feedback: str | None = None) -> Graded:
    scores = dict(zip(grade_names, (q1, q2), strict=True))
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
    with open_gradebook(course.gradebook) as gradebook:
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
    steps = after_grading(course, rows, feedback=True)
    assert steps[:-1] == [["generate_feedback", ASSIGNMENT, "--force", "--student=ben"]]
    assert steps[-1][0] == "export"
    assert after_grading(course, rows, feedback=False) == [steps[-1]]


def test_resume_counts_only_students_with_grades_and_notebooks(course):
    merge(course, graded("ana", 1, 0))
    merge(course, graded("ben", 1, 0))
    (folder(course, "ben") / "nb.ipynb").unlink()
    assert already_graded(course) == {"ana"}


def test_the_report_keeps_the_rows_of_students_this_run_did_not_grade(course):
    write_report(course, {"ana": Graded("ana", status="graded", score=2, max_score=2, sandbox="on"),
                           "ben": Graded("ben", note="the kernel died")})
    write_report(course, {"ben": Graded("ben", status="graded", score=1, max_score=2, worker="w1:7")})
    with open(course.root / REPORT_FILE) as f:
        rows = {r["student"]: r for r in csv.DictReader(f)}
    assert rows["ana"]["status"] == "graded" and rows["ana"]["sandbox"] == "on"
    assert rows["ben"]["status"] == "graded" and rows["ben"]["score"] == "1" and rows["ben"]["worker"] == "w1:7"


def test_the_report_holds_no_formula_and_reads_hostile_ids_back(course):
    """A student id (or a note) a spreadsheet would run is written with a leading ', and read
    back as it was: by the next run, which keeps the row once, and by the item analysis."""
    from course_grade.reports.grading_report import read_grading_report

    write_report(course, {sid: Graded(sid, status="graded", score=1.5, max_score=2, note=sid, tampering=[sid],
                                       worker="-w1") for sid in HOSTILE})
    path = course.root / REPORT_FILE
    assert raw_formulas(path) == []
    first = cells(path)
    assert len(first) == 1 + len(HOSTILE)  # no row split by a comma, a quote or a newline
    write_report(course, {"ana": Graded("ana", status="graded", score=2, max_score=2)})
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


# ------------------------------------------------------------ every student on record, never stale

def submitted_at(course: Course, student: str, when: datetime.datetime) -> Path:
    """A submission folder with nbgrader's timestamp.txt, as `nbgrader collect` leaves it."""
    folder = course.root / "submitted" / student / ASSIGNMENT
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "timestamp.txt").write_text(when.strftime("%Y-%m-%d %H:%M:%S.%f UTC"))
    return folder


def test_a_submission_that_could_not_be_graded_is_recorded_with_no_points_and_flagged(course):
    """A corrupt notebook still has its submission row (with its timestamp) and 0 points, so an
    export never calls the student's work "no submission"; nothing stale of an earlier
    submission stays: its grades, autograded notebook and feedback go."""
    merge(course, graded("ana", 1, 1, "first", feedback="page one"))
    submitted_at(course, "ana", datetime.datetime(2026, 11, 2, 10))
    failed = Graded("ana")
    failed.add(CORRUPT, NOTES[CORRUPT])
    assert merge(course, failed) == 0
    with warnings.catch_warnings(), Gradebook(f"sqlite:///{course.gradebook}") as gb:
        warnings.simplefilter("ignore")
        sub = gb.find_submission(ASSIGNMENT, "ana")
        assert sub.timestamp == datetime.datetime(2026, 11, 2, 10)
        assert (sub.score, sub.max_score) == (0, 2)
        assert [(g.auto_score, g.needs_manual_grade) for nb in sub.notebooks for g in nb.grades] == [(0, False)] * 2
        assert all(nb.flagged for nb in sub.notebooks), "the formgrader's flag, as tampering sets it"
    assert not folder(course, "ana").exists() and not feedback_page(course, "ana").exists()
    assert already_graded(course) == set(), "--resume grades it again"
    merge(course, graded("ana", 1, 0, "second"))
    with warnings.catch_warnings(), Gradebook(f"sqlite:///{course.gradebook}") as gb:
        warnings.simplefilter("ignore")
        assert not any(nb.flagged for nb in gb.find_submission(ASSIGNMENT, "ana").notebooks)


def test_merge_says_how_late_a_submission_came(course):
    with warnings.catch_warnings(), Gradebook(f"sqlite:///{course.gradebook}") as gb:
        warnings.simplefilter("ignore")
        gb.update_or_create_assignment(ASSIGNMENT, duedate=datetime.datetime(2026, 10, 31))
    assert merge(course, graded("ana", 1, 1)) == 24 * 3600, "graded() submits on 2026-11-01"
    submitted_at(course, "ben", datetime.datetime(2026, 10, 30))
    assert merge(course, Graded("ben")) == 0


def test_resume_grades_again_what_was_submitted_again(course):
    """As stock `nbgrader autograde`: a submission whose timestamp.txt is newer than its grades'
    (after `nbgrader collect --update`) is graded again; without a timestamp it is not."""
    merge(course, graded("ana", 1, 0))
    merge(course, graded("ben", 1, 0))
    assert already_graded(course) == {"ana", "ben"}, "no timestamp in submitted/: as stock nbgrader, not regraded"
    submitted_at(course, "ben", datetime.datetime(2026, 11, 1))
    assert already_graded(course) == {"ana", "ben"}, "the graded submission itself"
    submitted_at(course, "ben", datetime.datetime(2026, 11, 3))
    assert already_graded(course) == {"ana"}
    stamped = graded("ben", 1, 1)
    stamped.files["timestamp.txt"] = b"2026-11-04 00:00:00.000000 UTC"
    merge(course, stamped)
    assert already_graded(course) == {"ana", "ben"}, "the autograded copy's timestamp.txt, as stock reads it"


@pytest.mark.parametrize("data, reason", [
    (None, NO_NOTEBOOK), (b"", BLANK), (b"  \n", BLANK), (b"{this is not json", CORRUPT),
    (b'{"cells": 3}', CORRUPT), (nbformat.writes(nbformat.v4.new_notebook()).encode(), BLANK),
])
def test_a_notebook_that_cannot_be_graded_is_named_before_nbgrader_runs(data, reason):
    files = {} if data is None else {"nb.ipynb": data}
    out = grade(AssignmentBundle(ASSIGNMENT, ("nb",), b"", b""), SubmissionBundle("ana", files))
    assert (out.status, out.reasons, out.rows, out.files) == ("failed", [reason], None, {})
    assert out.flagged and not out.merged and out.note == NOTES[reason]


def test_cells_stopped_at_the_per_cell_limit_are_named():
    stopped = {"output_type": "error", "ename": "CellTimeoutError", "evalue": "", "traceback": []}
    other = {"output_type": "error", "ename": "KeyboardInterrupt", "evalue": "", "traceback": []}
    nb = {"cells": [{"metadata": {"nbgrader": {"grade_id": "step1"}}, "outputs": [other, stopped]},
                    {"metadata": {}, "outputs": [other]},
                    {"metadata": {}, "outputs": [stopped]},
                    {"metadata": {}, "cell_type": "markdown"}]}
    assert timed_out_cells(nb, "CellTimeoutError") == ["step1", "cell 3"]


class _SlowFeedback:
    def generate_feedback(self, assignment, student):
        time.sleep(3600)  # a page that would take an hour to render


class _QuickFeedback:
    def __init__(self, folder: Path):
        self.folder = folder

    def generate_feedback(self, assignment, student):
        self.folder.mkdir(parents=True)
        (self.folder / "nb.html").write_text("page")
        return {"success": True}


def test_the_feedback_step_is_stopped_at_the_submissions_deadline(tmp_path):
    """generate_feedback runs in a child process killed at the task's deadline: a page that
    takes too long costs its feedback (made later in the course), never the worker."""
    import psutil

    def children() -> set[int]:  # this process's children (others' fixtures may keep some of their own)
        return {child.pid for child in psutil.Process().children()}

    page = tmp_path / "feedback" / "ana" / ASSIGNMENT
    out = Graded("ana", status="graded")
    before = children()
    start = time.monotonic()
    assert _make_feedback(_SlowFeedback(), ASSIGNMENT, "ana", page, out, start + 1) is False
    assert 1 <= time.monotonic() - start < 10
    assert out.feedback is None and children() == before, "the child is killed and reaped"
    assert _make_feedback(_QuickFeedback(page), ASSIGNMENT, "ana", page, out, time.monotonic() + 60) is True
    assert out.feedback == {"nb.html": b"page"}
    assert _make_feedback(_QuickFeedback(page), ASSIGNMENT, "ana", page, Graded("ana"), time.monotonic() - 1) is False


def test_a_failed_task_keeps_its_log_and_a_graded_one_removes_it(course):
    failed = Graded("ana", log="Traceback (most recent call last):\nRuntimeError: broken")
    failed.add(ERROR, "could not grade: RuntimeError: broken")
    where = keep_log(course, failed)
    assert where == f"reports/logs/{ASSIGNMENT}/ana.log"
    assert "RuntimeError: broken" in (course.root / where).read_text()
    assert keep_log(course, Graded("ana", status="graded")) == "" and not (course.root / where).exists()


def test_the_report_carries_each_reason_and_the_log(course):
    o = Graded("ana", log_file="reports/logs/hw/ana.log")
    o.add(CORRUPT, NOTES[CORRUPT])
    o.add(LATE, "submitted 2 h after the due date")
    write_report(course, {"ana": o})
    with open(course.root / REPORT_FILE) as f:
        row = next(csv.DictReader(f))
    assert row["reason"] == "corrupt; late" and row["log"] == "reports/logs/hw/ana.log"
    assert row["note"] == NOTES[CORRUPT] + "; submitted 2 h after the due date"


def test_feedback_is_made_in_the_course_for_a_student_whose_grades_were_kept_past_the_deadline(course):
    late = Graded("ana", status="timed out", grades_kept=True)
    steps = after_grading(course, [late, Graded("ben", status="timed out")], feedback=True)
    assert steps[:-1] == [["generate_feedback", ASSIGNMENT, "--force", "--student=ana"]]


def test_the_name_of_a_cell_timeout_is_nbgraders_unless_the_config_changes_it():
    from traitlets.config import Config


    assert timeout_ename(Config()) == "CellTimeoutError"
    config = Config()
    config.Execute.error_on_timeout = {"ename": "TooSlow", "evalue": "", "traceback": []}
    assert timeout_ename(config) == "TooSlow"


def test_a_timestamp_that_holds_no_time_is_caught_before_nbgrader_parses_it():
    """nbgrader's date parser takes minutes on a long run of digits: the task reads timestamp.txt
    first, and a file that holds no time is the submission's reason, not the worker's time."""
    from course_grade.reasons import BAD_TIMESTAMP, timestamp_problem

    for honest in (None, b"", b"2026-12-01 10:00:00.000000 UTC", b"2026-12-01T10:00:00Z", b" 2026-12-01 10:00 \n"):
        assert timestamp_problem(honest) is None, honest
    for bad in (b"9" * 150_000, b"handed in whenever", b"\xff\xfe", b"2026-13-45 99:99"):
        assert timestamp_problem(bad) == BAD_TIMESTAMP, bad[:20]
