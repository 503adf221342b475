"""The tampering analysis (course_grade/nbgrader_ext/tamper_analysis.py) and its nbgrader preprocessor, fast.

Every attack class is flagged; every correct variant, the lesson's solution, the notebook's
own unlocked cells and a gallery of honest look-alikes are not. The preprocessor is tested
as nbgrader tests its own: a NotebookNode with nbgrader metadata, `preprocess`, the cells.
"""
from __future__ import annotations

import ast
import shutil

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from course_grade.nbgrader_ext import tamper_analysis as tamper
from course_grade.nbgrader_ext.flag_tampering import SCANNED, FlagTampering
from tests.support.course import RELEASE_NB, blank_gradebook, solutions
from tests.support.mistakes import MISTAKES
from tests.support.submissions import ADVERSARIAL, HONEST_LOOKALIKES
from tests.support.tamper_cases import ATTACKS, HONEST
from tests.support.variants import VARIANTS

ATTACK_CASES = [(cat, code) for cat, codes in ATTACKS.items() for code in codes]


@pytest.mark.parametrize("category, code", ATTACK_CASES, ids=[f"{c}-{i}" for i, (c, _) in enumerate(ATTACK_CASES)])
def test_each_attack_is_flagged(category, code):
    findings = tamper.analyse(code)
    assert findings, f"{category}: not flagged:\n{code}"
    assert all(f.line >= 1 and f.what and f.why for f in findings)


@pytest.mark.parametrize("name", sorted(HONEST))
def test_honest_look_alikes_are_not_flagged(name):
    assert tamper.analyse(HONEST[name]) == []


def test_every_correct_variant_mistake_and_the_solution_pass_unflagged():
    cells = {f"solution:{gid}": code for gid, code in solutions().items()}
    for v in VARIANTS:
        cells.update({f"variant {v.name}:{gid}": code for gid, code in v.changes.items()})
    for m in MISTAKES:  # a mistake must get its own message, not a removal
        cells.update({f"mistake {m.name}:{gid}": code for gid, code in m.changes.items()})
    for s in HONEST_LOOKALIKES:
        cells.update({f"look-alike {s.name}:{gid}": code for gid, code in s.changes.items()})
    flagged = {where: [str(f) for f in tamper.analyse(code)] for where, code in cells.items()}
    assert {w: f for w, f in flagged.items() if f} == {}
    assert len(cells) > 40


# read-only lesson cells that run code a student may copy into a cell of their own (to call
# GET /items again after a fix, to rerun the demo); the others show the course's own panels
COPYABLE = ("step4_call_items", "step4_demo_return_mistake")


def test_the_notebooks_own_cells_pass_in_a_students_cell():
    """Its unlocked cells, and the read-only lesson cells a student may copy."""
    nb = nbformat.read(RELEASE_NB, as_version=4)
    copyable = {c.id: c.source for c in nb.cells if c.cell_type == "code"
                and (c.id in COPYABLE or not c.metadata.get("nbgrader", {}).get("locked"))}
    assert set(COPYABLE) <= set(copyable) and len(copyable) >= 6  # and the four solution cells
    assert {cid: [str(f) for f in tamper.analyse(code)] for cid, code in copyable.items() if tamper.analyse(code)} == {}


@pytest.mark.parametrize("code", [
    "from autograder.explain import request_failed, at_request",
    "from autograder.explain import clue",
    "from autograder import explain",
    "import autograder.explain",
    "from autograder.checks import step4_connections_returned",
    "from autograder.explain import *",
])
def test_only_the_lessons_own_helper_may_be_imported_from_its_package(code):
    assert tamper.analyse(code), code


def test_the_existing_attack_cells_are_flagged_as_expected():
    for sub in ADVERSARIAL:
        flagged = any(tamper.analyse(code) for code in sub.changes.values())
        assert flagged == sub.flagged, sub.name


@pytest.mark.parametrize("code, words", [
    ("getattr(__import__('autogr' + 'ader.checks'), 'step1_' + 'database_url')", ["__import__", "computed name"]),
    ("get_ipython().input_transformers_post.append(f)", ["get_ipython", "input_transformers_post"]),
    ("import sys\nsys.modules['autograder.checks'] = None", ["sys.modules"]),
    ("open('../../../gradebook.db', 'wb')", ["'../../../gradebook.db'"]),
    ("import subprocess\nsubprocess.Popen(['uvicorn', 'app:app'], start_new_session=True)", ["import subprocess"]),
    ("%%time\nimport os\nos.system('ls')", ["os.system"]),
])
def test_findings_say_what_and_where(code, words):
    text = "\n".join(map(str, tamper.analyse(code)))
    for word in words:
        assert word in text, text
    assert text.startswith("line ")


def test_magic_findings_point_at_the_line_in_the_cell():
    found = tamper.analyse("%%time\nx = 1\nimport os\nos.system('ls')")
    assert {f.line for f in found} == {4}


def test_comments_strings_and_unparsable_code_are_never_flagged():
    assert tamper.analyse("# import subprocess; eval(x); sys.modules\nx = 'eval(globals())'") == []
    assert tamper.analyse('"""get_ipython().events.register"""') == []
    assert tamper.analyse("def broken(:\n    import subprocess") == []  # cannot run either


