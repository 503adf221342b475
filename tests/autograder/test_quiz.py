"""The quiz: its data, its widgets, its answers file, and the secrecy of the graded key."""
from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from autograder import quiz
from autograder.report import CheckFailed
from tests.support.course import RELEASE_NB, ROOT, quiz_key

DATA = tomllib.loads((ROOT / "autograder" / "quiz.toml").read_text())
DIFFICULTIES = ("easy", "medium", "hard")


# ------------------------------------------------------------------------------- the data

def test_question_ids_are_unique_across_both_quizzes():
    ids = [q["id"] for kind in ("practice", "test") for q in DATA[kind]]
    assert len(ids) == len(set(ids))


def test_five_practice_and_ten_graded_questions_of_every_difficulty():
    assert len(DATA["practice"]) == 5 and len(DATA["test"]) == 10
    assert {q["difficulty"] for q in DATA["test"]} == set(DIFFICULTIES)
    assert all(q["difficulty"] in DIFFICULTIES for q in DATA["practice"])


@pytest.mark.parametrize("q", DATA["practice"], ids=lambda q: q["id"])
def test_practice_question_has_one_answer_and_every_option_explained(q):
    assert len(q["options"]) == 4 and len(set(q["options"])) == 4
    assert q["answer"] in quiz.LETTERS  # a single letter: exactly one answer
    assert len(q["why"]) == 4 and all(len(w) > 20 for w in q["why"])
    assert q["why"][quiz.LETTERS.index(q["answer"])].startswith("Right")
    assert sum(w.startswith("Right") for w in q["why"]) == 1
    assert q["hint"]


@pytest.mark.parametrize("q", DATA["practice"] + DATA["server"], ids=lambda q: q["id"])
def test_instant_feedback_questions_have_a_worked_solution(q):
    """Two short reasoning steps, a one-line quick check and a few common mistakes."""
    assert len(q["steps"]) == 2 and all(30 < len(step) < 450 for step in q["steps"])
    assert 20 < len(q["quick_check"]) < 160 and "\n" not in q["quick_check"]
    assert 2 <= len(q["mistakes"]) <= 5 and all(10 < len(m) < 200 for m in q["mistakes"])


def test_nothing_students_see_mentions_an_original_lesson():
    """Students never saw the page the course grew from: the quiz states what is true, with
    no "correction to the original lesson" (quiz.toml ships to them, comments included)."""
    shipped = (ROOT / "autograder" / "quiz.toml").read_text().lower()
    assert "original" not in shipped and "correction" not in shipped
    assert not any("correction" in q for kind in ("practice", "test", "server") for q in DATA[kind])
    for kind in ("practice", "server"):
        for q in quiz.load(kind):
            for letter in quiz.LETTERS:
                shown = quiz.practice_feedback(q, letter).lower()
                assert "original" not in shown and "correction" not in shown


@pytest.mark.parametrize("q", DATA["test"], ids=lambda q: q["id"])
def test_graded_question_ships_without_its_key(q):
    assert len(q["options"]) == 4 and len(set(q["options"])) == 4
    assert not {"answer", "why", "explanation"} & set(q), "the graded key must not ship in the package"


def test_what_current_sqlalchemy_does_is_stated_where_learners_often_go_wrong():
    """The points a learner is most often wrong about are stated plainly in the worked solution
    (each is proven in tests/autograder/test_quiz_claims.py)."""
    def worked(qid):
        q = quiz.question("practice", qid)
        return " ".join([*q.steps, q.quick_check, *q.mistakes])

    assert "not the maximum" in worked("pool_size_parameter")
    assert "pool_size + max_overflow" in worked("pool_size_parameter")
    assert "`sqlalchemy.exc.TimeoutError`" in worked("more_requests_than_connections")
    assert "garbage collector" in worked("forgot_to_close") and "does not wait forever" in worked("forgot_to_close")
    assert "own engine and pool" in worked("sizing_for_many_workers")
    assert "100 − 20 = 80" in worked("sizing_for_many_workers")


def test_the_key_in_the_source_covers_every_graded_question_once():
    key = quiz_key()
    assert set(key) == {q["id"] for q in DATA["test"]}
    for k in key.values():
        assert k["correct"] in quiz.LETTERS
        assert set(k["why"]) == set(quiz.LETTERS) and all(len(w) > 15 for w in k["why"].values())
        assert k["why"][k["correct"]].startswith("Right") and sum(w.startswith("Right") for w in k["why"].values()) == 1
        assert len(k["explanation"]) > 40


