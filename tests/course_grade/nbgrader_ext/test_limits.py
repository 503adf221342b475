"""Limits that hold (issue 19): the quiz answers file is read by one bounded reader
(`autograder.quiz.read_answers`), and every kind of cell output is cut to a size
(`course_grade.nbgrader_ext.limit_output_size.LimitOutputSize`) without changing a score.

Fast: the reader on every kind of bad content and on honest files; the output limiter on
outputs a kernel could leave, scored by nbgrader's own `determine_grade`. Slow: stock
`nbgrader autograde` and `generate_feedback` on the solution with a nested-bomb answers file
and cells that raise, display and print far too much.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook, new_output
from nbgrader.utils import determine_grade

from autograder import quiz
from course_grade.nbgrader_ext.collect_quiz_answers import METADATA_KEY, CollectQuizAnswers
from course_grade.nbgrader_ext.limit_output_size import LimitOutputSize
from tests.support.course import answers_file, right_answers

HONEST = right_answers()


def write(folder: Path, content: bytes | str) -> str:
    path = folder / quiz.ANSWERS_FILE
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return str(path)


def refused(path: str, max_bytes: int = 65_536) -> str:
    with pytest.raises(quiz.AnswersFileError) as caught:
        quiz.read_answers(path, max_bytes)
    return str(caught.value)


# ------------------------------------------------------------- the reader: honest files

@pytest.mark.parametrize("content", [
    answers_file(HONEST),
    # what save_answer writes: pretty-printed
    json.dumps({"format": 1, "answers": dict(sorted(HONEST.items()))}, indent=1),
    # keys the format does not know are ignored
    json.dumps({"format": 1, "saved_by": {"tool": "jupyterlab", "versions": [4, 2]}, "answers": HONEST, "note": None}),
], ids=["compact", "pretty-printed", "extra-keys"])
def test_honest_files_are_read(tmp_path, content):
    assert quiz.read_answers(write(tmp_path, content)) == HONEST


def test_what_the_quiz_saves_is_read_back(tmp_path):
    path = str(tmp_path / quiz.ANSWERS_FILE)
    for qid, letter in HONEST.items():
        quiz.save_answer(qid, letter, path)
    assert quiz.read_answers(path) == HONEST


def test_no_file_is_not_an_error(tmp_path):
    assert quiz.read_answers(str(tmp_path / quiz.ANSWERS_FILE)) is None


# --------------------------------------------------------- the reader: every bad content

DEPTH_BOMB = "[" * 60_000  # under the size cap: the depth check refuses it
BAD = {
    "nested-bomb": (DEPTH_BOMB, "nested 60,000 levels deep"),
    "nested-bomb-closed": ('{"format": 1, "answers": {}, "x": ' + "[" * 5000 + "]" * 5000 + "}",
                           "nested 5,001 levels deep"),
    "nested-answers": ('{"answers": {"url_driver": {"a": {"b": {"c": "A"}}}}}', "nested 5 levels deep"),
    "not-utf8": (b'{"answers": {"url_driver": "\xff"}}', "bytes are not UTF-8"),
    "nan": ('{"format": 1, "answers": {}, "x": NaN}', "holds NaN, which is not a JSON number"),
    "infinity": ('{"format": 1, "answers": {}, "x": -Infinity}', "holds -Infinity"),
    "huge-float": ('{"format": 1, "answers": {}, "x": 1e999999}', "holds the number 1e999999, too large"),
    "long-int": ('{"format": 1e0, "answers": {}, "x": ' + "9" * 5000 + "}", "holds a number of 5,000 digits"),
    "duplicate-key": ('{"format": 1, "answers": {"url_driver": "A", "url_driver": "B"}}', "names 'url_driver' twice"),
    "duplicate-top-key": ('{"answers": {}, "answers": {"url_driver": "A"}}', "names 'answers' twice"),
    "empty": ("", "is empty"),
    "blank": (" \n\t", "is empty"),
    "truncated": ('{"answers": {"url_driver": "B",', "is not readable JSON (Expecting"),
    "bom": ("\ufeff" + answers_file(HONEST), "is not readable JSON (Unexpected UTF-8 BOM"),
    "a-list": ('["A", "B"]', "does not hold"),
    "a-string": ('"A"', "does not hold"),
    "answers-a-list": ('{"answers": ["A"]}', "does not hold"),
    "no-answers": ('{"format": 1}', "does not hold"),
    "wrong-letter": ('{"answers": {"url_driver": "E"}}', "does not hold"),
    "letter-a-number": ('{"answers": {"url_driver": 1}}', "does not hold"),
    "format-2": ('{"format": 2, "answers": {}}', "does not hold"),
    "format-true": ('{"format": true, "answers": {}}', "does not hold"),
    "lone-surrogate-id": ('{"answers": {"\\ud800": "A"}}', "does not hold"),
    "oversized": (answers_file(HONEST) + " " * 70_000, "larger than 65,536 bytes"),
    "bracket-bomb": ("[" * 100_000, "larger than 65,536 bytes"),
}


@pytest.mark.parametrize("content, words", BAD.values(), ids=BAD.keys())
def test_any_bad_content_is_one_sentence_naming_the_file(tmp_path, content, words):
    message = refused(write(tmp_path, content))
    assert message.startswith("quiz_answers.json ") and words in message, message
    assert "\n" not in message and len(message) < 300


def test_brackets_inside_strings_do_not_count_as_nesting(tmp_path):
    content = json.dumps({"format": 1, "answers": HONEST, "note": "[[[[[{{{{{ \" [[[["})
    assert quiz.read_answers(write(tmp_path, content)) == HONEST


def test_a_ten_million_digit_number_is_refused_by_size_and_by_the_parser(tmp_path):
    """Python's int() refuses more than 4,300 digits with a ValueError: never let it escape."""
    path = write(tmp_path, '{"format": 1, "answers": {}, "x": ' + "7" * 10_000_000 + "}")
    assert "larger than 65,536 bytes" in refused(path)
    assert "holds a number of 10,000,000 digits" in refused(path, max_bytes=20_000_000)


