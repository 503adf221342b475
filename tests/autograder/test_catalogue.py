"""The mistake catalogue and the correct-variant corpus, graded by the in-shell harness.

Every submission runs the real source notebook's cells (hidden tests included) in an IPython
shell, in a forked child of one fresh server process, two at a time; no nbgrader, no kernel
(~0.4 s of CPU each). The fast tier grades a sample (FAST: the harness's own checks, and per
step the first correct variant and the first two mistakes); the slow tier grades all of them.
tests/autograder/test_catalogue_nbgrader.py checks that real `nbgrader autograde` agrees on a subset. A
summary of every outcome graded is written to test-artifacts/catalogue/.
"""
from __future__ import annotations

import collections
import json
import re
import time

import pytest

import autograder.checks  # noqa: F401 - importing the checks declares them
from autograder import registry
from tests.support.course import ROOT, graded_cells
from tests.support.harness import BLANK, grade_many
from tests.support.mistakes import MISTAKES
from tests.support.mistakes import problems as judge
from tests.support.variants import VARIANTS

STEP_OF_SOLUTION = {1: "step1_database_url_solution", 2: "step2_pool_size_solution",
                    3: "step3_engine_solution", 4: "step4_app_solution"}
ARTIFACTS = ROOT / "test-artifacts" / "catalogue"
# A message that starts like a raw exception ("AttributeError: ...", "ValueError(...)"):
RAW = re.compile(r"^\s*(\w+\.)*[A-Z]\w*(Error|Exception|Warning|Exit|Interrupt|Timeout|Closed|Started)\b\s*[:(]?")


def step_cells(step: int) -> list[str]:
    return [gid for gid in graded_cells() if gid.startswith(f"step{step}_")]


def _harness_checks() -> dict:
    checks = {"harness_solution": ({}, None)}
    for step, cell in STEP_OF_SOLUTION.items():
        checks[f"harness_blank_step{step}"] = ({cell: BLANK}, None)
    return checks


def _variant_step(v) -> int:
    """The first step a variant rewrites (the solution itself: 0)."""
    return min((int(cell[4]) for cell in v.changes), default=0)


def _fast_sample() -> set[str]:
    """What the fast tier grades: the harness's checks; per step, the first correct variant
    that rewrites it (and the solution) and the first two mistakes (in catalogue order)."""
    fast = set(_harness_checks())
    for step in (0, 1, 2, 3, 4):
        fast |= {f"variant:{v.name}" for v in [v for v in VARIANTS if _variant_step(v) == step][:1]}
        fast |= {f"mistake:{m.name}" for m in [m for m in MISTAKES if m.step == step][:2]}
    return fast


FAST = _fast_sample()


def sampled(name: str, value=None, id: str | None = None):
    """A parameter for catalogue submission `name`: in the fast tier when it is in FAST, in the
    slow tier otherwise."""
    return pytest.param(name if value is None else value, id=id or name,
                        marks=() if name in FAST else pytest.mark.slow)


@pytest.fixture(scope="session")
def catalogue(request):
    """name -> Graded, for every variant, mistake and harness check (FAST only, when no slow
    catalogue test was selected); written to artifacts."""
    subs = {f"variant:{v.name}": (v.changes, None) for v in VARIANTS}
    subs.update({f"mistake:{m.name}": (m.changes, None) for m in MISTAKES})
    subs.update(_harness_checks())
    here = request.node.session.items
    if not any(item.module.__name__ == __name__ and item.get_closest_marker("slow") for item in here):
        subs = {name: sub for name, sub in subs.items() if name in FAST}
    start = time.perf_counter()
    graded = grade_many(subs, jobs=2)
    wall = time.perf_counter() - start
    _write_artifacts(graded, wall)
    return graded


def _write_artifacts(graded: dict, wall: float) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    data = {
        "wall_seconds": round(wall, 2),
        "submissions": {
            name: {
                "seconds": round(g.seconds, 2), "error": g.error,
                "lost": {gid: c.message for gid, c in g.cells.items() if not c.full},
                "repeated": repeated_messages(g),
                "step_done_while_raised": g.step_done_while_raised(),
                "student_cells_raised": {cid: f"{r.ename}: {r.message}" for cid, r in g.student_cells.items()
                                         if r.raised},
            } for name, g in graded.items()
        },
    }
    (ARTIFACTS / "results.json").write_text(json.dumps(data, indent=1))


