"""What is committed: clean notebooks, a release that nbgrader really makes, sane metadata."""
from __future__ import annotations

import ast
import json
import re
import subprocess
import sys

import nbformat
import pytest

from tests.support.course import (
    ANSWERS_FILE,
    ASSIGNMENT,
    RELEASE_NB,
    ROOT,
    SOURCE_NB,
    answers_file,
    graded_cells,
    make_course,
    nbgrader,
    right_answers,
)
from tools import build_lesson

# Slow tier, but for the layering rule (read with `ast`, in milliseconds).



def tracked(pattern: str) -> list[str]:
    out = subprocess.run(["git", "ls-files", pattern], cwd=ROOT, capture_output=True, text=True, check=True)
    return out.stdout.split()


@pytest.mark.slow
def test_source_notebook_is_what_the_builder_writes():
    assert SOURCE_NB.read_text() == build_lesson.render(), "run `make release` after editing tools/build_lesson.py"


@pytest.mark.slow
@pytest.mark.parametrize("path", tracked("*.ipynb"))
def test_committed_notebooks_carry_no_outputs(path):
    nb = json.loads((ROOT / path).read_text())
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None, f"{path}: cell {cell.get('id')}"


@pytest.mark.slow
def test_no_runtime_files_are_tracked():
    files = tracked("*")
    bad = [f for f in files if re.search(r"(^|/)(autograded|submitted|feedback|\.ipynb_checkpoints)/|\.db$", f)]
    assert not bad


@pytest.fixture(scope="module")
def fresh_course(tmp_path_factory):
    return make_course(tmp_path_factory.mktemp("release") / "course")


@pytest.mark.slow
def test_release_is_exactly_what_generate_assignment_makes(fresh_course):
    fresh = sorted(p.relative_to(fresh_course / "release") for p in (fresh_course / "release").rglob("*")
                   if p.is_file())
    committed = sorted(p.relative_to(ROOT / "release") for p in (ROOT / "release").rglob("*") if p.is_file())
    assert fresh == committed
    for rel in committed:
        assert (fresh_course / "release" / rel).read_text() == (ROOT / "release" / rel).read_text(), (
            f"run `make release`: {rel}")


@pytest.mark.slow
def test_release_hides_solutions_and_hidden_tests():
    text = RELEASE_NB.read_text()
    assert "BEGIN SOLUTION" not in text and "HIDDEN TESTS" not in text
    assert "step4_items_reads_the_table(globals())" not in text
    solution_cells = [c for c in nbformat.read(RELEASE_NB, as_version=4).cells
                      if c.metadata.get("nbgrader", {}).get("solution")]
    assert len(solution_cells) == 4
    for cell in solution_cells:
        assert cell.source == "# YOUR CODE HERE\nraise NotImplementedError()", cell.id


@pytest.mark.slow
def test_no_quiz_answers_file_in_source_or_release():
    """A file of that name in source/ would overwrite every student's answers when grading."""
    assert not list(ROOT.glob(f"source/**/{ANSWERS_FILE}")) and not list(ROOT.glob(f"release/**/{ANSWERS_FILE}"))


