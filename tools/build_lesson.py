"""Write the lesson's source notebook, source/connection-pooling/connection-pooling.ipynb.

The notebook is generated from this file so that its cells, nbgrader metadata and ids stay
readable and reviewable. Edit the lesson here, then run `make release` (which runs this
script and `nbgrader generate_assignment`). tests/repository/test_repository.py fails when the committed
notebook differs from what this script writes.
"""
from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from autograder.course import ASSIGNMENT

if __package__:  # imported as tools.build_lesson (the tests)
    from . import lesson_words
else:  # run as a script: python tools/build_lesson.py
    import lesson_words

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"


def md(cell_id: str, text: str):
    return new_markdown_cell(text.strip(), id=cell_id)


def _nbgrader(grade_id: str, *, solution=False, grade=False, locked=False, points=None):
    meta = {"grade": grade, "grade_id": grade_id, "locked": locked, "schema_version": 3,
            "solution": solution, "task": False}
    if points is not None:
        meta["points"] = points
    return {"nbgrader": meta}


def solution(grade_id: str, step: int):
    """A step's solution cell: its code comes from autograder/solution.py, the one copy."""
    sys.path.insert(0, str(ROOT))
    from autograder.solution import step_code

    code = f"### BEGIN SOLUTION\n{step_code(step)}\n### END SOLUTION"
    return new_code_cell(code, id=grade_id, metadata=_nbgrader(grade_id, solution=True))


def readonly(grade_id: str, code: str):
    """A locked cell: nbgrader restores it from the source when it autogrades."""
    return new_code_cell(code.strip(), id=grade_id, metadata=_nbgrader(grade_id, locked=True))


def seed_rows() -> str:
    """The rows of `items` (autograder/reference.py) as a list of tuples, for a set-up cell."""
    from autograder.reference import SEED_ROWS

    return "[" + ", ".join(f'({r["id"]}, "{r["name"]}", {r["price"]!r})' for r in SEED_ROWS) + "]"


def plain(cell_id: str, code: str):
    return new_code_cell(code.strip(), id=cell_id)


def step_checks(step: int) -> list:
    """The graded test cells of one step, made from the checks' declarations
    (autograder.registry): a docstring line, then the call. A hidden check's call is removed
    from the students' copy and put back when grading; its visible part is a gate that passes
    once the visible checks it builds on pass."""
    sys.path.insert(0, str(ROOT))
    from autograder import checks, registry  # noqa: F401 - importing the checks declares them

    cells = []
    for c in registry.for_step(step):
        lines = [f'"""{c.title}."""', "from autograder import checks", ""]
        if c.hidden:
            lines += [f'checks.ready("{c.name}")', "### BEGIN HIDDEN TESTS", c.call(), "### END HIDDEN TESTS"]
        else:
            lines.append(c.call())
        cells.append(new_code_cell("\n".join(lines), id=c.name,
                                   metadata=_nbgrader(c.name, grade=True, locked=True, points=c.points)))
    return cells


def hint(text: str) -> str:
    return f"<details><summary><b>Hint</b> (click to open)</summary>\n\n{text.strip()}\n\n</details>"


