"""The lesson's quizzes as ipywidgets radio buttons, and the checks that grade them.

Practice questions give instant feedback. Graded ("test") questions only save the choice:
each click writes `quiz_answers.json` beside the notebook, a file that travels with the
notebook through nbgrader submit/collect; the hidden test cells grade it with the key that
only the instructor's source notebook holds.
"""
from __future__ import annotations

import errno
import functools
import html
import json
import math
import os
import re
import stat
import tomllib
from dataclasses import dataclass, field
from importlib import resources

from autograder.course import ANSWERS_FILE, atomic_write
from autograder.report import fail, guarded

LETTERS = "ABCD"


# ------------------------------------------------------------------------------ the data

@dataclass(frozen=True)
class Question:
    id: str
    number: int
    difficulty: str
    prompt: str
    options: tuple[str, ...]
    hint: str = ""
    # practice only (and the [[server]] set): the answer and its worked solution
    answer: str = ""
    steps: tuple[str, ...] = field(default_factory=tuple)     # two reasoning steps
    quick_check: str = ""                                     # one line
    mistakes: tuple[str, ...] = field(default_factory=tuple)  # shown whatever was chosen
    why: tuple[str, ...] = field(default_factory=tuple)       # per option: right, or tempting and wrong
    explanation: str = ""                                     # optional: more detail, shown last

    def option(self, letter: str) -> str:
        return self.options[LETTERS.index(letter)]

    @property
    def title(self) -> str:
        """How a page names the question: 'Quiz question 2: What does an engine's pool hold?'"""
        return f"Quiz question {self.number}: {_plain(self.prompt)}"


def load(kind: str) -> list[Question]:
    """The questions of one quiz, "practice" or "test", in order."""
    return list(_parse(resources.files("autograder").joinpath("quiz.toml").read_text(encoding="utf-8"), kind))


@functools.lru_cache(maxsize=8)
def _parse(text: str, kind: str) -> tuple[Question, ...]:
    """quiz.toml's questions of one kind, parsed once per text (grading asks ten times a notebook)."""
    tuples = ("options", "steps", "mistakes", "why")
    return tuple(
        Question(number=n, **{**raw, **{k: tuple(raw[k]) for k in tuples if k in raw}})
        for n, raw in enumerate(tomllib.loads(text)[kind], start=1)
    )


def question(kind: str, qid: str) -> Question:
    for q in load(kind):
        if q.id == qid:
            return q
    raise KeyError(qid)


# ---------------------------------------------------------------------- the answers file

class AnswersFileError(Exception):
    """quiz_answers.json exists but cannot be used; the message says why."""


# The answers file's shape: {"format": 1, "answers": {question id: letter}} (what save_answer
# writes; other top-level keys are ignored). No honest file is nested deeper than this, so the
# text is refused before the JSON parser, which recurses once per level, ever sees it.
_DEPTH = 4
_QUESTION_ID = re.compile(r"[A-Za-z0-9_]{1,100}")
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")


