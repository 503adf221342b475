"""The lesson notebook, executed with its solutions, as a student's kernel runs it."""
from __future__ import annotations

import shutil
import sqlite3

import nbformat
import pytest
from nbclient import NotebookClient

from course import SOURCE_NB


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    folder = tmp_path_factory.mktemp("lesson")
    path = shutil.copy(SOURCE_NB, folder)
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=120, allow_errors=True, resources={"metadata": {"path": str(folder)}}).execute()
    return folder, {cell.id: cell for cell in nb.cells}


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
    assert "sqlalchemy.exc.ResourceClosedError: This Connection is closed" in _text(cells["step4_demo_return_mistake"])


def test_items_cell_shows_the_rows_as_json(executed):
    _, cells = executed
    shown = _text(cells["step4_call_items"])
    assert "status: 200" in shown
    assert "'name': 'Espresso cup'" in shown and "'price': 89.99" in shown
    assert "Current Checked out connections: 0" in shown  # the yield dependency gave it back


def test_engine_exploration_cell_shows_the_queue_pool(executed):
    _, cells = executed
    assert "AsyncAdaptedQueuePool" in _text(cells["step3_explore_pool"])
    assert "Pool size: 5" in _text(cells["step3_explore_pool"])


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
