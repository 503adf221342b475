"""Write the lesson's source notebook, source/connection-pooling/connection-pooling.ipynb.

The notebook is generated from this file so that its cells, nbgrader metadata and ids stay
readable and reviewable. Edit the lesson here, then run `make release` (which runs this
script and `nbgrader generate_assignment`). tests/test_repository.py fails when the committed
notebook differs from what this script writes.
"""
from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ROOT = Path(__file__).resolve().parent.parent
ASSIGNMENT = "connection-pooling"
NOTEBOOK = ROOT / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"


def md(cell_id: str, text: str):
    return new_markdown_cell(text.strip(), id=cell_id)


def _nbgrader(grade_id: str, *, solution=False, grade=False, locked=False, points=None):
    meta = {"grade": grade, "grade_id": grade_id, "locked": locked, "schema_version": 3,
            "solution": solution, "task": False}
    if points is not None:
        meta["points"] = points
    return {"nbgrader": meta}


def solution(grade_id: str, code: str):
    return new_code_cell(code.strip(), id=grade_id, metadata=_nbgrader(grade_id, solution=True))


def readonly(grade_id: str, code: str):
    """A locked cell: nbgrader restores it from the source when it autogrades."""
    return new_code_cell(code.strip(), id=grade_id, metadata=_nbgrader(grade_id, locked=True))


def plain(cell_id: str, code: str):
    return new_code_cell(code.strip(), id=cell_id)


def check(grade_id: str, points: int, doc: str, *, visible: str = "", hidden: str = ""):
    """A graded test cell: a docstring line, then calls into the autograder package.
    `hidden` lines are removed from the students' copy and put back when grading."""
    lines = [f'"""{doc}"""', "from autograder import checks", ""]
    if visible:
        lines.append(visible)
    if hidden:
        lines += ["### BEGIN HIDDEN TESTS", hidden, "### END HIDDEN TESTS"]
    return new_code_cell("\n".join(lines), id=grade_id,
                         metadata=_nbgrader(grade_id, grade=True, locked=True, points=points))


def call(name: str, is_async: bool) -> str:
    return f"{'await ' if is_async else ''}checks.{name}(globals())"


def hint(text: str) -> str:
    return f"<details><summary><b>Hint</b> (click to open)</summary>\n\n{text.strip()}\n\n</details>"


