"""A check's result as data: the record every check shows beside its sentence, and its reader.

A check's cell carries one display output of the MIME type `MIME` whose data is
`CheckRecord.to_json()`. No front end renders that type (JupyterLab leaves an empty output,
nbconvert's HTML and nbgrader's feedback leave it out), so the student reads only the
sentence; the progress panel, self-grading, the item analysis and the tests read the record.

This module is pure (no IPython, no package import): the instructor side reads records with it.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

MIME = "application/vnd.connection-pooling.check+json"


@dataclass(frozen=True)
class CheckRecord:
    check: str                  # the check's name, its test cell's grade_id
    step: int
    points: int
    passed: bool
    mistake: str | None = None  # the named mistake's key (autograder.explain), None for any other failure
    message: str = ""           # the sentence the student read ("" on a pass)
    stand_in: bool = False      # graded with an earlier step's correct value standing in
    same_as: str | None = None  # the earlier check that gave this failure first (the message points there)
    waiting_for: tuple[str, ...] = ()  # a hidden check not run yet: the visible checks it waits for
    unexplained: bool = False   # the message is the generic one around a raw error (no named mistake fits)

    def to_json(self) -> dict:
        return {**dataclasses.asdict(self), "waiting_for": list(self.waiting_for)}

    @classmethod
    def from_json(cls, data) -> CheckRecord:
        """The record `data` holds; ValueError when it is not one."""
        if isinstance(data, str):
            data = json.loads(data)
        if not isinstance(data, dict):
            raise ValueError("a check record is a JSON object")
        kinds = {"check": str, "step": int, "points": int, "passed": bool, "mistake": (str, type(None)),
                 "message": str, "stand_in": bool, "same_as": (str, type(None)), "waiting_for": list,
                 "unexplained": bool}
        given = {k: v for k, v in data.items() if k in kinds}
        wrong = [k for k, v in given.items()
                 if not isinstance(v, kinds[k]) or (kinds[k] is int and isinstance(v, bool))]
        missing = [k for k in ("check", "step", "points", "passed") if k not in given]
        if wrong or missing or not all(isinstance(n, str) for n in given.get("waiting_for", [])):
            raise ValueError(f"not a check record (missing {missing}, wrong type {wrong})")
        return cls(**{**given, "waiting_for": tuple(given.get("waiting_for", ()))})

    def bundle(self) -> dict:
        """The display data that carries this record, and nothing a front end shows."""
        return {MIME: self.to_json()}


def _outputs(source) -> list:
    if isinstance(source, dict) and "cells" in source:
        return [o for cell in source.get("cells") or [] if isinstance(cell, dict) for o in cell.get("outputs") or []]
    if isinstance(source, dict):
        return list(source.get("outputs") or [])
    return list(source or [])


def records_of(source) -> list[CheckRecord]:
    """Every check record in a notebook, a cell or a list of outputs (dicts or nbformat nodes),
    in order; outputs that are not readable records are skipped."""
    found = []
    for output in _outputs(source):
        data = output.get("data") if isinstance(output, dict) else None
        if not isinstance(data, dict) or MIME not in data:
            continue
        try:
            found.append(CheckRecord.from_json(data[MIME]))
        except (ValueError, TypeError):
            continue
    return found


def grade_id(cell) -> str:
    return ((cell.get("metadata") or {}).get("nbgrader") or {}).get("grade_id") or ""


def by_cell(notebook) -> dict[str, CheckRecord]:
    """grade_id -> the last record its own check left in that cell, for every graded cell that has one."""
    out = {}
    for cell in notebook.get("cells") or [] if isinstance(notebook, dict) else []:
        gid = grade_id(cell) if isinstance(cell, dict) else ""
        own = [r for r in records_of(cell) if r.check == gid]
        if own:
            out[gid] = own[-1]
    return out
