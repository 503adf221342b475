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
from course import RELEASE_NB, ROOT, quiz_key

DATA = tomllib.loads((ROOT / "autograder" / "quiz.toml").read_text())


# ------------------------------------------------------------------------------- the data

def test_question_ids_are_unique_across_both_quizzes():
    ids = [q["id"] for kind in ("practice", "test") for q in DATA[kind]]
    assert len(ids) == len(set(ids))


def test_five_practice_and_ten_graded_questions_of_every_difficulty():
    assert len(DATA["practice"]) == 5 and len(DATA["test"]) == 10
    assert {q["difficulty"] for q in DATA["test"]} == set(quiz.DIFFICULTIES)
    assert all(q["difficulty"] in quiz.DIFFICULTIES for q in DATA["practice"])


@pytest.mark.parametrize("q", DATA["practice"], ids=lambda q: q["id"])
def test_practice_question_has_one_answer_and_every_option_explained(q):
    assert len(q["options"]) == 4 and len(set(q["options"])) == 4
    assert q["answer"] in quiz.LETTERS  # a single letter: exactly one answer
    assert len(q["why"]) == 4 and all(len(w) > 20 for w in q["why"])
    assert q["why"][quiz.LETTERS.index(q["answer"])].startswith("Right")
    assert sum(w.startswith("Right") for w in q["why"]) == 1
    assert q["hint"] and q["explanation"]


@pytest.mark.parametrize("q", DATA["test"], ids=lambda q: q["id"])
def test_graded_question_ships_without_its_key(q):
    assert len(q["options"]) == 4 and len(set(q["options"])) == 4
    assert not {"answer", "why", "explanation"} & set(q), "the graded key must not ship in the package"


def test_corrections_of_the_original_lesson_are_stated():
    corrected = {q["id"] for q in DATA["practice"] if q.get("correction")}
    assert corrected >= {"pool_size_parameter", "more_requests_than_connections", "forgot_to_close", "sizing_for_many_workers"}


def test_the_key_in_the_source_covers_every_graded_question_once():
    key = quiz_key()
    assert set(key) == {q["id"] for q in DATA["test"]}
    for qid, k in key.items():
        assert k["correct"] in quiz.LETTERS
        assert set(k["why"]) == set(quiz.LETTERS) and all(len(w) > 15 for w in k["why"].values())
        assert k["why"][k["correct"]].startswith("Right") and sum(w.startswith("Right") for w in k["why"].values()) == 1
        assert len(k["explanation"]) > 40


def test_the_key_is_in_nothing_students_receive(tmp_path):
    """Neither the release notebook nor the installed package holds any of the key's text."""
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(tmp_path), str(ROOT)], capture_output=True, text=True)
    if built.returncode:  # pip without setuptools in the venv: build with uv instead
        built = subprocess.run(["uv", "build", "--wheel", "-q", "-o", str(tmp_path), str(ROOT)], capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    import zipfile

    (wheel,) = tmp_path.glob("*.whl")
    shipped = "".join(zipfile.ZipFile(wheel).read(n).decode() for n in zipfile.ZipFile(wheel).namelist() if n.startswith("autograder/"))
    release = RELEASE_NB.read_text()
    assert "quiz.toml" in "".join(zipfile.ZipFile(wheel).namelist())
    for qid, k in quiz_key().items():
        for text in [k["explanation"], *k["why"].values()]:
            assert text not in shipped and json.dumps(text)[1:-1] not in release, f"{qid}: key text leaked"
    assert "check_answer(" not in release


# ---------------------------------------------------------------------------- the widgets

def test_practice_check_says_right_or_wrong_and_why():
    views = quiz.build_practice()
    view = next(v for v in views if v.question.id == "forgot_to_close")
    view.check.click()
    assert "Pick an answer first" in view.feedback.value
    view.choose("D")
    view.check.click()
    assert "Not quite" in view.feedback.value and "Common mistake" in view.feedback.value
    assert "bounded by <code>pool_timeout</code>" in view.feedback.value  # why D is tempting and wrong
    assert "Correction to the original lesson" in view.feedback.value
    view.choose("C")
    assert view.feedback.value == ""  # a new choice clears the old verdict
    view.check.click()
    assert "Right." in view.feedback.value


def test_every_question_shows_its_difficulty_and_practice_offers_a_hint():
    for view in quiz.build_practice():
        header, radio, hint, check, _ = view.box.children
        assert view.question.difficulty in header.value
        assert hint.titles == ("Hint",) and quiz._plain(view.question.hint)[:20] in hint.children[0].value.replace("<code>", "").replace("</code>", "")
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

@pytest.mark.parametrize("content, words", [
    (None, "quiz_answers.json is missing"),
    ("not json", "not readable JSON"),
    ('{"answers": {"url_driver": "E"}}', 'does not hold'),
    ('{"answers": {}}', "has no saved answer"),
])
def test_check_answered_fails_with_a_sentence(tmp_path, monkeypatch, content, words):
    monkeypatch.chdir(tmp_path)
    if content is not None:
        Path(quiz.ANSWERS_FILE).write_text(content)
    with pytest.raises(CheckFailed, match=words):
        quiz.check_answered("url_driver")


def test_check_answer_grades_against_the_key_it_is_given(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    quiz.save_answer("url_driver", "A")
    quiz.check_answered("url_driver")  # answered: the visible part passes whatever the choice
    why = {letter: f"why {letter}." for letter in quiz.LETTERS}
    with pytest.raises(CheckFailed, match="Question 1: you chose A .*why A. The answer is B: because."):
        quiz.check_answer("url_driver", correct="B", explanation="because.", why=why)
    quiz.save_answer("url_driver", "B")
    quiz.check_answer("url_driver", correct="B", explanation="because.", why=why)