def test_a_link_a_pipe_a_folder_or_a_device_is_refused_without_waiting(tmp_path):
    target = tmp_path / "elsewhere.json"
    target.write_text(answers_file(HONEST))
    cases = {"link": tmp_path / "link", "dangling": tmp_path / "dangling", "pipe": tmp_path / "pipe",
             "folder": tmp_path / "folder", "device": tmp_path / "device"}
    for folder in cases.values():
        folder.mkdir()
    (cases["link"] / quiz.ANSWERS_FILE).symlink_to(target)
    (cases["dangling"] / quiz.ANSWERS_FILE).symlink_to(tmp_path / "nowhere.json")
    os.mkfifo(cases["pipe"] / quiz.ANSWERS_FILE)  # opening it for reading would block without O_NONBLOCK
    (cases["folder"] / quiz.ANSWERS_FILE).mkdir()
    (cases["device"] / quiz.ANSWERS_FILE).symlink_to("/dev/zero")
    said = {name: refused(str(folder / quiz.ANSWERS_FILE)) for name, folder in cases.items()}
    assert said == {
        "link": "quiz_answers.json is a link, not the file the quiz saves",
        "dangling": "quiz_answers.json is a link, not the file the quiz saves",
        "pipe": "quiz_answers.json is a pipe, not the file the quiz saves",
        "folder": "quiz_answers.json is a folder, not the file the quiz saves",
        "device": "quiz_answers.json is a link, not the file the quiz saves",
    }


