"""The lesson's checks, one function per graded test cell (the function name is the grade_id).

Every check takes the notebook's namespace (`globals()`) rather than the names themselves,
so a name the student has not defined yet gives a sentence to act on, not a NameError.
Checks grade behaviour: any correct way of writing a step earns its points. Where a step
depends on an earlier one that is wrong, the check grades this step on its own (with the
earlier step's correct value standing in) or says which step must pass first.
"""
from __future__ import annotations

import asyncio
import collections
import contextlib
import gc

import httpx
from sqlalchemy import event, exc as sa_exc, text
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import QueuePool

from autograder import db, history, reference as ref
from autograder.report import fail, guarded

# Every check ends with a full garbage collection (see report._quiet). Freezing what exists
# now (FastAPI, SQLAlchemy, IPython...) keeps those collections from rescanning it: ~50 ms
# per test cell otherwise. Objects created later are collected as usual.
gc.freeze()

_MISSING = object()

STEP3_HOW = "engine = create_async_engine(DATABASE_URL, pool_size=POOL_SIZE)"
CLOSED_CONNECTION = (
    "`get_connection` handed the route a closed connection: `return` inside `async with` "
    "closes it before the route runs; use `yield conn` inside the `async with` block instead."
)
FIX_LEAK = "yield the connection inside `async with engine.connect() as conn:` so it is closed after every request."
LEAK = (
    "`get_connection` leaks connections: after GET /items finished, {n} connection(s) were "
    "still checked out of the pool, and once all are out the next request waits and fails; " + FIX_LEAK
)
LEAK_TIMEOUT = (
    "`get_connection` leaks connections: every pooled connection was checked out and never "
    "given back, so a request gave up waiting for one (sqlalchemy.exc.TimeoutError); " + FIX_LEAK
)
FIXED_LIST = (
    "{when}, GET /items returned other rows: read them from the database with "
    "SELECT * FROM items on every request instead of returning a fixed list."
)


# --------------------------------------------------------------------------- step 1 and 2

@guarded
def step1_database_url(ns: dict) -> None:
    url = ns.get("DATABASE_URL", _MISSING)
    want = ref.DATABASE_URL
    if url is _MISSING:
        fail(f'`DATABASE_URL` is not defined: write DATABASE_URL = "{want}" in the step 1 cell and run it.')
    if not isinstance(url, str):
        fail(f'`DATABASE_URL` is a {type(url).__name__}; it must be the string "{want}" (in quotes).')
    if url == want:
        return
    if url.strip() == want:
        fail("`DATABASE_URL` has spaces or a newline around it; remove them.")
    if url.startswith("sqlite://") and not url.startswith("sqlite+aiosqlite://") or "+pysqlite" in url:
        fail(
            f"`DATABASE_URL` uses SQLite's synchronous driver ({url!r}); an async engine needs "
            f'the aiosqlite driver: write "{want}".'
        )
    if url in ("sqlite+aiosqlite://", "sqlite+aiosqlite:///:memory:"):
        fail(
            "`DATABASE_URL` names an in-memory database: SQLAlchemy gives it a StaticPool with no "
            f'size to set, and it has no `items` table; use the file: "{want}".'
        )
    if url.startswith("sqlite+aiosqlite://"):
        fail(f'`DATABASE_URL` points at the wrong file ({url!r}); use exactly "{want}", the file the setup cell filled.')
    fail(f'`DATABASE_URL` is {url!r} but must be exactly "{want}".')


def _pool_size_ok(value) -> bool:
    return type(value) is int and value == ref.POOL_SIZE


@guarded
def step2_pool_size(ns: dict) -> None:
    size = ns.get("POOL_SIZE", _MISSING)
    if size is _MISSING:
        fail("`POOL_SIZE` is not defined: write POOL_SIZE = 5 in the step 2 cell and run it.")
    if isinstance(size, str):
        fail(f"`POOL_SIZE` is the string {size!r}; write the number without quotes: POOL_SIZE = 5.")
    if isinstance(size, bool) or not isinstance(size, int):
        fail(f"`POOL_SIZE` is a {type(size).__name__} ({size!r}); the pool size is a whole number: POOL_SIZE = 5.")
    if size != ref.POOL_SIZE:
        fail(f"`POOL_SIZE` is {size}; this lesson's pool keeps 5 connections: POOL_SIZE = 5.")


