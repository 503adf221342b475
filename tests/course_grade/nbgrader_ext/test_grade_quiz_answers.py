"""The graded quiz is scored outside the kernel (course_grade/nbgrader_ext/collect_quiz_answers.py, quiz_grading.py).

Unit tests, as nbgrader tests its own preprocessors: the source notebook's quiz cells (hidden
tests included, as nbgrader restores them), the collector run on a submission folder, then
the grader on outputs a kernel might have left; nbgrader's own `determine_grade` scores the
result. The slow tests run stock `nbgrader autograde` on honest and adversarial submissions.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_notebook, new_output
from nbgrader.utils import determine_grade

from autograder import quiz
from autograder.report import CheckFailed
from course_grade.nbgrader_ext.collect_quiz_answers import METADATA_KEY, CollectQuizAnswers
from course_grade.nbgrader_ext.grade_quiz_answers import GradeQuizAnswers, QuizKeyError, read_key
from tests.support.course import ASSIGNMENT, SOURCE_NB, answers_file, graded_cells, quiz_key, right_answers
from tests.support.submissions import CORRECT_VARIANTS, QUIZ_ATTACKS, QUIZ_CASES

KEY = quiz_key()
WRONG = {qid: "ABCD"[("ABCD".index(k["correct"]) + 1) % 4] for qid, k in KEY.items()}
CLAIMED_SUCCESS = new_output("execute_result", data={"text/plain": "1.0"}, execution_count=1)


def quiz_notebook():
    """The source notebook's graded quiz cells and one step test cell, as nbgrader has them
    before execution: hidden tests restored, no outputs."""
    cells = [c for c in nbformat.read(SOURCE_NB, as_version=4).cells
             if c.metadata.get("nbgrader", {}).get("grade_id", "").startswith(("quiz", "step1_database_url"))
             and c.metadata["nbgrader"].get("grade")]
    return new_notebook(cells=cells)


def quiz_cells(nb):
    return {c.metadata.nbgrader.grade_id.split("_", 1)[1]: c for c in nb.cells
            if c.metadata.nbgrader.grade_id.startswith("quiz")}


def collect(nb, folder: Path):
    return CollectQuizAnswers().preprocess(nb, {"metadata": {"path": str(folder)}})


def grade(nb, kernel_outputs=()):
    """What the kernel left in every cell, then the grader; returns qid -> (score, message)."""
    for cell in nb.cells:
        cell.outputs = [nbformat.from_dict(o) for o in kernel_outputs]
    nb, _ = GradeQuizAnswers().preprocess(nb, {})
    out = {}
    for qid, cell in quiz_cells(nb).items():
        score, _ = determine_grade(cell)
        out[qid] = (score, "\n".join(o.evalue for o in cell.outputs if o.output_type == "error"))
    return out


def in_kernel_message(folder: Path, qid: str, monkeypatch) -> str:
    """What `quiz.check_answer` says today for `qid`, run in `folder` as a kernel would."""
    monkeypatch.chdir(folder)
    try:
        quiz.check_answer(qid, **KEY[qid])
    except CheckFailed as exc:
        return str(exc)
    return ""


def test_the_fixture_has_all_ten_quiz_cells_with_their_hidden_key():
    cells = quiz_cells(quiz_notebook())
    assert set(cells) == set(KEY) and len(cells) == 10
    for qid, cell in cells.items():
        assert read_key(cell.source, qid) == KEY[qid]


@pytest.mark.parametrize("content, scores, words", [
    (answers_file(right_answers()), 1, ""),
    (answers_file(WRONG), 0, "which is not right"),
    (answers_file({}), 0, "has no saved answer"),
    (None, 0, "quiz_answers.json is missing"),
    ('{"answers": {"url_driver": "B",', 0, "not readable JSON"),
    ('{"answers": {"url_driver": "E"}}', 0, "does not hold"),
    (b"\xff\xfe not utf-8", 0, "not readable JSON"),
], ids=["right", "wrong", "unanswered", "missing", "damaged", "bad-letter", "not-utf8"])
def test_each_quiz_cell_is_graded_from_the_collected_file_with_todays_message(tmp_path, monkeypatch, content, scores,
                                                                              words):
    if isinstance(content, bytes):
        (tmp_path / quiz.ANSWERS_FILE).write_bytes(content)
    elif content is not None:
        (tmp_path / quiz.ANSWERS_FILE).write_text(content)
    nb, _ = collect(quiz_notebook(), tmp_path)
    graded = grade(nb)
    assert len(graded) == 10, sorted(graded)
    for qid, (score, message) in graded.items():
        assert score == scores, (qid, message)
        assert words in message
        # word for word what the in-kernel hidden check says of the same file
        assert message == in_kernel_message(tmp_path, qid, monkeypatch)


def test_partly_right_scores_each_question_on_its_own(tmp_path):
    chosen = {**right_answers(), **{qid: WRONG[qid] for qid in sorted(KEY)[:4]}}
    (tmp_path / quiz.ANSWERS_FILE).write_text(answers_file(chosen))
    graded = grade(collect(quiz_notebook(), tmp_path)[0])
    assert sum(score for score, _ in graded.values()) == 6


def test_a_kernel_that_claimed_success_for_a_wrong_answer_is_overwritten(tmp_path):
    (tmp_path / quiz.ANSWERS_FILE).write_text(answers_file(WRONG))
    nb, _ = collect(quiz_notebook(), tmp_path)
    # nothing (full marks), or a number nbgrader would take as the score
    for outputs in ([], [CLAIMED_SUCCESS], [new_output("stream", name="stdout", text="all right\n")]):
        graded = grade(nbformat.from_dict(json.loads(json.dumps(nb))), outputs)
        assert all(score == 0 and "which is not right" in message for score, message in graded.values())


def test_a_right_answer_scores_whatever_the_kernel_showed(tmp_path):
    """An error or stderr a submission's hook put in a quiz cell does not cost a right answer."""
    (tmp_path / quiz.ANSWERS_FILE).write_text(answers_file(right_answers()))
    nb, _ = collect(quiz_notebook(), tmp_path)
    noise = [new_output("stream", name="stderr", text="boom\n"),
             new_output("error", ename="KeyboardInterrupt", evalue="", traceback=[])]
    assert all(score == 1 for score, _ in grade(nb, noise).values())
    assert all(c.outputs == [] for c in quiz_cells(nb).values())


