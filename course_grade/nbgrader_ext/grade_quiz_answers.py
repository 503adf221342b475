"""nbgrader preprocessor: score the graded quiz outside the kernel.

Runs in `nbgrader autograde`'s second pass right after `Execute`
(`c.Autograde.autograde_preprocessors`, nbgrader_config.py), before `SaveAutoGrades` reads
the outputs. For every graded quiz cell (grade_id `quizNN_<question id>`) it throws away
whatever the kernel showed and writes the verdict itself: no output (full marks) when the
collected answer is the key's, else an error output with the very sentence
`quiz.check_answer` gives. The collected answers come from the notebook's metadata, written
by `CollectQuizAnswers` (quiz_collect.py) before any kernel started; the key comes from the
`quiz.check_answer(...)` call in the cell's source, which nbgrader has restored from the
gradebook (the instructor's hidden test, never the student's), read with `ast`, never run.
So no file a kernel writes, no hook it registers and no module it patches changes a score.
"""
from __future__ import annotations

import ast
import re

from nbformat.v4 import new_output
from nbgrader import utils
from nbgrader.preprocessors import NbGraderPreprocessor

from autograder import quiz
from autograder.report import CheckFailed
from course_grade.nbgrader_ext.collect_quiz_answers import METADATA_KEY

QUIZ_CELL = re.compile(r"quiz\d+_(?P<qid>\w+)")
KEY_ARGS = ("qid", "correct", "explanation", "why")


class QuizKeyError(ValueError):
    """A graded quiz cell's source holds no readable `quiz.check_answer(...)` call."""


def read_key(source: str, qid: str) -> dict:
    """The key in a quiz cell's source: {"correct", "explanation", "why"} of its
    `check_answer` call for `qid`, as literals."""
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise QuizKeyError(f"the source of quiz question {qid!r} is not Python ({exc})") from None
    calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call)
             and (getattr(node.func, "attr", None) or getattr(node.func, "id", None)) == "check_answer"]
    if len(calls) != 1:
        raise QuizKeyError(f"the source of quiz question {qid!r} has {len(calls)} check_answer calls, not 1")
    call = calls[0]
    try:
        given = dict(zip(KEY_ARGS, (ast.literal_eval(arg) for arg in call.args), strict=False))
        given.update({kw.arg: ast.literal_eval(kw.value) for kw in call.keywords})
    except ValueError as exc:
        raise QuizKeyError(f"the key of quiz question {qid!r} is not written as literals ({exc})") from None
    if given.get("qid") != qid or set(given) != set(KEY_ARGS):
        raise QuizKeyError(f"the check_answer call in quiz cell {qid!r} does not read "
                           f"check_answer({qid!r}, correct=, explanation=, why=)")
    if given["correct"] not in quiz.LETTERS or not isinstance(given["why"], dict):
        raise QuizKeyError(f"the key of quiz question {qid!r} is not a letter with a `why` per option")
    return {name: given[name] for name in KEY_ARGS[1:]}


def error_output(message: str):
    """The output a failing check leaves (CheckFailed renders as its message alone)."""
    name = CheckFailed.__name__
    return new_output("error", ename=name, evalue=message, traceback=[f"\x1b[0;31m{name}\x1b[0m: {message}"])


def collected(nb) -> dict:
    """The record CollectQuizAnswers left of the answers as collected; raises when there is none."""
    record = nb.metadata.get(METADATA_KEY)
    if not isinstance(record, dict) or record.get("state") not in ("saved", "missing", "damaged"):
        raise RuntimeError(
            "no record of the quiz answers as collected: "
            "add course_grade.nbgrader_ext.collect_quiz_answers.CollectQuizAnswers "
            "to c.Autograde.sanitize_preprocessors (see nbgrader_config.py)")
    return record


class GradeQuizAnswers(NbGraderPreprocessor):
    """Set each graded quiz cell's outputs from the key and the answers as collected."""

    def preprocess(self, nb, resources):
        self.record = collected(nb)
        return super().preprocess(nb, resources)

    def preprocess_cell(self, cell, resources, cell_index):
        qid = quiz_question(cell)
        if qid is None:
            return cell, resources
        message = said(cell, qid, self.record)
        cell.outputs = [error_output(message)] if message else []
        self.log.info("Quiz cell %s graded from the collected answers: %s", cell.metadata.nbgrader["grade_id"],
                      "right" if message is None else "0 points")
        return cell, resources


def quiz_question(cell) -> str | None:
    """The question id of a graded quiz cell (grade_id `quizNN_<question id>`), None for any other cell."""
    match = QUIZ_CELL.fullmatch(cell.metadata.get("nbgrader", {}).get("grade_id", ""))
    if cell.cell_type != "code" or not match or not utils.is_grade(cell) or utils.is_solution(cell):
        return None
    return match["qid"]


def said(cell, qid: str, record: dict, show_key: bool = True) -> str | None:
    """What quiz cell `cell` says of question `qid` (None: right), from the key in its source
    and the answers as collected (`record`, METADATA_KEY's value); `show_key`: see quiz.verdict."""
    key = read_key(cell.source, qid)
    return quiz.verdict(qid, key["correct"], key["explanation"], key["why"], dict(record.get("answers", {})),
                        missing=record["state"] == "missing",
                        damaged=record.get("error", "") if record["state"] == "damaged" else "", show_key=show_key)