# The graded quiz's key: it lives here and in the hidden tests of the source notebook only
# (never in release/ or the installed autograder package). Question text: autograder/quiz.toml.
QUIZ_KEY = {
    "url_driver": ("what `aiosqlite` names in the database URL", "B",
        "A URL reads dialect+driver://location: `sqlite` is the dialect, `aiosqlite` the driver library that talks to SQLite asynchronously, and `./test.db` the file.", {
        "A": "The dialect is `sqlite`, the part before the `+`.",
        "B": "Right: `aiosqlite` is the async driver library.",
        "C": "The file is `./test.db`, after the slashes.",
        "D": "The URL names no pool: the engine picks the pool class (AsyncAdaptedQueuePool for a file).",
    }),
    "what_is_pooled": ("what the engine's pool holds", "B",
        "The pool holds open database connections and lends each to one user at a time, taking it back to lend again.", {
        "A": "Nothing caches HTTP responses here; every request runs its query.",
        "B": "Right: open connections, lent out and reused.",
        "C": "Results are not cached: each execute runs the SQL again on a pooled connection.",
        "D": "Dependencies are plain functions FastAPI calls; the pool holds connections.",
    }),
    "asgi_transport": ("what ASGITransport does", "B",
        "ASGITransport calls the ASGI app directly in the same process and event loop: no server starts and nothing goes over the network.", {
        "A": "No server starts: the transport calls the app object itself.",
        "B": "Right: requests go straight to the app, in-process.",
        "C": "No socket is opened; the base_url is only used to build the request.",
        "D": "The app runs unchanged, with its real database.",
    }),
    "yield_cleanup": ("when code after `yield` runs", "D",
        "With a default Depends, FastAPI resumes the dependency after the response has been sent, so the connection is given back once the request is done.", {
        "A": "The code before `yield` runs before the route; the code after runs later.",
        "B": "It runs at the end of every request, not at shutdown (that would be a lifespan handler).",
        "C": "It runs after every request, whether or not the route raised.",
        "D": "Right: after the response has been sent.",
    }),
    "return_in_async_with": ("why `return` inside `async with` breaks", "C",
        "`return` leaves the `async with` block at once, and leaving it closes the connection: the route receives a closed connection and fails with ResourceClosedError. `yield` keeps the block open while the route runs.", {
        "A": "`return` is fine in an async function; the problem is where it leaves the block.",
        "B": "FastAPI accepts dependencies that return values; a return is only wrong inside the `async with` that owns the connection.",
        "C": "Right: the block closes the connection before the route uses it.",
        "D": "The connection is closed and given back at once, so the pool does not run out.",
    }),
    "pool_timeout": ("what a request does when the pool is exhausted", "C",
        "A request that finds every connection checked out waits up to pool_timeout seconds (30 by default) for one to come back, then fails with sqlalchemy.exc.TimeoutError; the app keeps running.", {
        "A": "The wait is bounded by pool_timeout.",
        "B": "pool_size + max_overflow = 15 is the most the pool will open.",
        "C": "Right: it waits pool_timeout, then raises TimeoutError.",
        "D": "Only that request fails; the process carries on.",
    }),
    "max_overflow": ("how many connections pool_size=5 allows", "A",
        "max_overflow defaults to 10, so the engine keeps 5 connections and opens up to 10 more under load: 15 at once.", {
        "A": "Right: 5 + 10 = 15.",
        "B": "pool_size is what stays open, not the limit: max_overflow (10) more can open.",
        "C": "10 is max_overflow alone; add the 5 of pool_size.",
        "D": "A queue pool has a limit unless pool_size=0 or max_overflow=-1.",
    }),
    "checkedout": ("checkedout() and checkedin() after three requests", "C",
        "Requests one after another reuse one connection: each checks it out and the yield dependency gives it back, so nothing is checked out (0) and one idle connection waits in the pool (1).", {
        "A": "The yield dependency gave each connection back: none stays checked out.",
        "B": "Given back is not closed: the pool keeps the connection open for reuse.",
        "C": "Right: 0 lent out, 1 kept open in the pool.",
        "D": "Every connection was given back after its request.",
    }),
    "workers_multiply": ("connections across worker processes", "D",
        "Each process has its own engine and pool, each allowing pool_size + max_overflow = 15 connections, so 4 workers can open 4 x 15 = 60.", {
        "A": "5 is one pool's kept connections; there are 4 pools, each with overflow.",
        "B": "15 is one process's limit; pools are not shared between processes.",
        "C": "4 x 5 = 20 forgets max_overflow: each pool can open 10 more.",
        "D": "Right: 4 x (5 + 10) = 60.",
    }),
    "pre_ping": ("which option replaces dead connections", "D",
        "pool_pre_ping=True makes the pool test each connection as it is checked out and silently replace one that is dead. pool_recycle (for example 300) also helps, by replacing connections older than that many seconds before the server drops them.", {
        "A": "pool_timeout is how long a request waits for a free connection; it does not test connections.",
        "B": "max_overflow limits extra connections; it does not test them.",
        "C": "pool_size=0 removes the limit on connections; it does not test them.",
        "D": "Right: a ping on checkout, and a new connection when the old one is dead.",
    }),
}


