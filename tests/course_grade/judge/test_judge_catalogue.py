"""The correct-variant corpus and the mistake catalogue through the judge (course_grade/judge/):
the verdicts the in-kernel checks give today, where today is right, now decided outside the
student's process. Each submission runs in a fresh sandboxed kernel of the judge's own, forked
from a zygote as the grading command's workers do."""
from __future__ import annotations

import concurrent.futures
import functools
import multiprocessing

import pytest

from tests.support.course import solutions, student_notebook
from tests.support.mistakes import MISTAKES
from tests.support.variants import VARIANTS

pytestmark = pytest.mark.slow


@functools.cache
def _zygote():
    """This pool process's zygote, as a grading worker has one: each judge's kernel is forked
    from it (as root) into a fresh sandbox, or boots when it cannot be."""
    from course_grade.kernels.spares import PRELOAD, ZYGOTE_IMPORTS
    from course_grade.kernels.zygote import Zygote

    return Zygote(modules=ZYGOTE_IMPORTS + PRELOAD)


def _judge(changes: dict[str, str]) -> dict[str, tuple[bool, str]]:
    from course_grade.judge.run import judge

    records, seen = judge(student_notebook({**solutions(), **changes}), zygote=_zygote())
    return {name: (r.passed, r.message) for name, r in records.items()} | {"trouble": (seen.trouble is None,
                                                                                      seen.trouble or "")}


@pytest.fixture(scope="module")
def judged():
    subs = {f"variant:{v.name}": v.changes for v in VARIANTS}
    subs.update({f"mistake:{m.name}": m.changes for m in MISTAKES})
    # a judge mostly waits (its counts settle between requests): three at a time on two cores
    with concurrent.futures.ProcessPoolExecutor(3, mp_context=multiprocessing.get_context("fork")) as pool:
        futures = {name: pool.submit(_judge, changes) for name, changes in subs.items()}
        return {name: future.result() for name, future in futures.items()}


def _failed(result: dict) -> dict[str, str]:
    return {name: message for name, (passed, message) in result.items() if not passed}


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.name)
def test_every_correct_variant_earns_every_build_step_from_the_judge(judged, variant):
    assert _failed(judged[f"variant:{variant.name}"]) == {}


@pytest.mark.parametrize("mistake", MISTAKES, ids=lambda m: m.name)
def test_each_mistake_loses_its_own_cells_and_only_those_before_the_judge(judged, mistake):
    failed = _failed(judged[f"mistake:{mistake.name}"])
    failed.pop("trouble", None)
    assert set(failed) == set(mistake.loses), (
        f"judge failed {sorted(failed)}, the catalogue expects {sorted(mistake.loses)}:\n"
        + "\n".join(f"  {k}: {v}" for k, v in failed.items()))
