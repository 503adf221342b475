"""Every claim the lesson makes about SQLAlchemy, FastAPI and asyncio, shown true on the pins.

Two claims are proven with the quiz questions that ask about them, in tests/test_quiz_claims.py:
`return` inside `async with` hands the route a closed connection (test_graded_return_in_async_with),
and a yield dependency's cleanup runs after the response is sent (test_graded_yield_cleanup).
"""
from __future__ import annotations

import asyncio
import time
from importlib import metadata

import pytest
from sqlalchemy import event, exc, text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool, StaticPool

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
    """Default max_overflow=10: 15 connections at once; the 16th waits pool_timeout and fails."""
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