def test_the_collector_the_kernel_and_the_item_analysis_use_the_one_reader(tmp_path, monkeypatch):
    """Each reader of the file gives the same result for the same bomb: the collector records
    the message, the in-kernel check fails with it, the item analysis counts no answers."""
    from autograder.report import CheckFailed
    from course_grade.reports.failures import quiz_group
    from course_grade.reports.readers import quiz_answers, quiz_answers_state

    write(tmp_path, DEPTH_BOMB)
    nb, _ = CollectQuizAnswers().preprocess(new_notebook(), {"metadata": {"path": str(tmp_path)}})
    record = nb.metadata[METADATA_KEY]
    assert record["state"] == "damaged" and "nested 60,000 levels deep" in record["error"]
    monkeypatch.chdir(tmp_path)
    key = {"correct": "A", "explanation": "e", "why": dict.fromkeys("ABCD", "w")}
    with pytest.raises(CheckFailed) as caught:
        quiz.check_answer("url_driver", **key)
    assert str(caught.value) == f"Question 1: {record['error']}; {quiz.REANSWER}."
    assert quiz_answers(tmp_path) is None
    assert quiz_group(*quiz_answers_state(tmp_path), "url_driver")[0] == "quiz:damaged"
    # the collector's limit is its own traitlet
    write(tmp_path, answers_file(HONEST))
    small = CollectQuizAnswers(max_bytes=100)
    nb, _ = small.preprocess(new_notebook(), {"metadata": {"path": str(tmp_path)}})
    assert "larger than 100 bytes" in nb.metadata[METADATA_KEY]["error"]


# ------------------------------------------------------------------------- output limits

def graded_cell(*outputs, points: int = 2):
    """A graded test cell holding `outputs`, as nbclient left them."""
    cell = new_code_cell("check(globals())", metadata={"nbgrader": {
        "grade": True, "solution": False, "locked": True, "points": points, "grade_id": "t", "schema_version": 3}})
    cell.outputs = [nbformat.from_dict(o) for o in outputs]
    return cell


def limited(*cells, **limits):
    nb = new_notebook(cells=list(cells))
    nb, _ = LimitOutputSize(**limits).preprocess(nb, {})
    nbformat.validate(nb)  # still a valid notebook, every output a valid nbformat output
    return nb


def size(outputs) -> int:
    """The bytes `outputs` add to a notebook file."""
    cell = new_code_cell("x")
    empty = len(nbformat.writes(new_notebook(cells=[cell])).encode())
    cell.outputs = outputs if isinstance(outputs, list) else [outputs]
    return len(nbformat.writes(new_notebook(cells=[cell])).encode()) - empty


def huge_error(n: int = 10_000_000):
    return {"output_type": "error", "ename": "ValueError", "evalue": "x" * n,
            "traceback": ["\x1b[0;31m---------\x1b[0m", "Cell In[3], line 1",
                          f"\x1b[0;31mValueError\x1b[0m: {'x' * n}"]}


def test_a_huge_error_is_cut_to_a_valid_error_that_says_so():
    nb = limited(graded_cell(huge_error()))
    (out,) = nb.cells[0].outputs
    assert out.output_type == "error" and out.ename == "ValueError"
    assert out.evalue.startswith("x" * 20_000) and out.evalue.endswith("[output cut: 10,000,000 characters in all]\n")
    assert len(out.evalue) < 20_100 and all(len(line) < 20_100 for line in out.traceback)
    assert size(out) < 60_000
    assert determine_grade(nb.cells[0]) == (0, 2)


def test_a_long_traceback_keeps_its_head_and_the_line_that_says_what_was_raised():
    frames = [f"File deep.py:1, in deep(n)\n  {'y' * 4000}" for _ in range(3000)]
    huge_name = "E" * 1_000_000
    nb = limited(graded_cell({"output_type": "error", "ename": huge_name, "evalue": "",
                            "traceback": ["Traceback (most recent call last)", *frames,
                                          "RecursionError: maximum recursion depth"]}))
    (out,) = nb.cells[0].outputs
    assert out.traceback[0] == "Traceback (most recent call last)"
    assert out.traceback[-1] == "RecursionError: maximum recursion depth"
    notes = [line for line in out.traceback if line.startswith("... [traceback cut")]
    assert len(notes) == 1 and "12,0" in notes[0], notes  # 12,0xx,xxx characters in all
    assert sum(map(len, out.traceback)) < 21_000
    assert len(out.ename) < 1_100 and out.ename.endswith("[output cut: 1,000,000 characters in all]\n")


