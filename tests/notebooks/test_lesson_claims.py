"""Every claim the lesson makes about SQLAlchemy, FastAPI and asyncio, shown true on the pins.

Some claims are proven with the quiz questions that ask about them, in tests/autograder/test_quiz_claims.py:
`return` inside `async with` hands the route a closed connection (test_graded_return_in_async_with);
a yield dependency's cleanup runs after the response is sent (test_graded_yield_cleanup);
requests one after another leave 0 checked out and 1 checked in (test_graded_checkedout);
each worker process has its own pool (test_graded_workers_multiply); pool_pre_ping replaces a
dead connection (test_graded_pre_ping). pool_recycle and pool_timeout are proven here, and
every statement the lesson makes about hidden checks is read from its text and checked against
autograder/registry.py.
"""
from __future__ import annotations

import asyncio
import re
import time
from contextlib import asynccontextmanager
from importlib import metadata

import greenlet
import httpx
import nbformat
import pytest
from asgi_lifespan import LifespanManager
from fastapi import Depends, FastAPI, Request
from sqlalchemy import event, exc, text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool, NullPool, StaticPool

from autograder import quiz
from tests.support.apps import client, yield_app
from tests.support.course import SOURCE_NB
from tests.support.dropped import serves_after_the_server_dropped_it

pytestmark = pytest.mark.anyio


def test_the_asyncio_extension_brings_greenlet():
    extras = [r for r in metadata.requires("sqlalchemy") if "greenlet" in r]
    assert any('extra == "asyncio"' in r for r in extras)
    import greenlet  # noqa: F401  - installed through sqlalchemy[asyncio]


def test_a_file_url_gets_an_async_queue_pool_with_the_documented_defaults(db_url):
    engine = create_async_engine(db_url, pool_size=5)
    assert type(engine.pool) is AsyncAdaptedQueuePool
    assert engine.pool.size() == 5
    assert engine.pool._max_overflow == 10
    assert engine.pool._timeout == pytest.approx(30.0)


def test_an_in_memory_url_gets_a_static_pool_and_rejects_pool_size():
    assert type(create_async_engine("sqlite+aiosqlite://").pool) is StaticPool
    with pytest.raises(TypeError, match="pool_size"):
        create_async_engine("sqlite+aiosqlite://", pool_size=5)


def test_the_plain_sqlite_url_is_a_sync_driver_an_async_engine_refuses():
    with pytest.raises(exc.InvalidRequestError, match="requires an async driver.*'pysqlite' is not async"):
        create_async_engine("sqlite:///./test.db")


async def test_creating_the_engine_opens_no_connection(db_url):
    engine = create_async_engine(db_url, pool_size=5)
    opened = []
    event.listen(engine.sync_engine, "connect", lambda *a: opened.append(1))
    assert opened == [] and engine.pool.checkedin() == 0
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
    assert opened == [1]
    await engine.dispose()


async def test_pool_size_plus_max_overflow_connections_then_a_timeout_error(db_url):
    """Default max_overflow=10: 15 connections at once; the 16th waits pool_timeout and fails;
    once the burst is over, only pool_size connections stay open."""
    engine = create_async_engine(db_url, pool_size=5, pool_timeout=0.5)
    held = [await engine.connect() for _ in range(15)]
    assert engine.pool.checkedout() == 15
    start = time.perf_counter()
    with pytest.raises(exc.TimeoutError, match="QueuePool limit of size 5 overflow 10 reached"):
        await engine.connect()
    assert time.perf_counter() - start >= 0.4  # it waited for pool_timeout, then gave up
    for conn in held:
        await conn.close()
    assert engine.pool.checkedout() == 0
    # overflow connections are closed when given back; pool_size of them are kept
    assert engine.pool.checkedin() == 5
    await engine.dispose()


async def test_asyncio_run_fails_where_an_event_loop_is_already_running():
    async def nothing():
        return None

    coro = nothing()
    with pytest.raises(RuntimeError, match="cannot be called from a running event loop"):
        asyncio.run(coro)
    coro.close()