@pytest.mark.slow  # builds the package's wheel (pip or uv, ~2 s of CPU)
def test_the_key_is_in_nothing_students_receive(tmp_path):
    """Neither the release notebook nor the installed package holds any of the key's text."""
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(tmp_path), str(ROOT)], capture_output=True, text=True)
    if built.returncode:  # pip without setuptools in the venv: build with uv instead
        built = subprocess.run(["uv", "build", "--wheel", "-q", "-o", str(tmp_path), str(ROOT)], capture_output=True,
                               text=True)
    assert built.returncode == 0, built.stderr
    import zipfile

    (wheel,) = tmp_path.glob("*.whl")
    shipped = "".join(zipfile.ZipFile(wheel).read(n).decode() for n in zipfile.ZipFile(wheel).namelist()
                      if n.startswith("autograder/"))
    release = RELEASE_NB.read_text()
    assert "quiz.toml" in "".join(zipfile.ZipFile(wheel).namelist())
    for qid, k in quiz_key().items():
        for text in [k["explanation"], *k["why"].values()]:
            assert text not in shipped and json.dumps(text)[1:-1] not in release, f"{qid}: key text leaked"
    assert "check_answer(" not in release


# ---------------------------------------------------------------------------- the widgets

def _in_order(text: str, *parts: str) -> bool:
    at = 0
    for part in parts:
        at = text.find(part, at)
        if at < 0:
            return False
    return True


def test_practice_check_shows_the_worked_solution():
    views = quiz.build_practice()
    view = next(v for v in views if v.question.id == "forgot_to_close")
    q = view.question
    view.check.click()
    assert "Pick an answer first" in view.feedback.value
    view.choose("D")
    view.check.click()
    wrong = view.feedback.value
    assert _in_order(wrong, "Not quite.", "You chose D", "Why not D:", "bounded by <code>pool_timeout</code>",
                     "Step 1:", quiz._inline(q.steps[0]), "Step 2:", quiz._inline(q.steps[1]),
                     "Final answer:</b> C. ", quiz._inline(q.options[2]),
                     "Quick check:", quiz._inline(q.quick_check), "Common mistakes:", *map(quiz._inline, q.mistakes))
    assert "Right." not in wrong
    view.choose("C")
    assert view.feedback.value == ""  # a new choice clears the old verdict
    view.check.click()
    right = view.feedback.value
    assert _in_order(right, "Right.", "You chose C", "Step 1:", "Step 2:", "Final answer:</b> C. ", "Quick check:",
                     "Common mistakes:", *map(quiz._inline, q.mistakes))  # the mistakes, whatever was chosen
    assert "Not quite" not in right and "Why not" not in right
    assert "More detail" not in right  # practice questions have no extra explanation


def test_server_questions_add_their_explanation_as_more_detail():
    q = quiz.load("server")[0]
    shown = quiz.practice_feedback(q, q.answer)
    assert _in_order(shown, "Step 1:", "Step 2:", "Final answer:", "Quick check:", "Common mistakes:",
                     "More detail:", quiz._inline(q.explanation))


def test_every_question_shows_its_difficulty_and_practice_offers_a_hint():
    for view in quiz.build_practice():
        header, radio, hint, check, _ = view.box.children
        assert view.question.difficulty in header.value and f"Practice {view.question.number}" in header.value
        assert "<summary>Hint</summary>" in hint.value and quiz._inline(view.question.hint) in hint.value
        assert [value for _, value in radio.options] == list(quiz.LETTERS) and radio.value is None


def test_a_graded_choice_is_saved_at_once_and_rendering_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    views, notice = quiz.build_test()
    assert notice == "" and not (tmp_path / quiz.ANSWERS_FILE).exists()
    views[2].choose("C")
    assert json.loads((tmp_path / quiz.ANSWERS_FILE).read_text())["answers"] == {views[2].question.id: "C"}
    assert "answer saved" in views[2].status.value and "not answered yet" in views[0].status.value
    again, _ = quiz.build_test()
    assert again[2].radio.value == "C" and "answer saved" in again[2].status.value
    assert "Right" not in again[2].status.value and "not right" not in again[2].status.value


def test_a_damaged_answers_file_is_kept_and_a_new_one_started(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / quiz.ANSWERS_FILE).write_text("{broken")
    views, notice = quiz.build_test()
    assert "not readable JSON" in notice and all(v.radio.value is None for v in views)
    views[0].choose("A")
    assert (tmp_path / (quiz.ANSWERS_FILE + ".unreadable")).read_text() == "{broken"
    assert quiz.read_answers() == {views[0].question.id: "A"}