# The graded quiz's key: it lives here and in the hidden tests of the source notebook only
# (never in release/ or the installed autograder package). Question text: autograder/quiz.toml.
QUIZ_KEY = {
    "url_driver": ("what `aiosqlite` names in the database URL", "B",
        "A URL reads dialect+driver://location: `sqlite` is the dialect, `aiosqlite` the driver library that talks "
        "to SQLite asynchronously, and `./test.db` the file.", {
        "A": "The dialect is `sqlite`, the part before the `+`.",
        "B": "Right: `aiosqlite` is the async driver library.",
        "C": "The file is `./test.db`, after the slashes.",
        "D": "The URL names no pool: the engine picks the pool class (AsyncAdaptedQueuePool for a file).",
    }),
    "what_is_pooled": ("what the engine's pool holds", "B",
        "The pool holds open database connections and lends each to one user at a time, "
        "taking it back to lend again.", {
        "A": "Nothing caches HTTP responses here; every request runs its query.",
        "B": "Right: open connections, lent out and reused.",
        "C": "Results are not cached: each execute runs the SQL again on a pooled connection.",
        "D": "Dependencies are plain functions FastAPI calls; the pool holds connections.",
    }),
    "asgi_transport": ("what ASGITransport does", "B",
        "ASGITransport calls the ASGI app directly in the same process and event loop: no server starts and nothing "
        "goes over the network.", {
        "A": "No server starts: the transport calls the app object itself.",
        "B": "Right: requests go straight to the app, in-process.",
        "C": "No socket is opened; the base_url is only used to build the request.",
        "D": "The app runs unchanged, with its real database.",
    }),
    "max_overflow": ("how many connections pool_size=5 allows", "A",
        "max_overflow defaults to 10, so the engine keeps 5 connections and opens up to 10 more under load: 15 at "
        "once.", {
        "A": "Right: 5 + 10 = 15.",
        "B": "pool_size is what stays open, not the limit: max_overflow (10) more can open.",
        "C": "10 is max_overflow alone; add the 5 of pool_size.",
        "D": "A queue pool has a limit unless pool_size=0 or max_overflow=-1.",
    }),
    "yield_cleanup": ("when code after `yield` runs", "D",
        "With a default Depends, FastAPI resumes the dependency after the response has been sent, so the connection "
        "is given back once the request is done.", {
        "A": "The code before `yield` runs before the route; the code after runs later.",
        "B": "It runs at the end of every request, not at shutdown (that would be a lifespan handler).",
        "C": "It runs after every request, whether or not the route raised.",
        "D": "Right: after the response has been sent.",
    }),
    "return_in_async_with": ("why `return` inside `async with` breaks", "C",
        "`return` leaves the `async with` block at once, and leaving it closes the connection: the route receives a "
        "closed connection and fails with ResourceClosedError. `yield` keeps the block open while the route runs.", {
        "A": "`return` is fine in an async function; the problem is where it leaves the block.",
        "B": "FastAPI accepts dependencies that return values; a return is only wrong inside the `async with` that "
             "owns the connection.",
        "C": "Right: the block closes the connection before the route uses it.",
        "D": "The connection is closed and given back at once, so the pool does not run out.",
    }),
    "pool_timeout": ("what a request does when the pool is exhausted", "C",
        "Once pool_size + max_overflow connections are out, a request waits up to pool_timeout seconds (30 by "
        "default) for one to come back, then fails with sqlalchemy.exc.TimeoutError; the app keeps running.", {
        "A": "The wait is bounded by pool_timeout.",
        "B": "pool_size + max_overflow = 15 is the most the pool will open.",
        "C": "Right: it waits pool_timeout, then raises TimeoutError.",
        "D": "Only that request fails; the process carries on.",
    }),
    "checkedout": ("checkedout() and checkedin() after three requests", "C",
        "Requests one after another reuse one connection: each checks it out and the yield dependency gives it back, "
        "so nothing is checked out (0) and one idle connection waits in the pool (1).", {
        "A": "The yield dependency gave each connection back: none stays checked out.",
        "B": "Given back is not closed: the pool keeps the connection open for reuse.",
        "C": "Right: 0 lent out, 1 kept open in the pool.",
        "D": "Every connection was given back after its request.",
    }),
    "workers_multiply": ("connections across worker processes", "D",
        "Each process has its own engine and pool, each allowing pool_size + max_overflow = 15 connections, so 4 "
        "workers can open 4 x 15 = 60.", {
        "A": "5 is one pool's kept connections; there are 4 pools, each with overflow.",
        "B": "15 is one process's limit; pools are not shared between processes.",
        "C": "4 x 5 = 20 forgets max_overflow: each pool can open 10 more.",
        "D": "Right: 4 x (5 + 10) = 60.",
    }),
    "pre_ping": ("which option replaces dead connections", "D",
        "pool_pre_ping=True makes the pool test each connection as it is checked out and replace one that is dead. "
        "pool_recycle also helps when it is below the server's idle timeout: a connection older than that many "
        "seconds is replaced at its next checkout.", {
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
        metadata = _nbgrader(grade_id, grade=True, locked=True, points=1)
        cells.append(new_code_cell(source, id=grade_id, metadata=metadata))
    return cells


def _hidden_call(qid: str, correct: str, explanation: str, why: dict) -> str:
    import json
    lines = ["quiz.check_answer(", f"    {json.dumps(qid)},", f"    correct={json.dumps(correct)},",
             f"    explanation={json.dumps(explanation, ensure_ascii=False)},", "    why={"]
    lines += [f"        {json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}," for k, v in why.items()]
    lines += ["    },", ")"]
    return "\n".join(lines)


def hidden_checks() -> str:
    """The wrap-up's list of what grading adds: every hidden check, from its declaration."""
    sys.path.insert(0, str(ROOT))
    from autograder import checks, registry  # noqa: F401 - importing the checks declares them

    hidden = [c for c in registry.declared() if c.hidden]
    count = NUMBER_WORDS.get(len(hidden), str(len(hidden)))
    lines = [f"When your notebook is graded, {count} hidden checks run as well:", ""]
    lines += [f"- step {c.step}: {c.description};" for c in hidden]
    lines[-1] = lines[-1].rstrip(";") + "."
    return "\n".join(lines)


NUMBER_WORDS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight", 9: "nine"}
TIME = "{lesson_time}"  # the intro's time, filled in by build() from tools/lesson_words.py's model

CELLS = [
    md("intro", """
# Connection pooling in FastAPI: build and apply

**Scenario.** Your FastAPI service reads a product list from a database. Opening a database
connection is slow compared with a short query, so the app *reuses* connections through a
**connection pool**.

**Goal.** A `GET /items` route that returns every row of the table `items` through a pooled
async SQLAlchemy engine, called from this notebook.

**Time:** """ + TIME + """:
four build steps, then a practice quiz and a graded quiz. Each step has a task, a hint, a
cell for your code and test cells that check it. **Go deeper** blocks are optional. If things
get tangled, use *Kernel → Restart Kernel and Run All Cells*.
"""),
    md("setup-instructions", """
## Set-up: the `items` table

Run this read-only cell: it creates the table `items` in the file `test.db` beside this
notebook, with three rows.
"""),
    readonly("setup_items_table", '''
# Read-only: creates the table `items` in ./test.db with three rows (the same three each run).
import sqlite3

SEED_ROWS = {seed_rows}

db = sqlite3.connect("test.db")
with db:  # one transaction: committed at the end of the block
    db.execute("CREATE TABLE IF NOT EXISTS items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, price REAL NOT NULL)")
    db.execute("DELETE FROM items")
    db.executemany("INSERT INTO items (id, name, price) VALUES (?, ?, ?)", SEED_ROWS)
db.close()
print(f"items table ready with {len(SEED_ROWS)} rows")
'''.replace("{seed_rows}", seed_rows())),
    md("progress-instructions", """
## Your progress

This panel counts the steps whose visible checks pass and names the next one. After **Grade my
notebook** (at the end), it shows that grading, hidden checks included.
"""),
    readonly("progress_show", """
from autograder import progress

progress.show()
"""),
    md("step1-instructions", """
## Step 1: the database URL

SQLAlchemy finds a database from a URL, `dialect+driver://location`. Here the dialect is
`sqlite` (the kind of database), the driver `aiosqlite` (the Python library that talks to it:
an async engine needs an async driver), and the location `///./test.db` (the file `test.db`
in this folder).

**Your task:** create a variable `DATABASE_URL` holding exactly the string
`"sqlite+aiosqlite:///./test.db"`.
""" + "\n\n" + hint("""
A string assignment: `DATABASE_URL = "sqlite+aiosqlite:///./test.db"`. Check the `+` between
dialect and driver, and the three slashes before `./test.db`.
""")),
    solution("step1_database_url_solution", 1),
    *step_checks(1),
    md("step2-instructions", """
## Step 2: the pool size

A pool keeps connections open after a request, so the next request reuses one. Three engine
settings decide how many:

- `pool_size` (default 5): connections the pool **keeps open** for reuse; not the maximum.
- `max_overflow` (default 10): **extra** connections it may open in a burst; once the burst
  is over, only `pool_size` stay open. At most `pool_size + max_overflow` are out at once.
- `pool_timeout` (default 30 s): once `pool_size + max_overflow` connections are out, how
  long the next request waits for one to come back before it fails with
  `sqlalchemy.exc.TimeoutError`.

Each engine has its own pool: 4 worker processes (`uvicorn --workers 4`) make 4 engines, so
4 pools.

**Your task:** create a variable `POOL_SIZE` set to the number `5`.
""" + "\n\n" + hint("""
A whole number, without quotes: `POOL_SIZE = 5`.
""") + """

<details><summary><b>Go deeper:</b> the database counts every worker's connections</summary>

The database sees the connections of every worker process together, and a database server
accepts only so many (PostgreSQL's `max_connections`): keep
`workers × (pool_size + max_overflow)` below that limit. The pool lab
(`notebooks/pool-lab.ipynb`) plots a burst against each limit.

</details>"""),
    solution("step2_pool_size_solution", 2),
    *step_checks(2),
    md("step3-instructions", """
## Step 3: the pooled async engine

An **engine** is SQLAlchemy's entry point to a database: it owns the pool and lends
connections from it. `create_async_engine` makes one you use with `await`. It opens no
connection yet: the pool opens them as requests ask.

**Your task:** import `create_async_engine` from `sqlalchemy.ext.asyncio` and create a
variable `engine` by calling it with `DATABASE_URL` and `pool_size=POOL_SIZE` (the variable,
not the number).
""" + "\n\n" + hint("""
```python
from sqlalchemy.ext.asyncio import create_async_engine
engine = create_async_engine(DATABASE_URL, pool_size=...)
```
Fill in the `...` with the variable from step 2.
""") + """

<details><summary><b>Go deeper:</b> greenlet, the pool class, and the pool's own summary</summary>

`sqlalchemy.ext.asyncio` needs `sqlalchemy[asyncio]`, which installs `greenlet`: SQLAlchemy's
core is synchronous code, and it runs that code inside a greenlet so that each call to the
async driver can be awaited.

The URL decides the pool class. A SQLite *file* URL like yours gets an
`AsyncAdaptedQueuePool`, which takes `pool_size`. An in-memory URL (`sqlite+aiosqlite://`)
gets a `StaticPool`, which shares one connection and rejects `pool_size`.
`poolclass=NullPool` turns pooling off: a new connection for every checkout, closed when it
is given back. `engine.pool.status()` sums up a pool in one line; the pool lab explains each
of its numbers.

</details>"""),
    solution("step3_engine_solution", 3),
    *step_checks(3),
    md("step4-instructions", """
## Step 4: a FastAPI route that borrows a pooled connection

A route gets its connection from a **dependency**: a function FastAPI calls for each
request, named in the route's parameters with `Depends(...)`. It must *lend* a connection
and take it back after the route is done. That is what `yield` does:

```python
async def get_connection():
    async with engine.connect() as conn:  # check a connection out of the pool
        yield conn                        # the route runs here, with conn open
```

FastAPI runs the function up to `yield` and passes `conn` to the route. After the response
has been sent, it runs the rest: leaving `async with` gives the connection back to the pool.

**The mistake to avoid:** `return conn` instead of `yield conn`. `return` leaves the
`async with` block at once, which closes the connection: the route gets a closed one, as the
read-only cell below shows.

<details><summary><b>Go deeper:</b> what "closed" means for a pooled connection</summary>

Closing a pooled connection does not end the database connection: it gives it back to the
pool, which keeps it open for the next user. What is closed is the SQLAlchemy `Connection`
object your code holds, so any later `execute` on it fails with
`sqlalchemy.exc.ResourceClosedError: This Connection is closed`. FastAPI awaits a dependency
that returns, as the demo does, and passes what it returns to the route.

</details>
"""),
    readonly("step4_demo_return_mistake", '''
# Read-only demo: a dependency that *returns* from inside `async with`, run on an engine of its own.
from sqlalchemy import exc, text
from sqlalchemy.ext.asyncio import create_async_engine

demo_engine = create_async_engine("sqlite+aiosqlite:///./test.db")

async def get_connection_with_return():
    async with demo_engine.connect() as conn:
        return conn  # leaving the block here closes conn before the route gets it

closed_conn = await get_connection_with_return()  # what FastAPI would pass to the route
try:
    await closed_conn.execute(text("SELECT * FROM items"))  # what the route would run
except exc.ResourceClosedError as error:
    print(f"The route fails with {type(error).__module__}.{type(error).__name__}: {error}")
await demo_engine.dispose()
'''),
    md("step4-task", """
**Your task:**
1. import `FastAPI` and `Depends` from `fastapi`, and create the app: `app = FastAPI()`;
2. write the dependency `async def get_connection()` that yields a connection inside
   `async with engine.connect() as conn:`;
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
    solution("step4_app_solution", 4),
    md("step4-try-it", """
### Call your app from the notebook

The cell below calls `GET /items` with no server: `httpx.ASGITransport` passes requests
straight to `app` in this kernel. Then it reads the pool: `engine.pool.checkedout()` counts
connections lent out, `engine.pool.checkedin()` those open and idle in the pool. After one
request, or many one after another, a healthy app shows **0 checked out and 1 checked in**:
one connection, reused by every request and kept open for the next. A connection
still checked out after a request is a leak.

<details><summary><b>Go deeper:</b> what else the cell does</summary>

`LifespanManager` (from the `asgi-lifespan` library) starts the app as a server would: if you
gave `FastAPI(lifespan=...)` a function, its code before `yield` runs first and its code
after `yield` when the block ends (`httpx.ASGITransport` alone never runs it). The cell uses
`await` at the top level because the notebook already runs an event loop (`asyncio.run()`
would fail here). When the request fails inside your app, the error passes through dozens of
httpx, Starlette and FastAPI frames: for a common mistake, `request_failed` says in one
sentence what is wrong and how to fix it, followed by the original error; any other error is
shown whole.

</details>
"""),
    readonly("step4_call_items", '''
# Read-only: run it to call your app (nbgrader restores this cell when it grades).
import httpx
from asgi_lifespan import LifespanManager
from autograder.explain import request_failed

try:
    async with LifespanManager(app) as manager:  # starts the app as a server does (its lifespan, if any)
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://lesson") as client:
            response = await client.get("/items")
        print("status:", response.status_code)
        print("checked out:", engine.pool.checkedout())  # healthy after a request: 0
        print("checked in: ", engine.pool.checkedin())   # 1: the connection kept open for reuse
except Exception as error:
    request_failed(error)  # a common mistake in one sentence; any other error in full
response.json()
'''),
    *step_checks(4),
    md("quiz-practice", """
## When pooled connections die

A database server can drop a connection while it sits idle in the pool (a restart, an idle
timeout). The pool does not notice, and the next request to get that connection fails.
With `pool_pre_ping=True` the pool tests each connection as it is checked out and replaces
a dead one before your route gets it.

<details><summary><b>Go deeper:</b> <code>pool_recycle</code></summary>

`pool_recycle=1800` makes the pool replace a connection more than 1800 seconds old, at the
moment it is next checked out: nothing happens to it while it sits idle. It protects you only
when it is below the server's idle timeout: then a connection idle long enough to have been
dropped is also old enough to be replaced when it is checked out. The optional PostgreSQL
notebook shows `pool_pre_ping` at work on a real server.

</details>

## Practice quiz

Five questions with instant feedback: choose an answer and press **Check**. Nothing here is
graded.
"""),
    readonly("quiz_practice_show", """
from autograder import quiz

quiz.show_practice()
"""),
    md("quiz-test", """
## Graded quiz

Ten questions, one point each. Each click **saves** your choice in `quiz_answers.json`,
which is submitted with this notebook; you can change it until you submit. You see "answer
saved", not whether you were right.
"""),
    readonly("quiz_test_show", """
from autograder import quiz

quiz.show_test()
"""),
    *quiz_checks(),
    md("wrap-up", """
## Wrap-up

You built a FastAPI app that reads through a pooled async engine, and a `yield` dependency
that gives every connection back. """ + hidden_checks() + """

Next, the pool lab (`notebooks/pool-lab.ipynb`) shows bursts, queueing, a timeout and a leak
in plots.
"""),
    readonly("progress_show_again", """
from autograder import progress

progress.show()
"""),
    md("self-grade-instructions", """
## Grade your own notebook (self-study)

Save the notebook (**Ctrl+S**), then press the button: it grades a copy of the saved file,
hidden tests and quiz key included, and shows every check's result (in a terminal:
`course-grade selfgrade`).
"""),
    readonly("self_grade_button", """
from autograder import selfgrade

selfgrade.button()
"""),
]


def build() -> nbformat.NotebookNode:
    """The notebook, its intro stating the time tools/lesson_words.py's model gives it."""
    nb = new_notebook(cells=lesson_words.fill_time(CELLS, TIME, lesson_words.lesson_minutes))
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
