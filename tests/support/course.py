"""Run the real nbgrader pipeline on a scratch copy of the course, for the tests."""
from __future__ import annotations

import ast
import atexit
import dataclasses
import functools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

# First: like the grading processes, the tests go without jsonschema's "iri" parser
# (course_grade.NOT_IMPORTED, ~2 s of CPU to import), in this process and the harness's server.
import course_grade  # noqa: F401

# isort: split
import nbformat

from autograder.course import ASSIGNMENT
from course_grade.course import nbgrader_command

ROOT = Path(__file__).resolve().parents[2]
SOURCE_NB = ROOT / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
RELEASE_NB = ROOT / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
BIN = Path(sys.executable).parent


def tool_env(**extra) -> dict:
    """The environment for running the course's tools: this interpreter's bin/ first."""
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", **extra}


def nbgrader(*args: str, cwd: Path, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "nbgrader"), *args], cwd=cwd, env=tool_env(),
                          capture_output=True, text=True, timeout=timeout)


@functools.cache
def blank_gradebook(course_id: str = "default_course") -> Path:
    """An empty nbgrader gradebook (its tables, its alembic version, the course), made once per
    process: copy it, never open it in place.

    nbgrader makes a new gradebook by running the `alembic` program for the version to record,
    a process that imports nbgrader (~4 s of CPU, every time). The version is read here from
    the same migration scripts, in this process; opening an existing gradebook runs no alembic."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory
    from nbgrader import api
    from nbgrader.dbutil import ALEMBIC_DIR

    config = Config()
    config.set_main_option("script_location", ALEMBIC_DIR)
    head = ScriptDirectory.from_config(config).get_current_head()
    folder = Path(tempfile.mkdtemp(prefix="blank-gradebook-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    path = folder / "gradebook.db"
    asks_alembic, api.get_alembic_version = api.get_alembic_version, lambda: head
    try:
        with warnings.catch_warnings(), api.Gradebook(f"sqlite:///{path}", course_id=course_id):
            warnings.simplefilter("ignore")  # nbgrader's own SQLAlchemy warnings
    finally:
        api.get_alembic_version = asks_alembic
    return path


def make_course(dest: Path, extra_config: str = "") -> Path:
    """A course folder with our config and source/, its assignment generated."""
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "nbgrader_config.py", dest)
    if extra_config:
        with open(dest / "nbgrader_config.py", "a") as f:
            f.write("\n" + extra_config + "\n")
    shutil.copytree(ROOT / "source", dest / "source", ignore=shutil.ignore_patterns("*.db", ".ipynb_checkpoints"))
    # the gradebook generate_assignment would make first (for the course the config names)
    course_ids = re.findall(r"^c\.CourseDirectory\.course_id = \"([^\"]+)\"$",
                            (dest / "nbgrader_config.py").read_text(), re.M)
    if course_ids:
        shutil.copy(blank_gradebook(course_ids[-1]), dest / "gradebook.db")
    # nbgrader's own entry point, launched as the grading command launches it (without the
    # "iri" parser: seconds less per course)
    done = subprocess.run([*nbgrader_command(), "generate_assignment", ASSIGNMENT, "--force"], cwd=dest,
                          env=tool_env(), capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"generate_assignment failed:\n{done.stdout}\n{done.stderr}"
    return dest


def grade_id(cell) -> str | None:
    return cell.metadata.get("nbgrader", {}).get("grade_id")


def graded_cells(nb=None) -> dict[str, int]:
    """grade_id -> points for every graded cell of the source notebook."""
    nb = nb or nbformat.read(SOURCE_NB, as_version=4)
    return {grade_id(c): c.metadata["nbgrader"]["points"] for c in nb.cells
            if c.metadata.get("nbgrader", {}).get("grade")}


def solutions() -> dict[str, str]:
    """The source notebook's solution cells, as a student who got everything right wrote them."""
    nb = nbformat.read(SOURCE_NB, as_version=4)
    out = {}
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("solution"):
            lines = [line for line in cell.source.splitlines()
                     if "### BEGIN SOLUTION" not in line and "### END SOLUTION" not in line]
            out[grade_id(cell)] = "\n".join(lines).strip()
    return out