# --------------------------------------------------------------------------------- step 3

@contextlib.asynccontextmanager
async def _step3_engine(ns: dict):
    """The engine step 3 is graded on.

    Normally the student's own `engine`. When step 1 or 2 is wrong, the student's step-3 line
    is evaluated again with the correct DATABASE_URL / POOL_SIZE standing in, so that a
    mistake in an earlier step costs that step's points only.
    """
    engine = ns.get("engine", _MISSING)
    overrides = {}
    if ns.get("DATABASE_URL") != ref.DATABASE_URL:
        overrides["DATABASE_URL"] = ref.DATABASE_URL
    if not _pool_size_ok(ns.get("POOL_SIZE")):
        overrides["POOL_SIZE"] = ref.POOL_SIZE
    if not overrides:
        if engine is _MISSING:
            fail(f"`engine` is not defined: create it in the step 3 cell with {STEP3_HOW} and run it.")
        yield engine
        return
    if engine is _MISSING and history.assignment("engine") is None:
        fail(f"`engine` is not defined: create it in the step 3 cell with {STEP3_HOW} and run it.")
    rebuilt = history.rebuild("engine", ns, overrides)
    if rebuilt is None:
        wrong = " and ".join(f"step {1 if k == 'DATABASE_URL' else 2}" for k in overrides)
        fail(f"{wrong} must pass first: `engine` is built from {' and '.join(overrides)}.")
    try:
        yield rebuilt
    finally:
        await _dispose(rebuilt)


async def _dispose(engine) -> None:
    if isinstance(engine, AsyncEngine):
        await engine.dispose()
    elif isinstance(engine, Engine):
        engine.dispose()


def _require_async(engine) -> AsyncEngine:
    if isinstance(engine, AsyncEngine):
        return engine
    if isinstance(engine, Engine):
        fail(
            "`engine` is a synchronous Engine made by `create_engine`; use `create_async_engine` "
            "from sqlalchemy.ext.asyncio, which works with the async aiosqlite driver and `await`."
        )
    fail(f"`engine` is a {type(engine).__name__}, not an AsyncEngine: create it with {STEP3_HOW}.")


@guarded
async def step3_engine_is_async(ns: dict) -> None:
    async with _step3_engine(ns) as engine:
        engine = _require_async(engine)
        url = engine.url.render_as_string(hide_password=False)
        if url != ref.DATABASE_URL:
            fail(
                f"`engine` was made from {url!r}, not from DATABASE_URL: pass DATABASE_URL as the "
                "first argument of create_async_engine (and re-run step 3 after changing step 1)."
            )


def _check_pool(engine, size_wanted: int, name: str) -> None:
    pool = engine.pool
    if not isinstance(pool, QueuePool):
        kind = type(pool).__name__
        why = {
            "StaticPool": "an in-memory SQLite URL gets a StaticPool (one shared connection); use the file URL from step 1",
            "NullPool": "NullPool opens and closes a connection per use; remove `poolclass=NullPool`",
        }.get(kind, "remove any `poolclass=` argument")
        fail(f"`engine` has a {kind}, not a queue pool: {why}.")
    if pool.size() != size_wanted:
        fail(
            f"`engine`'s pool keeps {pool.size()} connections but {name} is {size_wanted}: "
            "pass pool_size=POOL_SIZE to create_async_engine."
        )


@guarded
async def step3_engine_pool_size(ns: dict) -> None:
    async with _step3_engine(ns) as engine:
        _check_pool(engine, ref.POOL_SIZE, "POOL_SIZE")


