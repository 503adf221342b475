"""The lesson notebook, executed with its solutions, as a student's kernel runs it."""
from __future__ import annotations

import json
import re
import shutil
import sqlite3

import nbformat
import pytest
from nbclient import NotebookClient

from tests.support.course import ANSWERS_FILE, SOURCE_NB, right_answers

pytestmark = pytest.mark.slow

# Run right after the graded quiz is shown: choose every answer through the widgets, as a
# student's clicks would, and press Check on a practice question.
CHOOSE_ANSWERS = f"""
views, _ = quiz.build_test()
for view in views:
    view.choose({right_answers()!r}[view.question.id])
practice = quiz.build_practice()
practice[0].choose(practice[0].question.answer)
practice[0].check.click()
print(practice[0].feedback.value)
"""


def execute(nb, folder):
    NotebookClient(nb, timeout=120, allow_errors=True, resources={"metadata": {"path": str(folder)}}).execute()
    return {cell.id: cell for cell in nb.cells}


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    folder = tmp_path_factory.mktemp("lesson")
    nb = nbformat.read(shutil.copy(SOURCE_NB, folder), as_version=4)
    at = next(i for i, c in enumerate(nb.cells) if c.id == "quiz_test_show")
    nb.cells.insert(at + 1, nbformat.v4.new_code_cell(CHOOSE_ANSWERS, id="test-choose-answers"))
    return folder, execute(nb, folder)


def _text(cell) -> str:
    parts = []
    for out in cell.get("outputs", []):
        if out.output_type == "stream":
            parts.append(out.text)
        elif out.output_type in ("execute_result", "display_data"):
            parts.append(out.data.get("text/plain", ""))
    return "".join(parts)


def test_every_cell_runs_without_error_or_stderr(executed):
    _, cells = executed
    for cell_id, cell in cells.items():
        for out in cell.get("outputs", []):
            assert out.output_type != "error", f"{cell_id}: {out.ename}: {out.evalue}"
            assert not (out.output_type == "stream" and out.name == "stderr"), f"{cell_id} wrote to stderr: {out.text}"


def test_every_graded_cell_ran_and_passed(executed):
    _, cells = executed
    graded = [c for c in cells.values() if c.metadata.get("nbgrader", {}).get("grade")]
    assert len(graded) >= 11
    assert all(c.get("execution_count") for c in graded), "a graded cell did not run"


def test_mistake_demo_shows_the_real_closed_connection_error(executed):
    _, cells = executed
    shown = _text(cells["step4_demo_return_mistake"])
    assert "The route fails with sqlalchemy.exc.ResourceClosedError: This Connection is closed" in shown


def test_items_cell_shows_the_rows_as_json(executed):
    _, cells = executed
    shown = _text(cells["step4_call_items"])
    assert "status: 200" in shown
    assert "'name': 'Espresso cup'" in shown and "'price': 89.99" in shown
    # the yield dependency gave its connection back, and the pool keeps it for reuse: the
    # "0 checked out and 1 checked in" the lesson's text states (graded quiz question 8)
    assert "checked out: 0\n" in shown and "checked in:  1\n" in shown


def test_setup_cell_is_idempotent(tmp_path, monkeypatch):
    setup = next(c for c in nbformat.read(SOURCE_NB, as_version=4).cells if c.id == "setup_items_table")
    monkeypatch.chdir(tmp_path)

    def rows():
        with sqlite3.connect("test.db") as con:
            return con.execute("SELECT id, name, price FROM items ORDER BY id").fetchall()

    exec(setup.source, {})
    first = rows()
    with sqlite3.connect("test.db") as con:
        con.execute("INSERT INTO items VALUES (99, 'stray row', 1.0)")
    exec(setup.source, {})
    assert rows() == first and len(first) == 3


def test_quiz_choices_are_saved_beside_the_notebook_and_graded(executed):
    folder, cells = executed
    saved = json.loads((folder / ANSWERS_FILE).read_text())["answers"]
    assert saved == right_answers()
    assert "Right." in _text(cells["test-choose-answers"])
    quiz_cells = [c for c in cells.values() if c.id.startswith("quiz") and c.metadata.get("nbgrader", {}).get("grade")]
    assert len(quiz_cells) == 10 and all(c.get("execution_count") for c in quiz_cells)


def test_saved_choices_come_back_after_a_kernel_restart(executed):
    """A fresh kernel (as after a restart) renders the quiz with the saved choices selected."""
    folder, _ = executed
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "from autograder import quiz\nquiz.show_test()\n"
        "views, notice = quiz.build_test()\nprint({v.question.id: v.radio.value for v in views}, repr(notice))"
    )])
    (cell,) = execute(nb, folder).values()
    shown = _text(cell)
    assert repr(right_answers()) in shown and "''" in shown
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in cell.outputs)


def _panel(cell) -> str:
    (out,) = [o for o in cell.outputs if o.output_type == "display_data"]
    return out.data["text/plain"]