async def test_sqlalchemy_runs_its_sync_core_in_a_greenlet_under_the_async_engine(db_url):
    engine = create_async_engine(db_url)
    ran_in = []
    event.listen(engine.sync_engine, "before_cursor_execute", lambda *a: ran_in.append(greenlet.getcurrent()))
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
    await engine.dispose()
    (spawned,) = ran_in
    assert spawned is not greenlet.getcurrent() and spawned.parent is greenlet.getcurrent()


async def test_nullpool_opens_a_connection_for_every_checkout_and_closes_it_when_given_back(db_url):
    engine = create_async_engine(db_url, poolclass=NullPool)
    opened, closed = [], []
    event.listen(engine.sync_engine, "connect", lambda *a: opened.append(1))
    event.listen(engine.sync_engine, "close", lambda *a: closed.append(1))
    for n in (1, 2):
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        assert len(opened) == len(closed) == n
    await engine.dispose()


async def test_the_pool_status_cell_explains_overflow_truly(db_url):
    """Current Overflow is open connections minus pool_size: -5 on a fresh pool of 5, one up for
    every connection opened; 5 can open before any overflow connection."""
    engine = create_async_engine(db_url, pool_size=5)
    pool = engine.pool
    assert pool.status() == ("Pool size: 5  Connections in pool: 0 Current Overflow: -5 "
                             "Current Checked out connections: 0")
    held = []
    for opened in range(1, 8):
        held.append(await engine.connect())
        assert pool.overflow() == opened - 5 == pool.checkedin() + pool.checkedout() - pool.size()
    # the 5th checkout brought overflow to 0: the 6th and 7th were overflow connections
    for conn in held:
        await conn.close()
    assert (pool.overflow(), pool.checkedout(), pool.checkedin()) == (0, 0, 5)
    await engine.dispose()


async def test_after_a_request_nothing_is_checked_out_unless_the_dependency_leaks(db_url):
    """The in-process call cell: after one request, 0 checked out and 1 kept for reuse; a
    dependency that never gives its connection back leaves it checked out."""
    engine = create_async_engine(db_url, pool_size=5)
    async with client(yield_app(engine)) as c:
        assert (await c.get("/items")).status_code == 200
    assert (engine.pool.checkedout(), engine.pool.checkedin()) == (0, 1)
    await engine.dispose()

    leaky_engine = create_async_engine(db_url, pool_size=5)
    held = []
    app = FastAPI()

    async def leaking_connection():
        conn = await leaky_engine.connect()  # never closed
        held.append(conn)
        return conn

    @app.get("/items")
    async def items(conn=Depends(leaking_connection)):
        return (await conn.execute(text("SELECT * FROM items"))).mappings().all()

    async with client(app) as c:
        assert (await c.get("/items")).status_code == 200
    assert leaky_engine.pool.checkedout() == 1
    await held.pop().close()
    await leaky_engine.dispose()


async def test_lifespan_manager_runs_the_lifespan_around_the_requests_and_asgi_transport_alone_does_not(db_url):
    """The call cell: `httpx.ASGITransport` sends no lifespan events, so an app whose lifespan
    makes its engine has none; `LifespanManager` runs the code before `yield` first, the
    requests (its yielded state in `request.state`) inside its block, the code after `yield` as
    the block ends."""
    ran = []

    @asynccontextmanager
    async def lifespan(app):
        ran.append("startup")
        app_engine = create_async_engine(db_url, pool_size=5)
        yield {"engine": app_engine}
        await app_engine.dispose()
        ran.append("shutdown")

    app = FastAPI(lifespan=lifespan)

    @app.get("/items")
    async def items(request: Request):
        ran.append("request")
        async with request.state.engine.connect() as conn:
            return (await conn.execute(text("SELECT * FROM items"))).mappings().all()

    async with client(app) as c:
        with pytest.raises(AttributeError, match="'State' object has no attribute 'engine'"):
            await c.get("/items")
    assert ran == ["request"]  # the lifespan never ran

    async with LifespanManager(app) as manager:
        assert ran == ["request", "startup"]
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://claims") as c:
            assert (await c.get("/items")).status_code == 200
        assert ran == ["request", "startup", "request"]
    assert ran[-1] == "shutdown"