@guarded
async def step3_pool_size_uses_variable(ns: dict) -> None:
    """Hidden: the pool size must follow POOL_SIZE, not a number typed into the call."""
    async with _step3_engine(ns) as engine:
        _check_pool(engine, ref.POOL_SIZE, "POOL_SIZE")
    probe = ref.POOL_SIZE + 2
    call = history.assignment("engine")
    if call is None:
        fail(f"could not find the line that creates `engine` in the cells you ran: write {STEP3_HOW} at the top level of the step 3 cell.")
    keywords = [kw.arg for kw in getattr(call, "keywords", [])]
    func = getattr(call, "func", None)
    called = getattr(func, "id", None) or getattr(func, "attr", None)
    if called in ("create_async_engine", "create_engine") and "pool_size" not in keywords and None not in keywords:
        fail(
            "`engine` was created without pool_size, so its pool has SQLAlchemy's default size "
            "(which happens to be 5): pass pool_size=POOL_SIZE to create_async_engine."
        )
    rebuilt = history.rebuild("engine", ns, {"DATABASE_URL": ref.DATABASE_URL, "POOL_SIZE": probe})
    try:
        if rebuilt is None or getattr(getattr(rebuilt, "pool", None), "size", lambda: None)() != probe:
            fail(
                "`engine`'s pool size is typed in as a number: pass pool_size=POOL_SIZE so that "
                "changing POOL_SIZE changes the pool."
            )
    finally:
        await _dispose(rebuilt)


@guarded
async def step3_engine_connects(ns: dict) -> None:
    async with _step3_engine(ns) as engine:
        engine = _require_async(engine)
        try:
            async with asyncio.timeout(ref.CHECK_TIME_LIMIT):
                async with engine.connect() as conn:
                    await conn.execute(text("SELECT 1"))
        except TimeoutError:
            fail(
                f"`engine` gave no connection within {ref.CHECK_TIME_LIMIT} s: its pool is probably "
                "exhausted by connections an earlier cell never closed; restart the kernel and run "
                "the notebook from the top."
            )
        except sa_exc.DBAPIError as exc:
            fail(f"`engine` could not connect to the database ({exc.orig}); check DATABASE_URL in step 1.")


# --------------------------------------------------------------------------------- step 4

def _step4_app(ns: dict):
    from fastapi import FastAPI
    from fastapi.routing import APIRoute

    app = ns.get("app", _MISSING)
    if app is _MISSING:
        fail("`app` is not defined: create it in the step 4 cell with app = FastAPI() and run the cell.")
    if not isinstance(app, FastAPI):
        fail(f"`app` is a {type(app).__name__}, not a FastAPI application: write app = FastAPI().")
    dependency = ns.get("get_connection", _MISSING)
    if dependency is _MISSING:
        fail("`get_connection` is not defined: write the dependency `async def get_connection():` in the step 4 cell.")
    if not callable(dependency):
        fail(f"`get_connection` is a {type(dependency).__name__}; it must be a function (async def get_connection(): ...).")
    routes = [r for r in app.routes if isinstance(r, APIRoute) and r.path == "/items" and "GET" in r.methods]
    if not routes:
        fail('`app` has no GET route /items: decorate your route function with @app.get("/items").')
    return app, routes[0], dependency


def _dependency_calls(dependant):
    for sub in dependant.dependencies:
        yield sub.call
        yield from _dependency_calls(sub)


@guarded
def step4_app_has_items_route(ns: dict) -> None:
    _, route, dependency = _step4_app(ns)
    if dependency not in set(_dependency_calls(route.dependant)):
        fail(
            "GET /items does not use `get_connection`: take the connection as a route parameter, "
            "conn: AsyncConnection = Depends(get_connection)."
        )


@contextlib.asynccontextmanager
async def _step4_engine(ns: dict):
    """The engine the app runs on while step 4 is checked, with an empty pool.

    The student's `engine` when it is a working pooled AsyncEngine on the lesson's database;
    otherwise (steps 1-3 unfinished or wrong) a correct engine stands in under the name
    `engine`, so that step 4 is graded on its own. Its pool gives up after a few seconds
    instead of 30, so a leaking dependency is caught quickly.
    """
    engine = ns.get("engine", _MISSING)
    usable = (
        isinstance(engine, AsyncEngine)
        and engine.url.render_as_string(hide_password=False) == ref.DATABASE_URL
        and isinstance(engine.pool, QueuePool)
    )
    if usable:
        await engine.dispose()  # earlier cells may have leaked connections: start empty
        pool = engine.pool
        saved_timeout, pool._timeout = pool._timeout, ref.CHECK_POOL_TIMEOUT
        try:
            yield engine
        finally:
            pool._timeout = saved_timeout
            await engine.dispose()
        return
    stand_in = create_async_engine(ref.DATABASE_URL, pool_size=ref.POOL_SIZE, pool_timeout=ref.CHECK_POOL_TIMEOUT)
    ns["engine"] = stand_in
    try:
        yield stand_in
    finally:
        if engine is _MISSING:
            ns.pop("engine", None)
        else:
            ns["engine"] = engine
        await stand_in.dispose()