def test_other_graded_cells_are_left_to_the_kernel(tmp_path):
    nb, _ = collect(quiz_notebook(), tmp_path)
    grade(nb, [CLAIMED_SUCCESS])
    step = next(c for c in nb.cells if c.metadata.nbgrader.grade_id == "step1_database_url")
    assert step.outputs == [CLAIMED_SUCCESS]


def test_a_file_written_at_grading_time_does_not_count(tmp_path):
    """The collector reads the file before any student code runs; a file a kernel writes
    afterwards (in the graded folder or over the collected one) changes nothing."""
    (tmp_path / quiz.ANSWERS_FILE).write_text(answers_file(WRONG))
    nb, _ = collect(quiz_notebook(), tmp_path)
    (tmp_path / quiz.ANSWERS_FILE).write_text(answers_file(right_answers()))  # "at grading time"
    assert all(score == 0 for score, _ in grade(nb).values())

    missing = tmp_path / "missing"
    missing.mkdir()
    nb, _ = collect(quiz_notebook(), missing)
    (missing / quiz.ANSWERS_FILE).write_text(answers_file(right_answers()))
    graded = grade(nb)
    assert all(score == 0 and "quiz_answers.json is missing" in message for score, message in graded.values())


def test_a_record_in_the_submitted_notebook_is_replaced(tmp_path):
    """A student cannot put 'collected' answers in the notebook's metadata: the collector
    always writes its own record."""
    nb = quiz_notebook()
    nb.metadata[METADATA_KEY] = {"state": "saved", "answers": right_answers(), "error": ""}
    nb, _ = collect(nb, tmp_path)
    assert nb.metadata[METADATA_KEY]["state"] == "missing"
    assert all(score == 0 for score, _ in grade(nb).values())