def quiz_checks() -> list:
    """One graded cell per test question: visible, "an answer is saved"; hidden, the key."""
    sys.path.insert(0, str(ROOT))
    from autograder.quiz import load

    cells = []
    for q in load("test"):
        topic, correct, explanation, why = QUIZ_KEY[q.id]
        hidden = _hidden_call(q.id, correct, explanation, why)
        source = "\n".join([
            f'"""Quiz question {q.number} ({q.difficulty}): {topic}."""',
            "from autograder import quiz",
            "",
            f'quiz.check_answered("{q.id}")',
            "### BEGIN HIDDEN TESTS",
            hidden,
            "### END HIDDEN TESTS",
        ])
        grade_id = f"quiz{q.number:02d}_{q.id}"
        cells.append(new_code_cell(source, id=grade_id, metadata=_nbgrader(grade_id, grade=True, locked=True, points=1)))
    return cells


def _hidden_call(qid: str, correct: str, explanation: str, why: dict) -> str:
    import json
    lines = ["quiz.check_answer(", f"    {json.dumps(qid)},", f"    correct={json.dumps(correct)},",
             f"    explanation={json.dumps(explanation, ensure_ascii=False)},", "    why={"]
    lines += [f"        {json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}," for k, v in why.items()]
    lines += ["    },", ")"]
    return "\n".join(lines)