def repeated_messages(g) -> dict[str, list[str]]:
    """A message shown by more than one graded cell -> those cells."""
    cells = collections.defaultdict(list)
    for gid, c in g.cells.items():
        if not c.full and c.message:
            cells[c.message].append(gid)
    return {message: gids for message, gids in cells.items() if len(gids) > 1}


def _summary(g) -> str:
    if g.error:
        return g.error
    lines = [f"  {gid}: {c.points}/{c.max_points} {c.shown}"
             + (f" [stderr: {c.stderr.strip()[:200]}]" if c.stderr else "")
             for gid, c in g.cells.items() if not c.full]
    raised = [f"  (student cell {cid} raised {r.ename}: {r.message[:150]})" for cid, r in g.student_cells.items()
              if r.raised]
    return "\n".join(lines + raised) or "  (every cell full)"


# -------------------------------------------------------------------------- the catalogue

def test_catalogue_is_big_enough():
    assert len(MISTAKES) >= 40, len(MISTAKES)
    per_step = collections.Counter(m.step for m in MISTAKES)
    assert all(per_step[step] >= 5 for step in (1, 2, 3, 4)), per_step
    assert len(VARIANTS) >= 30, len(VARIANTS)
    names = [m.name for m in MISTAKES] + [v.name for v in VARIANTS]
    assert len(names) == len(set(names)), "names must be unique"


def test_every_mistake_names_real_cells_of_its_own_step():
    graded = graded_cells()
    for m in MISTAKES:
        assert set(m.changes) <= set(STEP_OF_SOLUTION.values()), m.name
        assert STEP_OF_SOLUTION[m.step] in m.changes, m.name
        assert set(m.loses) <= set(graded), f"{m.name}: {set(m.loses) - set(graded)}"
        assert all(gid.startswith(f"step{m.step}_") for gid in m.loses), f"{m.name} loses cells of another step"


# ----------------------------------------------------------------------- the harness itself

def test_harness_solution_scores_full_marks(catalogue):
    g = catalogue["harness_solution"]
    assert g.ok, g.error
    assert set(g.cells) == set(graded_cells())
    assert all(c.full and c.passed for c in g.cells.values()), _summary(g)
    assert not any(r.raised for r in g.student_cells.values()), _summary(g)
    assert g.seconds < 30, f"one submission took {g.seconds:.1f} s in the harness"


@pytest.mark.parametrize("step", [1, 2, 3, 4])
def test_harness_blank_step_scores_zero_in_its_cells(catalogue, step):
    g = catalogue[f"harness_blank_step{step}"]
    assert g.ok, g.error
    assert g.student_cells[STEP_OF_SOLUTION[step]].ename == "NotImplementedError"
    for gid in step_cells(step):
        assert g.cells[gid].points == 0, f"{gid} gave points to a blank step {step}:\n{_summary(g)}"


# ------------------------------------------------------------------------------ variants

@pytest.mark.parametrize("variant", [sampled(f"variant:{v.name}", v, v.name) for v in VARIANTS])
def test_variant_earns_full_marks(catalogue, variant):
    g = catalogue[f"variant:{variant.name}"]
    assert g.ok, g.error
    raised = {cid: f"{r.ename}: {r.message}" for cid, r in g.student_cells.items() if r.raised}
    assert not raised, f"the variant itself is broken: {raised}"
    lost = {gid: c for gid, c in g.cells.items() if not c.full}
    assert not lost, f"{variant.name} lost points:\n{_summary(g)}"


# ------------------------------------------------------------------------------ mistakes

@pytest.mark.parametrize("mistake", [sampled(f"mistake:{m.name}", m, m.name) for m in MISTAKES])
def test_mistake_loses_exactly_its_cells(catalogue, mistake):
    g = catalogue[f"mistake:{mistake.name}"]
    assert g.ok, g.error
    problems = judge(mistake, {gid: (c.full, c.message) for gid, c in g.cells.items()})
    assert not problems, f"{mistake.name}:\n  " + "\n  ".join(problems) + f"\ngraded:\n{_summary(g)}"


