"""Self-grading for self-learners: grade your own copy of the lesson with the full autograder.

    python -m course_grade selfgrade [NOTEBOOK] [--course DIR]
    python -m course_grade selfgrade [NOTEBOOK] [--course DIR] --json
    python -m course_grade selfgrade [NOTEBOOK] [--course DIR] --warm

NOTEBOOK defaults to connection-pooling.ipynb in the current folder, else the working copy
`make lab` made (workspace/connection-pooling/). The course repository (found by walking up
from the notebook, or given with --course) supplies the source notebook with the hidden
tests. The notebook's bytes and its quiz_answers.json are graded by the course's warm
self-grading service (course_grade/selfgrade/service.py: nbgrader loaded, the assignment in
memory, a kernel booted), started in the background if it is not running, with the very task
the instructor's grading runs (course_grade.engine.task.grade); where the service cannot start, the
same task runs in this process. Your files are only read. Prints the score and every graded
cell's result and message; `--json` prints the same as data, `as_data()`, which the lesson's
button reads (it shows the report, and hands the cells' results to the progress panel).
`--warm` only starts the service and returns at once (the lesson's button does so when it is
shown).

The lesson's last cell offers the same thing as a button (`autograder.selfgrade.button()`).
"""
from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from autograder.records import by_cell
from course_grade.course import ANSWERS_FILE, ASSIGNMENT, UsageError
from course_grade.engine.bundles import Graded, SubmissionBundle
from course_grade.selfgrade import service

STUDENT = "me"  # the one student of a self-grading
ANSI = re.compile(r"\x1b\[[0-9;]*m")


@dataclass
class CellResult:
    grade_id: str
    what: str  # the test cell's docstring: what it checks
    score: float
    points: float
    message: str


