"""`python -m course_grade grade`: parallel grading of a whole class, and the mutant gallery.

The gallery is every honest submission (tests/support/submissions.py) plus adversarial ones, graded
in one run of the command with two workers. Residual risks (attacks that cannot be stopped
inside nbgrader's in-kernel model, see the README's instructor section):
- with stock `nbgrader autograde` (not this command), files a student puts beside the notebook
  are graded with it, and a student cell can read the instructor's source notebook from disk;
  this command grades only the notebook and the quiz answers, in a folder without the source
  notebook, and removes cells that reach for the grading machinery;
- code that hides what it does (for example building names from strings and calling them
  through getattr) can still patch the checks inside the kernel: the scan cannot see it.
"""
from __future__ import annotations

import csv
import datetime
import hashlib
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.course import (
    ASSIGNMENT,
    BIN,
    graded_cells,
    make_course,
    results,
    solutions,
    submit,
    submit_as,
    tool_env,
)
from tests.support.red_team import expect_row
from tests.support.submissions import ADVERSARIAL, BLANK, HONEST, HONEST_LOOKALIKES, STEP1, submit_honest

pytestmark = pytest.mark.slow

GALLERY = HONEST + ADVERSARIAL + HONEST_LOOKALIKES
RANDOM_ID = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# a short per-cell limit keeps the hanging submissions quick to grade here
CONFIG = "c.Execute.timeout = 20"


def grade_command(course: Path, *args: str, timeout: int = 1800) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "python"), "-m", "course_grade", "grade", *args], cwd=course,
                          env=tool_env(), capture_output=True, text=True, timeout=timeout)


def tree_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        digest.update(str(path.relative_to(folder)).encode())
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()


def report(course: Path) -> dict[str, dict]:
    with open(course / "grading-report.csv") as f:
        return {row["student"]: row for row in csv.DictReader(f)}


@pytest.fixture(scope="module")
def gallery(tmp_path_factory):
    course = make_course(tmp_path_factory.mktemp("gallery") / "course", CONFIG)
    submit_honest(course)
    for sub in ADVERSARIAL + HONEST_LOOKALIKES:
        submit_as(course, sub)
    before = tree_digest(course / "submitted")
    done = grade_command(course, ASSIGNMENT, "--jobs", "2", "--submission-timeout", "300")
    return course, done, before


def test_the_command_reports_progress_a_summary_and_failures_in_its_exit_status(gallery):
    course, done, _ = gallery
    total = len(GALLERY) + 1
    failed = sum(s.status != "graded" for s in GALLERY)  # the corrupt notebook
    output = f"--- stdout\n{done.stdout[-4000:]}\n--- stderr\n{done.stderr[-4000:]}"
    assert failed and done.returncode == 1, "a submission cannot be graded, and the exit status must say so\n" + output
    assert f"[{total}/{total}, {failed} failed]" in done.stdout, output
    assert "Summary" in done.stdout and f"{total - failed}/{total} graded" in done.stdout, output
    assert set(report(course)) == {s.name for s in GALLERY} | {BLANK}
    assert done.stderr == "", output


def test_scores_equal_sequential_stock_nbgrader(gallery, stock_graded):
    course, _, _ = gallery
    _, stock = stock_graded
    for name, cells in stock.items():
        mine = results(course, name)
        assert {g: c.score for g, c in mine.items()} == {g: c.score for g, c in cells.items()}, name
        assert {g: c.message for g, c in mine.items()} == {g: c.message for g, c in cells.items()}, name


@pytest.mark.parametrize("sub", ADVERSARIAL, ids=lambda s: s.name)
def test_no_attack_earns_a_point_or_breaks_the_grader(gallery, sub):
    course, _, _ = gallery
    row = report(course)[sub.name]
    expect_row(course, row, sub)
    assert sub.reason or "time limit" not in row["reason"], row


@pytest.mark.parametrize("sub", HONEST_LOOKALIKES, ids=lambda s: s.name)
def test_honest_look_alikes_keep_full_marks_and_are_not_flagged(gallery, sub):
    course, _, _ = gallery
    row = report(course)[sub.name]
    assert row["status"] == "graded" and row["removed_cells"] == "" and "REVIEW" not in row["note"], row
    cells = results(course, sub.name)
    assert set(cells) == set(graded_cells())
    assert all(c.full for c in cells.values()), {g: c.message for g, c in cells.items() if not c.full}