ALL = [sampled(name) for name in [f"variant:{v.name}" for v in VARIANTS] + [f"mistake:{m.name}" for m in MISTAKES]]


@pytest.mark.parametrize("name", ALL)
def test_failure_messages_are_plain_sentences(catalogue, name):
    g = catalogue[name]
    assert g.ok, g.error
    bad = {}
    for gid, c in g.cells.items():
        if c.full:
            continue
        if c.stderr:
            bad[gid] = f"wrote to stderr (nbgrader scores the cell 0): {c.stderr.strip()[:300]!r}"
        elif c.ename != "CheckFailed":
            bad[gid] = f"raised {c.shown[:300]!r}, not one of the checks' sentences"
        elif RAW.match(c.message):
            bad[gid] = f"starts with raw exception text: {c.message[:300]!r}"
    assert not bad, "\n".join(f"{gid}: {why}" for gid, why in bad.items())


@pytest.mark.parametrize("name", ALL)
def test_no_check_crashed(catalogue, name):
    """A check that could not run (report._unexpected) shows a raw exception inside its sentence."""
    g = catalogue[name]
    crashed = {gid: c.message for gid, c in g.cells.items() if not c.full and "could not run (" in c.message}
    assert not crashed, crashed


@pytest.mark.parametrize("name", ALL)
def test_no_step_done_while_a_cell_of_that_step_raised(catalogue, name):
    g = catalogue[name]
    assert g.ok, g.error
    said = g.step_done_while_raised()
    raised = {cid: f"{r.ename}: {r.message[:150]}" for cid, r in g.student_cells.items() if r.raised}
    assert not said, f"{said} said 'Step N passes' while a student cell of that step raised: {raised}"


@pytest.mark.parametrize("name", ALL)
def test_one_message_per_mistake(catalogue, name):
    """A student who makes one mistake reads its message once: no two graded cells show the
    same text (a later cell failing for the same reason points to the first)."""
    g = catalogue[name]
    assert not repeated_messages(g), repeated_messages(g)


@pytest.mark.parametrize("name", ALL)
def test_the_lessons_own_call_succeeds_whenever_the_visible_checks_pass(catalogue, name):
    """The lesson's read-only cell that calls GET /items (as the checks do, following no
    redirect) answers the rows on whatever passes the visible checks of the four steps (a
    step 4 graded with a correct engine standing in for a wrong one is not such a case)."""
    g = catalogue[name]
    assert g.ok, g.error
    visible = [c.name for c in registry.declared() if not c.hidden]
    if not all(g.cells[gid].full for gid in visible):
        return
    call = g.lesson_cells["step4_call_items"]
    assert not call.raised and not call.stderr, f"the call cell raised {call.ename}: {call.message[:300]}"
    assert "status: 200" in call.stdout, call.stdout[-500:]  # and its last line, response.json(), raised nothing


STAND_IN = re.compile(r"standing in for yours")


@pytest.mark.parametrize("mistake", [sampled(f"mistake:{m.name}", m, m.name) for m in MISTAKES if m.step in (1, 2, 3)])
def test_later_steps_graded_with_a_stand_in_say_so(catalogue, mistake):
    """When an earlier step is wrong, a later step graded with its correct value standing in
    says so once, and never says "Step N passes" for that step."""
    g = catalogue[f"mistake:{mistake.name}"]
    notes = [gid for gid, c in g.cells.items() if STAND_IN.search(c.stdout or "")]
    if mistake.step in (1, 2):  # step 3 is always graded with step 1's or 2's value standing in
        assert any(gid.startswith("step3_") for gid in notes), (
            f"no step 3 cell said a stand-in was used:\n{_summary(g)}")
    for step in {int(gid[4]) for gid in notes}:
        done = [gid for gid, c in g.cells.items() if f"Step {step} passes" in (c.stdout or "")]
        assert not done, f"{done} said 'Step {step} passes' although step {step} passed with a stand-in"
    assert len({g.cells[gid].stdout for gid in notes}) == len(notes), "a stand-in note is said twice"
