"""Every quiz answer, demonstrated against the pinned libraries.

One test per question, named test_practice_<id> or test_graded_<id>. Each shows that the
option the key marks right is true (and, where it matters, that the tempting options are
not), on a real engine, a real pool and real timeouts, so the quiz cannot drift from the
libraries. test_every_question_has_a_proof keeps the list complete.
"""
from __future__ import annotations

import asyncio
import gc
import multiprocessing
import os
import socket
import time
import warnings

import pytest
from fastapi import Depends, FastAPI
from sqlalchemy import create_engine, event, exc, make_url, text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool, QueuePool, SingletonThreadPool, StaticPool

from autograder import quiz
from tests.support.apps import client, yield_app
from tests.support.course import quiz_key
from tests.support.dropped import serves_after_the_server_dropped_it

pytestmark = pytest.mark.anyio
pytestmark = [pytestmark, pytest.mark.slow]

PRACTICE = {q.id: q for q in quiz.load("practice")}
GRADED = {q.id: q for q in quiz.load("test")}
KEY = quiz_key()


def keyed(qid: str) -> str:
    """The text of the option the graded key marks right."""
    return GRADED[qid].option(KEY[qid]["correct"])


async def most_connections_at_once(engine, cap: int = 100) -> int:
    """Check out connections until the pool refuses (TimeoutError) or `cap` is reached."""
    held = []
    try:
        while len(held) < cap:
            held.append(await engine.connect())
    except exc.TimeoutError:
        pass
    finally:
        for conn in held:
            await conn.close()
    return len(held)


def counting_connects(engine) -> list:
    opened = []
    event.listen(getattr(engine, "sync_engine", engine), "connect", lambda *a: opened.append(1))
    return opened


# ------------------------------------------------------------------------------ practice

async def test_practice_pooling_benefit(db_url):
    assert PRACTICE["pooling_benefit"].answer == "B"
    pooled, unpooled = create_async_engine(db_url), create_async_engine(db_url, poolclass=NullPool)
    opened = {name: counting_connects(e) for name, e in [("pooled", pooled), ("unpooled", unpooled)]}
    queries = []
    event.listen(pooled.sync_engine, "before_cursor_execute", lambda *a: queries.append(1))
    for engine in (pooled, unpooled):
        async with client(yield_app(engine)) as c:
            for _ in range(5):
                assert (await c.get("/items")).status_code == 200
        await engine.dispose()
    assert len(opened["pooled"]) == 1 and len(opened["unpooled"]) == 5  # reused vs opened per request
    assert len(queries) == 5  # no results are stored: every request still runs its query


def test_practice_pool_size_parameter(db_file):
    assert PRACTICE["pool_size_parameter"].answer == "A"
    sync_url = f"sqlite:///{db_file}"
    engine = create_engine(sync_url, pool_size=10, pool_timeout=0.2)
    assert engine.pool.size() == 10
    held = [engine.connect() for _ in range(20)]  # not the maximum: 10 + max_overflow 10
    with pytest.raises(exc.TimeoutError):
        engine.connect()
    for conn in held:
        conn.close()
    assert engine.pool.checkedin() == 10  # the 10 overflow connections were closed when given back
    for wrong in ("max_connections", "max_pool", "connection_limit"):
        with pytest.raises(TypeError, match=wrong):
            create_engine(sync_url, **{wrong: 10})


def test_practice_more_requests_than_connections(db_file):
    assert PRACTICE["more_requests_than_connections"].answer == "C"
    assert create_engine(f"sqlite:///{db_file}", pool_size=5, max_overflow=0).pool._timeout == pytest.approx(30)
    engine = create_engine(f"sqlite:///{db_file}", pool_size=5, max_overflow=0, pool_timeout=0.3)
    assert isinstance(engine.pool, QueuePool)  # not one shared connection
    opened = counting_connects(engine)
    held = [engine.connect() for _ in range(5)]
    start = time.perf_counter()
    with pytest.raises(exc.TimeoutError):  # the sixth waited pool_timeout, then failed
        engine.connect()
    assert time.perf_counter() - start >= 0.25
    held.pop().close()
    held.append(engine.connect())  # the app carries on: a freed connection is lent again
    for conn in held:
        conn.close()
    assert len(opened) == 5  # never a sixth


async def test_practice_more_requests_than_connections_shared_connection_is_in_memory_sqlite():
    """Option A's why: one shared connection is how an in-memory SQLite database is pooled,
    SingletonThreadPool for a sync engine (one connection per thread), StaticPool for an async
    one (one connection in all)."""
    assert "`SingletonThreadPool` (one connection per thread)" in PRACTICE["more_requests_than_connections"].why[0]
    assert "`StaticPool` (one connection in all)" in PRACTICE["more_requests_than_connections"].why[0]
    import threading

    sync = create_engine("sqlite://")
    assert type(sync.pool) is SingletonThreadPool

    def driver_connection():
        with sync.connect() as conn:
            return conn.connection.dbapi_connection

    here = [driver_connection(), driver_connection()]
    there = []
    thread = threading.Thread(target=lambda: there.append(driver_connection()))
    thread.start()
    thread.join()
    assert here[0] is here[1] and there[0] is not here[0]  # one per thread
    sync.dispose()

    engine = create_async_engine("sqlite+aiosqlite://")
    assert type(engine.pool) is StaticPool
    conns = [await engine.connect() for _ in range(2)]  # even at the same time: the one connection
    drivers = [(await c.get_raw_connection()).driver_connection for c in conns]
    assert drivers[0] is drivers[1]
    for c in conns:
        await c.close()
    await engine.dispose()


