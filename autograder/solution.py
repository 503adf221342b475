"""The lesson's solution, written once: the code of its four steps, below the marker line.

Everything that shows or runs the solution takes it from here:
- tools/build_lesson.py puts `step_code(n)` into the instructor's notebook, one solution cell
  per step (nbgrader removes it from the students' copy);
- `build_app(engine)` runs step 4's code on any engine: the pool lab, the PostgreSQL
  notebook (tools/build_postgres_notebook.py shows `step_code(4)` in a cell) and the tests.

Importing this module runs the steps, as the lesson's notebook does: it creates an engine
(which opens no connection yet) and the app.
"""
import re
from pathlib import Path

_MARK = re.compile(r"^# --- step (\d) ---\n", re.M)
_NOQA = re.compile(r"  # noqa.*$", re.M)  # linter notes for this file, not part of the lesson
_BEGINS = "# ===== the solution, step by step ====="


def step_code(step: int) -> str:
    """The code of one step's solution cell, as the lesson shows it."""
    text = Path(__file__).read_text(encoding="utf-8")
    parts = _MARK.split(text.split(_BEGINS, 1)[1])
    codes = {int(number): _NOQA.sub("", code).strip() for number, code in zip(parts[1::2], parts[2::2], strict=True)}
    return codes[step]


def step4(engine) -> dict:
    """Step 4's code run as it is, on `engine`: its names (`app`, `get_connection`, ...)."""
    namespace = {"engine": engine, "__name__": "lesson_app"}
    exec(compile(step_code(4), "<the lesson's step 4>", "exec"), namespace)  # our own code
    return namespace


def build_app(engine):
    """The lesson's step-4 app, on `engine`."""
    return step4(engine)["app"]


# ===== the solution, step by step =====
# --- step 1 ---
DATABASE_URL = "sqlite+aiosqlite:///./test.db"

# --- step 2 ---
POOL_SIZE = 5

# --- step 3 ---
from sqlalchemy.ext.asyncio import create_async_engine  # noqa: E402

# pool_size: connections the pool keeps open for reuse. Under load up to max_overflow
# (default 10) more are opened and closed again when given back.
engine = create_async_engine(DATABASE_URL, pool_size=POOL_SIZE)

# --- step 4 ---
from typing import Annotated  # noqa: E402

from fastapi import Depends, FastAPI  # noqa: E402
from sqlalchemy import text  # noqa: E402
from sqlalchemy.ext.asyncio import AsyncConnection  # noqa: E402

app = FastAPI()


async def get_connection():
    # Borrow a connection from the pool. `yield` keeps the `async with` block open while
    # the route runs; FastAPI resumes here after the response, and the block's end gives
    # the connection back to the pool.
    async with engine.connect() as conn:
        yield conn


@app.get("/items")
async def read_items(conn: Annotated[AsyncConnection, Depends(get_connection)]):
    result = await conn.execute(text("SELECT * FROM items"))
    return [dict(row) for row in result.mappings()]