def test_a_flagged_cell_is_listed_with_its_findings(gallery):
    course, done, _ = gallery
    row = report(course)["attack_patch_checks_by_runtime_names"]
    assert row["removed_cells"].startswith("cell ") and "step1_database_url_solution" in row["removed_cells"]
    assert "__import__" in row["removed_cells"] and "computed name" in row["removed_cells"]
    assert "REVIEW: removed 1 cell(s)" in done.stdout


def test_tampering_is_flagged_for_review_in_the_gradebook(gallery):
    from nbgrader.api import Gradebook

    from course_grade.reasons import FLAGGED_REASONS

    course, _, _ = gallery
    rows = report(course)
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        for sub in GALLERY:  # a submission that could not be graded is on record too, flagged
            nb = gb.find_submission_notebook(ASSIGNMENT, ASSIGNMENT, sub.name)
            if sub.flagged or sub.reason in FLAGGED_REASONS or sub.status != "graded":
                assert nb.flagged and rows[sub.name]["attention"], sub.name
            # the formgrader's flag is the attention list (a missing quiz file, lateness... too)
            assert nb.flagged == bool(rows[sub.name]["attention"]), (sub.name, rows[sub.name]["attention"])


def test_files_beside_the_notebook_are_left_out_and_reported(gallery):
    course, _, _ = gallery
    row = report(course)["attack_fake_package_beside_notebook"]
    assert row["left_out"] == "autograder"
    assert not (course / "autograded" / "attack_fake_package_beside_notebook" / ASSIGNMENT / "autograder").exists()


def test_huge_output_is_truncated_in_the_graded_notebook(gallery):
    course, _, _ = gallery
    graded = course / "autograded" / "attack_huge_output" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    assert graded.stat().st_size < 2_000_000


def test_submitted_is_never_modified(gallery):
    course, _, before = gallery
    assert tree_digest(course / "submitted") == before


def test_feedback_shows_messages_but_never_hidden_tests(gallery):
    course, _, _ = gallery
    html = (course / "feedback" / "leaking_connections" / ASSIGNMENT / f"{ASSIGNMENT}.html").read_text()
    assert "leaks connections" in html  # the hidden check's message reaches the student
    for secret in ("BEGIN HIDDEN TESTS", "step4_connections_returned(globals())", "check_answer(", "correct="):
        assert secret not in html, secret
    quiz_html = (course / "feedback" / "quiz_all_wrong" / ASSIGNMENT / f"{ASSIGNMENT}.html").read_text()
    # the gallery's assignment has no due date: the key is held back (nbgrader_ext/quiz_key_feedback.py)
    assert "which is not right. The key will be shown after the due date." in quiz_html
    assert "The answer is" not in quiz_html


