"""nbgrader preprocessor: a feedback page gives the graded quiz's key only when the course
says so (`c.QuizKeyFeedback.show_key`, nbgrader_config.py).

Grading writes a wrong answer's message with the key and why ("... The answer is B: ...",
grade_quiz_answers.py). A page made while some student can still submit would hand the key
round. This preprocessor runs in `nbgrader generate_feedback` before `ClearHiddenTests` (it
reads each quiz cell's key from its restored hidden test, as GradeQuizAnswers does) and, when
the key is held back, sets each quiz cell's message again from the answers as collected,
saying only right or wrong (`autograder.quiz.verdict(..., show_key=False)`):

- "after_due_date" (the default): the key is shown once the assignment's due date has passed
  and no student's extension is still open (nbgrader's gradebook: the assignment's `duedate`,
  each submission's `extension`); until then a wrong answer's message, and the page's
  summary, end with `LATER`. An assignment without a due date keeps the key held back. A page
  keeps what it said when it was made: make the feedback again after the last deadline
  (`nbgrader generate_feedback ASSIGNMENT --force`) to show the key.
- "always": the key as graded (stock nbgrader's page).
- "never": right or wrong only.

A grading worker's gradebook holds only the student it grades: the course's last deadline
travels with the assignment (`AssignmentBundle.last_deadline`) and course_grade/engine/task.py
puts it in `last_deadline` (`use_last_deadline`), read then in place of the gradebook's.
"""
from __future__ import annotations

import datetime

from nbgrader.api import Gradebook
from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Enum, Unicode

from course_grade.nbgrader_ext.grade_quiz_answers import collected, error_output, quiz_question, said

SHOW_KEY = ("after_due_date", "always", "never")
LATER = "The key will be shown after the due date."
# resources key: what this preprocessor decided, for the page's summary (feedback_summary.py):
# {"shown": bool, "note": LATER or ""}
DECIDED = "course_quiz_key"


def last_deadline(gradebook, assignment: str) -> datetime.datetime | None:
    """The assignment's last deadline in an open nbgrader `Gradebook`: its due date, or the
    latest one a student's extension gives (naive UTC, as nbgrader keeps them); None when the
    assignment has no due date."""
    found = gradebook.find_assignment(assignment)
    if found.duedate is None:
        return None
    return max([found.duedate, *(found.duedate + s.extension for s in found.submissions if s.extension is not None)])


def key_shown(show_key: str, deadline: datetime.datetime | None, now: datetime.datetime) -> bool:
    """Whether a page made at `now` gives the key, under `show_key` (one of SHOW_KEY) and the
    assignment's last deadline (naive UTC times)."""
    if show_key != "after_due_date":
        return show_key == "always"
    return deadline is not None and now > deadline


def use_last_deadline(config, deadline: str) -> None:
    """Make feedback, in a loaded course config, with the course's last deadline (ISO text,
    naive UTC; '' when the assignment has no due date, as a one-student gradebook says too)."""
    if deadline:
        config.QuizKeyFeedback.last_deadline = deadline


class QuizKeyFeedback(NbGraderPreprocessor):
    """Hold the graded quiz's key back from a feedback page, as `show_key` says."""

    show_key = Enum(SHOW_KEY, default_value="after_due_date", help=(
        "When a feedback page gives the graded quiz's key: 'after_due_date' (once the due date has passed and "
        "no student's extension is still open), 'always', or 'never' (right or wrong only)")).tag(config=True)
    last_deadline = Unicode("", help=(
        "The assignment's last deadline (ISO, UTC) when the gradebook at hand does not hold every student: "
        "the grading workers set it; empty: read from the gradebook")).tag(config=True)

    def deadline(self, resources) -> datetime.datetime | None:
        if self.last_deadline:
            return datetime.datetime.fromisoformat(self.last_deadline)
        info = resources["nbgrader"]
        with Gradebook(info["db_url"]) as gb:
            return last_deadline(gb, info["assignment"])

    def preprocess(self, nb, resources):
        now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
        shown = key_shown(self.show_key, self.deadline(resources) if self.show_key == "after_due_date" else None, now)
        resources[DECIDED] = {"shown": shown, "note": "" if shown or self.show_key == "never" else LATER}
        if shown:
            return nb, resources
        self.record = collected(nb)
        return super().preprocess(nb, resources)

    def preprocess_cell(self, cell, resources, cell_index):
        qid = quiz_question(cell)
        if qid is None:
            return cell, resources
        message = said(cell, qid, self.record, show_key=False)
        if message and resources[DECIDED]["note"]:
            message = f"{message} {LATER}"
        cell.outputs = [error_output(message)] if message else []
        return cell, resources
