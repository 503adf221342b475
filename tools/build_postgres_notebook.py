"""Write the self-study notebook notebooks/postgres.ipynb: the lesson's app on PostgreSQL.

The notebook is generated from this file so that its cells and ids stay readable and
reviewable. The app is the lesson's step-4 solution (autograder/solution.py), shown wrapped in
`build_app(engine)`, and the seeding is `seed` from autograder/server_db.py: the code the tests
run, so the two cannot drift apart.

    python tools/build_postgres_notebook.py           # write the notebook
    python tools/build_postgres_notebook.py --check   # exit 1 if the committed one differs

The notebook is committed without outputs. Its database comes from the environment variable
COURSE_DATABASE_URL (postgresql+asyncpg://...), or a SQLite file when that is unset.
"""
from __future__ import annotations

import inspect
import pprint
import sys

if __package__:  # imported as tools.<name> (the tests)
    from . import lesson_words
    from .notebook_builder import ROOT, code, md, write_or_check
else:  # run as a script: python tools/<name>.py
    import lesson_words
    from notebook_builder import ROOT, code, md, write_or_check

NOTEBOOK = ROOT / "notebooks" / "postgres.ipynb"
TIME = "{postgres_time}"  # filled in from tools/lesson_words.py's model of this notebook and its quiz
sys.path.insert(0, str(ROOT))
from autograder import server_db  # noqa: E402
from autograder.solution import step_code  # noqa: E402


def guarded(cell_id: str, body: str, *, needs_server: bool = False):
    """A cell that uses the database: it runs only when the server check passed."""
    guard = "if lab.ready(needs_server=True):" if needs_server else "if lab.ready():"
    indented = "\n".join(("    " + line) if line.strip() else "" for line in body.strip().splitlines())
    return code(cell_id, f"{guard}\n{indented}")


def source_of(function) -> str:
    return inspect.getsource(function).rstrip()


def build_app_source() -> str:
    """`build_app(engine)`: the lesson's step-4 solution, on the engine it is given."""
    body = "\n".join(("    " + line) if line.strip() else "" for line in step_code(4).splitlines())
    return (f"def build_app(engine):\n    \"\"\"The lesson's step 4, on `engine`.\"\"\"\n{body}\n"
            "    return app")


ENV = server_db.ENV_VAR