def test_the_key_comes_from_the_cells_source_never_from_what_ran(tmp_path):
    """The grader reads the key from the restored hidden test with ast; a cell without it is
    an error of the course, never a pass."""
    (tmp_path / quiz.ANSWERS_FILE).write_text(answers_file(right_answers()))
    nb, _ = collect(quiz_notebook(), tmp_path)
    cell = quiz_cells(nb)["url_driver"]
    cell.source = 'from autograder import quiz\nquiz.check_answered("url_driver")'
    with pytest.raises(QuizKeyError, match="0 check_answer calls"):
        grade(nb)
    cell.source = 'quiz.check_answer("url_driver", correct=KEY, explanation="", why={})'
    with pytest.raises(QuizKeyError, match="literals"):
        grade(nb)


def test_grading_without_a_collected_record_stops_rather_than_trust_the_kernel():
    with pytest.raises(RuntimeError, match="CollectQuizAnswers"):
        grade(quiz_notebook())


def test_only_a_regular_file_is_read(tmp_path):
    """A link (to a file something else could change) or a pipe (which would block) counts as
    damaged, and reading never waits."""
    target = tmp_path / "elsewhere.json"
    target.write_text(answers_file(right_answers()))
    (tmp_path / quiz.ANSWERS_FILE).symlink_to(target)
    nb, _ = collect(quiz_notebook(), tmp_path)
    assert nb.metadata[METADATA_KEY]["state"] == "damaged"
    assert all(score == 0 and "quiz_answers.json is a link, not the file the quiz saves" in message
               for score, message in grade(nb).values())

    pipe = tmp_path / "pipe"
    pipe.mkdir()
    os.mkfifo(pipe / quiz.ANSWERS_FILE)
    nb, _ = collect(quiz_notebook(), pipe)
    assert nb.metadata[METADATA_KEY] == {"state": "damaged", "answers": {},
                                         "error": "quiz_answers.json is a pipe, not the file the quiz saves"}


def test_an_oversized_file_counts_as_damaged(tmp_path):
    (tmp_path / quiz.ANSWERS_FILE).write_text(answers_file(right_answers()) + " " * 70_000)
    nb, _ = collect(quiz_notebook(), tmp_path)
    assert "larger than 65,536 bytes" in nb.metadata[METADATA_KEY]["error"]


def test_the_stock_configuration_of_the_slow_tests_holds_the_two_and_its_control_neither():
    assert "CollectQuizAnswers]" in STOCK and "GradeQuizAnswers," in STOCK
    assert "Quiz" not in UNPROTECTED.split("kernel_manager_class")[1]


def test_the_course_config_runs_the_collector_before_execution_and_the_grader_before_saving_grades():
    from nbgrader.converters.autograde import Autograde
    from traitlets.config.loader import PyFileConfigLoader

    from tests.support.course import ROOT

    app = Autograde(config=PyFileConfigLoader("nbgrader_config.py", path=str(ROOT)).load_config())
    assert CollectQuizAnswers in app.sanitize_preprocessors
    after = [p.__name__ for p in app.autograde_preprocessors]
    # the quiz and the build steps are both decided after the kernel has run, just before the grades are saved
    assert after.index("Execute") < after.index("GradeQuizAnswers") < after.index("SaveAutoGrades")
    assert after.index("JudgeBuildSteps") == after.index("SaveAutoGrades") - 1


# ------------------------------------------------------------ stock nbgrader, real kernels

QUIZ_IDS = [gid for gid in graded_cells() if gid.startswith("quiz")]
# Stock nbgrader's preprocessors and the quiz's two, in a plain kernel: the guarantee must not
# lean on the course's other protections (the kernel sandbox, the tampering scan).
STOCK = """
from nbgrader.preprocessors import ClearOutput, DeduplicateIds, OverwriteKernelspec, OverwriteCells
c.NotebookClient.kernel_manager_class = "jupyter_client.manager.KernelManager"
c.Autograde.sanitize_preprocessors = [
    ClearOutput, DeduplicateIds, OverwriteKernelspec, OverwriteCells, CheckCellMetadata, CollectQuizAnswers]
c.Autograde.autograde_preprocessors = [
    Execute, IgnorePattern, ClearMetadataPreprocessor, LimitOutput, LimitOutputSize, GradeQuizAnswers,
    SaveAutoGrades, AssignLatePenalties, CheckCellMetadata]
"""
# the control: without the two, the quiz is graded inside the kernel, as before
UNPROTECTED = STOCK.replace(", CollectQuizAnswers]", "]").replace(" GradeQuizAnswers,", "")