def read_answers(path: str = ANSWERS_FILE, max_bytes: int = 65_536) -> dict[str, str] | None:
    """The choices saved in the answers file at `path` (question id -> letter); None when there
    is no file. The one reader of the file, in the kernel and when grading: it never follows a
    link, never waits (a pipe or device is refused), reads at most `max_bytes`, and turns any
    content it cannot use into an AnswersFileError whose message names `path`'s file."""
    name = os.path.basename(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise AnswersFileError(f"{name} is a link, not the file the quiz saves") from None
        raise AnswersFileError(f"{name} cannot be opened ({exc.strerror})") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = "a folder" if stat.S_ISDIR(mode) else "a pipe" if stat.S_ISFIFO(mode) else "not a regular file"
            raise AnswersFileError(f"{name} is {kind}, not the file the quiz saves")
        chunks, size = [], 0
        while size <= max_bytes:
            chunk = os.read(fd, max_bytes + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        raise AnswersFileError(f"{name} cannot be read ({exc.strerror})") from None
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > max_bytes:
        raise AnswersFileError(f"{name} is larger than {max_bytes:,} bytes, far more than the quiz saves")
    return _parse_answers(data, name)


def _refuse_constant(text: str):
    raise AnswersFileError(f"holds {text}, which is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise AnswersFileError(f"holds the number {text[:20]}, too large for JSON")
    return value


def _small_int(text: str) -> int:
    if len(text) > 20:
        raise AnswersFileError(f"holds a number of {len(text):,} digits")
    return int(text)


def _no_duplicates(pairs: list[tuple]) -> dict:
    out = dict(pairs)
    if len(out) != len(pairs):
        twice = next(k for i, (k, _) in enumerate(pairs) if k in dict(pairs[:i]))
        raise AnswersFileError(f"names {twice[:40]!r} twice")
    return out


def _parse_answers(data: bytes, name: str) -> dict[str, str]:
    """The choices in the bytes of an answers file (`name` names it in messages)."""
    unreadable = f"{name} is not readable JSON"
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise AnswersFileError(
            f"{unreadable} (its bytes are not UTF-8 text: {exc.reason} at byte {exc.start})") from None
    if not text.strip():
        raise AnswersFileError(f"{name} is empty")
    depth = deepest = 0
    for bracket in _BRACKET.findall(_STRING.sub('""', text)):
        depth += 1 if bracket in "[{" else -1
        deepest = max(deepest, depth)
    if deepest > _DEPTH:
        raise AnswersFileError(f"{unreadable} (it is nested {deepest:,} levels deep; the quiz saves 2)")
    try:
        data = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_refuse_constant,
                          parse_float=_finite_float, parse_int=_small_int)
    except AnswersFileError as exc:
        raise AnswersFileError(f"{unreadable} (it {exc})") from None
    except (ValueError, RecursionError) as exc:  # json.JSONDecodeError is a ValueError
        raise AnswersFileError(f"{unreadable} ({exc})") from None
    answers = data.get("answers") if isinstance(data, dict) else None
    if (not isinstance(answers, dict) or data.get("format", 1) != 1 or isinstance(data.get("format"), bool)
            or not all(isinstance(k, str) and _QUESTION_ID.fullmatch(k) and isinstance(v, str) and v in LETTERS
                       for k, v in answers.items())):
        raise AnswersFileError(f'{name} does not hold {{"format": 1, "answers": {{question id: "A"-"D"}}}}')
    return answers


def save_answer(qid: str, letter: str, path: str = ANSWERS_FILE) -> None:
    """Record one choice, keeping the others; the file is replaced in one step."""
    if letter not in LETTERS:
        raise ValueError(f"an answer is one of {', '.join(LETTERS)}, not {letter!r}")
    try:
        answers = read_answers(path) or {}
    except AnswersFileError:
        os.replace(path, path + ".unreadable")  # keep the damaged file, start afresh
        answers = {}
    answers[qid] = letter
    with atomic_write(path) as f:
        json.dump({"format": 1, "answers": dict(sorted(answers.items()))}, f, indent=1)


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


class _Looks:
    """The layouts and styles of one quiz's widgets, one of each kind, shared by all of them.

    Each Layout and style is a widget of its own (a comm the kernel opens and the page or the
    grader must handle): made per widget, as ipywidgets does by default, a quiz of 15
    questions opened about 200 of them. CSS classes are given when a widget is made
    (`_dom_classes`), not added after, which would send one update message each."""

    # each made on first use: a quiz without buttons opens no ButtonStyle
    @functools.cached_property
    def plain(self):
        import ipywidgets as w

        return w.Layout()

    @functools.cached_property
    def full_width(self):
        import ipywidgets as w

        return w.Layout(width="auto")

    @functools.cached_property
    def question(self):
        import ipywidgets as w

        return w.Layout(margin="0 0 16px 0")

    @functools.cached_property
    def html(self):
        from ipywidgets.widgets.widget_string import HTMLStyle  # not exported by ipywidgets 8

        return HTMLStyle()

    @functools.cached_property
    def options(self):
        from ipywidgets.widgets.widget_description import DescriptionStyle  # nor is this

        return DescriptionStyle(description_width="0px")

    @functools.cached_property
    def button(self):
        import ipywidgets as w

        return w.ButtonStyle()

    def html_widget(self, value: str = "", *classes: str):
        import ipywidgets as w

        return w.HTML(value, layout=self.plain, style=self.html, _dom_classes=classes)


def _radio(q: Question, value, looks: _Looks):
    import ipywidgets as w

    return w.RadioButtons(
        options=[(f"{letter}. {_plain(text)}", letter) for letter, text in zip(LETTERS, q.options, strict=False)],
        value=value, layout=looks.full_width, style=looks.options, _dom_classes=("course-quiz-options",),
    )


# ipywidgets gives every radio label one fixed line's height, so a long option that wraps
# would spill over the next one: let labels grow, and keep each button beside its first line.
# .course-sr-only: text for screen readers only (visually hidden, still read).
OPTION_STYLE = """<style>
.course-quiz-options .widget-radio-box label { height: auto; line-height: 1.4; display: flex;
  align-items: baseline; margin-bottom: 4px; white-space: normal; }
.course-quiz-options .widget-radio-box input { order: -1; flex: none; height: auto; }
.course-quiz-options .widget-radio-box input:focus-visible { outline: 2px solid currentColor; outline-offset: 2px; }
.course-quiz-hint summary { cursor: pointer; width: fit-content; }
.course-sr-only { position: absolute; width: 1px; height: 1px; margin: -1px; padding: 0;
  overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; border: 0; }
</style>"""

# ipywidgets 8 renders RadioButtons as bare <input type=radio> in <label>s: no group, no
# name. So a screen reader hears no question for the options, and arrow keys do nothing
# (each unnamed radio is a group of its own); and JupyterLab takes arrow keys and Enter,
# even inside an output, to move between cells. This script, shown once with each quiz,
# makes every question's options a radiogroup named by the question's header, gives its
# radios a shared name (arrow keys move and choose; Tab enters and leaves the group), keeps
# plain arrow keys, Space and Enter pressed on a quiz control for that control (JupyterLab
# listens on the document, after the control), and makes the feedback and "answer saved"
# areas polite live regions, so changes are announced. It watches the page, since widgets
# render (and re-render) after it runs. Where scripts do not run (an untrusted notebook),
# the quiz works as ipywidgets makes it: Tab to each option, Space to choose.
A11Y_SCRIPT = """(function () {
  if (window.courseQuizA11y) { window.courseQuizA11y(); return; }
  var next = 0, queued = false;
  var KEYS = ['ArrowUp', 'ArrowDown', 'ArrowLeft', 'ArrowRight', ' ', 'Enter'];
  function enhance() {
    queued = false;
    document.querySelectorAll('.course-quiz-question').forEach(function (box) {
      var header = box.querySelector('.course-quiz-header');
      var group = box.querySelector('.course-quiz-options .widget-radio-box');
      if (!header || !group) return;
      if (!header.id) header.id = 'course-quiz-q' + (++next) + '-' + Date.now().toString(36);
      if (group.getAttribute('role') !== 'radiogroup') group.setAttribute('role', 'radiogroup');
      if (group.getAttribute('aria-labelledby') !== header.id) group.setAttribute('aria-labelledby', header.id);
      group.querySelectorAll('input[type=radio]').forEach(function (input) {
        if (input.name !== header.id) input.name = header.id;
      });
      if (!box.hasAttribute('data-course-quiz-keys')) {
        box.setAttribute('data-course-quiz-keys', '');
        box.addEventListener('keydown', function (event) {
          if (event.ctrlKey || event.metaKey || event.altKey || event.shiftKey) return;
          if (KEYS.indexOf(event.key) < 0 || !event.target.closest('input, button, summary')) return;
          event.stopPropagation();  // the control's own action still happens
        });
      }
      box.querySelectorAll('.course-quiz-live').forEach(function (live) {
        if (live.getAttribute('role') !== 'status') {
          live.setAttribute('role', 'status');
          live.setAttribute('aria-live', 'polite');
        }
      });
    });
  }
  function schedule() { if (!queued) { queued = true; setTimeout(enhance, 0); } }
  window.courseQuizA11y = schedule;
  new MutationObserver(schedule).observe(document.body, {childList: true, subtree: true});
  schedule();
})();"""


def _styled(children: list, looks: _Looks):
    import ipywidgets as w

    return w.VBox([looks.html_widget(OPTION_STYLE), *children], layout=looks.plain)


def _show(widget) -> None:
    from IPython.display import display

    # text/plain is empty, so where the script may not run nothing is shown in its place
    display({"application/javascript": A11Y_SCRIPT, "text/plain": ""}, raw=True)
    display(widget)


def _header(q: Question, kind: str) -> str:
    """The question's number, difficulty and text; it also names the radio group."""
    return (f"<p><b>{'Practice' if kind != 'test' else 'Question'} {q.number}</b> "
            "<span style='border:1px solid currentColor;border-radius:4px;padding:0 4px'>"
            f"<span class='course-sr-only'>difficulty: </span>{q.difficulty}</span></p>"
            f"<p>{_inline(q.prompt)}</p>")


def _question_box(children: list, looks: _Looks):
    import ipywidgets as w

    return w.VBox(children, layout=looks.question, _dom_classes=("course-quiz-question",))


HINT = "<details class='course-quiz-hint'><summary>Hint</summary><p>{hint}</p></details>"
RIGHT = "<span aria-hidden='true'>✅ </span><b>Right.</b>"
WRONG = "<span aria-hidden='true'>❌ </span><b>Not quite.</b>"


def practice_feedback(q: Question, letter: str | None) -> str:
    """What the Check button shows, in the worked format: right or not (and, for a wrong
    choice, why that option is tempting and wrong), Step 1, Step 2, the final answer, a quick
    check and the common mistakes (whatever was chosen); then any further detail."""
    if letter is None:
        return "<p>Pick an answer first: choose an option above, then press Check.</p>"
    parts = []
    if letter == q.answer:
        parts.append(f"<p>{RIGHT} You chose {letter}.</p>")
    else:
        parts.append(f"<p>{WRONG} You chose {letter}.</p>")
        parts.append(f"<p><b>Why not {letter}:</b> {_inline(q.why[LETTERS.index(letter)])}</p>")
    for n, step in enumerate(q.steps, start=1):
        parts.append(f"<p><b>Step {n}:</b> {_inline(step)}</p>")
    parts.append(f"<p><b>Final answer:</b> {q.answer}. {_inline(q.option(q.answer))}</p>")
    parts.append(f"<p><b>Quick check:</b> {_inline(q.quick_check)}</p>")
    items = "".join(f"<li>{_inline(m)}</li>" for m in q.mistakes)
    parts.append(f"<p><b>Common mistakes:</b></p><ul>{items}</ul>")
    if q.explanation:
        parts.append(f"<p><b>More detail:</b> {_inline(q.explanation)}</p>")
    return "".join(parts)


def build_practice(kind: str = "practice", looks: _Looks | None = None) -> list[QuestionView]:
    """Questions with instant feedback: the practice quiz, or an optional extension set of
    the same format ("server": server-side pool sizing, shown in notebooks/postgres.ipynb)."""
    import ipywidgets as w

    looks = looks or _Looks()
    views = []
    for q in load(kind):
        radio = _radio(q, None, looks)
        # a native disclosure: keyboard and screen readers know it
        hint = looks.html_widget(HINT.format(hint=_inline(q.hint)))
        check = w.Button(description="Check", button_style="primary",
                         tooltip=f"Check your answer to practice question {q.number}",
                         layout=looks.plain, style=looks.button)
        feedback = looks.html_widget("", "course-quiz-live", "course-quiz-feedback")  # a live region (A11Y_SCRIPT)

        def on_check(_button, q=q, radio=radio, feedback=feedback):
            feedback.value = practice_feedback(q, radio.value)

        def on_change(_change, feedback=feedback):
            feedback.value = ""  # a new choice clears the old verdict

        check.on_click(on_check)
        radio.observe(on_change, names="value")
        box = _question_box([looks.html_widget(_header(q, kind), "course-quiz-header"),
                             radio, hint, check, feedback], looks)
        views.append(QuestionView(q, radio, feedback, box, check, feedback))
    return views


def build_test(path: str = ANSWERS_FILE, looks: _Looks | None = None) -> tuple[list[QuestionView], str]:
    """The graded quiz, showing any choices already saved. Rendering never writes the file."""
    looks = looks or _Looks()
    notice = ""
    try:
        saved = read_answers(path) or {}
    except AnswersFileError as exc:
        saved = {}
        notice = f"{exc}: your next choice starts a new file (the old one is kept as {path}.unreadable)."
    views = []
    for q in load("test"):
        radio = _radio(q, saved.get(q.id), looks)
        status = looks.html_widget("<i>answer saved</i>" if q.id in saved else "<i>not answered yet</i>",
                                   "course-quiz-live", "course-quiz-status")  # a live region (A11Y_SCRIPT)

        def on_change(change, q=q, status=status):
            if change["new"] is None:
                return
            try:
                save_answer(q.id, change["new"], path)
                status.value = f"<i>answer saved ({change['new']})</i>"
            except OSError as exc:
                status.value = (f"<b>could not save this answer</b> ({exc}): "
                                "check that the notebook's folder is writable.")

        radio.observe(on_change, names="value")
        box = _question_box([looks.html_widget(_header(q, "test"), "course-quiz-header"), radio, status], looks)
        views.append(QuestionView(q, radio, status, box))
    return views, notice


def show_practice(kind: str = "practice") -> None:
    looks = _Looks()
    _show(_styled([v.box for v in build_practice(kind, looks)], looks))


def show_test() -> None:
    looks = _Looks()
    views, notice = build_test(looks=looks)
    header = [looks.html_widget(f"<p><b>{html.escape(notice)}</b></p>")] if notice else []
    _show(_styled(header + [v.box for v in views], looks))


# -------------------------------------------------------------------------------- grading

def verdict(qid: str, correct: str, explanation: str, why: dict[str, str], answers: dict[str, str],
            missing: bool = False, damaged: str = "", show_key: bool = True) -> str | None:
    """What the hidden check says of question `qid` given the saved `answers` (None: right).
    `missing`: no answers file; `damaged`: the AnswersFileError message of an unusable one;
    without `show_key`, a wrong choice is only said to be wrong (no key, no reason: the reason
    a wrong option is wrong can give the answer away).
    The graded quiz is scored outside the kernel with these same sentences
    (course_grade/nbgrader_ext/grade_quiz_answers.py), and a feedback page may hold the key
    back (course_grade/nbgrader_ext/quiz_key_feedback.py)."""
    q = question("test", qid)
    if damaged:
        return f"Question {q.number}: {damaged}; {REANSWER}."
    if missing:
        return (
            f"Question {q.number}: no quiz answers were saved ({ANSWERS_FILE} is missing beside the "
            "notebook): choose an answer for each question in the graded quiz; each click saves it."
        )
    if qid not in answers:
        return f"Question {q.number} has no saved answer: choose one in the graded quiz; the click saves it."
    letter = answers[qid]
    if letter != correct and not show_key:
        return f"Question {q.number}: you chose {letter} ({_plain(q.option(letter))}), which is not right."
    if letter != correct:
        return (
            f"Question {q.number}: you chose {letter} ({_plain(q.option(letter))}), which is not right: "
            f"{_plain(why[letter])} The answer is {correct}: {_plain(explanation)}"
        )
    return None


# how a damaged answers file is fixed (the end of its message)
REANSWER = "answer the quiz again in the notebook (each click rewrites the file)"
UNANSWERED = "Question {number} is not answered yet: choose an answer above; each click saves it."


@guarded
def check_answered(qid: str) -> None:
    """Visible part of a graded quiz cell: says so, on stdout, when the question has no saved
    answer yet, but never fails, so Run All goes on to the end of the notebook. It says
    nothing of right or wrong. The hidden part (check_answer) grades: 0 when unanswered."""
    q = question("test", qid)
    try:
        answers = read_answers() or {}
    except AnswersFileError as exc:
        print(UNANSWERED.format(number=q.number), f"({exc}; your next click starts a new file.)")
        return
    if qid not in answers:
        print(UNANSWERED.format(number=q.number))


@guarded
def check_answer(qid: str, correct: str, explanation: str, why: dict[str, str]) -> None:
    """Hidden part: the saved answer is the key's. The key is passed in from the hidden test.
    (When nbgrader grades, course_grade/nbgrader_ext/grade_quiz_answers.py replaces what this prints with its own
    verdict on the answers file as collected: nothing the kernel does changes a quiz score.)"""
    question("test", qid)
    try:
        answers, damaged = read_answers(), ""
    except AnswersFileError as exc:
        answers, damaged = {}, str(exc)
    message = verdict(qid, correct, explanation, why, answers or {}, missing=answers is None, damaged=damaged)
    if message:
        fail(message)