CELLS = [
    md("intro", """
# Connection pooling in FastAPI: build and apply

**Scenario.** You are building a small FastAPI service that reads a product list from a
database. Every request needs a database connection, and opening one is slow compared with
the query itself. You will make the app *reuse* connections through a **connection pool**.

**Goal.** A FastAPI app whose `GET /items` route reads every row of the table `items` from a
SQLite database, through a pooled async SQLAlchemy engine, called from this notebook.

**What you will learn**
- what each part of an async database URL means (`sqlite+aiosqlite:///./test.db`);
- how `create_async_engine` pools connections and what `pool_size` controls;
- how a FastAPI dependency hands a connection to a route and gives it back with `yield`, and
  why `return` inside `async with` hands the route a closed connection;
- how to call your app in-process with `httpx.AsyncClient` and `ASGITransport`.

**Why it matters.** Every production web backend talks to a database through a pool: it is
what lets a service answer many users without opening a connection per request, and pool
settings are among the first things a backend developer tunes when a service slows down or
a database runs out of connections.

**Time:** about 30 minutes: four build steps, then a practice quiz and a graded
10-question quiz. Each step has instructions, a hint you can open, a cell for your code, and
test cells that check it. Run the cells from top to bottom; if
things get tangled, use *Kernel → Restart Kernel and Run All Cells*.
"""),
    md("setup-instructions", """
## Set-up: the `items` table

This read-only cell creates the table `items` in the file `test.db` beside this notebook and
fills it with three rows. Running it again gives the same three rows.
"""),
    readonly("setup_items_table", '''
# Create the table `items` in ./test.db and fill it with three rows.
# Running this cell again empties the table first, so it always ends with the same rows.
import sqlite3

SEED_ROWS = [
    (1, "Espresso cup", 4.5),
    (2, "Pour-over kettle", 39.0),
    (3, "Coffee grinder", 89.99),
]

db = sqlite3.connect("test.db")
with db:  # one transaction: committed at the end of the block
    db.execute("CREATE TABLE IF NOT EXISTS items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, price REAL NOT NULL)")
    db.execute("DELETE FROM items")
    db.executemany("INSERT INTO items (id, name, price) VALUES (?, ?, ?)", SEED_ROWS)
db.close()
print(f"items table ready with {len(SEED_ROWS)} rows")
'''),
    md("progress-instructions", """
## Your progress

This panel counts the build steps whose checks pass and names the next one. It updates by
itself each time you run a step's test cells, here and at the end of the notebook.
"""),
    readonly("progress_show", """
from autograder import progress

progress.show()
"""),
    md("step1-instructions", """
## Step 1: the database URL

SQLAlchemy finds a database from a URL of the form `dialect+driver://location`:

| part | here | meaning |
|---|---|---|
| dialect | `sqlite` | the kind of database, which decides the SQL it speaks |
| driver | `aiosqlite` | the Python library that talks to it; `aiosqlite` is an **async** driver, which an async engine requires (the plain `sqlite://` URL uses the synchronous `pysqlite` driver) |
| location | `///./test.db` | the file `test.db` in the notebook's folder (three slashes, then a relative path) |

**Your task:** create a variable `DATABASE_URL` holding exactly the string
`"sqlite+aiosqlite:///./test.db"`.
""" + "\n\n" + hint("""
A string assignment: `DATABASE_URL = "sqlite+aiosqlite:///./test.db"`. Check the `+` between
dialect and driver, and the three slashes before `./test.db`.
""")),
    solution("step1_database_url_solution", '''
### BEGIN SOLUTION
DATABASE_URL = "sqlite+aiosqlite:///./test.db"
### END SOLUTION
'''),
    check("step1_database_url", 1, 'Step 1: DATABASE_URL is exactly "sqlite+aiosqlite:///./test.db".',
          visible=call("step1_database_url", False)),
    md("step2-instructions", """
## Step 2: the pool size

A pool keeps database connections open after a request is done, so the next request reuses
one instead of opening a new one. `pool_size` is how many connections the pool **keeps
open** for reuse. It is not a hard maximum: under load SQLAlchemy opens up to `max_overflow`
extra connections (10 by default), which it closes when they are given back, so by default
at most 5 + 10 = 15 connections are open at once. A request that finds all of them in use
waits up to `pool_timeout` seconds (30 by default) for one to come back, and then fails with
`sqlalchemy.exc.TimeoutError`.

**Your task:** create a variable `POOL_SIZE` set to the number `5`.
""" + "\n\n" + hint("""
A whole number, without quotes: `POOL_SIZE = 5`.
""")),
    solution("step2_pool_size_solution", '''
### BEGIN SOLUTION
POOL_SIZE = 5
### END SOLUTION
'''),
    check("step2_pool_size", 1, "Step 2: POOL_SIZE is the integer 5.",
          visible=call("step2_pool_size", False)),
    md("step3-instructions", """
## Step 3: the pooled async engine

An **engine** is SQLAlchemy's entry point to a database: it owns the pool and hands out
connections from it. `create_async_engine` (from `sqlalchemy.ext.asyncio`, installed with
`sqlalchemy[asyncio]`, which brings the `greenlet` library it runs on) makes one you can use
with `await`. Creating the engine opens no connection yet: the pool fills as requests use it.

For a SQLite *file* URL like yours, the engine's pool is an `AsyncAdaptedQueuePool`, which
takes `pool_size`. (An in-memory URL, `sqlite+aiosqlite://`, gets a `StaticPool` that shares
one connection and rejects `pool_size`.)

**Your task:** import `create_async_engine` from `sqlalchemy.ext.asyncio` and create a
variable `engine` by calling it with `DATABASE_URL` and `pool_size=POOL_SIZE`. Use the
variable, not the number, so that changing `POOL_SIZE` changes the pool.
""" + "\n\n" + hint("""
```python
from sqlalchemy.ext.asyncio import create_async_engine
engine = create_async_engine(DATABASE_URL, pool_size=...)
```
Fill in the `...` with the variable from step 2.
""")),
    solution("step3_engine_solution", '''
### BEGIN SOLUTION
from sqlalchemy.ext.asyncio import create_async_engine

# pool_size: connections the pool keeps open for reuse. Under load up to max_overflow
# (default 10) more are opened and closed again when given back.
engine = create_async_engine(DATABASE_URL, pool_size=POOL_SIZE)
### END SOLUTION
'''),
    md("step3-explore", """
Look inside your engine: the pool's class, and its status (nothing is checked out yet).
"""),
    plain("step3_explore_pool", '''
print(type(engine.pool).__name__)
print(engine.pool.status())
'''),
    check("step3_engine_is_async", 1, "Step 3: engine is an AsyncEngine made from DATABASE_URL.",
          visible=call("step3_engine_is_async", True)),
    check("step3_engine_pool_size", 1, "Step 3: engine's pool is a queue pool of POOL_SIZE connections.",
          visible=call("step3_engine_pool_size", True)),
    check("step3_pool_size_uses_variable", 1, "Step 3 (hidden): the pool size comes from POOL_SIZE, not a typed-in number.",
          visible=call("step3_engine_pool_size", True), hidden=call("step3_pool_size_uses_variable", True)),
    check("step3_engine_connects", 1, "Step 3: engine really connects to the database.",
          visible=call("step3_engine_connects", True)),
    md("step4-instructions", """
## Step 4: a FastAPI route that borrows a pooled connection

A route gets its connection from a **dependency**: a function that FastAPI calls for each
request, named in the route's parameters with `Depends(...)`. The dependency must *lend* a
connection and take it back after the route is done. That is what `yield` does:

```python
async def get_connection():
    async with engine.connect() as conn:  # check a connection out of the pool
        yield conn                        # the route runs here, with conn open
    # leaving `async with` closes conn, which gives it back to the pool
```

FastAPI runs the code up to `yield`, passes `conn` to the route, and resumes the function
after the response has been sent, so the connection goes back to the pool once the request
is finished.

### The mistake to avoid

It is tempting to write `return conn` instead of `yield conn`. But `return` leaves the
`async with` block at once, and leaving the block closes the connection, so the route gets a
connection that is already closed. The cell below runs exactly that, on a separate demo app,
and prints the real error.
"""),
    readonly("step4_demo_return_mistake", '''
# Read-only demo: a dependency that *returns* from inside `async with`, run for real.
import httpx
from fastapi import Depends, FastAPI
from sqlalchemy import exc, text
from sqlalchemy.ext.asyncio import create_async_engine

demo_engine = create_async_engine("sqlite+aiosqlite:///./test.db", pool_size=5)
demo_app = FastAPI()

async def get_connection_with_return():
    async with demo_engine.connect() as conn:
        return conn  # leaving the block here closes conn before the route gets it

@demo_app.get("/items")
async def demo_items(conn=Depends(get_connection_with_return)):
    result = await conn.execute(text("SELECT * FROM items"))
    return result.mappings().all()

try:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=demo_app), base_url="http://demo") as client:
        await client.get("/items")
except exc.ResourceClosedError as error:
    print(f"The route failed with {type(error).__module__}.{type(error).__name__}: {error}")
finally:
    await demo_engine.dispose()
'''),
    md("step4-task", """
**Your task:**
1. import `FastAPI` and `Depends` from `fastapi`, and create the app: `app = FastAPI()`;
2. write the dependency `async def get_connection()` that yields a connection from `engine`
   inside `async with engine.connect() as conn:`;
3. add a route `GET /items` to `app` that takes `conn` through `Depends(get_connection)`,
   runs `SELECT * FROM items` with `await conn.execute(text(...))` (`text` comes from
   `sqlalchemy`) and returns every row as a list of dicts.
""" + "\n\n" + hint("""
- Route: `@app.get("/items")` above `async def read_items(conn: AsyncConnection = Depends(get_connection)):`
  (`AsyncConnection` comes from `sqlalchemy.ext.asyncio`; the annotation is optional).
- Query: `result = await conn.execute(text("SELECT * FROM items"))`.
- Rows as dicts: `result.mappings().all()` gives one mapping per row, which FastAPI turns
  into JSON objects; `[dict(row) for row in result.mappings()]` gives plain dicts.
""")),
    solution("step4_app_solution", '''
### BEGIN SOLUTION
from typing import Annotated

from fastapi import Depends, FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

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
### END SOLUTION
'''),
    md("step4-try-it", """
### Call your app from the notebook

No server is needed: `httpx.ASGITransport` passes requests straight to `app` inside this
kernel. The notebook already runs an event loop, so use `await` at the top level of the cell
(`asyncio.run()` would fail here: a loop is already running).
"""),
    plain("step4_call_items", '''
import httpx

async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://lesson") as client:
    response = await client.get("/items")

print("status:", response.status_code)
print("pool after the request:", engine.pool.status())
response.json()
'''),
    check("step4_app_has_items_route", 1, "Step 4: app is a FastAPI app with a GET /items route that depends on get_connection.",
          visible=call("step4_app_has_items_route", False)),
    check("step4_items_returns_all_rows", 2, "Step 4: GET /items answers 200 with every row of items as a list of dicts.",
          visible=call("step4_items_returns_all_rows", True)),
    check("step4_items_reads_the_table", 2, "Step 4 (hidden): rows put in the table at grading time come back, and an empty table gives [].",
          visible=call("step4_app_has_items_route", False), hidden=call("step4_items_reads_the_table", True)),
    check("step4_connections_returned", 1, "Step 4 (hidden): after each request every connection is back in the pool.",
          visible=call("step4_app_has_items_route", False), hidden=call("step4_connections_returned", True)),
    check("step4_concurrent_requests_share_the_pool", 1, "Step 4 (hidden): 20 requests at once all succeed through the pool, within its limit.",
          visible=call("step4_app_has_items_route", False), hidden=call("step4_concurrent_requests_share_the_pool", True)),
    md("quiz-practice", """
## Practice quiz

Five questions to test your understanding, with instant feedback: choose an answer and
press **Check**. Open **Hint** first if you are stuck. Nothing here is graded.
"""),
    readonly("quiz_practice_show", """
from autograder import quiz

quiz.show_practice()
"""),
    md("quiz-test", """
## Test this pattern (graded)

Ten questions (easy, medium and hard), one point each. Each choice is **saved as soon as
you click it**, in the file `quiz_answers.json` beside this notebook, which is submitted
with it; you can change your mind until you submit. You will see "answer saved", not
whether you were right: your score and explanations come with your feedback. If you
restart the kernel, run this cell again and your saved choices reappear.
"""),
    readonly("quiz_test_show", """
from autograder import quiz

quiz.show_test()
"""),
    *quiz_checks(),
    md("wrap-up", """
## Wrap-up

You built a FastAPI app that reads through a pooled async engine:
- `DATABASE_URL` picks the database *and* the async driver;
- `create_async_engine(DATABASE_URL, pool_size=POOL_SIZE)` keeps up to `POOL_SIZE`
  connections open for reuse, opens up to `max_overflow` more under load, and makes a request
  wait at most `pool_timeout` seconds when all are busy;
- a `yield` dependency lends each request a connection and gives it back after the response.

Some test cells run hidden checks when your notebook is graded (rows that change at grading
time, connections given back, 20 requests at once), so make sure your code reads the table
on every request and always gives its connection back.
"""),
    readonly("progress_show_again", """
from autograder import progress

progress.show()
"""),
    md("self-grade-instructions", """
## Grade your own notebook (self-study)

Studying on your own? Save the notebook (**Ctrl+S**), then press the button: it grades a
copy of the saved file with the full autograder, hidden tests and quiz key included, and
shows your score and every check's message. Your notebook is not changed. The same from a
terminal: `python -m autograder selfgrade`. In a course, your instructor grades the
submitted notebook instead; pressing the button changes nothing there.
"""),
    readonly("self_grade_button", """
from autograder import selfgrade

selfgrade.button()
"""),
]


def build() -> nbformat.NotebookNode:
    nb = new_notebook(cells=CELLS)
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }
    return nb


def render() -> str:
    return nbformat.writes(build()) + "\n"


def main(argv: list[str]) -> None:
    if argv == ["--check"]:
        if NOTEBOOK.read_text() != render():
            raise SystemExit(f"{NOTEBOOK.relative_to(ROOT)} differs from tools/build_lesson.py: run `make release`.")
        return
    NOTEBOOK.parent.mkdir(parents=True, exist_ok=True)
    NOTEBOOK.write_text(render())
    print(f"wrote {NOTEBOOK.relative_to(ROOT)}")


if __name__ == "__main__":
    main(sys.argv[1:])