# ---------------------------------------------------------------------------- the checks

def test_widgets_carry_the_hooks_of_the_accessibility_script():
    """A11Y_SCRIPT finds each question, its header (the group's name), its options and its live
    region by these classes; the browser test checks what it makes of them."""
    shown = [(v.box, v.feedback) for v in quiz.build_practice()] + [(v.box, v.status) for v in quiz.build_test()[0]]
    for box, live in shown:
        header, radio = box.children[:2]
        assert "course-quiz-question" in box._dom_classes and "course-quiz-header" in header._dom_classes
        assert "course-quiz-options" in radio._dom_classes and "course-quiz-live" in live._dom_classes
    for name in (".course-quiz-question", ".course-quiz-header", ".course-quiz-options", ".course-quiz-live",
                 "radiogroup", "aria-labelledby", "aria-live", "polite"):
        assert name in quiz.A11Y_SCRIPT


def test_show_displays_the_script_with_an_empty_text_fallback(monkeypatch):
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda obj, **kw: shown.append((obj, kw)))
    quiz.show_practice()
    (bundle, kw), (widget, _) = shown
    assert kw == {"raw": True} and bundle == {"application/javascript": quiz.A11Y_SCRIPT, "text/plain": ""}
    assert len(widget.children) == 1 + 5


def _tree(widget) -> list:
    return [widget] + [w for child in getattr(widget, "children", ()) for w in _tree(child)]


@pytest.mark.parametrize("show", [quiz.show_practice, quiz.show_test])
def test_a_quiz_opens_one_layout_and_style_of_each_kind_and_sends_no_update(monkeypatch, show):
    """Every Layout and style is a widget (a comm the kernel opens, the page renders and the
    grader handles): a quiz shares one of each kind, and gives CSS classes when a widget is
    made rather than after (each addition after is an update message)."""
    from ipywidgets import Widget
    from ipywidgets.widgets.widget import _instances

    shown, sent = [], []
    monkeypatch.setattr("IPython.display.display", lambda obj, **kw: shown.append(obj))
    monkeypatch.setattr(Widget, "send_state", lambda self, key=None: sent.append((type(self).__name__, key)))
    before = set(_instances)
    show()
    made = [_instances[k] for k in set(_instances) - before]
    tree = _tree(shown[-1])
    layouts = {id(w.layout) for w in tree}
    styles = {id(w.style) for w in tree if hasattr(w, "style")}
    assert len(layouts) <= 3 and len(styles) <= 3, (len(layouts), len(styles))
    assert len(made) == len(tree) + len(layouts) + len(styles), "every widget made is in the quiz, or shared"
    assert sent == [], f"widgets changed after they were made: {sent[:5]}"


@pytest.mark.parametrize("content, words", [
    (None, "quiz_answers.json is missing"),
    ("not json", "not readable JSON"),
    ('{"answers": {"url_driver": "E"}}', 'does not hold'),
    ('{"answers": {}}', "has no saved answer"),
])
def test_unanswered_visible_part_says_so_and_passes_hidden_part_fails(tmp_path, monkeypatch, capsys, content, words):
    """The visible part never stops Run All; the hidden part still scores an unanswered
    question (or a missing or damaged file) 0, with a sentence."""
    monkeypatch.chdir(tmp_path)
    if content is not None:
        Path(quiz.ANSWERS_FILE).write_text(content)
    quiz.check_answered("url_driver")  # no exception
    out, err = capsys.readouterr()
    assert out.startswith("Question 1 is not answered yet: choose an answer above; each click saves it.") and not err
    why = {letter: f"why {letter}." for letter in quiz.LETTERS}
    with pytest.raises(CheckFailed, match=words):
        quiz.check_answer("url_driver", correct="B", explanation="because.", why=why)


def test_answered_visible_part_prints_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    quiz.save_answer("url_driver", "C")
    quiz.check_answered("url_driver")
    assert capsys.readouterr() == ("", "")


def test_check_answer_grades_against_the_key_it_is_given(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    quiz.save_answer("url_driver", "A")
    quiz.check_answered("url_driver")  # answered: the visible part passes whatever the choice
    why = {letter: f"why {letter}." for letter in quiz.LETTERS}
    with pytest.raises(CheckFailed, match="Question 1: you chose A .*why A. The answer is B: because."):
        quiz.check_answer("url_driver", correct="B", explanation="because.", why=why)
    quiz.save_answer("url_driver", "B")
    quiz.check_answer("url_driver", correct="B", explanation="because.", why=why)