def _grade_course(folder: Path, subs, extra_config: str = "") -> tuple[Path, dict]:
    from tests.support.course import autograde, make_course, results, submit_as

    course = make_course(folder, extra_config)
    for sub in subs:
        submit_as(course, sub)
    done, _ = autograde(course)
    assert done.returncode == 0, f"nbgrader autograde failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return course, {sub.name: results(course, sub.name) for sub in subs}


def _quiz_score(cells) -> float:
    return sum(cells[gid].score for gid in QUIZ_IDS)


@pytest.fixture(scope="module")
def stock(tmp_path_factory):

    return _grade_course(tmp_path_factory.mktemp("quiz-stock") / "course",
                         CORRECT_VARIANTS[:1] + QUIZ_CASES + QUIZ_ATTACKS, STOCK)


@pytest.mark.slow
@pytest.mark.parametrize("name", [s.name for s in QUIZ_ATTACKS])
def test_an_attack_at_grading_time_scores_0_on_the_quiz_under_stock_nbgrader(stock, name):

    sub = next(s for s in QUIZ_ATTACKS if s.name == name)
    _, graded = stock
    cells = graded[name]
    for gid in QUIZ_IDS:
        assert cells[gid].score == 0, f"{name}: {gid} scored"
        assert cells[gid].message.startswith("CheckFailed: ") and sub.loses[gid] in cells[gid].message, (
            cells[gid].message)
    # the rest of the notebook is the solution, and keeps its points
    assert all(c.full for gid, c in cells.items() if gid not in QUIZ_IDS), name


@pytest.mark.slow
def test_the_attacks_did_write_the_answers_while_grading(stock):
    """The file-writing attacks ran: the right answers lie beside the graded notebook and in
    the submission folder, and still scored nothing."""
    course, _ = stock
    for name in ("quiz_attack_writes_answers_at_grading_time", "quiz_attack_all_wrong_then_patch"):
        for folder in ("autograded", "submitted"):
            written = json.loads((course / folder / name / ASSIGNMENT / quiz.ANSWERS_FILE).read_text())
            assert written["answers"] == right_answers(), (name, folder)
    for name in ("quiz_attack_reads_key_from_disk", "quiz_attack_pre_run_cell_hook"):
        written = json.loads((course / "autograded" / name / ASSIGNMENT / quiz.ANSWERS_FILE).read_text())
        assert written["answers"] == right_answers(), name


@pytest.mark.slow
def test_honest_quiz_scores_are_unchanged(stock):
    _, graded = stock
    assert {name: _quiz_score(graded[name]) for name in
            ("solution", "quiz_all_wrong", "quiz_partly_right", "quiz_missing_file", "quiz_malformed_file")} == {
        "solution": 10, "quiz_all_wrong": 0, "quiz_partly_right": 6, "quiz_missing_file": 0, "quiz_malformed_file": 0}
    message = graded["quiz_all_wrong"]["quiz04_max_overflow"].message
    assert "you chose B (5)" in message and "The answer is A" in message and "15 at once" in message
    assert "quiz_answers.json is missing" in graded["quiz_missing_file"]["quiz01_url_driver"].message
    assert "not readable JSON" in graded["quiz_malformed_file"]["quiz01_url_driver"].message


@pytest.mark.slow
def test_without_the_preprocessors_every_attack_would_win(tmp_path):
    """The control: graded inside the kernel, as before, each attack scores 10/10 on a quiz it
    never answered (or answered all wrong). So the attacks above are real."""

    _, graded = _grade_course(tmp_path / "course", QUIZ_ATTACKS, UNPROTECTED)
    assert {name: _quiz_score(cells) for name, cells in graded.items()} == {s.name: 10 for s in QUIZ_ATTACKS}