# ------------------------------------------------------------------------ the preprocessor

def _notebook(student_code: str, added: str | None = None):
    cells = [
        new_code_cell("from autograder import checks\n\nchecks.step1_database_url(globals())",
                      metadata={"nbgrader": {"grade_id": "setup", "locked": True, "solution": False, "grade": False}}),
        new_code_cell(student_code, metadata={"nbgrader": {"grade_id": "step1_database_url_solution", "locked": False,
                                                            "solution": True, "grade": False}}),
        new_code_cell('"""test"""\nfrom autograder import checks\n\nchecks.step1_database_url(globals())',
                      metadata={"nbgrader": {"grade_id": "step1_database_url", "locked": True, "solution": False,
                                             "grade": True, "points": 1}}),
    ]
    if added is not None:
        cells.append(new_code_cell(added))
    return new_notebook(cells=cells)


def _run(nb, **config):
    pp = FlagTampering(**config)
    return pp.preprocess(nb, {})


def test_preprocessor_removes_and_flags_an_attack_cell():
    attack = "import sys\nsys.modules['autograder.checks'] = None\n" + 'DATABASE_URL = "x"'
    nb, resources = _run(_notebook(attack, added="get_ipython().events.register('pre_run_cell', print)"))
    student, test, added = nb.cells[1], nb.cells[2], nb.cells[3]
    assert student.source.startswith("# removed by the grader for review")
    # only the offending statement is removed: the honest rest of the cell still runs
    assert [ast.unparse(node) for node in tamper.parse(student.source).body] == ["import sys", "DATABASE_URL = 'x'"]
    assert "# removed for review | sys.modules['autograder.checks'] = None" in student.source  # shown to the reviewer
    assert any("sys.modules" in f for f in student.metadata["course"]["flagged"])
    assert added.metadata["course"]["flagged"] and added.source.startswith("# removed")
    assert "checks.step1_database_url(globals())" in test.source and "course" not in test.metadata
    assert nb.metadata["course"][SCANNED] is True
    assert [line.split(":")[0] for line in resources["course"]["flagged"]] == ["cell 2 (step1_database_url_solution)",
                                                                             "cell 4 (added by the student)"]


def test_statements_that_need_a_removed_one_go_too_and_honest_ones_stay():
    """A student who starts a server from the step-4 cell keeps the step's points; the server
    code is removed, and so is every later statement that uses a name only it defined."""
    cell = ("from fastapi import FastAPI\napp = FastAPI()\nimport subprocess\n"
            "server = subprocess.Popen(['uvicorn', 'main:app'])\nprint(server.pid)\n"
            "@app.get('/items')\nasync def items():\n    return []\n")
    nb, _ = _run(_notebook(cell))
    kept = [ast.unparse(node).splitlines()[0] for node in tamper.parse(nb.cells[1].source).body]
    assert kept == ["from fastapi import FastAPI", "app = FastAPI()", "@app.get('/items')"]


def test_preprocessor_keeps_honest_cells_and_their_outputs():
    nb = _notebook(HONEST["comment_mentions_grader"], added=HONEST["re_compile"])
    nb.cells[1].metadata["course"] = {"flagged": ["forged by the student"]}
    before = [c.source for c in nb.cells]
    nb, resources = _run(nb)
    assert [c.source for c in nb.cells] == before
    assert "flagged" not in resources.get("course", {})
    assert all("flagged" not in c.metadata.get("course", {}) for c in nb.cells)


def test_a_student_cell_pretending_to_be_locked_is_still_analysed():
    nb = _notebook('DATABASE_URL = "x"', added="import subprocess")
    nb.cells[3].metadata["nbgrader"] = {"locked": True}  # no grade_id: not the instructor's
    nb, _ = _run(nb)
    assert nb.cells[3].source.startswith("# removed")


def test_shadowing_a_builtin_the_test_cells_call_is_flagged():
    nb, _ = _run(_notebook("def globals():\n    return {}\n"))
    assert nb.cells[1].source.startswith("# removed")


def test_flag_only_mode_keeps_the_code():
    nb, resources = _run(_notebook("eval('1')"), remove=False)
    assert nb.cells[1].source == "eval('1')" and resources["course"]["flagged"]


def test_preprocessor_flags_the_notebook_in_the_gradebook(tmp_path):
    from course_grade.course import open_gradebook

    shutil.copy(blank_gradebook(), tmp_path / "gradebook.db")  # a new one would run alembic (seconds)
    db = f"sqlite:///{tmp_path / 'gradebook.db'}"
    with open_gradebook(db) as gb:
        gb.add_assignment("a")
        gb.add_notebook("nb", "a")
        gb.add_student("alice")
        gb.add_submission("a", "alice")
    resources = {"nbgrader": {"db_url": db, "assignment": "a", "notebook": "nb", "student": "alice"}}
    FlagTampering().preprocess(_notebook("import ctypes"), resources)
    with open_gradebook(db) as gb:
        assert gb.find_submission_notebook("nb", "a", "alice").flagged is True
