"""nbgrader preprocessor: read the quiz answers as collected, before any student code runs.

`nbgrader autograde` first sanitizes a submission (read from `submitted/`), writes it to
`autograded/`, then reads it back and executes it. This preprocessor runs in the sanitize
pass (`c.Autograde.sanitize_preprocessors`, nbgrader_config.py): it reads
`quiz_answers.json` from the submission folder nbgrader is reading (`resources['metadata']
['path']`) and records what it found in the notebook's metadata, replacing anything the
submission put there. The autograde pass loads that notebook before starting a kernel, so
nothing a kernel does can change the record; `GradeQuizAnswers` (quiz_grading.py) scores the
quiz from it after execution.
"""
from __future__ import annotations

import os

from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Integer

from autograder.quiz import ANSWERS_FILE, AnswersFileError, read_answers

# notebook metadata key of the record: {"state": "saved" | "missing" | "damaged",
# "answers": {question id: letter}, "error": the damaged file's message}
METADATA_KEY = "course_quiz_collected"


def read_collected(folder: str, max_bytes: int) -> dict:
    """The record of `folder`'s answers file, read by the quiz's one reader
    (`autograder.quiz.read_answers`: a regular file only, at most `max_bytes`, any content)."""
    try:
        answers = read_answers(os.path.join(folder, ANSWERS_FILE), max_bytes)
    except AnswersFileError as exc:
        return {"state": "damaged", "answers": {}, "error": str(exc)}
    if answers is None:
        return {"state": "missing", "answers": {}, "error": ""}
    return {"state": "saved", "answers": answers, "error": ""}


class CollectQuizAnswers(NbGraderPreprocessor):
    """Record the submission's quiz answers file, as collected, in the notebook's metadata."""

    max_bytes = Integer(65_536, help="Largest answers file read; a larger one counts as damaged").tag(config=True)

    def preprocess(self, nb, resources):
        folder = resources.get("metadata", {}).get("path") or "."
        record = read_collected(folder, self.max_bytes)
        nb.metadata[METADATA_KEY] = record
        self.log.info("Quiz answers collected from %s: %s", os.path.join(folder, ANSWERS_FILE), record["state"])
        return nb, resources