def student_notebook(answers: dict[str, str]):
    """The release notebook with solution cells filled in by `answers` (grade_id -> code)."""
    nb = nbformat.read(RELEASE_NB, as_version=4)
    unknown = set(answers) - {grade_id(c) for c in nb.cells}
    assert not unknown, f"no such cells in the release notebook: {unknown}"
    for cell in nb.cells:
        if grade_id(cell) in answers:
            cell.source = answers[grade_id(cell)]
    return nb


def quiz_key() -> dict[str, dict]:
    """The graded quiz's key, read from the hidden tests of the source notebook:
    question id -> {"correct": letter, "explanation": ..., "why": {letter: ...}}."""
    key = {}
    for cell in nbformat.read(SOURCE_NB, as_version=4).cells:
        if cell.cell_type != "code" or "check_answer(" not in cell.source:
            continue
        for node in ast.walk(ast.parse(cell.source)):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "check_answer":
                qid = ast.literal_eval(node.args[0])
                key[qid] = {kw.arg: ast.literal_eval(kw.value) for kw in node.keywords}
    return key


ANSWERS_FILE = "quiz_answers.json"


def answers_file(choices: dict[str, str]) -> str:
    return json.dumps({"format": 1, "answers": choices})


def right_answers() -> dict[str, str]:
    return {qid: k["correct"] for qid, k in quiz_key().items()}


def submit(course: Path, student: str, nb, quiz_file: str | None = None, extra_files: dict | None = None) -> Path:
    """Put a submission in submitted/: the notebook (or raw text), the quiz answers file if
    given, and any other files (relative path -> content)."""
    folder = course / "submitted" / student / ASSIGNMENT
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{ASSIGNMENT}.ipynb"
    if isinstance(nb, str):
        path.write_text(nb)
    else:
        nbformat.write(nb, path)
    if quiz_file is not None:
        (folder / ANSWERS_FILE).write_text(quiz_file)
    for name, content in (extra_files or {}).items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(content)
    return path


def submit_as(course: Path, sub) -> Path:
    """Submit a tests/support/submissions.py Submission."""
    nb = student_notebook(sub.answers())
    if sub.edit is not None:
        nb = sub.edit(nb) or nb
    return submit(course, sub.name, nb, sub.quiz_file(), sub.extra_files)


@dataclasses.dataclass
class CellResult:
    score: float
    max_score: float
    message: str  # "Name: text" of the cell's error, or ""
    stderr: str
    record: object = None  # the record its check left (autograder.records.CheckRecord), or None

    @property
    def full(self) -> bool:
        return abs(self.score - self.max_score) < 1e-9


def autograde(course: Path, *extra: str) -> tuple[subprocess.CompletedProcess, float]:
    start = time.perf_counter()
    done = nbgrader("autograde", ASSIGNMENT, "--create", "--force", *extra, cwd=course)
    return done, time.perf_counter() - start


def results(course: Path, student: str) -> dict[str, CellResult]:
    """Per graded cell: the score in the gradebook, and what the cell showed."""
    from nbgrader.api import Gradebook

    from autograder.records import by_cell

    graded_nb = nbformat.read(course / "autograded" / student / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)
    records = by_cell(graded_nb)
    shown = {}
    for cell in graded_nb.cells:
        errors = [f"{o.ename}: {o.evalue}" for o in cell.get("outputs", []) if o.output_type == "error"]
        stderr = "".join(o.text for o in cell.get("outputs", []) if o.output_type == "stream" and o.name == "stderr")
        shown[grade_id(cell)] = ("\n".join(errors), stderr)
    out = {}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        for gid in graded_cells():
            grade = gb.find_grade(gid, ASSIGNMENT, ASSIGNMENT, student)
            message, stderr = shown.get(gid, ("", ""))
            out[gid] = CellResult(grade.score, grade.max_score, message, stderr, records.get(gid))
    return out
