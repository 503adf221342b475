"""A representative part of the catalogue through REAL `nbgrader autograde`: the same
expectations as tests/autograder/test_catalogue.py, and the in-shell harness must agree with nbgrader
cell by cell (points and message)."""
from __future__ import annotations

import pytest

from tests.support.course import (
    answers_file,
    autograde,
    make_course,
    results,
    right_answers,
    solutions,
    student_notebook,
    submit,
)
from tests.support.harness import grade_many
from tests.support.mistakes import MISTAKES, problems
from tests.support.variants import VARIANTS

pytestmark = pytest.mark.slow

VARIANT_NAMES = ["annotated_type_alias", "async_sessionmaker_text", "return_connection_route_closes",
                 "engine_options_dict"]
MISTAKE_NAMES = ["url_sync_driver", "size_string", "engine_wrong_import_path", "leak_connect_never_closed",
                 "annotation_without_depends", "asyncio_run_in_step_cell"]
SUBSET_VARIANTS = [v for v in VARIANTS if v.name in VARIANT_NAMES]
SUBSET_MISTAKES = [m for m in MISTAKES if m.name in MISTAKE_NAMES]
PREFIX = "CheckFailed: "


def _student(kind: str, name: str) -> str:
    return f"{kind}-{name}".replace("_", "-")


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """(nbgrader results, harness results), both student -> grade_id -> result."""
    assert len(SUBSET_VARIANTS) == len(VARIANT_NAMES) and len(SUBSET_MISTAKES) == len(MISTAKE_NAMES)
    course = make_course(tmp_path_factory.mktemp("catalogue") / "course")
    subs = {_student("variant", v.name): v.changes for v in SUBSET_VARIANTS}
    subs.update({_student("mistake", m.name): m.changes for m in SUBSET_MISTAKES})
    quiz = answers_file(right_answers())
    for student, changes in subs.items():
        submit(course, student, student_notebook({**solutions(), **changes}), quiz)
    done, _seconds = autograde(course)
    assert done.returncode == 0, f"nbgrader autograde failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    by_nbgrader = {student: results(course, student) for student in subs}
    by_harness = grade_many({student: (changes, None) for student, changes in subs.items()})
    return by_nbgrader, by_harness


def _message(cell) -> str:
    return cell.message[len(PREFIX):] if cell.message.startswith(PREFIX) else cell.message


def _summary(cells) -> str:
    return "\n".join(f"  {gid}: {c.score}/{c.max_score} {c.message}" for gid, c in cells.items() if not c.full)


@pytest.mark.parametrize("variant", SUBSET_VARIANTS, ids=lambda v: v.name)
def test_variant_earns_full_marks_in_nbgrader(graded, variant):
    cells = graded[0][_student("variant", variant.name)]
    assert all(c.full for c in cells.values()), f"{variant.name} lost points:\n{_summary(cells)}"


@pytest.mark.parametrize("mistake", SUBSET_MISTAKES, ids=lambda m: m.name)
def test_mistake_loses_exactly_its_cells_in_nbgrader(graded, mistake):
    cells = graded[0][_student("mistake", mistake.name)]
    found = problems(mistake, {gid: (c.full, _message(c)) for gid, c in cells.items()})
    assert not found, f"{mistake.name}:\n  " + "\n  ".join(found) + f"\ngraded:\n{_summary(cells)}"


@pytest.mark.parametrize("student", [_student("variant", n) for n in VARIANT_NAMES] +
                         [_student("mistake", n) for n in MISTAKE_NAMES])
def test_harness_agrees_with_nbgrader(graded, student):
    by_nbgrader, by_harness = graded
    shell = by_harness[student]
    assert shell.ok, shell.error
    disagree = []
    for gid, cell in by_nbgrader[student].items():
        mine = shell.cells[gid]
        if abs(cell.score - mine.points) > 1e-9:
            disagree.append(f"{gid}: nbgrader {cell.score}, harness {mine.points}")
        if cell.message != mine.shown:
            disagree.append(f"{gid}: nbgrader says {cell.message!r}, harness {mine.shown!r}")
        if bool(cell.stderr) != bool(mine.stderr):
            disagree.append(f"{gid}: stderr nbgrader {cell.stderr!r}, harness {mine.stderr!r}")
    assert not disagree, "\n".join(disagree)
