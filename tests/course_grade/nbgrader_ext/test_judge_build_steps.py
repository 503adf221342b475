"""The judge under REAL `nbgrader autograde` (course_grade/nbgrader_ext/judge_build_steps.py):
where the in-kernel checks were fooled, the judge decides, and the notebook is flagged with
both outcomes; where they agree, the cells keep their outputs and nothing is flagged."""
from __future__ import annotations

import json

import nbformat
import pytest

from tests.support.course import (
    ASSIGNMENT,
    answers_file,
    autograde,
    make_course,
    results,
    right_answers,
    solutions,
    student_notebook,
    submit,
)

pytestmark = pytest.mark.slow

STEP1, STEP4 = "step1_database_url_solution", "step4_app_solution"
BUILD = ("step1", "step2", "step3", "step4")
# builds nothing, and makes every in-kernel check pass: the allow-list lets `typing` evaluate a
# string annotation, and the string imports the checks and replaces each with a no-op
PATCH_FROM_A_STRING = '''
import typing

CODE = ("__import__('autograder.checks').checks.__dict__.update("
        "{n: (lambda *a, **k: type('Done', (), {'__await__': lambda s: iter(())})())"
        " for n in list(__import__('autograder.checks').checks.__dict__) if n.startswith('step')}) or int")


def hook(x: CODE):
    pass


typing.get_type_hints(hook)
DATABASE_URL = "not a database"
'''.strip()
DISPOSE_AFTER_EACH_REQUEST = solutions()[STEP4].replace(
    "        yield conn\n", "        yield conn\n    await engine.dispose()\n")


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    course = make_course(tmp_path_factory.mktemp("judge") / "course")
    quiz = answers_file(right_answers())
    submit(course, "honest", student_notebook(solutions()), quiz)
    submit(course, "patched", student_notebook({STEP1: PATCH_FROM_A_STRING}), quiz)
    submit(course, "disposing", student_notebook({**solutions(), STEP4: DISPOSE_AFTER_EACH_REQUEST}), quiz)
    done, _ = autograde(course)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return course


def _graded(course, student):
    return nbformat.read(course / "autograded" / student / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)


def _flagged(course, student) -> bool:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        return gb.find_submission_notebook(ASSIGNMENT, ASSIGNMENT, student).flagged


def test_an_honest_notebook_keeps_its_outputs_and_every_point_and_is_not_flagged(course):
    assert all(cell.full for cell in results(course, "honest").values())
    nb = _graded(course, "honest")
    assert nb.metadata.course["judged"] is True and nb.metadata.course["judge_disagreed"] == []
    judged = [c for c in nb.cells if "judge" in c.metadata.get("course", {})]
    assert len(judged) == 11 and all(c.metadata.course["judge"]["passed"] for c in judged)
    assert not _flagged(course, "honest")


def test_a_notebook_that_builds_nothing_scores_nothing_on_the_build_steps_whatever_it_patched(course):
    cells = results(course, "patched")
    build = {gid: cell for gid, cell in cells.items() if gid.startswith(BUILD)}
    assert len(build) == 11 and all(cell.score == 0 for cell in build.values()), build
    assert all(cell.full for gid, cell in cells.items() if gid.startswith("quiz"))
    nb = _graded(course, "patched")
    disagreed = nb.metadata.course["judge_disagreed"]
    assert any(line.startswith("step3_engine_connects: the in-kernel check passed, the judge failed")
               for line in disagreed), disagreed
    assert _flagged(course, "patched")
    engine_cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "step3_engine_connects")
    assert engine_cell.metadata.course["kernel_passed"] is True
    record = json.loads(json.dumps(engine_cell.outputs[0]["data"]))  # the judge's record is what the cell shows
    assert record["application/vnd.connection-pooling.check+json"]["passed"] is False
    assert engine_cell.outputs[-1]["output_type"] == "error"


def test_disposing_the_engine_after_each_request_loses_the_reuse_check(course):
    cells = results(course, "disposing")
    lost = {gid for gid, cell in cells.items() if not cell.full}
    assert lost == {"step4_connections_returned", "step4_concurrent_requests_share_the_pool"}, lost
    assert "does not reuse pooled connections" in cells["step4_connections_returned"].message