CELLS = [
    md("intro", f"""
# The pooled app on a real PostgreSQL server

In the lesson, your FastAPI app read the table `items` from a SQLite file through a pooled
async engine. Here the **very same app code** runs against a **PostgreSQL server** through
`postgresql+asyncpg://...`, and you see what changes when the database is a server:

- the server accepts a limited number of connections (`max_connections`), shared by every
  worker process of your app;
- connections can die under a live pool (a server restart, an idle timeout), and
  `pool_pre_ping` / `pool_recycle` deal with that;
- opening a connection costs more, so pooling matters more: you measure it here.

**Which database?** The notebook reads the URL from the environment variable
`{ENV}`, for example `postgresql+asyncpg://course:course@127.0.0.1:5432/course`. When the
variable is not set it runs on a SQLite file of its own, `postgres-lab.db` (the lesson's
`test.db` is not touched), and skips the parts that need a server. When the variable is set
but no server answers, the check cell below says how to start one and the other cells skip
themselves.

**Time:** """ + TIME + """. Run the cells from top to bottom (*Run → Run All Cells*).
"""),
    code("choose-database", f'''
import os

from autograder import server_db as lab  # helpers: the server check, the cell guard, a benchmark

SQLITE_URL = "{server_db.SQLITE_URL}"
DATABASE_URL = os.environ.get("{ENV}", "").strip() or SQLITE_URL
print("database URL:", lab.describe(DATABASE_URL))  # the password, if any, is hidden
'''),
    md("check-instructions", """
## Is the server there?

This cell connects once, without a pool. If it fails, it prints how to start a server and
every cell below that needs the database prints one line and skips itself (each starts with
`if lab.ready():`).
"""),
    code("check-server", """
SERVER_READY = await lab.check_server(DATABASE_URL)
"""),
    md("app-instructions", """
## The same app as in the lesson

`build_app` is the lesson's app code, wrapped in a function so that the notebook can build it
on more than one engine: a `get_connection` dependency that `yield`s a pooled connection
inside `async with engine.connect() as conn:`, and a `GET /items` route that returns every
row as a list of dicts. `seed` creates the table `items` if it is missing and replaces its
rows, in one transaction, so running it again always ends with the same three rows. The SQL
is the same on both databases. This cell only defines them: nothing connects yet.
"""),
    code("app-code", "\n".join([
        "from sqlalchemy import text",
        "from sqlalchemy.ext.asyncio import create_async_engine",
        "",
        "",
        build_app_source(),
        "",
        "",
        "SEED_ROWS = " + pprint.pformat(server_db.SEED_ROWS, sort_dicts=False, width=80).replace("\n", "\n" + " " * 12),
        "",
        "",
        source_of(server_db.seed),
    ])),
    md("engine-instructions", """
## The engine, the app, the rows

Only the URL differs from the lesson. The engine gets the lesson's pool settings, plus
`pool_pre_ping=True` (explained below). Creating it opens no connection; `seed` is the first
to use the pool.
"""),
    guarded("engine-and-seed", """
POOL_SIZE, MAX_OVERFLOW = 5, 10  # the lesson's pool_size, and max_overflow's default
engine = create_async_engine(DATABASE_URL, pool_size=POOL_SIZE, max_overflow=MAX_OVERFLOW, pool_pre_ping=True)
app = build_app(engine)

await seed(engine)
print(f"items table ready with {len(SEED_ROWS)} rows;", "pool:", type(engine.pool).__name__)
"""),
    md("call-instructions", """
## Call the app

As in the lesson: `httpx.ASGITransport` passes the request straight to `app` in this kernel,
and the cell uses `await` at the top level (the notebook already runs an event loop, so
`asyncio.run()` would fail). After the request the connection is back in the pool:
nothing is checked out.
"""),
    guarded("call-items", """
import httpx

async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
    response = await client.get("/items")

print("status:", response.status_code)
print("rows:", response.json())
print("checked out after the request:", engine.pool.checkedout())
"""),
    md("max-connections-instructions", """
## The server's limit: `max_connections`

A PostgreSQL server accepts at most `max_connections` connections at once (a setting of the
server, read with `SHOW max_connections`). A few of them,
`superuser_reserved_connections`, are kept for superusers, so an ordinary role, the kind
an app should use, gets the rest. Past the limit the server does not queue anyone: it
refuses the new connection at once with `sorry, too many clients already` (an ordinary role
is told `remaining connection slots are reserved ...` when only the reserved slots are left),
and the request that needed the connection fails.

Your pool does not know about that limit. Each worker process (`uvicorn --workers 4`,
gunicorn workers, each replica of a container) has **its own** engine and pool, so at a burst
the app may open

    workers × (pool_size + max_overflow)

connections, plus whatever else connects to the server (migrations, admin tools, other
services). That total must stay below the server's limit. The cell reads the limit from the
server you are connected to and checks a few worker counts against it.
"""),
    guarded("max-connections", """
per_worker = POOL_SIZE + MAX_OVERFLOW  # the most connections one worker's pool opens
async with engine.connect() as conn:
    max_connections = int((await conn.execute(text("SHOW max_connections"))).scalar())
    reserved = int((await conn.execute(text("SHOW superuser_reserved_connections"))).scalar())
    in_use = (await conn.execute(text(
        "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'"
    ))).scalar()

usable = max_connections - reserved  # what an ordinary (non-superuser) role can open
print(f"max_connections = {max_connections}, of which {reserved} are kept for superusers: "
      f"{usable} for ordinary roles; {in_use} in use right now (this one included)")
for workers in (1, 2, 4, 8):
    total = workers * per_worker
    verdict = "fits" if total <= usable else "does NOT fit: connections past the limit are refused"
    print(f"{workers} worker(s) x {per_worker} = {total:>4} connections at most: {verdict}")
print(f"at most {usable // per_worker} workers with this pool fit in {usable} connections")
""", needs_server=True),
    md("stale-instructions", """
## Connections that die under a live pool: `pool_pre_ping` and `pool_recycle`

A pooled connection can die while it sits idle in the pool: the server restarts (every server
process ends, and with it every connection), an administrator or an idle timeout ends it, a
firewall or load balancer drops a quiet TCP connection. The pool does not notice: the dead
connection stays in the pool until a request gets it.

- **Without `pool_pre_ping`**, the request that gets a dead connection fails with a
  disconnect error. SQLAlchemy then throws away every older connection in the pool, so the
  next requests open new ones and work: one failed request per outage.
- **With `pool_pre_ping=True`**, the pool runs a tiny ping on each connection as it is
  checked out; a dead one is replaced with a new connection before the route sees it. The
  cost is one extra round trip per checkout.
- **`pool_recycle=N`** replaces connections older than `N` seconds when they are checked out.
  It does not detect dead connections; it avoids keeping any long enough to be dropped (set
  it below the server's or the network's idle timeout, e.g. `pool_recycle=1800`).

The cell below does to one pooled connection what a restart does to all of them: another
connection asks the server to end it (`pg_terminate_backend`). Then the app is called twice,
without and with `pool_pre_ping`.
"""),
    guarded("stale-connection-demo", """
import asyncio

from sqlalchemy import exc

for pre_ping in (False, True):
    demo_engine = create_async_engine(DATABASE_URL, pool_size=1, pool_pre_ping=pre_ping)
    demo_app = build_app(demo_engine)
    outcomes = []
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=demo_app), base_url="http://test") as client:
        await client.get("/items")  # the pool now keeps one idle connection
        async with demo_engine.connect() as conn:  # that same connection: which server process serves it?
            pid = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar()
        async with engine.connect() as admin:  # end that server process, as a restart would
            await admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        await asyncio.sleep(0.5)  # let the closed connection reach us
        for attempt in (1, 2):
            try:
                outcomes.append(f"request {attempt}: status {(await client.get('/items')).status_code}")
            except exc.DBAPIError as error:  # the route's query failed on the dead connection
                outcomes.append(f"request {attempt}: failed with {type(error).__name__}: {error.orig}")
    await demo_engine.dispose()
    print(f"pool_pre_ping={pre_ping}:", "; ".join(outcomes))
""", needs_server=True),
    md("throughput-instructions", f"""
## Pooling pays more on a server

Opening a SQLite connection opens a file. Opening a PostgreSQL connection means a TCP
handshake, authentication, and a new server process, so pooling usually saves more there.
The cell measures, right now on this machine, the same app with a pooled engine and with
`NullPool` (a new connection for every request, closed afterwards), on SQLite and, when
`{ENV}` is set, on the server, and prints the ratio for each. Your numbers depend on your
machine and on where the server runs (over a real network, opening connections costs more
still). It takes a few seconds.
"""),
    guarded("measure-throughput", """
from sqlalchemy.pool import NullPool

sqlite_engine = create_async_engine(SQLITE_URL, poolclass=NullPool)
await seed(sqlite_engine)  # the SQLite file gets the same rows
await sqlite_engine.dispose()

databases = {"SQLite": SQLITE_URL}
if lab.is_server(DATABASE_URL):
    databases["PostgreSQL"] = DATABASE_URL
for name, url in databases.items():
    rates = await lab.pooled_vs_nullpool(url)  # the same app: pooled engine vs NullPool
    print(f"{name:<10}  pooled {rates['pooled']:7.0f} req/s   NullPool {rates['NullPool']:7.0f} req/s   "
          f"pooled/NullPool = {rates['ratio']:.1f}x")
if not lab.is_server(DATABASE_URL):
    print(f"PostgreSQL  not measured: {lab.ENV_VAR} is not set")
"""),
    md("quiz-instructions", """
## Check yourself: pool sizing against a server

Two questions with instant feedback: choose an answer and press **Check**. Nothing here is
graded.
"""),
    code("quiz-server", """
from autograder import quiz

quiz.show_practice("server")
"""),
    md("cleanup-instructions", """
## Clean up

Disposing the engine closes the connections its pool keeps open, on the server too.
"""),
    guarded("dispose", """
await engine.dispose()
print("engine disposed; checked in now:", engine.pool.checkedin())
"""),
    md("wrap-up", """
## Wrap-up

- The app code does not change with the database: only the URL does
  (`postgresql+asyncpg://user:password@host:port/database`).
- A server limits connections: keep `workers × (pool_size + max_overflow)` (plus your other
  clients) below `max_connections`, minus the slots reserved for superusers.
- `pool_pre_ping=True` replaces connections that died under the pool (a restart, an idle
  timeout) before a request gets them; `pool_recycle=N` replaces a connection older than `N`
  seconds at its next checkout, which helps when `N` is below the idle timeout.
- Measure before tuning: the ratio above is this machine's, today.
"""),
]


CELLS = lesson_words.fill_time(CELLS, TIME, lambda reader, nb: lesson_words.notebook_minutes(reader, nb, "server"))


def main(argv: list[str]) -> None:
    write_or_check(NOTEBOOK, CELLS, argv, "python tools/build_postgres_notebook.py")


if __name__ == "__main__":
    main(sys.argv[1:])