async def test_a_closed_pooled_connection_is_back_in_the_pool_before_the_route_uses_it(db_url):
    """The mistake's Go deeper: `return` inside `async with` gives the database connection back
    to the pool; FastAPI awaits the dependency, as the lesson's demo cell does, and the route
    holds a closed SQLAlchemy Connection."""
    engine = create_async_engine(db_url, pool_size=5)
    seen = {}
    app = FastAPI()

    async def get_connection_with_return():
        async with engine.connect() as conn:
            return conn

    @app.get("/items")
    async def items(conn=Depends(get_connection_with_return)):
        seen["pool"] = (engine.pool.checkedout(), engine.pool.checkedin())
        return (await conn.execute(text("SELECT * FROM items"))).mappings().all()

    async with client(app) as c:
        with pytest.raises(exc.ResourceClosedError, match="This Connection is closed"):
            await c.get("/items")
    assert seen["pool"] == (0, 1)
    await engine.dispose()


async def test_pool_timeout_applies_only_once_pool_size_plus_max_overflow_connections_are_out(db_url):
    """Step 2: `pool_timeout` is how long a request waits once `pool_size + max_overflow`
    connections are out. While fewer are out, even with every kept connection busy, a checkout
    does not wait: it opens an overflow connection."""
    # pool_timeout=0: a checkout that had to wait at all would give up at once, so five that
    # succeed show that none of them waited (no clock is read)
    engine = create_async_engine(db_url, pool_size=2, max_overflow=3, pool_timeout=0)
    held = [await engine.connect() for _ in range(5)]
    assert engine.pool.checkedout() == 5 and engine.pool.overflow() == 3, engine.pool.status()
    with pytest.raises(exc.TimeoutError, match="QueuePool limit of size 2 overflow 3 reached"):
        await engine.connect()  # the sixth is the first that must wait
    for conn in held:
        await conn.close()
    await engine.dispose()
    # and the sixth waits pool_timeout before it gives up
    engine = create_async_engine(db_url, pool_size=2, max_overflow=3, pool_timeout=1)
    held = [await engine.connect() for _ in range(5)]
    start = time.perf_counter()
    with pytest.raises(exc.TimeoutError, match="QueuePool limit of size 2 overflow 3 reached"):
        await engine.connect()
    assert time.perf_counter() - start >= 0.9, "the sixth checkout gave up before pool_timeout"
    for conn in held:
        await conn.close()
    await engine.dispose()


async def test_pool_recycle_replaces_an_old_connection_at_its_next_checkout_not_while_it_is_idle(db_url):
    """The Go deeper on `pool_recycle`: the pool checks a connection's age when it is checked
    out; an idle connection older than pool_recycle stays open in the pool until then."""
    engine = create_async_engine(db_url, pool_size=1, pool_recycle=0.3)
    opened, closed = [], []
    event.listen(engine.sync_engine, "connect", lambda *a: opened.append(1))
    event.listen(engine.sync_engine, "close", lambda *a: closed.append(1))
    async with engine.connect() as conn:
        first = (await conn.get_raw_connection()).driver_connection
    await asyncio.sleep(0.6)  # idle in the pool, twice as old as pool_recycle
    assert (len(opened), len(closed), engine.pool.checkedin()) == (1, 0, 1), "the idle connection was touched"
    async with engine.connect() as conn:  # the checkout finds it too old: closed and replaced now
        assert (len(opened), len(closed)) == (2, 1)
        assert (await conn.get_raw_connection()).driver_connection is not first
        assert (await conn.execute(text("SELECT 1"))).scalar() == 1
    async with engine.connect():  # a young connection is lent again as it is
        assert (len(opened), len(closed)) == (2, 1)
    await engine.dispose()


async def test_pool_recycle_protects_only_when_below_the_servers_idle_timeout(db_url):
    """A server that drops connections idle longer than its timeout (here 0.4 s, and the
    driver connection closed as the server would): with pool_recycle below that timeout the
    next checkout gets a new connection; above it, the dead one."""
    server_idle_timeout = 0.4

    idle = server_idle_timeout + 0.1
    below, above = await asyncio.gather(
        serves_after_the_server_dropped_it(db_url, idle, pool_recycle=server_idle_timeout / 2),
        serves_after_the_server_dropped_it(db_url, idle, pool_recycle=30))
    assert below, "pool_recycle below the server's idle timeout: the old connection is replaced at checkout"
    assert not above, "pool_recycle above it: the dropped connection is handed to the request"