def _explain(exc: BaseException) -> str:
    """One sentence for an error raised while the app answered GET /items."""
    message = str(exc)
    if isinstance(exc, sa_exc.ResourceClosedError) or "closed" in message.lower() and isinstance(exc, sa_exc.SQLAlchemyError):
        return CLOSED_CONNECTION
    if isinstance(exc, sa_exc.TimeoutError):
        return LEAK_TIMEOUT
    if isinstance(exc, TimeoutError):
        return (
            f"GET /items did not answer within {ref.CHECK_TIME_LIMIT} s: the route is waiting for "
            "something that never comes, usually a pooled connection that was never given back."
        )
    if isinstance(exc, sa_exc.ObjectNotExecutableError):
        return 'conn.execute() was given a plain string: wrap the SQL in text(), e.g. text("SELECT * FROM items").'
    if isinstance(exc, sa_exc.OperationalError) and "no such table" in message:
        return "the query found no `items` table: run the setup cell at the top of the notebook and check the table name."
    if isinstance(exc, TypeError) and "asynchronous context manager" in message:
        return "`async with` was used on something that is not async: open the connection with `async with engine.connect() as conn:` on the AsyncEngine from step 3."
    if isinstance(exc, TypeError) and "coroutine" in message:
        return f"a coroutine was used without `await` ({message}): write `await conn.execute(...)`."
    first_line = message.strip().splitlines()[0] if message.strip() else ""
    return (
        f"GET /items raised {type(exc).__name__}: {first_line[:200]}; run your cell that calls "
        "/items to see the full error."
    )


