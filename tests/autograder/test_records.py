"""Each check's result as a record (autograder/records.py): shown beside its sentence in the
cell's outputs, with the right fields, and hidden from every page a person reads."""
from __future__ import annotations

import json

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook, new_output

from autograder import checks, registry  # noqa: F401 - importing the checks declares them
from autograder.records import MIME, CheckRecord, by_cell, records_of

BUILD = [c.name for c in registry.declared()]


@pytest.fixture(scope="module")
def graded():
    """A correct submission, `return` inside `async with` (a named mistake at request time),
    POOL_SIZE = "5" (later steps graded with a stand-in), graded once each by the harness."""
    from tests.support.harness import grade_many
    from tests.support.mistakes import MISTAKES
    from tests.support.variants import VARIANTS

    named = {m.name: m for m in MISTAKES}
    out = grade_many({"right": (VARIANTS[0].changes, None),
                      "return": (named["return_inside_async_with"].changes, None),
                      "size": (named["size_string"].changes, None)}, jobs=2)
    for name, g in out.items():
        assert g.ok, f"{name}: {g.error}"
    return out


def test_every_check_shows_one_record_of_its_own_with_its_declaration(graded):
    for name, g in graded.items():
        for gid in BUILD:
            cell, check = g.cells[gid], registry.get(gid)
            assert [r.check for r in cell.records] == [gid], (name, gid, cell.records)
            record = cell.record
            assert (record.step, record.points) == (check.step, check.points), (name, gid)
            assert record.passed == cell.passed, (name, gid)
            assert record.message == ("" if cell.passed else cell.message), (name, gid)


def test_a_correct_submission_passes_every_record_on_its_own_values(graded):
    records = [graded["right"].cells[gid].record for gid in BUILD]
    assert all(r.passed and not r.stand_in and r.mistake is None for r in records)


def test_a_failure_records_its_named_mistake_the_pointer_and_the_gate(graded):
    cells = graded["return"].cells
    first = cells["step4_items_returns_all_rows"].record
    assert (first.passed, first.mistake, first.same_as) == (False, "closed_connection", None)
    pointer = cells["step4_connections_returned"].record
    assert pointer.same_as == "step4_items_returns_all_rows" and pointer.mistake == "closed_connection"
    gate = cells["step4_items_reads_the_table"].record
    assert gate.waiting_for == ("step4_items_returns_all_rows",) and not gate.passed


def test_a_stand_in_is_recorded(graded):
    cells = graded["size"].cells
    wrong = cells["step2_pool_size"].record
    assert not wrong.passed and wrong.mistake is None and "`POOL_SIZE` is the string '5'" in wrong.message
    assert not wrong.stand_in
    later = [cells[gid].record for gid in BUILD if registry.get(gid).step > 2]
    assert all(r.passed and r.stand_in for r in later)


def test_records_round_trip_and_junk_is_skipped():
    record = CheckRecord("step1_database_url", 1, 1, False, mistake="name_error", message="m", waiting_for=("a",))
    assert CheckRecord.from_json(json.loads(json.dumps(record.to_json()))) == record
    outputs = [{"output_type": "display_data", "data": {MIME: {"check": "x"}}},          # fields missing
               {"output_type": "display_data", "data": {MIME: {**record.to_json(), "step": "1"}}},  # wrong type
               {"output_type": "display_data", "data": {MIME: "not json"}},
               {"output_type": "stream", "name": "stdout", "text": "hello"},
               {"output_type": "display_data", "data": record.bundle()}]
    assert records_of(outputs) == [record]
    cell = {"cell_type": "code", "metadata": {"nbgrader": {"grade_id": "step1_database_url"}}, "outputs": outputs}
    other = {"cell_type": "code", "metadata": {"nbgrader": {"grade_id": "step2_pool_size"}}, "outputs": outputs}
    assert by_cell({"cells": [cell, other]}) == {"step1_database_url": record}  # a cell's own check only
    unexplained = CheckRecord("step4_app_has_items_route", 4, 1, False, message="GET /items failed", unexplained=True)
    assert CheckRecord.from_json(unexplained.to_json()).unexplained is True, unexplained.to_json()


def test_the_generic_sentence_is_marked_unexplained_and_a_named_one_is_not():
    from autograder import explain

    fallback = explain.at_request(LookupError("no such thing"))
    assert fallback.unexplained and fallback.mistake is None, fallback
    cell_fallback = explain.in_cell(2, LookupError("no such thing"))
    assert cell_fallback.unexplained and cell_fallback.mistake is None, cell_fallback
    named = explain.in_cell(1, NameError("name 'sqlite' is not defined"), 'DATABASE_URL = sqlite+aiosqlite:///./test.db')
    assert not named.unexplained, named


def _notebook_with_a_record() -> nbformat.NotebookNode:
    record = CheckRecord("step1_database_url", 1, 1, False, mistake="unquoted_url", message="RECORD-ONLY-WORDS")
    cell = new_code_cell("checks.step1_database_url(globals())", metadata={"nbgrader": {
        "grade": True, "grade_id": "step1_database_url", "points": 1, "score": 0, "solution": False, "locked": True}})
    cell.outputs = [new_output("display_data", data=record.bundle()),
                    new_output("error", ename="CheckFailed", evalue="The sentence.",
                               traceback=["CheckFailed: The sentence."])]
    return new_notebook(cells=[cell])


@pytest.mark.parametrize("template", ["lab", "feedback"])
@pytest.mark.filterwarnings("ignore:Your element with mimetype")
def test_html_pages_do_not_show_the_record(template):
    """nbconvert's HTML and nbgrader's feedback page (its template) leave the record out."""
    import os

    import nbgrader
    from nbconvert import HTMLExporter

    if template == "feedback":
        formgrader = os.path.join(os.path.dirname(nbgrader.__file__), "server_extensions", "formgrader")
        css = os.path.join(formgrader, "static", "node_modules", "bootstrap", "dist", "css")
        exporter = HTMLExporter(template_name="feedback",
                                extra_template_basedirs=[os.path.join(formgrader, "templates")],
                                extra_template_paths=[css])  # as nbgrader's GenerateFeedback sets it up
    else:
        exporter = HTMLExporter()
    resources = {"nbgrader": {"notebook": "lesson", "score": 0, "max_score": 1,
                              "late_penalty": 0}}  # as GetGrades sets them
    page, _ = exporter.from_notebook_node(_notebook_with_a_record(), resources=resources)
    assert "The sentence." in page
    assert "RECORD-ONLY-WORDS" not in page and "unquoted_url" not in page and MIME not in page