def test_rich_outputs_of_every_mime_type_and_their_metadata_are_bounded():
    display = {"output_type": "display_data", "metadata": {"image/png": {"alt": "a" * 100_000}},
               "data": {"text/plain": "<Figure>", "image/png": "iVBOR" * 1_000_000, "text/html": "<table>" * 100_000,
                        "application/json": {"rows": list(range(100_000))}, "text/markdown": "small"}}
    result = {"output_type": "execute_result", "execution_count": 1, "metadata": {},
              "data": {"text/plain": "1" * 100_000, "text/html": "<b>" + "1" * 100_000}}
    cells = [new_code_cell("x"), new_code_cell("y")]
    cells[0].outputs, cells[1].outputs = [nbformat.from_dict(display)], [nbformat.from_dict(result)]
    nb = limited(*cells)
    shown, = nb.cells[0].outputs
    assert set(shown.data) == {"text/plain", "text/markdown"} and shown.data["text/markdown"] == "small"
    assert shown.metadata == {}
    note = shown.data["text/plain"]
    assert note.startswith("<Figure>\n[output cut: ") and all(w in note for w in ("image/png", "text/html",
                                                                                  "application/json", "metadata"))
    result, = nb.cells[1].outputs
    assert set(result.data) == {"text/plain"} and "[output cut: 100,000 characters in all]" in result.data["text/plain"]
    assert "text/html" in result.data["text/plain"]  # says what was left out
    assert size(nb.cells[0].outputs) + size(nb.cells[1].outputs) < 2 * 25_000


def test_many_small_outputs_are_bounded_per_cell_and_per_notebook():
    def many():
        return [nbformat.from_dict({"output_type": "display_data", "metadata": {}, "data": {"text/plain": str(i)}})
                for i in range(1_500)]
    cells = [new_code_cell("x") for _ in range(15)]
    for cell in cells:
        cell.outputs = many()
    nb = limited(*cells)
    per_cell = [size(c.outputs) for c in nb.cells]
    assert max(per_cell) < 60_000 + 500 and sum(per_cell) < 500_000 + 15 * 500
    first = nb.cells[0].outputs
    assert [o.data["text/plain"] for o in first[:3]] == ["0", "1", "2"]
    assert first[-1].output_type == "stream"
    assert "[output cut: " in first[-1].text and "outputs left out" in first[-1].text
    last = nb.cells[-1].outputs  # past the notebook's limit: the note alone
    assert len(last) == 1 and "a notebook 500,000 bytes" in last[0].text


def test_past_the_limits_the_output_a_cell_is_graded_by_stays_so_no_score_changes():
    """nbgrader scores a test cell 0 for an error or stderr, by the number of a result: each
    stays, shortened, whatever came before it."""
    noise = [new_output("stream", name="stdout", text="n" * 19_000 + "\n") for _ in range(40)]
    stderr = new_output("stream", name="stderr", text="warning " * 10_000)
    result = new_output("execute_result", data={"text/plain": "0.5", "text/html": "<b>0.5</b>"}, execution_count=1)
    cells = [graded_cell(*noise, huge_error()), graded_cell(*noise, stderr), graded_cell(*noise, result),
             graded_cell(*noise)]
    before = [points for c in cells for points in determine_grade(c)]
    nb = limited(*cells)
    assert before == pytest.approx([0, 2, 0, 2, 0.5, 2, 2, 2])  # scored 0, 0, by the result, full
    assert [points for c in nb.cells for points in determine_grade(c)] == pytest.approx(before)
    error = nb.cells[0].outputs[-1]
    assert error.output_type == "error" and len(error.evalue) < 1_100
    assert error.traceback[-1].startswith("\x1b[0;31mValueError")
    assert any("the one it is graded by shortened" in o.get("text", "") for o in nb.cells[0].outputs)
    assert all(size(c.outputs) < 60_000 + 3_000 for c in nb.cells)


def test_the_lessons_own_outputs_are_left_alone():
    """What the lesson's test and quiz cells show (a sentence, a small widget) is untouched."""
    message = ("CheckFailed: DATABASE_URL should start with 'sqlite+aiosqlite:///': use the async driver aiosqlite "
               "(you wrote 'sqlite:///test.db').")
    outputs = [new_output("stream", name="stdout", text="Question 3 is not answered yet: choose an answer above.\n"),
               new_output("display_data", data={"text/plain": "VBox()", "application/vnd.jupyter.widget-view+json":
                          {"model_id": "3f2a", "version_major": 2, "version_minor": 0}}),
               new_output("error", ename="CheckFailed", evalue=message,
                          traceback=[f"\x1b[0;31mCheckFailed\x1b[0m: {message}"])]
    cell = graded_cell(*outputs)
    before = json.dumps(cell.outputs, sort_keys=True)
    nb = limited(cell)
    assert json.dumps(nb.cells[0].outputs, sort_keys=True) == before


