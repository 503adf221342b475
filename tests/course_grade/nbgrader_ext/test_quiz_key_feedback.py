"""course_grade/nbgrader_ext/quiz_key_feedback.py (fast tier): a feedback page gives the quiz's
key only as `c.QuizKeyFeedback.show_key` says; by default once the due date has passed and no
student's extension is still open, read from a real nbgrader gradebook (or, on a grading
worker, from the deadline the assignment bundle carries).

The quiz cells are the source notebook's (hidden tests restored, as nbgrader has them when it
makes feedback), graded by GradeQuizAnswers from collected answers. The slow test
(test_feedback_page.py) runs it in stock `nbgrader generate_feedback` and on a worker.
"""
from __future__ import annotations

import datetime
import shutil

import nbformat
import pytest
from nbformat.v4 import new_notebook
from traitlets.config import Config

from course_grade.course import open_gradebook
from course_grade.nbgrader_ext.collect_quiz_answers import METADATA_KEY
from course_grade.nbgrader_ext.grade_quiz_answers import GradeQuizAnswers
from course_grade.nbgrader_ext.quiz_key_feedback import (
    DECIDED,
    LATER,
    QuizKeyFeedback,
    key_shown,
    last_deadline,
    use_last_deadline,
)
from tests.support.course import ASSIGNMENT, SOURCE_NB, blank_gradebook, quiz_key

KEY = quiz_key()
WRONG = {qid: "ABCD"[("ABCD".index(k["correct"]) + 1) % 4] for qid, k in KEY.items()}
NOW = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
DAY = datetime.timedelta(days=1)


@pytest.fixture
def gradebook(tmp_path):
    """A real nbgrader gradebook: the assignment due yesterday, `ana` with no extension."""
    path = tmp_path / "gradebook.db"
    shutil.copy(blank_gradebook(), path)
    url = f"sqlite:///{path}"
    with open_gradebook(url) as gb:
        gb.update_or_create_assignment(ASSIGNMENT, duedate=NOW - DAY)
        gb.update_or_create_student("ana")
        gb.update_or_create_submission(ASSIGNMENT, "ana")
    return url


def extend(url: str, student: str, extension: datetime.timedelta | None) -> None:
    with open_gradebook(url) as gb:
        gb.update_or_create_student(student)
        gb.update_or_create_submission(ASSIGNMENT, student, extension=extension)


def graded_quiz(answers: dict[str, str]):
    """The source notebook's quiz cells as grading left them: one answer wrong, the rest right."""
    cells = [c for c in nbformat.read(SOURCE_NB, as_version=4).cells
             if c.metadata.get("nbgrader", {}).get("grade_id", "").startswith("quiz")
             and c.metadata["nbgrader"].get("grade")]
    nb = new_notebook(cells=cells, metadata={METADATA_KEY: {"state": "saved", "answers": answers, "error": ""}})
    nb, _ = GradeQuizAnswers().preprocess(nb, {})
    return nb


def page(url: str, answers: dict[str, str], **config):
    """qid -> what its cell says on the page, and what the preprocessor decided."""
    c = Config()
    for name, value in config.items():
        setattr(c.QuizKeyFeedback, name, value)
    nb, resources = QuizKeyFeedback(config=c).preprocess(
        graded_quiz(answers), {"nbgrader": {"db_url": url, "assignment": ASSIGNMENT, "student": "ana"}})
    said = {c.metadata.nbgrader.grade_id.split("_", 1)[1]: "\n".join(o.evalue for o in c.outputs) for c in nb.cells}
    for cell in nb.cells:  # what a page shows of an error: its traceback
        assert "\n".join(o.evalue for o in cell.outputs) in "\n".join(t for o in cell.outputs for t in o.traceback)
    return said, resources[DECIDED]


ONE_WRONG = {**{qid: k["correct"] for qid, k in KEY.items()}, "max_overflow": WRONG["max_overflow"]}


