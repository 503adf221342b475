"""Write the self-study notebook notebooks/pool-lab.ipynb (not graded).

The notebook is generated from this file so that its cells and ids stay readable and
reviewable: edit the lab here, then run `python tools/build_pool_lab.py`. With `--check` the
script writes nothing and exits non-zero when the committed notebook differs from what it
would write (tests/notebooks/test_pool_lab.py runs that). The measuring and plotting helpers the
notebook calls live in autograder/lab.py.
"""
from __future__ import annotations

import sys

if __package__:  # imported as tools.<name> (the tests)
    from . import lesson_words
    from .notebook_builder import ROOT, code, md, write_or_check
else:  # run as a script: python tools/<name>.py
    import lesson_words
    from notebook_builder import ROOT, code, md, write_or_check

from autograder.reference import SEED_ROWS

NOTEBOOK = ROOT / "notebooks" / "pool-lab.ipynb"
TIME = "{lab_time}"  # filled in from tools/lesson_words.py's model of this notebook


CELLS = [
    md("intro", """
# Pool lab: watch a connection pool at work

The lesson told you what a connection pool does. This lab lets you **see** it: you will send
bursts of requests to the lesson's FastAPI app and watch, in plots, how many database
connections are out at each moment, who has to wait, what happens when nobody gives a
connection back, and what pooling buys you.

Everything runs inside this notebook: the app is called in-process (no server), and the
database is a SQLite file of its own, `pool-lab.db`, beside this notebook (the lesson's
`test.db` is left alone). Nothing here is graded.

**How to use it:** run the cells from top to bottom (*Run → Run All Cells*); the whole lab
takes a few seconds. Every number you see is measured as the cell runs, so your numbers will
differ a little from anyone else's. Change a setting and run a cell again to see what moves.
Time: """ + TIME + """.
"""),
    md("setup-md", """
## Set-up

Imports, and the lab's database: a table `items` with three rows. Running the cell again
gives the same three rows. `lab` is a small helper module from this course
(`autograder/lab.py`) that sends the requests, records the pool and draws the plots, so the
cells below stay short.
"""),
    code("setup", '''
import asyncio
import gc
import sqlite3
import time

import httpx
import matplotlib.pyplot as plt
from sqlalchemy import exc, text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from autograder import lab
from autograder.solution import step4  # the lesson's step 4, run on the engine you give it

# Plots as static pictures (Jupyter's default, made explicit).
%matplotlib inline

DATABASE_URL = "sqlite+aiosqlite:///./pool-lab.db"

db = sqlite3.connect("pool-lab.db")
with db:  # one transaction, committed at the end of the block
    db.execute("CREATE TABLE IF NOT EXISTS items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, price REAL NOT NULL)")
    db.execute("DELETE FROM items")
    db.executemany("INSERT INTO items (id, name, price) VALUES (?, ?, ?)",
                   [{seed_rows}])
db.close()
print("pool-lab.db is ready")
'''.replace("{seed_rows}", ", ".join(f'({r["id"]}, "{r["name"]}", {r["price"]!r})' for r in SEED_ROWS))),
    md("app-md", """
## The app: the lesson's app, plus one line

`make_app(engine)` builds the lesson's own app on `engine`: its step-4 solution, a
`get_connection` dependency that lends each request a connection inside
`async with engine.connect() as conn:` and gives it back after the response, and a
`GET /items` route that reads the table.

The one addition is `await asyncio.sleep(hold)`, in a dependency that wraps the lesson's: it
keeps each connection busy for `hold` seconds, like a request that does a little more work.
Without it the requests would be so quick that they would rarely overlap, and there would be
little to see. Each experiment makes its own engine and app from this function.
"""),
    code("app", '''
def make_app(engine, hold=0.0):
    """The lesson's app on `engine`; each request keeps its connection for `hold` more seconds."""
    lesson = step4(engine)

    async def get_connection_and_hold():
        async for conn in lesson["get_connection"]():  # the lesson's dependency
            await asyncio.sleep(hold)  # the lab's addition: keep the connection busy a little
            yield conn

    lesson["app"].dependency_overrides[lesson["get_connection"]] = get_connection_and_hold
    return lesson["app"]
'''),
    md("try-md", """
One request, to see it work. `httpx.ASGITransport` hands the request straight to the app in
this kernel, and the cell uses `await` at the top level because the notebook already runs an
event loop (`asyncio.run()` would fail here).
"""),
    code("try_app", '''
engine = create_async_engine(DATABASE_URL)
async with httpx.AsyncClient(transport=httpx.ASGITransport(app=make_app(engine)), base_url="http://lab") as client:
    response = await client.get("/items")
print("status:", response.status_code, response.json())
print("connections checked out:", engine.pool.checkedout(), "| kept open in the pool:", engine.pool.checkedin())
await engine.dispose()  # close the engine's connections: every experiment cleans up after itself
'''),
    md("status-md", """
## The pool's own summary

`engine.pool.status()` sums up a pool in one line. The cell prints it for a fresh engine with
a pool size of 5, then each of its numbers with what it means.
"""),
    code("pool_status", '''
engine = create_async_engine(DATABASE_URL, pool_size=5)
pool = engine.pool
print(pool.status())  # SQLAlchemy's summary; each number is explained below
print("pool class:", type(pool).__name__, "(a queue pool: it lends each connection to one user at a time)")
print("pool size:", pool.size(), "= connections the pool keeps open for reuse, once it has opened them")
print("connections in pool:", pool.checkedin(), "= open and idle, ready to lend (checkedin())")
print("checked out:", pool.checkedout(), "= lent out and not given back yet (checkedout())")
print("current overflow:", pool.overflow(), "= connections open now minus pool size. It is negative until")
print("  the pool has opened pool size connections: -5 means 5 can still open before any overflow one.")
await engine.dispose()
'''),
    md("burst-why", """
## Experiment 1: thirty requests at once, three pools

Three settings decide how many connections a pool lets out:

- **`pool_size`** (default 5) is how many connections the pool *keeps open* between
  requests, ready for reuse. It is **not** the maximum.
- **`max_overflow`** (default 10) is how many *extra* connections the pool may open when all
  kept ones are busy. As connections come back, it keeps `pool_size` of them open and closes
  the rest.
- So the **limit** on connections out at the same moment is `pool_size + max_overflow`:
  5 + 0 = 5 for the first engine below, and 5 + 10 = 15 with the defaults.
- **`NullPool`** is no pool at all: every checkout opens a brand-new connection and every
  checkin closes it. Nothing is reused, and nothing is limited.

The cell sends 30 requests at the same moment to each of the three engines, each request
holding its connection for 0.2 s. The lab counts connections checked out as they change,
by listening to the pool's `checkout` and `checkin` events. (For a queue pool,
`engine.pool.checkedout()` gives the same count at any instant; `NullPool` has no such
method, so the lab listens to events for all three.)
"""),
    code("burst_run", '''
REQUESTS, HOLD = 30, 0.2  # 30 requests at once; each keeps its connection 0.2 s

setups = {
    "pool_size=5, max_overflow=0": dict(pool_size=5, max_overflow=0),
    "defaults (pool_size=5, max_overflow=10)": dict(),
    "NullPool": dict(poolclass=NullPool),
}
bursts = []
for label, options in setups.items():
    engine = create_async_engine(DATABASE_URL, **options)
    bursts.append(await lab.burst(make_app(engine, hold=HOLD), engine, n=REQUESTS, label=label))
    await engine.dispose()

for b in bursts:
    limit = "none" if b.limit is None else b.limit
    kept = "-" if b.kept_open is None else b.kept_open
    print(f"{b.label:<40} limit {limit:>4} | peak checked out {b.peak:>2} | "
          f"new connections {b.connects:>2} | kept open after {kept:>2} | all done in {b.seconds:.2f} s")
'''),
    code("burst_plot", '''
lab.plot_timelines(bursts)
plt.show()
'''),
    md("burst-saw", """
**What you saw**

- **pool_size=5, max_overflow=0:** the line climbs to 5 and stays flat against the dashed
  limit. The other 25 requests are not refused: they wait, and the work goes out in waves of
  five, so this burst takes the longest. The thin dips are connections coming back and, a
  moment later, going out to the next waiting requests.
- **Defaults:** the line stops at 15, not 5: `pool_size` is what the pool keeps, and
  `max_overflow` lets 10 more open under load. Afterwards the extra ten are closed and five
  stay open ("kept open after" in the table), ready for the next requests.
- **NullPool:** no limit, so all 30 requests got a connection at once, and every one of them
  was a new connection ("new connections" equals the number of requests). Nobody queued,
  but a real database server allows only so many connections, and a burst like this in every
  worker process can use them all up: a limited pool protects the database.
"""),
    md("queue-why", """
## Experiment 2: who waits, and for how long

A request that finds the limit reached (`pool_size + max_overflow` connections out)
**queues**: it waits inside `engine.connect()` until another request gives a connection
back. For the first engine of Experiment 1 (limit 5), the bars show each request's wait: the
time from sending it until it had its connection.
"""),
    code("queue_plot", '''
limited = bursts[0]  # pool_size=5, max_overflow=0
waited = [w for w, queued in zip(limited.waits, limited.queued()) if queued]
print(f"{limited.label}: {REQUESTS - len(waited)} requests found a free connection, "
      f"{len(waited)} queued and waited {min(waited):.2f} s to {max(waited):.2f} s")
lab.plot_waits(limited)
plt.show()
'''),
    md("queue-saw", """
**What you saw**

A staircase. The first five requests (blue) got a connection almost at once (their bars are
short but not zero: the pool opens a connection only when one is first asked for). Every
later request (orange) waited for one of those five to come back, so each group of
five waited about one more `HOLD` (0.2 s) than the group before. A limit does not make
requests fail; it makes them wait their turn. They fail only if a turn takes too long,
which is the next experiment.
"""),
    md("timeout-why", """
## Experiment 3: an exhausted pool gives up after `pool_timeout`

How long does a queued request wait? At most **`pool_timeout`** seconds (30 by default).
If no connection comes back by then, the checkout raises `sqlalchemy.exc.TimeoutError`:
that request fails (behind a real server its client gets a 500 error), the app carries on,
and nothing hangs forever.

The cell makes a tiny pool (2 connections, no overflow, `pool_timeout=1`), checks both
connections out and keeps them, as two stuck requests would, and then asks the app for
`/items`. The error is caught and printed, with the time it took.
"""),
    code("timeout_run", '''
small = create_async_engine(DATABASE_URL, pool_size=2, max_overflow=0, pool_timeout=1)
held = [await small.connect() for _ in range(2)]  # both connections out, and kept
print("checked out:", small.pool.checkedout(), "of", lab.pool_limit(small))

async with httpx.AsyncClient(transport=httpx.ASGITransport(app=make_app(small)), base_url="http://lab") as client:
    started = time.perf_counter()
    try:
        await client.get("/items")
    except exc.TimeoutError as error:
        print(f"after {time.perf_counter() - started:.2f} s the request failed with "
              f"{type(error).__module__}.{type(error).__name__}:")
        print(error)

    for conn in held:
        await conn.close()  # give the two connections back...
    response = await client.get("/items")
    print("with the connections back, the next request gets status", response.status_code)

await small.dispose()
'''),
    md("timeout-saw", """
**What you saw**

The request waited `pool_timeout` (1 s here), then failed with SQLAlchemy's own message:
`QueuePool limit of size 2 overflow 0 reached, connection timed out, timeout 1.00`. It
names the two settings that make up the limit and the timeout. Once the connections came
back, the very next request worked. If you meet this message in a real service, look for
connections that are held too long or never given back before you make the pool bigger;
the next experiment shows the second kind.
"""),
    md("leak-why", """
## Experiment 4: a leaked connection, found by the garbage collector

A connection checked out and never closed stays checked out: the pool cannot lend it to
anyone else. The lesson's `yield` dependency inside `async with` prevents that. Here a
connection is leaked on purpose, as a buggy route would: checked out with
`await engine.connect()`, used for a query, and then its only reference is dropped with `del`
instead of `close()`.

Running a query begins a transaction, and the connection and its transaction object refer to
each other: a *reference cycle*. So `del` alone does not free the connection: Python frees
objects in a cycle only when its garbage collector runs, which may be much later.
`gc.collect()` makes that happen now. At that moment SQLAlchemy finds the lost connection.
With an async driver such as aiosqlite it cannot do async clean-up from inside the garbage
collector, so it does not return the connection to the pool: it terminates it, and it warns
you. The cell counts the connections checked out after each line, and prints the warning
(and the matching line SQLAlchemy logs).
"""),
    code("leak_run", '''
leaky = create_async_engine(DATABASE_URL)
conn = await leaky.connect()  # checked out... and never closed
await conn.execute(text("SELECT * FROM items"))
print("checked out after the query:     ", leaky.pool.checkedout())

with lab.catch_pool_messages() as caught:
    del conn      # the only reference is gone...
    print("checked out after del conn:      ", leaky.pool.checkedout())
    gc.collect()  # ...and the garbage collector finds the connection now
    print("checked out after gc.collect():  ", leaky.pool.checkedout())

for warning in caught.warnings:
    print(f"\\n{warning.category.__name__}: {warning.message}")
for record in caught.log:
    print(f"\\n(SQLAlchemy also logged it at {record.levelname} level, on the logger {record.name})")
await leaky.dispose()
'''),
    md("leak-saw", """
**What you saw**

The count stayed at 1 after `del` and went to 0 only when the garbage collector ran.
SQLAlchemy warned that it had to clean up a *non-checked-in* connection and would terminate
it, and asked you to return connections explicitly. (A connection that never ran a query has
no transaction, so no cycle: Python frees it, with the same warning, as soon as `del` drops
the last reference. Delete the `execute` line and run the cell again to see it.) In a real
app you cannot count on the garbage collector running in time: until it does, a leaked
connection counts against the pool's limit, and a few leaks turn into the `TimeoutError` of
Experiment 3. The fix is to check out only with `async with engine.connect() as conn:` (or a
`yield` dependency wrapping it), so every path gives the connection back.
"""),
    md("speed-why", """
## Experiment 5: what pooling buys you

A pool saves opening a new connection for every request. How much that is worth depends on
the database: for a server database (PostgreSQL, MySQL) a new connection means a network
round trip, authentication and a new server process or thread, which is costly. SQLite is a
file, so a new connection is cheap: aiosqlite opens the file and starts a thread. Expect a
smaller gap here than you would see with a server database.

The cell sends the same number of requests, one after another, to a pooled engine (the
defaults) and to a `NullPool` engine, and times them. No `hold` here: the requests are as
fast as they can be.
"""),
    code("speed_run", '''
N = 200
pooled_engine = create_async_engine(DATABASE_URL)
null_engine = create_async_engine(DATABASE_URL, poolclass=NullPool)
pooled = await lab.throughput(make_app(pooled_engine), pooled_engine, n=N)
unpooled = await lab.throughput(make_app(null_engine), null_engine, n=N)
await pooled_engine.dispose()
await null_engine.dispose()

print(f"pooled:   {pooled.per_second:.1f} requests/s ({pooled.connects} new connections for {N} requests)")
print(f"NullPool: {unpooled.per_second:.1f} requests/s ({unpooled.connects} new connections for {N} requests)")
print(f"pooled / NullPool: {pooled.per_second / unpooled.per_second:.2f}x")
'''),
    md("speed-saw", """
**What you saw**

The pooled engine answered all its requests on connections it already had open (the
warm-up requests opened the one it needed), while `NullPool` opened and closed one
connection per request. The ratio is the price of those connections. With SQLite the price
is small, and on a busy machine the numbers move from run to run: run the cell a few times.
Against a server database over a network, the same experiment usually shows a much bigger
gap, because each new connection costs a round trip or more.
"""),
    md("wrap-up", """
## Wrap-up

| setting | what it does |
|---|---|
| `pool_size` (5) | connections the pool keeps open for reuse |
| `max_overflow` (10) | extra connections it may open under load, closed again when they come back |
| limit | `pool_size + max_overflow` connections out at once (15 by default); more requests queue |
| `pool_timeout` (30 s) | the longest a queued request waits before `sqlalchemy.exc.TimeoutError` |
| `NullPool` | no pool: a new connection for every checkout, closed at checkin, no limit |

And the habit that keeps all of this working: check out with `async with` (or a `yield`
dependency around it), so every connection goes back to the pool. Each engine in this lab
was closed with `await engine.dispose()`; run the lab again whenever you like.
"""),
]


CELLS = lesson_words.fill_time(CELLS, TIME, lesson_words.notebook_minutes)


def main(argv: list[str]) -> None:
    write_or_check(NOTEBOOK, CELLS, argv, "python tools/build_pool_lab.py")


if __name__ == "__main__":
    main(sys.argv[1:])
