"""autograder/cells.py: running the student's cells again, with other values, never hangs a check."""
from __future__ import annotations

import time

import pytest

from autograder import cells


@pytest.fixture
def history(monkeypatch):
    """Set the cells the student ran: each (code, error it raised or None)."""
    def set_runs(*runs):
        monkeypatch.setattr(cells, "_runs", [cells.Run(code, error, cells._defines(code)) for code, error in runs])
    return set_runs


@pytest.mark.anyio
async def test_a_value_reaches_the_new_name_through_any_code(history):
    history(("POOL_SIZE = 5\nsize = POOL_SIZE", None),
            ("options = {'pool_size': size}\ndef make(**kw):\n    return kw['pool_size'] * 10\n"
             "engine = make(**options)", None))
    value, error = await cells.rerun({}, "engine", {"POOL_SIZE": 7})
    assert (value, error) == (70, None)


@pytest.mark.anyio
async def test_a_typed_in_value_does_not_follow(history):
    history(("POOL_SIZE = 5", None), ("engine = 5 * 10", None))
    assert await cells.rerun({}, "engine", {"POOL_SIZE": 7}) == (50, None)


@pytest.mark.anyio
async def test_cells_that_raised_are_left_out_but_the_last_counts(history):
    history(("while True:\n    pass\nPOOL_SIZE = 5", KeyboardInterrupt()),  # interrupted when the student ran it
            ("engine = POOL_SIZE + 1", None))
    assert await cells.rerun({}, "engine", {"POOL_SIZE": 7}) == (8, None)
    history(("POOL_SIZE = 5", None), ("engine = POOL_SIZE + undefined_name", NameError("undefined_name")))
    value, error = await cells.rerun({}, "engine", {"POOL_SIZE": 7})
    assert value is None and isinstance(error, NameError)


@pytest.mark.anyio
@pytest.mark.parametrize("code", [
    "while True:\n    pass",
    "import time\ntime.sleep(60)",
    "import asyncio\nawait asyncio.sleep(60)",
    "import asyncio\nawait asyncio.sleep(0)\nwhile True:\n    pass",
])
async def test_code_that_never_finishes_is_stopped_within_the_limit(history, code):
    history(("POOL_SIZE = 5", None), (code + "\nengine = POOL_SIZE", None))
    start = time.monotonic()
    value, error = await cells.rerun({}, "engine", {"POOL_SIZE": 7}, seconds=0.5)
    assert time.monotonic() - start < 5
    assert value is None and isinstance(error, TimeoutError) and "did not finish" in str(error)


@pytest.mark.anyio
async def test_the_students_namespace_is_not_touched(history):
    history(("POOL_SIZE = 5", None), ("engine = POOL_SIZE", None))
    ns = {"POOL_SIZE": 5, "engine": 5}
    await cells.rerun(ns, "engine", {"POOL_SIZE": 7})
    assert ns == {"POOL_SIZE": 5, "engine": 5}