async def _get_items(app, count: int = 1) -> list[httpx.Response]:
    """`count` concurrent GET /items, in-process, each bounded in time."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://lesson") as client:
        try:
            async with asyncio.timeout(ref.CHECK_TIME_LIMIT):
                return await asyncio.gather(*(client.get("/items") for _ in range(count)))
        except Exception as exc:  # the app's own exception, re-raised by ASGITransport
            fail(_explain(exc))


def _rows_of(response: httpx.Response) -> list:
    if response.status_code == 404:
        fail('GET /items answered 404 Not Found: add the route with @app.get("/items").')
    if response.status_code == 422:
        fail(
            "GET /items answered 422: FastAPI read a route parameter as a query parameter; take "
            "the connection with conn: AsyncConnection = Depends(get_connection)."
        )
    if response.status_code != 200:
        fail(f"GET /items answered {response.status_code} instead of 200: {response.text[:200]}")
    try:
        rows = response.json()
    except ValueError:
        fail("GET /items did not answer JSON: return the rows (a list of dicts) from the route.")
    if not isinstance(rows, list):
        fail(f"GET /items returned a JSON {type(rows).__name__}, not a list: return one dict per row in a list.")
    if rows and not all(isinstance(row, dict) for row in rows):
        fail(
            "GET /items returned rows as lists, not dicts: return `result.mappings().all()` or "
            "`[dict(row._mapping) for row in result]`."
        )
    return rows


def _normal(row: dict):
    return tuple(sorted((k, round(v, 6) if isinstance(v, float) else v) for k, v in row.items()))


def _assert_same_rows(got: list, want: list[dict], when: str, *, fixed_list_likely: bool = False) -> None:
    if want and got and set(got[0]) != set(want[0]):
        fail(
            f"{when}, each row's keys were {sorted(got[0])} but the table's columns are "
            f"{sorted(want[0])}: select every column (SELECT * FROM items)."
        )
    if collections.Counter(map(_normal, got)) == collections.Counter(map(_normal, want)):
        return
    if len(got) != len(want) and not fixed_list_likely:
        fail(
            f"{when}, GET /items returned {len(got)} row(s) but the table holds {len(want)}: "
            "return every row of `items` (SELECT * FROM items, then .all()), read from the database."
        )
    fail(FIXED_LIST.format(when=when))


async def _wait_all_checked_in(engine: AsyncEngine) -> int:
    """Checked-out connections, after giving cleanup that runs after the response a moment."""
    for _ in range(20):
        if engine.pool.checkedout() == 0:
            return 0
        await asyncio.sleep(0.05)
    return engine.pool.checkedout()


@guarded
async def step4_items_returns_all_rows(ns: dict) -> None:
    app, _, _ = _step4_app(ns)
    async with _step4_engine(ns):
        (response,) = await _get_items(app)
        _assert_same_rows(_rows_of(response), db.table_rows(), "With the rows the setup cell made")


@guarded
async def step4_items_reads_the_table(ns: dict) -> None:
    """Hidden: rows put in at grading time come back, and an empty table gives []."""
    app, _, _ = _step4_app(ns)
    async with _step4_engine(ns):
        with db.rows_replaced(db.random_rows(7)) as rows:
            (response,) = await _get_items(app)
            _assert_same_rows(_rows_of(response), rows, "With 7 new rows put in the table at grading time", fixed_list_likely=True)
        with db.rows_replaced([]):
            (response,) = await _get_items(app)
            if _rows_of(response) != []:
                fail(FIXED_LIST.format(when="With the table emptied"))


@guarded
async def step4_connections_returned(ns: dict) -> None:
    """Hidden: after each request every connection is back in the pool (a leak fails fast)."""
    app, _, _ = _step4_app(ns)
    async with _step4_engine(ns) as engine:
        for _ in range(3):
            (response,) = await _get_items(app)
            _rows_of(response)
            still_out = await _wait_all_checked_in(engine)
            if still_out:
                fail(LEAK.format(n=still_out))


@guarded
async def step4_concurrent_requests_share_the_pool(ns: dict) -> None:
    """Hidden: 20 requests at once all succeed, through the pool, within its limit."""
    app, _, _ = _step4_app(ns)
    async with _step4_engine(ns) as engine:
        pool = engine.pool
        limit = pool.size() + max(pool._max_overflow, 0)
        seen = {"out": 0, "peak": 0, "checkouts": 0}

        def on_checkout(*_):
            seen["out"] += 1
            seen["checkouts"] += 1
            seen["peak"] = max(seen["peak"], seen["out"])

        def on_checkin(*_):
            seen["out"] -= 1

        event.listen(pool, "checkout", on_checkout)
        event.listen(pool, "checkin", on_checkin)
        try:
            responses = await _get_items(app, ref.CONCURRENT_REQUESTS)
        finally:
            event.remove(pool, "checkout", on_checkout)
            event.remove(pool, "checkin", on_checkin)
        for response in responses:
            _rows_of(response)
        n = ref.CONCURRENT_REQUESTS
        if seen["checkouts"] < n:
            fail(
                f"{n} requests took only {seen['checkouts']} connection(s) from `engine`'s pool: "
                "every request must get its connection from `engine` through get_connection."
            )
        if seen["peak"] > limit:
            fail(f"{n} requests held {seen['peak']} connections at once, more than the pool allows ({limit}).")
        still_out = await _wait_all_checked_in(engine)
        if still_out:
            fail(LEAK.format(n=still_out))


STEP_CHECKS = {
    1: ["step1_database_url"],
    2: ["step2_pool_size"],
    3: ["step3_engine_is_async", "step3_engine_pool_size", "step3_pool_size_uses_variable", "step3_engine_connects"],
    4: [
        "step4_app_has_items_route",
        "step4_items_returns_all_rows",
        "step4_items_reads_the_table",
        "step4_connections_returned",
        "step4_concurrent_requests_share_the_pool",
    ],
}