@pytest.mark.slow
def test_nbgrader_validate_passes_on_the_source(fresh_course):
    # validate runs the notebook where it lies: give it a completed quiz (after generate_assignment,
    # so that the file never reaches release/)
    (fresh_course / "source" / ASSIGNMENT / ANSWERS_FILE).write_text(answers_file(right_answers()))
    done = nbgrader("validate", str(fresh_course / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"), cwd=fresh_course)
    assert done.returncode == 0 and "Success! Your notebook passes all the tests." in done.stdout, (
        done.stdout + done.stderr)


@pytest.mark.slow
def test_nbgrader_validate_invert_passes_on_the_release(fresh_course):
    """On the blank release every step check fails. The graded quiz's ten visible checks pass on
    purpose (they only say "not answered yet", so Run All reaches the end); their hidden parts,
    not in the release, score an unanswered question 0."""
    done = nbgrader("validate", "--invert", str(fresh_course / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"),
                    cwd=fresh_course)
    assert done.returncode == 0, done.stdout + done.stderr
    passed = re.findall(r'The following cell passed:\s+"""Quiz question (\d+) ', done.stdout)
    assert done.stdout.count("The following cell passed:") == 10, done.stdout
    assert passed == [str(n) for n in range(1, 11)], done.stdout


@pytest.mark.slow
def test_graded_cells_are_thin_and_named_after_their_check():
    from autograder import checks

    nb = nbformat.read(SOURCE_NB, as_version=4)
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta:
            assert cell.id == meta["grade_id"], "cell ids are the descriptive grade_ids"
            assert re.fullmatch(r"(setup|step[1-4]|quiz|quiz\d\d|progress|self)_[a-z0-9_]+", meta["grade_id"]), (
                meta["grade_id"])
        if meta.get("grade") and meta["grade_id"].startswith("quiz"):
            qid = meta["grade_id"].split("_", 1)[1]
            assert cell.source.splitlines()[0].startswith('"""Quiz question')
            assert f'quiz.check_answered("{qid}")' in cell.source and "### BEGIN HIDDEN TESTS" in cell.source
        elif meta.get("grade"):
            first = cell.source.splitlines()[0]
            assert first.startswith('"""') and first.endswith('"""'), f"{cell.id}: start with a one-line docstring"
            assert callable(getattr(checks, meta["grade_id"])), f"no check named {meta['grade_id']}"
            assert f"checks.{meta['grade_id']}(globals())" in cell.source
            code = [line for line in cell.source.splitlines()[1:] if line.strip() and not line.startswith("###")]
            assert all(line.startswith(("from autograder import checks", "checks.", "await checks."))
                       for line in code), (
                cell.id)
            if "### BEGIN HIDDEN TESTS" in cell.source:  # the visible part is the gate of the hidden check
                assert f'checks.ready("{meta["grade_id"]}")' in cell.source, cell.id


@pytest.mark.slow
def test_every_step_has_graded_points_and_each_quiz_question_one():
    points = graded_cells()
    assert [p for gid, p in points.items() if gid.startswith("quiz")] == [1] * 10
    for step in range(1, 5):
        assert sum(p for gid, p in points.items() if gid.startswith(f"step{step}_")) >= 1


INSTRUCTOR_SIDE = "course_grade"


def imports_of(source: str) -> list[tuple[int, str]]:
    """(line, module) for every module `source` imports anywhere in its code (at the top, in a
    function, under `if`/`try`), by an import statement or by `importlib.import_module(...)` /
    `__import__(...)` with a literal name. Relative imports are left out: they stay inside
    their own package."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level:
            found += [(node.lineno, node.module or "")]
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            if name in ("import_module", "__import__"):
                found.append((node.lineno, node.args[0].value))
    return found


def instructor_imports(source: str) -> list[str]:
    """"line N: module" for each import of the instructor side in `source`."""
    return [f"line {line}: {module}" for line, module in imports_of(source)
            if module.split(".")[0] == INSTRUCTOR_SIDE]


def layering_violations(root) -> dict[str, list[str]]:
    """file -> its imports of the instructor side, for every .py file of root/autograder."""
    files = sorted((root / "autograder").rglob("*.py"))
    assert len(files) > 10, files
    found = {str(path.relative_to(root)): instructor_imports(path.read_text()) for path in files}
    return {path: lines for path, lines in found.items() if lines}


def test_the_kernel_side_never_imports_the_instructor_side():
    """`autograder` (what a student's notebook imports) never imports `course_grade` (the
    instructor's grading, sandbox, tampering analysis, quiz preprocessors), in any of its
    files (read, not imported: fast tier; the slow tier also imports them all)."""
    assert layering_violations(ROOT) == {}


@pytest.mark.parametrize("planted", [
    "import course_grade",
    "import course_grade.grading as grading",
    "from course_grade import tamper",
    "from course_grade.task import grade",
    "def later():\n    from course_grade import lms\n    return lms",
    "try:\n    import json, course_grade.quiz_preprocessor\nexcept ImportError:\n    pass",
    "import importlib\nimportlib.import_module('course_grade.grading')",
    "from importlib import import_module\nimport_module('course_grade')",
    "__import__('course_grade.sandbox')",
])
def test_the_layering_check_catches_a_planted_import(tmp_path, planted):
    import shutil

    shutil.copytree(ROOT / "autograder", tmp_path / "autograder", ignore=shutil.ignore_patterns("__pycache__"))
    module = tmp_path / "autograder" / "reference.py"
    lines = module.read_text().count("\n")
    module.write_text(module.read_text() + planted + "\n")
    found = layering_violations(tmp_path)
    assert list(found) == ["autograder/reference.py"], found
    assert all(int(line.split()[1].rstrip(":")) > lines for line in found["autograder/reference.py"]), found


def test_the_layering_check_lets_the_kernel_sides_own_imports_be():
    source = ('"""Mentions course_grade in prose only."""\nimport autograder.checks\nfrom . import reference\n'
              'from autograder import course_grade_notes\nimport course_grader\nNAME = "course_grade"\n'
              'print("import course_grade")\n')
    assert instructor_imports(source) == []


@pytest.mark.slow
def test_the_kernel_side_imports_no_instructor_module_at_run_time():
    """The same rule at run time: every module of `autograder` imported, in a fresh interpreter."""
    code = ("import importlib, pkgutil, sys, autograder\n"
            "for m in pkgutil.iter_modules(autograder.__path__):\n"
            "    importlib.import_module('autograder.' + m.name)\n"
            "print(sorted(n for n in sys.modules if n.split('.')[0] == 'course_grade'))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stdout + done.stderr


@pytest.mark.slow
def test_a_course_hub_can_install_the_kernel_side_alone(tmp_path):
    """tools/kernel-package builds a wheel of autograder/ only: no instructor code in it."""
    import shutil
    import zipfile

    uv = shutil.which("uv")
    assert uv, "uv is installed by the Makefile"
    project = ROOT / "tools" / "kernel-package"
    try:
        done = subprocess.run([uv, "build", "--wheel", "-q", "-o", str(tmp_path), str(project)],
                              capture_output=True, text=True, timeout=300)
    finally:  # setuptools leaves its work folders beside the project
        shutil.rmtree(project / "build", ignore_errors=True)
        for info in project.glob("*.egg-info"):
            shutil.rmtree(info, ignore_errors=True)
    assert done.returncode == 0, done.stderr
    (wheel,) = tmp_path.glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    packages = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert packages == {"autograder"}, packages
    assert "autograder/checks.py" in names and "autograder/guard.py" in names and "autograder/quiz.toml" in names


def _format_keywords(schema) -> list[str]:
    """Every JSON-schema `format` keyword in `schema` (a property named "format" is a dict)."""
    found = []
    if isinstance(schema, dict):
        if isinstance(schema.get("format"), str):
            found.append(schema["format"])
        for value in schema.values():
            found += _format_keywords(value)
    elif isinstance(schema, list):
        for value in schema:
            found += _format_keywords(value)
    return found


@pytest.mark.slow
def test_grading_validates_no_schema_that_needs_the_modules_it_goes_without():
    """course_grade keeps rfc3987_syntax (jsonschema's "iri" format checker, ~1.1 s to import)
    out of the grading processes: no schema they validate (nbformat's, nbgrader's cell
    metadata) uses a format, so nothing they check changes."""
    from pathlib import Path

    import nbgrader.nbgraderformat

    schemas = sorted(Path(nbformat.__file__).parent.glob("v*/*.schema.json"))
    schemas += sorted(Path(nbgrader.nbgraderformat.__file__).parent.glob("v*.json"))
    assert len(schemas) > 5, schemas
    for path in schemas:
        assert _format_keywords(json.loads(path.read_text())) == [], f"{path} uses a format"


@pytest.mark.slow
def test_grading_processes_do_without_the_iri_parser(tmp_path):
    """The command's process and its nbgrader steps (nbgrader's own entry point, launched by
    course_grade) import nbformat and nbgrader without rfc3987_syntax, and still work."""
    probe = ("import sys, course_grade.engine.task, course_grade.commands.grade, nbformat, nbgrader.apps.api, "
             "jsonschema; "
             "print(sys.modules.get('rfc3987_syntax', 'absent'))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "None", "course_grade must keep rfc3987_syntax out"
    from course_grade.course import nbgrader_command

    course = make_course(tmp_path / "course")
    python, *launch = nbgrader_command()
    done = subprocess.run([python, "-X", "importtime", *launch, "export", "--to", str(tmp_path / "grades.csv")],
                          cwd=course, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "grades.csv").read_text().startswith("assignment,")
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    assert {"nbformat", "jsonschema", "nbgrader.apps.exportapp"} <= imported, "the step imported what export needs"
    # (importtime lists the refused import of rfc3987_syntax itself, in microseconds; what it
    # would have loaded, its parser generator, is not there)
    assert "lark" not in imported, "the nbgrader step loaded rfc3987_syntax's parser"