def tree_files(folder: Path) -> dict[str, tuple[str, bytes]]:
    """Every file under `folder`: its permission bits and bytes, nbconvert's random element ids
    (one per JavaScript or widget output, new on every export) replaced."""
    return {str(p.relative_to(folder)): (oct(p.stat().st_mode & 0o777), RANDOM_ID.sub(b"ID", p.read_bytes()))
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_feedback_made_on_the_workers_is_what_stock_generate_feedback_makes(gallery, tmp_path):
    """Each worker makes its students' feedback; stock `nbgrader generate_feedback` run in the
    course afterwards (on a copy) makes the same files, with the same permissions."""
    course, _, _ = gallery
    graded = {s.name for s in GALLERY if s.status == "graded"} | {BLANK}
    assert {p.name for p in (course / "feedback").iterdir()} == graded, "every graded student has feedback"
    copy = tmp_path / "copy"
    shutil.copytree(course, copy, symlinks=True)
    shutil.rmtree(copy / "feedback")
    stock = subprocess.run([str(BIN / "nbgrader"), "generate_feedback", ASSIGNMENT, "--force"], cwd=copy,
                           env=tool_env(), capture_output=True, text=True, timeout=900)
    assert stock.returncode == 0, stock.stderr[-2000:]
    mine, theirs = tree_files(course / "feedback"), tree_files(copy / "feedback")
    assert sorted(mine) == sorted(theirs)
    different = [name for name in mine if mine[name] != theirs[name]]
    assert not different, f"feedback differs from stock generate_feedback: {different[:5]}"
    modes = {mode for mode, _ in tree_files(course / "autograded").values()}
    assert modes == {"0o444"}, f"nbgrader makes autograded files read-only (0o444); merged ones are {modes}"


def test_grades_csv_is_written(gallery):
    course, _, _ = gallery
    with open(course / "grades.csv") as f:
        rows = {row["student_id"]: row for row in csv.DictReader(f)}
    assert float(rows["solution"]["raw_score"]) == pytest.approx(sum(graded_cells().values()))
    assert float(rows[BLANK]["raw_score"]) == pytest.approx(0)


def test_regrading_gives_the_same_scores(tmp_path):
    course = make_course(tmp_path / "course", CONFIG)
    pick = {s.name: s for s in HONEST}
    for name in ("solution", "leaking_connections"):
        submit_as(course, pick[name])
    first = grade_command(course, ASSIGNMENT, "--jobs", "2", "--no-feedback")
    scores = {n: {g: c.score for g, c in results(course, n).items()} for n in ("solution", "leaking_connections")}
    second = grade_command(course, ASSIGNMENT, "--jobs", "1", "--no-feedback")
    assert first.returncode == second.returncode == 0, first.stdout + second.stdout
    assert scores == {n: {g: c.score for g, c in results(course, n).items()} for n in scores}


@pytest.mark.parametrize("args, words", [
    (["no-such-assignment"], "unknown assignment 'no-such-assignment'"),
    ([ASSIGNMENT, "--jobs", "0"], "--jobs 0: give at least 1 worker process"),
    ([ASSIGNMENT, "--submission-timeout", "-1"], "give a positive number of seconds"),
    ([ASSIGNMENT, "--scheduler", "tcp://somewhere"], "is not a Dask scheduler's address: give it as tcp://HOST:PORT"),
    ([ASSIGNMENT, "--scheduler", "somewhere:8786"], "is not a Dask scheduler's address"),
])
def test_bad_arguments_get_one_line_and_write_nothing(tmp_path, args, words):
    course = make_course(tmp_path / "course")
    submit(course, "someone", "{}")
    before = tree_digest(course)
    done = grade_command(course, *args)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip().count("\n") == 0 and words in done.stderr
    assert tree_digest(course) == before


def test_an_empty_submitted_folder_or_a_missing_config_is_refused(tmp_path):
    course = make_course(tmp_path / "course")
    done = grade_command(course, ASSIGNMENT)
    assert done.returncode == 2 and "no submissions" in done.stderr and "nbgrader collect" in done.stderr
    elsewhere = tmp_path / "not-a-course"
    elsewhere.mkdir()
    done = grade_command(elsewhere, ASSIGNMENT)
    assert done.returncode == 2 and "no nbgrader_config.py" in done.stderr
    assert list(elsewhere.iterdir()) == []


def test_the_console_script_is_installed():
    done = subprocess.run([str(Path(sys.executable).with_name("course-grade")), "--help"], capture_output=True,
                          text=True)
    assert done.returncode == 0 and "grade" in done.stdout


def test_regrading_one_student_leaves_everyone_else_untouched(tmp_path):
    """`--student ID` regrades that student alone: everyone else's gradebook rows, autograded
    notebooks and feedback stay byte for byte; the report keeps their rows."""
    from nbgrader.api import Gradebook

    course = make_course(tmp_path / "course", CONFIG)
    pick = {s.name: s for s in HONEST}
    for name in ("solution", "leaking_connections", "quiz_all_wrong"):
        submit_as(course, pick[name])
    first = grade_command(course, ASSIGNMENT, "--jobs", "2")
    assert first.returncode == 0, first.stdout + first.stderr

    def grades(student):
        with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
            sub = gb.find_submission(ASSIGNMENT, student)
            return sub.id, {(nb.name, g.name): (g.auto_score, g.manual_score) for nb in sub.notebooks
                            for g in nb.grades}

    others = ("solution", "quiz_all_wrong")
    before = {s: (grades(s), tree_digest(course / "autograded" / s), tree_digest(course / "feedback" / s))
              for s in others}
    mtimes = {s: [p.stat().st_mtime_ns for p in sorted((course / "feedback" / s).rglob("*"))] for s in others}
    assert all(mtimes.values()) and all((course / "autograded" / s).is_dir() for s in others), "feedback was written"
    # the student fixes the leak and the instructor regrades them alone
    submit_as(course, type(pick["solution"])(**{**pick["solution"].__dict__, "name": "leaking_connections"}))
    again = grade_command(course, ASSIGNMENT, "--student", "leaking_connections")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "Grading 1 submission(s)" in again.stdout
    for s in others:
        assert (grades(s), tree_digest(course / "autograded" / s), tree_digest(course / "feedback" / s)) == before[s], s
        assert [p.stat().st_mtime_ns for p in sorted((course / "feedback" / s).rglob("*"))] == mtimes[s], s
    assert all(c.full for c in results(course, "leaking_connections").values()), (
        "the regraded student's new work counts")
    assert set(report(course)) == {"solution", "leaking_connections", "quiz_all_wrong"}
    unknown = grade_command(course, ASSIGNMENT, "--student", "nobody")
    assert unknown.returncode == 2 and "--student nobody" in unknown.stderr and unknown.stderr.count("\n") == 1


# ------------------------------------------------------------ every student on record, never stale

TOTAL = 23  # the lesson's points: 13 in the build steps, 10 for the graded quiz
DUE = datetime.datetime(2026, 11, 1, 12)


def renamed(sub, name: str, **changes):
    return type(sub)(**{**sub.__dict__, "name": name, **changes})


def stamp(course: Path, student: str, when: datetime.datetime) -> None:
    """nbgrader's timestamp.txt in the student's submission, as `nbgrader collect` writes it."""
    stamp = course / "submitted" / student / ASSIGNMENT / "timestamp.txt"
    stamp.write_text(when.strftime("%Y-%m-%d %H:%M:%S.%f UTC"))


def submission(course: Path, student: str) -> dict:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        sub = gb.find_submission(ASSIGNMENT, student)
        return {"id": sub.id, "timestamp": sub.timestamp, "score": sub.score, "max_score": sub.max_score,
                "flagged": any(nb.flagged for nb in sub.notebooks),
                "grades": {(nb.name, g.name): (g.auto_score, g.manual_score) for nb in sub.notebooks
                           for g in nb.grades}}


def test_resume_grades_a_resubmission_again_and_leaves_the_rest(tmp_path):
    """`nbgrader collect --update` replaces a submission with a newer one: `--resume` grades it
    again, as stock `nbgrader autograde` would (its timestamp.txt is newer than the graded
    copy's), and leaves a student who did not resubmit as they were."""
    course = make_course(tmp_path / "course", CONFIG)
    pick = {s.name: s for s in HONEST}
    submit_as(course, renamed(pick["leaking_connections"], "resubmits"))
    submit_as(course, renamed(pick["solution"], "unchanged"))
    first_time = datetime.datetime(2026, 11, 1, 9)
    for student in ("resubmits", "unchanged"):
        stamp(course, student, first_time)
    first = grade_command(course, ASSIGNMENT, "--jobs", "2", "--no-feedback")
    assert first.returncode == 0, first.stdout + first.stderr
    assert not all(c.full for c in results(course, "resubmits").values())
    before = submission(course, "unchanged"), tree_digest(course / "autograded" / "unchanged")

    shutil.rmtree(course / "submitted" / "resubmits" / ASSIGNMENT)  # what collect --update does
    submit_as(course, renamed(pick["solution"], "resubmits"))
    stamp(course, "resubmits", first_time + datetime.timedelta(hours=5))
    again = grade_command(course, ASSIGNMENT, "--resume", "--no-feedback")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "Resuming: 1 already graded, 1 to grade." in again.stdout
    assert all(c.full for c in results(course, "resubmits").values()), "the new submission's grades"
    assert submission(course, "resubmits")["timestamp"] == first_time + datetime.timedelta(hours=5)
    assert (course / "autograded" / "resubmits" / ASSIGNMENT / "timestamp.txt").read_text().startswith("2026-11-01 14:")
    assert (submission(course, "unchanged"), tree_digest(course / "autograded" / "unchanged")) == before
    still = grade_command(course, ASSIGNMENT, "--resume", "--no-feedback")
    assert "Resuming: 2 already graded, 0 to grade." in still.stdout


EXTENSION = datetime.timedelta(hours=5)


@pytest.fixture(scope="module")
def on_record(tmp_path_factory):
    """A class with a submission of each kind that needs a look, graded by the command (with
    feedback), the due date set in the gradebook; then `sleeper` again, past a short
    --submission-timeout."""
    from nbgrader.api import Gradebook

    course = make_course(tmp_path_factory.mktemp("on-record") / "course", CONFIG)
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        gb.update_or_create_assignment(ASSIGNMENT, duedate=DUE)
    solution = {s.name: s for s in HONEST}["solution"]
    submit_as(course, renamed(solution, "on_time"))
    submit_as(course, renamed(solution, "late"))
    submit_as(course, renamed(solution, "no_answers", quiz=""))
    submit_as(course,
              renamed(solution, "sleeper", changes={STEP1: "import time\ntime.sleep(10_000)\n" + solutions()[STEP1]}))
    submit_as(course, renamed(solution, "extended"))
    submit(course, "corrupt", "{this is not json")
    submit(course, "blank", "")
    for student in ("on_time", "no_answers", "sleeper", "corrupt", "blank"):
        stamp(course, student, DUE - datetime.timedelta(hours=1))
    stamp(course, "late", DUE + datetime.timedelta(hours=3))
    stamp(course, "extended", DUE + datetime.timedelta(hours=3))
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:  # as the formgrader records one
        gb.update_or_create_student("extended")
        gb.update_or_create_submission(ASSIGNMENT, "extended", extension=EXTENSION)
    first = grade_command(course, ASSIGNMENT, "--jobs", "2")
    first_report = report(course)
    again = grade_command(course, ASSIGNMENT, "--student", "sleeper", "--submission-timeout", "10", "--no-feedback")
    return course, first, first_report, again


def test_a_submission_that_cannot_be_graded_is_on_record_flagged_with_its_reason(on_record):
    course, first, rows, _ = on_record
    assert first.returncode == 1, "two submissions could not be graded"
    for student, reason in (("corrupt", "corrupt"), ("blank", "blank")):
        row = rows[student]
        assert (row["status"], row["reason"]) == ("failed", reason), row
        sub = submission(course, student)
        assert (sub["score"], sub["max_score"], sub["flagged"]) == (0, TOTAL, True), student
        assert sub["timestamp"] == DUE - datetime.timedelta(hours=1)
        assert not (course / "autograded" / student).exists()
        assert (course / row["log"]).is_file(), row
    assert "not a readable .ipynb" in rows["corrupt"]["note"] and "empty" in rows["blank"]["note"]
    assert f"logs of the 2 submission(s) not graded: reports/logs/{ASSIGNMENT}/" in first.stdout
    assert (course / "feedback" / "on_time" / ASSIGNMENT / f"{ASSIGNMENT}.html").is_file(), "made on a worker"
    assert not (course / "feedback" / "corrupt").exists()
    with open(course / "grades.csv") as f:
        exported = {row["student_id"]: row for row in csv.DictReader(f)}
    assert float(exported["corrupt"]["raw_score"]) == 0 and float(exported["corrupt"]["max_score"]) == TOTAL


def test_late_and_missing_answers_are_graded_and_reported(on_record):
    course, _, rows, _ = on_record
    assert (rows["late"]["status"], rows["late"]["reason"]) == ("graded", "late")
    assert "late by 3 h: no penalty (none)" in rows["late"]["note"]
    assert submission(course, "late")["timestamp"] == DUE + datetime.timedelta(hours=3)
    assert (rows["no_answers"]["status"], rows["no_answers"]["reason"]) == ("graded", "answers missing")
    assert "quiz_answers.json" in rows["no_answers"]["note"]
    assert submission(course, "no_answers")["score"] == TOTAL - 10
    for student in ("late", "no_answers"):
        assert submission(course, student)["max_score"] == TOTAL
        # on the attention list, so flagged for the formgrader, and no log: it was graded
        assert rows[student]["attention"] == rows[student]["reason"], rows[student]
        assert submission(course, student)["flagged"] and rows[student]["log"] == ""
    assert rows["on_time"]["reason"] == "" and rows["on_time"]["status"] == "graded"
    assert submission(course, "on_time")["score"] == TOTAL


def test_an_extension_the_instructor_gave_is_kept_and_counted(on_record):
    """A worker's gradebook has no students: the extension travels with the submission, and the
    merge keeps the course's."""
    from nbgrader.api import Gradebook

    course, _, rows, _ = on_record
    assert (rows["extended"]["status"], rows["extended"]["reason"]) == ("graded", ""), rows["extended"]
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        sub = gb.find_submission(ASSIGNMENT, "extended")
        assert sub.extension == EXTENSION and sub.total_seconds_late == 0
        assert sub.score == pytest.approx(TOTAL)


def test_a_cell_stopped_at_its_time_limit_is_named_and_flagged(on_record):
    course, _, rows, _ = on_record
    row = rows["sleeper"]
    assert (row["status"], row["reason"]) == ("graded", "cell time limit"), row
    assert "step1_database_url_solution stopped at the per-cell time limit" in row["note"]
    sub = submission(course, "sleeper")
    assert sub["flagged"] and sub["max_score"] == TOTAL and sub["score"] < TOTAL


def test_a_submission_past_its_deadline_is_recorded_and_nothing_stale_stays(on_record):
    course, _, _, again = on_record
    assert again.returncode == 1, again.stdout
    row = report(course)["sleeper"]
    assert (row["status"], row["reason"]) == ("timed out", "timed out"), row
    assert "10 s limit" in row["note"] and (course / row["log"]).is_file()
    sub = submission(course, "sleeper")
    assert (sub["score"], sub["max_score"], sub["flagged"]) == (0, TOTAL, True)
    assert not (course / "autograded" / "sleeper" / ASSIGNMENT).exists(), "the earlier grading of it is gone"
    assert not (course / "feedback" / "sleeper" / ASSIGNMENT).exists()


BROKEN_CONFIG = CONFIG + '''
from nbgrader.preprocessors import NbGraderPreprocessor


class BrokenOnPurpose(NbGraderPreprocessor):
    def preprocess(self, nb, resources):
        raise RuntimeError("a preprocessor broken on purpose")


c.Autograde.autograde_preprocessors.insert(0, BrokenOnPurpose)
'''


def test_a_broken_configuration_keeps_each_tasks_traceback_in_a_log(tmp_path):
    course = make_course(tmp_path / "course", BROKEN_CONFIG)
    submit_as(course, {s.name: s for s in HONEST}["solution"])
    done = grade_command(course, ASSIGNMENT, "--jobs", "1", "--no-feedback")
    assert done.returncode == 1, done.stdout + done.stderr
    row = report(course)["solution"]
    assert (row["status"], row["reason"]) == ("failed", "error"), row
    log = (course / row["log"]).read_text()
    assert "Traceback (most recent call last)" in log and "RuntimeError: a preprocessor broken on purpose" in log
    assert f"reports/logs/{ASSIGNMENT}/" in done.stdout and row["log"] in done.stdout
    assert submission(course, "solution")["flagged"]


def test_the_submission_timeout_bounds_the_feedback_step_too(tmp_path, monkeypatch):
    """task.grade with a feedback step that never ends: stopped at the one deadline of the
    whole task, the grades kept, the page left to nbgrader in the course."""
    from nbgrader.apps.api import NbGraderAPI

    from course_grade.engine.bundles import AssignmentBundle, SubmissionBundle
    from course_grade.engine.task import grade
    from course_grade.reasons import TIMED_OUT

    course = make_course(tmp_path / "course", CONFIG)
    submit_as(course, {s.name: s for s in HONEST}["solution"])
    monkeypatch.setattr(NbGraderAPI, "generate_feedback", lambda self, *a, **k: time.sleep(3600))
    monkeypatch.chdir(tmp_path)
    bundle = AssignmentBundle.from_course(course, ASSIGNMENT)
    given = SubmissionBundle.from_folder(course / "submitted" / "solution" / ASSIGNMENT, "solution", bundle.notebooks)
    limit = 90
    out = grade(bundle, given, limit, feedback=True)
    assert (out.status, out.reasons, out.grades_kept, out.feedback) == ("timed out", [TIMED_OUT], True, None), out.note
    assert out.score == TOTAL and out.rows is not None and out.files
    assert limit <= out.seconds < limit + 15