HIDDEN_OR_VISIBLE = re.compile(r"\b(hidden|visible)\b", re.I)
# what the lesson says about hidden checks, each proven below; the wrap-up's list follows its sentence
GRADED_ALSO = re.compile(r"When your notebook is graded, (?P<count>\w+) hidden checks run as well:\n\n"
                         r"(?P<listed>(?:- .*\n?)+)")
SELF_GRADE = re.compile(r"it grades a copy of the saved file,\s+hidden tests and quiz key included")
PANEL = re.compile(r"This panel counts the steps whose visible checks pass and names the next one\. After "
                   r"\*\*Grade my\s+notebook\*\* \(at the end\), it shows that grading, hidden checks included\.")


def test_every_statement_about_hidden_or_visible_checks_matches_the_registry():
    """Each place the lesson's text says "hidden" or "visible" is a statement this test knows
    how to prove, and it is true of the checks as autograder/registry.py declares them."""
    from autograder import checks, registry  # noqa: F401 - importing the checks declares them
    from tools.build_lesson import NUMBER_WORDS

    hidden = [c for c in registry.declared() if c.hidden]
    source = nbformat.read(SOURCE_NB, as_version=4)
    text = "\n\n".join(c.source for c in source.cells if c.cell_type == "markdown")
    hidden_tests = "\n".join(c.source.split("### BEGIN HIDDEN TESTS", 1)[1] for c in source.cells
                             if "### BEGIN HIDDEN TESTS" in c.source)

    (said,) = GRADED_ALSO.finditer(text)
    assert said["count"] == NUMBER_WORDS[len(hidden)], (said["count"], [c.name for c in hidden])
    listed = re.findall(r"^- step (\d+): (.+?)[;.]$", said["listed"], re.M)
    assert listed == [(str(c.step), c.description) for c in hidden], listed

    (said,) = SELF_GRADE.finditer(text)
    # self-grading runs the hidden tests (tests/course_grade/selfgrade/test_selfgrade.py shows a
    # hidden check passing there); here: every hidden check and the quiz key are in them, nothing else
    assert all(f"checks.{c.name}(" in hidden_tests for c in hidden)
    assert not any(f"checks.{c.name}(" in hidden_tests for c in registry.declared() if not c.hidden)
    assert all(f'quiz.check_answer(\n    "{q.id}"' in hidden_tests for q in quiz.load("test"))

    (said,) = PANEL.finditer(text)
    # the panel counts a step on its visible checks alone, and a grading names each hidden check
    # that failed (tests/autograder/test_progress.py; the browser test clicks Grade my notebook)
    from autograder import progress

    assert {n: set(needed) for n, (_, needed) in progress.steps().items()} == {
        n: {c.name for c in registry.for_step(n, hidden=False)} for n in registry.STEPS}
    try:
        progress.graded([{"grade_id": c.name, "score": 0, "points": c.points} for c in registry.declared()])
        assert all(c.title in progress.summary() for c in hidden), progress.summary()
    finally:
        progress.reset()

    rest = PANEL.sub("", SELF_GRADE.sub("", GRADED_ALSO.sub("", text)))
    unproven = [line for line in rest.splitlines() if HIDDEN_OR_VISIBLE.search(line)]
    assert not unproven, f"statements about hidden or visible checks that no test proves: {unproven}"


def test_each_test_cell_says_hidden_exactly_when_its_check_is():
    from autograder import checks, registry  # noqa: F401 - importing the checks declares them

    cells = {c.id: c.source for c in nbformat.read(SOURCE_NB, as_version=4).cells}
    for c in registry.declared():
        title = cells[c.name].splitlines()[0]
        assert ("(hidden)" in title) == c.hidden == ("### BEGIN HIDDEN TESTS" in cells[c.name]), (c.name, title)