async def test_practice_forgot_to_close(db_url):
    assert PRACTICE["forgot_to_close"].answer == "C"
    engine = create_async_engine(db_url, pool_size=5, max_overflow=0, pool_timeout=0.3)
    leaked = await engine.connect()
    cycle = {"conn": leaked}
    cycle["self"] = cycle  # held in a reference cycle, as frames and tracebacks often hold one
    del leaked, cycle
    assert engine.pool.checkedout() == 1  # not closed "at the end of the request"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gc.collect()
    assert engine.pool.checkedout() == 0
    assert any("garbage collector is trying to clean up non-checked-in connection" in str(w.message)
               and "will be terminated" in str(w.message) for w in caught)
    held = [await engine.connect() for _ in range(5)]  # all 5 leaked: the next request times out
    with pytest.raises(exc.TimeoutError):
        await engine.connect()
    for conn in held:
        await conn.close()
    await engine.dispose()


async def test_practice_sizing_for_many_workers(db_url):
    q = PRACTICE["sizing_for_many_workers"]
    totals = {}
    for letter, option in zip(quiz.LETTERS, q.options, strict=True):
        settings = dict(part.split("=") for part in option.strip("`").split(", "))
        engine = create_async_engine(db_url, pool_size=int(settings["pool_size"]),
                                     max_overflow=int(settings["max_overflow"]), pool_timeout=0.1)
        totals[letter] = 4 * await most_connections_at_once(engine, cap=100)
        await engine.dispose()
    # pool_size=0 means no limit: 100 at once per engine (we stopped there), so 400 for 4 workers
    assert totals == {"A": 120, "B": 204, "C": 80, "D": 400}
    assert [letter for letter, total in totals.items() if total <= 80] == [q.answer]


# -------------------------------------------------------------------------------- graded

def test_graded_url_driver():
    assert keyed("url_driver").startswith("The driver")
    u = make_url("sqlite+aiosqlite:///./test.db")
    assert (u.get_backend_name(), u.get_driver_name(), u.database) == ("sqlite", "aiosqlite", "./test.db")
    assert create_async_engine(u).dialect.is_async


async def test_graded_what_is_pooled(db_url):
    assert keyed("what_is_pooled") == "Open database connections, lent out and reused"
    engine = create_async_engine(db_url)
    lent = []
    event.listen(engine.sync_engine.pool, "checkout", lambda dbapi_conn, *a: lent.append(dbapi_conn))
    for _ in range(2):
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    import aiosqlite

    assert isinstance(lent[0].driver_connection, aiosqlite.Connection)  # a database connection...
    assert lent[0] is lent[1]  # ...lent again after it was given back
    await engine.dispose()


