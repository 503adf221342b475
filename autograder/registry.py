"""The declaration of every graded check: one place, read by everything else.

Each check function in `autograder.checks` carries its metadata on itself, Otter-style:

    @check(step=3, points=1, hidden=True, needs=("step3_engine_pool_size",),
           description="the pool size comes from POOL_SIZE, not a typed-in number")
    async def step3_pool_size_uses_variable(ns): ...

From that declaration come the lesson's test cells (tools/build_lesson.py), the progress
panel's steps (autograder.progress), the gate in front of each hidden check, and the tests'
lists. The function's name is its test cell's nbgrader grade_id.

This module is light and imports nothing of the package: the progress panel reads it before
the checks themselves are imported (until then it knows the steps, and no check has passed).
Whoever needs the full list imports `autograder.checks` first.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass

# step number -> what the step builds, as the progress panel and messages name it
STEPS = {
    1: "the database URL",
    2: "the pool size",
    3: "the pooled async engine",
    4: "the FastAPI route",
}
# the names each step defines in the notebook (its solution cell assigns them)
STEP_NAMES = {
    1: ("DATABASE_URL",),
    2: ("POOL_SIZE",),
    3: ("engine",),
    4: ("app", "get_connection"),
}


@dataclass(frozen=True)
class Check:
    name: str            # the function's name, and its test cell's grade_id
    step: int
    points: int
    hidden: bool         # removed from the students' copy, restored by nbgrader when grading
    description: str     # one line: what passes
    is_async: bool
    needs: tuple[str, ...] = ()  # hidden checks: the visible checks that must pass first

    def call(self) -> str:
        """The line a test cell runs."""
        return f"{'await ' if self.is_async else ''}checks.{self.name}(globals())"

    @property
    def title(self) -> str:
        return f"Step {self.step}{' (hidden)' if self.hidden else ''}: {self.description}"


_DECLARED: dict[str, Check] = {}


def check(*, step: int, points: int, description: str, hidden: bool = False, needs: tuple[str, ...] = ()):
    """Declare a check (see the module's docstring); returns the function unchanged."""
    if step not in STEPS:
        raise ValueError(f"step {step} is not one of the lesson's steps {list(STEPS)}")
    if hidden and not needs:
        raise ValueError("a hidden check names the visible checks it needs (`needs=`)")

    def declare(func):
        name = func.__name__
        if name in _DECLARED:
            raise ValueError(f"check {name} is declared twice")
        missing = [n for n in needs if n not in _DECLARED or _DECLARED[n].hidden]
        if missing:
            raise ValueError(f"{name} needs {missing}: declare those visible checks first")
        _DECLARED[name] = Check(name, step, points, hidden, description.strip().rstrip("."),
                                inspect.iscoroutinefunction(func), tuple(needs))
        return func

    return declare


def declared() -> list[Check]:
    """Every check declared so far (all of them once `autograder.checks` is imported), in
    lesson order."""
    return list(_DECLARED.values())


def get(name: str) -> Check | None:
    return _DECLARED.get(name)


def defined_in(name: str) -> int | None:
    """The step whose cell defines `name` (STEP_NAMES), None when no step does."""
    return next((step for step, names in STEP_NAMES.items() if name in names), None)


def for_step(step: int, *, hidden: bool | None = None) -> list[Check]:
    return [c for c in declared() if c.step == step and (hidden is None or c.hidden == hidden)]
