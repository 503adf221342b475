"""The lesson's quizzes as ipywidgets radio buttons, and the checks that grade them.

Practice questions give instant feedback. Graded ("test") questions only save the choice:
each click writes `quiz_answers.json` beside the notebook, a file that travels with the
notebook through nbgrader submit/collect; the hidden test cells grade it with the key that
only the instructor's source notebook holds.
"""
from __future__ import annotations

import html
import json
import os
import re
import tomllib
from dataclasses import dataclass, field
from importlib import resources

from autograder.report import fail, guarded

ANSWERS_FILE = "quiz_answers.json"
LETTERS = "ABCD"
DIFFICULTIES = ("easy", "medium", "hard")


# ------------------------------------------------------------------------------ the data

@dataclass(frozen=True)
class Question:
    id: str
    number: int
    difficulty: str
    prompt: str
    options: tuple[str, ...]
    hint: str = ""
    answer: str = ""          # practice only
    explanation: str = ""     # practice only
    correction: str = ""      # practice only: where the original lesson was wrong
    why: tuple[str, ...] = field(default_factory=tuple)  # practice only, per option

    def option(self, letter: str) -> str:
        return self.options[LETTERS.index(letter)]


def load(kind: str) -> list[Question]:
    """The questions of one quiz, "practice" or "test", in order."""
    data = tomllib.loads(resources.files("autograder").joinpath("quiz.toml").read_text(encoding="utf-8"))
    return [
        Question(number=n, **{**raw, "options": tuple(raw["options"]), "why": tuple(raw.get("why", ()))})
        for n, raw in enumerate(data[kind], start=1)
    ]


def question(kind: str, qid: str) -> Question:
    for q in load(kind):
        if q.id == qid:
            return q
    raise KeyError(qid)


# ---------------------------------------------------------------------- the answers file

class AnswersFileError(Exception):
    """quiz_answers.json exists but cannot be used; the message says why."""


def read_answers(path: str = ANSWERS_FILE) -> dict[str, str]:
    """Saved choices, question id -> letter. {} when nothing was saved yet."""
    if not os.path.exists(path):
        return {}
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AnswersFileError(f"{path} is not readable JSON ({exc})") from None
    answers = data.get("answers") if isinstance(data, dict) else None
    if not isinstance(answers, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and v in LETTERS for k, v in answers.items()
    ):
        raise AnswersFileError(f'{path} does not hold {{"answers": {{question id: "A"-"D"}}}}')
    return answers


def save_answer(qid: str, letter: str, path: str = ANSWERS_FILE) -> None:
    """Record one choice, keeping the others; the file is replaced in one step."""
    if letter not in LETTERS:
        raise ValueError(f"an answer is one of {', '.join(LETTERS)}, not {letter!r}")
    try:
        answers = read_answers(path)
    except AnswersFileError:
        os.replace(path, path + ".unreadable")  # keep the damaged file, start afresh
        answers = {}
    answers[qid] = letter
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump({"format": 1, "answers": dict(sorted(answers.items()))}, f, indent=1)
    os.replace(tmp, path)


# ------------------------------------------------------------------------------ rendering

def _inline(text: str) -> str:
    """Escape for HTML, showing `code` as code."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text, quote=False))


def _plain(text: str) -> str:
    return text.replace("`", "")


@dataclass
class QuestionView:
    question: Question
    radio: object
    status: object
    box: object
    check: object = None
    feedback: object = None

    def choose(self, letter: str) -> None:
        """Select an option, as a click would (used by tests and demos)."""
        self.radio.value = letter


def _radio(q: Question, value):
    import ipywidgets as w

    radio = w.RadioButtons(
        options=[(f"{letter}. {_plain(text)}", letter) for letter, text in zip(LETTERS, q.options)],
        value=value, layout=w.Layout(width="auto"), style={"description_width": "0px"},
    )
    radio.add_class("course-quiz-options")
    return radio


# ipywidgets gives every radio label one fixed line's height, so a long option that wraps
# would spill over the next one: let labels grow, and keep each button beside its first line.
OPTION_STYLE = """<style>
.course-quiz-options .widget-radio-box label { height: auto; line-height: 1.4; display: flex;
  align-items: baseline; margin-bottom: 4px; white-space: normal; }
