"""Self-grading for self-learners: grade your own copy of the lesson with the full autograder.

    python -m course_grade selfgrade [NOTEBOOK] [--course DIR]

NOTEBOOK defaults to connection-pooling.ipynb in the current folder, else the working copy
`make lab` made (workspace/connection-pooling/). The course repository (found by walking up
from the notebook, or given with --course) supplies the source notebook with the hidden
tests. Grading happens in a temporary nbgrader course, with the same grading command an
instructor uses (course_grade.grading), on a *copy* of the notebook and its quiz_answers.json:
your notebook is only read. Prints the score and every graded cell's result and message.

The lesson's last cell offers the same thing as a button (`autograder.selfgrade.button()`).
"""
from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from course_grade.grading import UsageError, _env, _nbgrader, run

ASSIGNMENT = "connection-pooling"
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
    here = Path(__file__).resolve().parent.parent
    for folder in [start.resolve(), *start.resolve().parents, here]:
        if (folder / "nbgrader_config.py").is_file() and (folder / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").is_file():
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
        raise UsageError(f"{path} is not a readable notebook (not JSON): open it in JupyterLab and save it again") from None


def grade(notebook: Path, course: Path | None = None) -> tuple[list[CellResult], str]:
    """Grade a copy of `notebook`; returns each graded cell's result and the grading log."""
    import nbformat
    from nbgrader.api import Gradebook

    notebook = notebook.resolve()
    _check_notebook(notebook)
    course = (course or find_course(notebook.parent)).resolve()
    with tempfile.TemporaryDirectory(prefix="selfgrade-") as tmp:
        scratch = Path(tmp)
        shutil.copy(course / "nbgrader_config.py", scratch)
        shutil.copytree(course / "source" / ASSIGNMENT, scratch / "source" / ASSIGNMENT,
                        ignore=shutil.ignore_patterns("*.db", "*.db-journal", ".ipynb_checkpoints", "quiz_answers.json*"))
        made = subprocess.run([_nbgrader(), "generate_assignment", ASSIGNMENT, "--force", "--log-level=ERROR"],
                              cwd=scratch, env=_env(), capture_output=True, text=True)
        if made.returncode:
            raise RuntimeError(f"nbgrader generate_assignment failed:\n{made.stdout[-1500:]}{made.stderr[-1500:]}")
        submitted = scratch / "submitted" / "me" / ASSIGNMENT
        submitted.mkdir(parents=True)
        shutil.copy(notebook, submitted / f"{ASSIGNMENT}.ipynb")
        answers = notebook.parent / "quiz_answers.json"
        if answers.is_file():
            shutil.copy(answers, submitted / answers.name)
        log = io.StringIO()
        status = run(scratch, ASSIGNMENT, jobs=1, submission_timeout=600, feedback=False, out=log)
        graded = scratch / "autograded" / "me" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
        if status != 0 or not graded.is_file():
            raise RuntimeError("your notebook could not be graded:\n" + log.getvalue()[-2000:])
        nb = nbformat.read(graded, as_version=4)
        results = []
        with Gradebook(f"sqlite:///{scratch / 'gradebook.db'}") as gb:
            for cell in nb.cells:
                meta = cell.metadata.get("nbgrader", {})
                if not meta.get("grade"):
                    continue
                grade_ = gb.find_grade(meta["grade_id"], ASSIGNMENT, ASSIGNMENT, "me")
                errors = [f"{o.get('ename')}: {o.get('evalue')}" for o in cell.get("outputs", [])
                          if o.get("output_type") == "error"]
                doc = cell.source.splitlines()[0].strip().strip('"') if cell.source else meta["grade_id"]
                results.append(CellResult(meta["grade_id"], doc, grade_.score, grade_.max_score,
                                          ANSI.sub("", errors[-1]) if errors else ""))
        return results, log.getvalue()


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


def main(notebook: Path | None, course: Path | None, out=sys.stdout) -> int:
    try:
        path = notebook or default_notebook(Path.cwd())
        results, _ = grade(path, course)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(report(results, path), file=out)
    return 0