def test_the_key_waits_for_a_students_open_extension_and_shows_once_every_deadline_has_passed(gradebook):
    extend(gradebook, "ben", 3 * DAY)  # due yesterday, ben's deadline is in two days
    said, decided = page(gradebook, ONE_WRONG)
    wrong = said["max_overflow"]
    assert wrong.startswith("Question 4: you chose") and wrong.endswith(f"which is not right. {LATER}"), wrong
    assert "The answer is" not in wrong and KEY["max_overflow"]["explanation"] not in wrong
    assert all(why not in wrong for why in KEY["max_overflow"]["why"].values()), "why an option is wrong gives it away"
    assert all(said[q] == "" for q in KEY if q != "max_overflow"), "a right answer shows nothing, as graded"
    assert decided == {"shown": False, "note": LATER}

    extend(gradebook, "ben", DAY // 2)  # ben's deadline passed too
    said, decided = page(gradebook, ONE_WRONG)
    assert f"The answer is {KEY['max_overflow']['correct']}: {KEY['max_overflow']['explanation']}" \
           in said["max_overflow"] and LATER not in said["max_overflow"]
    assert decided == {"shown": True, "note": ""}


def test_before_the_due_date_the_key_is_held_back_and_without_one_it_stays_held_back(gradebook):
    with open_gradebook(gradebook) as gb:
        gb.update_or_create_assignment(ASSIGNMENT, duedate=NOW + DAY)
    assert "The answer is" not in page(gradebook, WRONG)[0]["max_overflow"]
    with open_gradebook(gradebook) as gb:
        gb.update_or_create_assignment(ASSIGNMENT, duedate=None)
    extend(gradebook, "ben", DAY)  # an extension without a due date: still no deadline
    said, decided = page(gradebook, WRONG)
    assert all(m.endswith(LATER) and "The answer is" not in m for m in said.values()), said
    assert decided["shown"] is False


def test_always_and_never(gradebook):
    extend(gradebook, "ben", 3 * DAY)
    said, decided = page(gradebook, WRONG, show_key="always")
    assert all("The answer is" in m for m in said.values()) and decided == {"shown": True, "note": ""}
    extend(gradebook, "ben", None)
    said, decided = page(gradebook, WRONG, show_key="never")
    assert all(m.endswith("which is not right.") for m in said.values()), said
    assert decided == {"shown": False, "note": ""}, "never: the page promises no key"


def test_a_damaged_answers_file_says_the_same_with_the_key_held_back(gradebook):
    extend(gradebook, "ben", 3 * DAY)
    nb = graded_quiz({})
    nb.metadata[METADATA_KEY] = {"state": "damaged", "answers": {}, "error": "quiz_answers.json is empty"}
    graded = {c.metadata.nbgrader.grade_id: c.outputs[0].evalue for c in GradeQuizAnswers().preprocess(nb, {})[0].cells}
    nb, _ = QuizKeyFeedback().preprocess(nb, {"nbgrader": {"db_url": gradebook, "assignment": ASSIGNMENT}})
    assert {c.metadata.nbgrader.grade_id: c.outputs[0].evalue for c in nb.cells} == {
        gid: f"{message} {LATER}" for gid, message in graded.items()}


def test_a_workers_gradebook_holds_one_student_so_the_bundles_deadline_decides(gradebook):
    """On a grading worker the gradebook has only the student graded (here `ana`, whose due
    date passed): the course's last deadline, given in the config, holds the key back."""
    assert page(gradebook, WRONG)[1]["shown"] is True, "the one-student gradebook alone would show the key"
    c = Config()
    use_last_deadline(c, (NOW + 2 * DAY).isoformat())
    assert c.QuizKeyFeedback.last_deadline == (NOW + 2 * DAY).isoformat()
    said, decided = page(gradebook, WRONG, last_deadline=c.QuizKeyFeedback.last_deadline)
    assert decided["shown"] is False and all("The answer is" not in m for m in said.values())
    use_last_deadline(c := Config(), "")
    assert "last_deadline" not in c.QuizKeyFeedback, "no due date: nothing to give, the gradebook says the same"


def test_the_last_deadline_is_the_latest_extension_or_the_due_date(gradebook):
    with open_gradebook(gradebook) as gb:
        assert last_deadline(gb, ASSIGNMENT) == NOW - DAY
    extend(gradebook, "ben", 2 * DAY)
    extend(gradebook, "cy", 3 * DAY)
    extend(gradebook, "dee", -DAY)
    with open_gradebook(gradebook) as gb:
        assert last_deadline(gb, ASSIGNMENT) == NOW + 2 * DAY
        gb.update_or_create_assignment(ASSIGNMENT, duedate=None)
        assert last_deadline(gb, ASSIGNMENT) is None


@pytest.mark.parametrize("show_key, deadline, shown", [
    ("after_due_date", NOW - DAY, True), ("after_due_date", NOW + DAY, False), ("after_due_date", None, False),
    ("always", NOW + DAY, True), ("always", None, True), ("never", NOW - DAY, False),
])
def test_key_shown(show_key, deadline, shown):
    assert key_shown(show_key, deadline, NOW) is shown


def test_the_option_takes_only_its_three_settings():
    from traitlets import TraitError

    c = Config()
    c.QuizKeyFeedback.show_key = "after_extensions"
    with pytest.raises(TraitError, match="after_due_date"):
        QuizKeyFeedback(config=c)


def test_the_assignment_bundle_carries_the_courses_last_deadline(gradebook, tmp_path):
    from course_grade.engine.bundles import AssignmentBundle

    extend(gradebook, "ben", 3 * DAY)
    (tmp_path / "nbgrader_config.py").write_text("")
    bundle = AssignmentBundle.from_course(tmp_path, ASSIGNMENT)
    assert bundle.last_deadline == (NOW + 2 * DAY).isoformat()
    with open_gradebook(f"sqlite:///{tmp_path / 'gradebook.db'}") as gb:
        gb.update_or_create_assignment(ASSIGNMENT, duedate=None)
    assert AssignmentBundle.from_course(tmp_path, ASSIGNMENT).last_deadline == ""


def test_the_course_config_holds_the_key_until_the_due_date():
    from traitlets.config.loader import PyFileConfigLoader

    from tests.support.course import ROOT

    config = PyFileConfigLoader("nbgrader_config.py", path=str(ROOT)).load_config()
    assert QuizKeyFeedback(config=config).show_key == "after_due_date"