.course-quiz-options .widget-radio-box input { order: -1; flex: none; height: auto; }
</style>"""


def _styled(children: list):
    import ipywidgets as w

    return w.VBox([w.HTML(OPTION_STYLE), *children])


def _header(q: Question, kind: str) -> str:
    return (f"<p><b>{'Practice' if kind == 'practice' else 'Question'} {q.number}</b> "
            f"<span style='border:1px solid #888;border-radius:4px;padding:0 4px'>{q.difficulty}</span></p>"
            f"<p>{_inline(q.prompt)}</p>")


def practice_feedback(q: Question, letter: str | None) -> str:
    """What the Check button shows: right or wrong, the explanation, the common mistake."""
    if letter is None:
        return "<p>Pick an answer first.</p>"
    parts = []
    if letter == q.answer:
        parts.append(f"<p>✅ <b>Right.</b> {_inline(q.explanation)}</p>")
    else:
        why = q.why[LETTERS.index(letter)]
        parts.append(f"<p>❌ <b>Not quite.</b> <i>Common mistake:</i> {_inline(why)}</p>")
        parts.append(f"<p>{_inline(q.explanation)}</p>")
    if q.correction:
        parts.append(f"<p><i>Correction to the original lesson:</i> {_inline(q.correction)}</p>")
    return "".join(parts)


def build_practice(kind: str = "practice") -> list[QuestionView]:
    """Questions with instant feedback: the practice quiz, or an optional extension set of
    the same format ("server": server-side pool sizing, shown in notebooks/postgres.ipynb)."""
    import ipywidgets as w

    views = []
    for q in load(kind):
        radio = _radio(q, None)
        hint = w.Accordion(children=[w.HTML(f"<p>{_inline(q.hint)}</p>")], titles=("Hint",), selected_index=None)
        check = w.Button(description="Check", button_style="primary", tooltip="Check your answer")
        feedback = w.HTML()

        def on_check(_button, q=q, radio=radio, feedback=feedback):
            feedback.value = practice_feedback(q, radio.value)

        def on_change(_change, feedback=feedback):
            feedback.value = ""  # a new choice clears the old verdict

        check.on_click(on_check)
        radio.observe(on_change, names="value")
        box = w.VBox([w.HTML(_header(q, "practice")), radio, hint, check, feedback],
                     layout=w.Layout(margin="0 0 16px 0"))
        views.append(QuestionView(q, radio, feedback, box, check, feedback))
    return views


def build_test(path: str = ANSWERS_FILE) -> tuple[list[QuestionView], str]:
    """The graded quiz, showing any choices already saved. Rendering never writes the file."""
    import ipywidgets as w

    notice = ""
    try:
        saved = read_answers(path)
    except AnswersFileError as exc:
        saved = {}
        notice = f"{exc}: your next choice starts a new file (the old one is kept as {path}.unreadable)."
    views = []
    for q in load("test"):
        radio = _radio(q, saved.get(q.id))
        status = w.HTML("<i>answer saved</i>" if q.id in saved else "<i>not answered yet</i>")

        def on_change(change, q=q, status=status):
            if change["new"] is None:
                return
            try:
                save_answer(q.id, change["new"], path)
                status.value = f"<i>answer saved ({change['new']})</i>"
            except OSError as exc:
                status.value = f"<b>could not save this answer</b> ({exc}): check that the notebook's folder is writable."

        radio.observe(on_change, names="value")
        box = w.VBox([w.HTML(_header(q, "test")), radio, status], layout=w.Layout(margin="0 0 16px 0"))
        views.append(QuestionView(q, radio, status, box))
    return views, notice


def show_practice(kind: str = "practice") -> None:
    from IPython.display import display

    display(_styled([v.box for v in build_practice(kind)]))


def show_test() -> None:
    import ipywidgets as w
    from IPython.display import display

    views, notice = build_test()
    header = [w.HTML(f"<p><b>{html.escape(notice)}</b></p>")] if notice else []
    display(_styled(header + [v.box for v in views]))


# -------------------------------------------------------------------------------- grading

def _saved_answer(qid: str) -> tuple[Question, str]:
    q = question("test", qid)
    try:
        answers = read_answers()
    except AnswersFileError as exc:
        fail(f"Question {q.number}: {exc}; answer the quiz again in the notebook (each click rewrites the file).")
    if not os.path.exists(ANSWERS_FILE):
        fail(
            f"Question {q.number}: no quiz answers were saved ({ANSWERS_FILE} is missing beside the "
            "notebook): choose an answer for each question in the graded quiz; each click saves it."
        )
    if qid not in answers:
        fail(f"Question {q.number} has no saved answer: choose one in the graded quiz; the click saves it.")
    return q, answers[qid]


@guarded
def check_answered(qid: str) -> None:
    """Visible part of a graded quiz cell: an answer is saved (says nothing of right or wrong)."""
    _saved_answer(qid)


@guarded
def check_answer(qid: str, correct: str, explanation: str, why: dict[str, str]) -> None:
    """Hidden part: the saved answer is the key's. The key is passed in from the hidden test."""
    q, letter = _saved_answer(qid)
    if letter != correct:
        fail(
            f"Question {q.number}: you chose {letter} ({_plain(q.option(letter))}), which is not right: "
            f"{_plain(why[letter])} The answer is {correct}: {_plain(explanation)}"
        )