def test_the_limits_are_the_preprocessors_config():
    nb = limited(graded_cell(huge_error(5_000)), max_chars=100, max_cell_bytes=-1, max_notebook_bytes=-1)
    assert nb.cells[0].outputs[0].evalue.endswith("[output cut: 5,000 characters in all]\n")
    nb = limited(graded_cell(huge_error(5_000)), max_chars=-1, max_cell_bytes=-1, max_notebook_bytes=-1)
    assert nb.cells[0].outputs[0].evalue == "x" * 5_000


# ------------------------------------------------------------ stock nbgrader, real kernels

BOMB_CELLS = [
    'raise ValueError("x" * 10_000_000)',
    # a deep recursion whose every frame shows a long line of source
    "def deep(n, pad=None):\n    return deep(n + 1, " + "'" + "y" * 3000 + "'" + ")\ndeep(0)",
    'raise type("E" * 1_000_000, (Exception,), {})("a huge name")',
    'display({"text/html": "<b>" * 2_000_000, "text/plain": "bold"}, raw=True)',
    "for i in range(3_000):\n    display(i)",
    'print("z" * 10_000_000)',
]
LIMIT = 1_000_000


@pytest.mark.slow
def test_a_bomb_answers_file_and_huge_outputs_cost_the_quiz_only_and_stay_small(tmp_path):
    from tests.support.course import (
        ASSIGNMENT,
        autograde,
        make_course,
        nbgrader,
        results,
        solutions,
        student_notebook,
        submit,
    )

    course = make_course(tmp_path / "course")
    nb = student_notebook(solutions())
    nb.cells.extend(new_code_cell(code) for code in BOMB_CELLS)
    submit(course, "bomber", nb, quiz_file=DEPTH_BOMB)
    done, _ = autograde(course)
    assert done.returncode == 0, f"nbgrader autograde failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"

    cells = results(course, "bomber")
    quiz_ids = [gid for gid in cells if gid.startswith("quiz")]
    steps = {gid: c for gid, c in cells.items() if gid not in quiz_ids}
    assert sum(c.score for c in steps.values()) == pytest.approx(13) and all(c.full for c in steps.values())
    assert len(quiz_ids) == 10
    for gid in quiz_ids:
        assert cells[gid].score == 0
        assert "quiz_answers.json is not readable JSON (it is nested 60,000 levels deep; the quiz saves 2); " \
               "answer the quiz again in the notebook" in cells[gid].message, cells[gid].message

    graded = course / "autograded" / "bomber" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    assert graded.stat().st_size < LIMIT, graded.stat().st_size
    bombs = nbformat.read(graded, as_version=4).cells[-len(BOMB_CELLS):]
    # every bomb ran (none was removed before execution) and was cut, saying so
    assert [c.source for c in bombs] == BOMB_CELLS
    shown = [json.dumps(c.outputs) for c in bombs]
    assert all("output cut: " in s or "traceback cut: " in s for s in shown), [s[:200] for s in shown]
    assert bombs[0].outputs[-1].output_type == "error" and bombs[0].outputs[-1].ename == "ValueError"
    assert bombs[1].outputs[-1].output_type == "error" and bombs[1].outputs[-1].ename == "RecursionError"
    assert any(line.startswith("... [traceback cut: ") for line in bombs[1].outputs[-1].traceback)
    assert bombs[2].outputs[-1].output_type == "error" and len(bombs[2].outputs[-1].ename) < 1_100

    fed = nbgrader("generate_feedback", ASSIGNMENT, "--force", cwd=course)
    assert fed.returncode == 0, fed.stderr[-3000:]
    page = course / "feedback" / "bomber" / ASSIGNMENT / f"{ASSIGNMENT}.html"
    assert page.stat().st_size < LIMIT, page.stat().st_size
    assert "answer the quiz again in the notebook" in page.read_text()
