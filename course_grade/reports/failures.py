"""How the item analysis groups a graded cell's failures.

Failures are grouped by their records: by the named mistake (`autograder.explain`'s
tables) a record names; other failures by their message's first sentence with numbers and
quoted values replaced. A failure that points up to an earlier check (`same_as`) or a hidden
check waiting for visible ones (`waiting_for`) is grouped as such and never counted as a new
mistake. Quiz failures are grouped by the answer collected.
"""
from __future__ import annotations

import dataclasses
import re

from autograder.records import CheckRecord

_WRAPPED = re.compile(r"^Your step \d+ cell stopped with an error: ")


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z(`“])")


def first_clause(message: str) -> str:
    """What is wrong, for a label: a message's words before its first ': ' (its first sentence if none)."""
    text = _WRAPPED.sub("", message.strip())
    sentence = _first_sentence(text)
    clause = sentence.split(": ", 1)[0] if ": " in sentence else sentence
    return clause.rstrip(".;:, ")


def _first_sentence(text: str) -> str:
    return _SENTENCE_END.split(text.strip(), 1)[0]


def normalise(message: str) -> str:
    """The first sentence with its variable bits replaced: quoted values by '…', numbers by N."""
    text = _first_sentence(_WRAPPED.sub("", message.strip()))
    # a quote opens after a space, a bracket or a sign, never inside a word (SQLite's, don't)
    text = re.sub(r"(?<![\w'])'[^']*'(?!\w)", "'…'", text)
    text = re.sub(r'(?<!\w)"[^"]*"(?!\w)', '"…"', text)
    text = re.sub(r"\d+(?:\.\d+)?", "N", text)
    return text[:200]


@dataclasses.dataclass(frozen=True)
class Shown:
    """What a graded cell left: its check's record (None: no check gave one), its error when
    it has no record (a CheckFailed's sentence alone, any other "Name: text"), and whether it
    wrote to stderr."""
    record: CheckRecord | None = None
    error: str = ""
    stderr: bool = False

    @property
    def message(self) -> str:
        """What the student read."""
        return self.record.message if self.record is not None and not self.record.passed else self.error


def classify(shown: Shown, titles: dict[str, str] | None = None) -> tuple[str, str, str]:
    """(group key, kind, label) of a failed build cell, from its record. `titles`: check name
    -> its title, for the label of a failure that points up to another check."""
    record = shown.record
    if record is None or record.passed:
        if not shown.error:
            if shown.stderr:
                return "silent:stderr", "silent", "the cell wrote to stderr, which nbgrader scores 0"
            return "silent:none", "silent", "no message (a partial or manual score)"
        text = normalise(shown.error)  # the cell failed before its check gave a result
        return f"message:{text}", "message", first_clause(shown.error)
    if record.waiting_for:
        return "gate", "gate", "hidden check not counted: the visible checks it builds on did not pass"
    if record.same_as:
        title = (titles or {}).get(record.same_as, record.same_as)
        return f"pointer:{record.same_as}", "pointer", f"same reason as “{title}” above"
    if record.mistake:
        return f"named:{record.mistake}", "named", first_clause(record.message)
    return f"message:{normalise(record.message)}", "message", first_clause(record.message)


def quiz_group(answers: dict[str, str] | None, state: str, qid: str) -> tuple[str, str, str]:
    """(group key, kind, label) of a quiz question lost, from the answers as collected
    (`state`: saved, missing or damaged). An answer not given is "absent", not a mistake."""
    if state == "missing":
        return "quiz:missing", "absent", "no quiz_answers.json submitted"
    if state == "damaged" or answers is None:
        return "quiz:damaged", "absent", "quiz_answers.json damaged"
    letter = answers.get(qid)
    if letter is None:
        return "quiz:unanswered", "absent", "not answered"
    return f"quiz:{letter}", "quiz", f"chose {letter}"