async def test_graded_asgi_transport(db_url, monkeypatch):
    assert keyed("asgi_transport").startswith("Passes requests straight to the app")
    engine = create_async_engine(db_url)
    app = yield_app(engine)
    seen = {}

    @app.get("/where")
    async def where():
        seen["pid"], seen["loop"] = os.getpid(), asyncio.get_running_loop()
        return {}

    def no_network(*args, **kwargs):
        raise AssertionError("a socket was opened")

    monkeypatch.setattr(socket, "socket", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    async with client(app) as c:
        assert (await c.get("/items")).status_code == 200
        await c.get("/where")
    assert seen == {"pid": os.getpid(), "loop": asyncio.get_running_loop()}  # same process, same loop
    await engine.dispose()


async def test_graded_yield_cleanup(db_url):
    assert keyed("yield_cleanup") == "After the response has been sent"
    engine = create_async_engine(db_url)
    order = []
    app = FastAPI()

    async def get_connection():
        async with engine.connect() as conn:
            order.append("before yield")
            yield conn
        order.append("after yield")

    @app.get("/items")
    async def items(conn=Depends(get_connection)):
        order.append("route")
        return (await conn.execute(text("SELECT * FROM items"))).mappings().all()

    async def recorder(scope, receive, send):
        async def recording_send(message):
            if message["type"] == "http.response.body":
                order.append("response sent")
            await send(message)
        await app(scope, receive, recording_send)

    async with client(recorder) as c:
        await c.get("/items")  # no exception in the route, and the cleanup still runs
    assert order == ["before yield", "route", "response sent", "after yield"]
    await engine.dispose()


async def test_graded_return_in_async_with(db_url):
    assert "closes the connection" in keyed("return_in_async_with")
    engine = create_async_engine(db_url)

    async def returns_inside():
        async with engine.connect() as conn:
            return conn

    async def returns_open():  # a returning dependency is fine when the connection stays open
        return await engine.connect()

    for dependency, ok in [(returns_inside, False), (returns_open, True)]:
        app = FastAPI()

        @app.get("/items")
        async def items(conn=Depends(dependency)):
            try:
                return (await conn.execute(text("SELECT * FROM items"))).mappings().all()
            finally:
                await conn.close()

        async with client(app) as c:
            if ok:
                assert (await c.get("/items")).status_code == 200
            else:
                with pytest.raises(exc.ResourceClosedError, match="This Connection is closed"):
                    await c.get("/items")
    assert engine.pool.checkedout() == 0  # the pool did not run out
    await engine.dispose()


async def test_graded_pool_timeout(db_url):
    assert keyed("pool_timeout") == ("Waits up to `pool_timeout` (30 s by default), "
                                     "then fails with `sqlalchemy.exc.TimeoutError`")
    assert create_async_engine(db_url, pool_size=5).pool._timeout == pytest.approx(30)
    engine = create_async_engine(db_url, pool_size=5, max_overflow=10, pool_timeout=0.5)
    held = [await engine.connect() for _ in range(15)]
    start = time.perf_counter()
    with pytest.raises(exc.TimeoutError):  # SQLAlchemy's TimeoutError, not the built-in one
        await engine.connect()
    assert 0.45 <= time.perf_counter() - start < 10  # it waited pool_timeout, not forever
    assert engine.pool.checkedout() == 15  # no 16th connection
    for conn in held:
        await conn.close()
    await engine.dispose()


async def test_graded_max_overflow(db_url):
    engine = create_async_engine(db_url, pool_size=5, pool_timeout=0.1)
    assert str(await most_connections_at_once(engine)) == keyed("max_overflow") == "15"
    await engine.dispose()


async def test_graded_checkedout(db_url):
    assert keyed("checkedout") == "0 and 1"
    engine = create_async_engine(db_url, pool_size=5)
    async with client(yield_app(engine)) as c:
        for _ in range(3):
            assert (await c.get("/items")).status_code == 200
    assert (engine.pool.checkedout(), engine.pool.checkedin()) == (0, 1)
    await engine.dispose()


def _worker_holds_connections(db_url: str, barrier, results) -> None:
    """One 'worker process': its own engine, as many connections at once as its pool allows."""
    async def hold():
        engine = create_async_engine(db_url, pool_size=5, pool_timeout=0.2)
        held = []
        try:
            while True:
                held.append(await engine.connect())
        except exc.TimeoutError:
            pass
        barrier.wait(timeout=60)  # every worker holds its connections at the same moment
        results.put(len(held))
        for conn in held:
            await conn.close()
        await engine.dispose()

    asyncio.run(hold())


def test_graded_workers_multiply(db_url):
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(4), ctx.Queue()
    workers = [ctx.Process(target=_worker_holds_connections, args=(db_url, barrier, results)) for _ in range(4)]
    for w in workers:
        w.start()
    held = [results.get(timeout=120) for _ in workers]
    for w in workers:
        w.join(timeout=60)
    assert held == [15] * 4
    assert str(sum(held)) == keyed("workers_multiply") == "60"


async def test_graded_pre_ping(db_url):
    assert keyed("pre_ping") == "`pool_pre_ping=True`"

    assert await serves_after_the_server_dropped_it(db_url, pool_pre_ping=True)
    for other in ({"pool_timeout": 600}, {"max_overflow": 0}):  # the other options do not test connections
        assert not await serves_after_the_server_dropped_it(db_url, **other)
    # pool_size=0 (no limit) does not test connections either: it keeps the dead one
    engine = create_async_engine(db_url, pool_size=0)
    async with engine.connect() as conn:
        driver = (await conn.get_raw_connection()).driver_connection
    await driver.close()
    with pytest.raises(exc.DBAPIError):
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    await engine.dispose()
    # the explanation's pool_recycle: a connection older than pool_recycle seconds is replaced at
    # its next checkout (tests/notebooks/test_lesson_claims.py: not while idle, and only below the
    # server's idle timeout)
    engine = create_async_engine(db_url, pool_size=1, pool_recycle=1)
    opened = counting_connects(engine)
    for pause in (0, 1.2):
        await asyncio.sleep(pause)
        async with engine.connect():
            pass
    assert len(opened) == 2
    await engine.dispose()


def test_every_question_has_a_proof():
    names = set(globals())
    missing = [f"test_practice_{q}" for q in PRACTICE if f"test_practice_{q}" not in names]
    missing += [f"test_graded_{q}" for q in GRADED if f"test_graded_{q}" not in names]
    # the optional [[server]] questions are proven on a real PostgreSQL in test_postgres_quiz.py
    import ast
    from pathlib import Path

    tree = ast.parse((Path(__file__).parent / "test_postgres_quiz.py").read_text())
    server_proofs = {node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))}
    missing += [f"test_server_{q.id}" for q in quiz.load("server") if f"test_server_{q.id}" not in server_proofs]
    assert not missing