def test_progress_panels_reach_four_of_four(executed):
    """Both progress panels, updated in place as the checks passed, end at 4/4 visible, and
    leave the hidden checks to grading."""
    _, cells = executed
    for cell_id in ("progress_show", "progress_show_again"):
        assert _panel(cells[cell_id]) == (
            "Progress: 4/4 steps pass their visible checks; hidden checks run only when your notebook is graded "
            "(press Grade my notebook at the end)."), cell_id
        assert 'class="course-progress"' in cells[cell_id].outputs[0].data["text/html"]


def test_each_step_says_when_its_checks_pass_and_what_is_next(executed):
    _, cells = executed
    said = "".join(_text(c) for c in cells.values() if c.id.startswith("step"))
    for line in ("Step 1 passes its checks. Progress: 1/4 steps pass their visible checks. "
                 "Next: step 2, the pool size.",
                 "Step 2 passes its checks. Progress: 2/4 steps pass their visible checks. "
                 "Next: step 3, the pooled async engine.",
                 "Step 3 passes its visible checks; its 1 hidden check runs when your notebook is graded. "
                 "Progress: 3/4 steps pass their visible checks. Next: step 4, the FastAPI route.",
                 "Step 4 passes its visible checks; its 2 hidden checks run when your notebook is graded. "
                 "Progress: 4/4 steps pass their visible checks; hidden checks run only when your notebook is "
                 "graded (press Grade my notebook at the end)."):
        assert said.count(line) == 1, line
    assert " done." not in said


def test_progress_of_a_half_done_notebook(tmp_path):
    """The release notebook with steps 1 and 2 filled in: the panel says 2/4, next step 3."""
    from tests.support.course import solutions, student_notebook

    done = {k: v for k, v in solutions().items() if k.startswith(("step1", "step2"))}
    cells = execute(student_notebook(done), tmp_path)
    assert _panel(cells["progress_show"]) == (
        "Progress: 2/4 steps pass their visible checks. Next: step 3, the pooled async engine.")
    html = cells["progress_show_again"].outputs[0].data["text/html"]
    assert html.count("course-progress-done") == 2 and html.count("course-progress-next") == 1


def _step4_with(dependency: str, route_body: str = "result = await conn.execute(text(\"SELECT * FROM items\"))\n"
                "    return result.mappings().all()") -> str:
    return f'''
from fastapi import Depends, FastAPI
from sqlalchemy import text

app = FastAPI()
{dependency}

@app.get("/items")
async def read_items(conn=Depends(get_connection)):
    {route_body}
'''


@pytest.mark.parametrize("dependency, route_body, shown, hidden", [
    ("async def get_connection():\n    async with engine.connect() as conn:\n        return conn\n", None,
     ("RequestFailed: GET /items failed", "closed connection", "`yield conn`",
      "ResourceClosedError: This Connection is closed"),
     ("starlette", "fastapi/routing.py", "httpx/_client.py")),
    ("async def get_connection():\n    async with engin.connect() as conn:\n        yield conn\n", None,
     ("RequestFailed: GET /items failed", "`engin` is not defined", "NameError: name 'engin' is not defined"),
     ("starlette", "fastapi/routing.py")),
    ("async def get_connection():\n    async with engine.connect() as conn:\n        yield conn\n",
     "return 1 / 0",  # a mistake the lesson does not name: shown whole, every frame
     ("ZeroDivisionError: division by zero", "starlette", "1 / 0"), ("RequestFailed:",)),
    ("from contextlib import asynccontextmanager\n\n@asynccontextmanager\nasync def lifespan(app):\n"
     "    app.state.engine = engin\n    yield\n\napp = FastAPI(lifespan=lifespan)\n\n"
     "async def get_connection():\n    async with engine.connect() as conn:\n        yield conn\n", None,
     ("RequestFailed: `app` did not start", "before its `yield`", "NameError: name 'engin' is not defined"),
     ("starlette", "asgi_lifespan", "GET /items failed: `app`")),
], ids=["closed connection", "name not defined", "not a named mistake", "lifespan fails at startup"])
def test_the_request_cell_names_a_common_mistake_in_one_sentence(tmp_path, dependency, route_body, shown, hidden):
    """The lesson's cell that calls GET /items: for a named mistake, one sentence and the raw
    error, without the forty frames of httpx, Starlette and FastAPI; any other error whole."""
    from tests.support.course import solutions, student_notebook

    answers = dict(solutions())
    answers["step4_app_solution"] = _step4_with(dependency, *([route_body] if route_body else []))
    cells = execute(student_notebook(answers), tmp_path)
    (error,) = [o for o in cells["step4_call_items"].outputs if o.output_type == "error"]
    text = re.sub(r"\x1b\[[0-9;]*m", "", f"{error.ename}: {error.evalue}\n" + "\n".join(error.traceback))
    for words in shown:
        assert words in text, f"{words!r} not shown:\n{text[-3000:]}"
    for words in hidden:
        assert words not in text, f"{words!r} shown:\n{text[-3000:]}"