def find_course(start: Path) -> Path:
    """The course repository: a folder above `start` (or holding this package) with
    nbgrader_config.py and the source notebook."""
    here = Path(__file__).resolve().parents[2]
    for folder in [start.resolve(), *start.resolve().parents, here]:
        if ((folder / "nbgrader_config.py").is_file()
                and (folder / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").is_file()):
            return folder
    raise UsageError(f"cannot find the course repository (nbgrader_config.py and source/{ASSIGNMENT}/) above "
                     f"{start}: run this inside the course repository or pass --course DIR")


def default_notebook(cwd: Path) -> Path:
    for candidate in (cwd / f"{ASSIGNMENT}.ipynb", cwd / "workspace" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"):
        if candidate.is_file():
            return candidate
    raise UsageError(f"no {ASSIGNMENT}.ipynb here or in workspace/{ASSIGNMENT}/: pass the notebook's path")


def _check_notebook(path: Path) -> None:
    if not path.is_file():
        raise UsageError(f"{path} does not exist: pass the path of your copy of the lesson notebook")
    if path.suffix != ".ipynb":
        raise UsageError(f"{path} is not a notebook (.ipynb): pass the path of your copy of the lesson notebook")
    try:
        json.loads(path.read_text())
    except (OSError, ValueError):
        raise UsageError(f"{path} is not a readable notebook (not JSON): "
                         "open it in JupyterLab and save it again") from None


def submission_of(notebook: Path) -> SubmissionBundle:
    """What is graded: the saved notebook and, beside it, its quiz answers (read, never written)."""
    files = {f"{ASSIGNMENT}.ipynb": notebook.read_bytes()}
    answers = notebook.parent / ANSWERS_FILE
    if answers.is_file():
        files[answers.name] = answers.read_bytes()
    return SubmissionBundle(STUDENT, files)


def grade_notebook(notebook: Path, course: Path | None = None, timeout: float = 600) -> tuple[Graded, str]:
    """Grade `notebook` on the course's self-grading service (started if need be), else in this
    process; returns the result and where it was graded ('service', or why not there)."""
    notebook = notebook.resolve()
    _check_notebook(notebook)
    course = (course or find_course(notebook.parent)).resolve()
    graded, where = service.grade(course, submission_of(notebook), timeout)
    if graded.status != "graded":
        raise RuntimeError(f"your notebook could not be graded ({graded.note or graded.status}): "
                           f"fix that, save the notebook and grade again")
    return graded, where


def results_of(graded: Graded) -> list[CellResult]:
    """Each graded cell's score, as the gradebook has it, and the sentence its check failed
    with (its record), else its last error message."""
    nb = json.loads(graded.files[f"{ASSIGNMENT}.ipynb"])
    records = by_cell(nb)
    scores = {g["name"]: g for n in graded.rows["notebooks"] if n["name"] == ASSIGNMENT for g in n["grades"]}
    results = []
    for cell in nb.get("cells", []):
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if not meta.get("grade"):
            continue
        row = scores.get(meta["grade_id"], {})
        score = row.get("manual_score") if row.get("manual_score") is not None else row.get("auto_score")
        record = records.get(meta["grade_id"])
        if record is not None:
            errors = [] if record.passed else [f"CheckFailed: {record.message}"]  # as the notebook shows it
        else:
            errors = [f"{o.get('ename')}: {o.get('evalue')}"
                      for o in cell.get("outputs", []) if o.get("output_type") == "error"]
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else source
        doc = source.splitlines()[0].strip().strip('"') if source else meta["grade_id"]
        results.append(CellResult(meta["grade_id"], doc, float(score or 0), float(meta.get("points", 0)),
                                  ANSI.sub("", errors[-1]) if errors else ""))
    return results


def report(results: list[CellResult], notebook: Path) -> str:
    total, best = sum(r.score for r in results), sum(r.points for r in results)
    lines = [f"Self-grading {notebook.name} (the saved file; save your notebook first to grade your latest work)",
             f"Score: {total:g}/{best:g}", ""]
    for r in results:
        mark = "PASS" if r.score >= r.points else "FAIL"
        lines.append(f"{mark} {r.score:g}/{r.points:g}  {r.what}")
        if r.message:
            lines.append(f"     {r.message}")
    missed = [r for r in results if r.score < r.points]
    lines += ["", "Every check passes: well done." if not missed else
              f"{len(missed)} check(s) to fix: read the message under each FAIL, fix that step, save, and grade again."]
    return "\n".join(lines)


def as_data(results: list[CellResult], notebook: Path) -> dict:
    """The grading as data (`--json`): the report's text, and each graded cell's grade_id,
    score, points and message, in the notebook's order."""
    return {"report": report(results, notebook),
            "cells": [{"grade_id": r.grade_id, "score": r.score, "points": r.points, "message": r.message}
                      for r in results]}


def service_line(course: Path, stop: bool = False) -> str:
    """One line on the course's background self-grading service; with `stop`, stop it first."""
    said = service.stop(course) if stop else service.status(course)
    if said is None:
        return "The self-grading service of this course is not running."
    what = "Stopped the" if stop else "The"
    return (f"{what} self-grading service of this course (pid {said['pid']}): {said['gradings']} notebook(s) "
            f"graded since it started.")


def main(notebook: Path | None, course: Path | None, out=sys.stdout, warm: bool = False,
         service_only: str | None = None, as_json: bool = False) -> int:
    """`selfgrade [NOTEBOOK] [--course DIR] [--json | --warm | --status | --stop]`: print the
    report (with `as_json`, the grading as data: `as_data`); with `warm`, only start the course's
    self-grading service in the background (if it is not running) and return; with
    `service_only` ("status" or "stop"), say whether it runs, or stop it."""
    try:
        if warm or service_only:
            where = (course or find_course(notebook.resolve().parent if notebook else Path.cwd())).resolve()
            if warm:
                service.warm(where)
            else:
                print(service_line(where, stop=service_only == "stop"), file=out)
            return 0
        path = notebook or default_notebook(Path.cwd())
        results = results_of(grade_notebook(path, course)[0])
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (service.ServiceUnavailable, RuntimeError) as exc:  # ServiceUnavailable: --warm only
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(as_data(results, path)) if as_json else report(results, path), file=out)
    return 0
