"""Helpers for notebooks/postgres.ipynb: the lesson's app on a real database server.

The notebook reads its database URL from the environment variable COURSE_DATABASE_URL
(for example postgresql+asyncpg://course:course@127.0.0.1:5432/course) and falls back to a
SQLite file of its own when the variable is unset. `build_app` runs the lesson's step-4
solution (autograder/solution.py) on an engine; tools/build_postgres_notebook.py shows that
code, and `seed` as written here, in the notebook's cells, so the code the notebook runs is
the code the tests run.

`check_server` is run once, near the top; every later cell that needs the database starts
with `if lab.ready():`, which prints one line and skips the cell when no server answered.
"""
import asyncio
import time

import httpx
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from autograder import reference, solution

ENV_VAR = "COURSE_DATABASE_URL"
SQLITE_URL = "sqlite+aiosqlite:///./postgres-lab.db"  # its own file: the lesson's test.db is untouched
CONNECT_TIMEOUT = 5  # seconds the reachability check waits for the server

SEED_ROWS = [dict(row) for row in reference.SEED_ROWS]

HOW_TO_START = f"""\
Start a PostgreSQL server and point {ENV_VAR} at it, for example:

  with Docker (the server listens on this machine only):
    docker run --rm -d --name course-postgres -e POSTGRES_USER=course -e POSTGRES_PASSWORD=course \\
        -p 127.0.0.1:5432:5432 postgres:15
    export {ENV_VAR}=postgresql+asyncpg://course:course@127.0.0.1:5432/course

  or on Debian/Ubuntu:
    sudo apt-get install postgresql      # then, if it is not running: sudo service postgresql start
    sudo -u postgres psql -c "CREATE ROLE course LOGIN PASSWORD 'course'"
    sudo -u postgres createdb --owner=course course
    export {ENV_VAR}=postgresql+asyncpg://course:course@127.0.0.1:5432/course

Then start JupyterLab from that shell and run all cells again (or set the variable in the
notebook, above the first cell: %env {ENV_VAR}=postgresql+asyncpg://...).
To run this notebook on SQLite instead, leave {ENV_VAR} unset."""

_state: dict = {"checked": False, "ready": False, "url": None}


# ------------------------------------------------------------------------- the database URL

def is_server(url: str) -> bool:
    """True for a server database (PostgreSQL), False for a SQLite file."""
    return make_url(url).get_backend_name() != "sqlite"


def describe(url: str) -> str:
    """The URL with its password hidden, safe to print."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL at all: show it as it was given
        return url


def _one_line(error: BaseException) -> str:
    message = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"{type(error).__name__}: {message}" if message else type(error).__name__


# ------------------------------------------------------------------- reachability, guards

async def server_version(url: str, timeout: float = CONNECT_TIMEOUT) -> str:
    """Connect once (no pool) and return the server's version string; raises when it cannot."""
    options = {"poolclass": NullPool}
    if is_server(url):
        driver = make_url(url).get_driver_name()
        if driver != "asyncpg":
            raise ValueError(f"this notebook needs the async driver asyncpg: the URL must start with "
                             f"postgresql+asyncpg://, not {make_url(url).drivername}://")
        options["connect_args"] = {"timeout": timeout}
    engine = create_async_engine(url, **options)
    try:
        async with asyncio.timeout(timeout + 1):
            async with engine.connect() as conn:
                query = "SELECT version()" if is_server(url) else "SELECT 'SQLite ' || sqlite_version()"
                return (await conn.execute(text(query))).scalar()
    finally:
        await engine.dispose()


async def check_server(url: str) -> bool:
    """Print which database the notebook uses and whether it answers. When a server URL was
    given and nothing answers, print how to start one; the cells guarded by ready() then skip."""
    _state.update(checked=True, ready=False, url=url)
    try:
        version = await server_version(url)
    except Exception as error:  # any failure: refused, timed out, bad password, bad URL, ...
        print(f"Cannot connect to the database at {describe(url)}\n  ({_one_line(error)})\n")
        print(HOW_TO_START)
        print("\nThe cells below skip themselves until a server answers.")
        return False
    _state["ready"] = True
    where = "the PostgreSQL server" if is_server(url) else f"SQLite ({ENV_VAR} is not set)"
    print(f"Connected to {where} at {describe(url)}\n  {version.split(',')[0]}")
    return True


def ready(needs_server: bool = False) -> bool:
    """The guard at the top of each cell that uses the database: True when it may run.
    Otherwise it prints one line saying why the cell is skipped and returns False."""
    if not _state["checked"]:
        print("skipped: run the cell with `await lab.check_server(DATABASE_URL)` first")
        return False
    if not _state["ready"]:
        print("skipped: cannot connect to the database (the check near the top says how to start a server)")
        return False
    if needs_server and not is_server(_state["url"]):
        print(f"skipped on SQLite: this cell needs a PostgreSQL server ({ENV_VAR} is not set)")
        return False
    return True


# ------------------------------------------------------------------------ the lesson's app

def build_app(engine):
    """The lesson's app on `engine`: its step-4 solution code (autograder/solution.py), run as it is."""
    return solution.build_app(engine)


async def seed(engine, rows=SEED_ROWS):
    # One transaction: create the table if it is missing, then replace its rows, so running
    # this again always ends with the same rows. DOUBLE PRECISION works on both databases
    # (PostgreSQL's REAL would round 89.99 to 89.98999786376953).
    async with engine.begin() as conn:
        await conn.execute(text(
            "CREATE TABLE IF NOT EXISTS items "
            "(id INTEGER PRIMARY KEY, name TEXT NOT NULL, price DOUBLE PRECISION NOT NULL)"
        ))
        await conn.execute(text("DELETE FROM items"))
        await conn.execute(text("INSERT INTO items (id, name, price) VALUES (:id, :name, :price)"), rows)


# -------------------------------------------------------------------------- measurement

def client(app) -> httpx.AsyncClient:
    """Requests straight to the app, in this process, as the lesson does."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


async def requests_per_second(app, seconds: float = 0.75, concurrency: int = 5) -> float:
    """GET /items from `concurrency` clients at once for about `seconds`; requests per second.
    One untimed round first, so a pool starts the timed part with its connections open."""
    done = 0
    async with client(app) as c:
        for response in await asyncio.gather(*(c.get("/items") for _ in range(concurrency))):
            response.raise_for_status()

        async def one_client(deadline: float):
            nonlocal done
            while time.perf_counter() < deadline:
                (await c.get("/items")).raise_for_status()
                done += 1

        start = time.perf_counter()
        await asyncio.gather(*(one_client(start + seconds) for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    return done / elapsed


async def pooled_vs_nullpool(url: str, rounds: int = 2, seconds: float = 0.75, concurrency: int = 5) -> dict:
    """Requests per second through a pooled engine and through NullPool (a new connection
    for every request), on the same app and database; the best of `rounds` for each."""
    rates = {"pooled": 0.0, "NullPool": 0.0}
    for _ in range(rounds):
        for name, options in [("pooled", {"pool_size": concurrency}), ("NullPool", {"poolclass": NullPool})]:
            engine = create_async_engine(url, **options)
            try:
                rate = await requests_per_second(build_app(engine), seconds, concurrency)
            finally:
                await engine.dispose()
            rates[name] = max(rates[name], rate)
    rates["ratio"] = rates["pooled"] / rates["NullPool"]
    return rates
