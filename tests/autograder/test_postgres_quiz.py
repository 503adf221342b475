"""The [[server]] quiz questions (notebooks/postgres.ipynb), each proven on a real PostgreSQL.

One test per question, named test_server_<id> (tests/autograder/test_quiz_claims.py checks that every
server question has one). Each shows that the option marked right is what the server and
the pinned libraries really do, and that the tempting options are not.
"""
from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy import exc, text
from sqlalchemy.ext.asyncio import create_async_engine

from autograder import quiz, server_db

pytestmark = pytest.mark.slow

SERVER = {q.id: q for q in quiz.load("server")}


def answer(qid: str) -> str:
    q = SERVER[qid]
    return q.option(q.answer)


async def client_backends(server) -> int:
    """Client connections open on the server right now, not counting the one asking."""
    rows = await server.execute("SELECT count(*) AS n FROM pg_stat_activity "
                                "WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()")
    return rows[0]["n"]


async def take_all(engine, held: list) -> Exception | None:
    """Check out connections from one worker's engine until its pool or the server says no;
    they stay in `held`. Returns the server's refusal, or None when the pool's limit was hit."""
    while True:
        try:
            async with asyncio.timeout(20):  # a server that queued attempts would hang here
                held.append(await engine.connect())
        except exc.TimeoutError:  # the pool's limit: pool_size + max_overflow
            return None
        except exc.DBAPIError as refused:  # the server's limit
            return refused


async def workers_at_once(url: str, workers: int) -> tuple[list[int], list[Exception]]:
    """`workers` engines with the default pool settings, one per 'worker process' (each
    process has its own engine and pool; the server cannot tell them apart), all holding as
    many connections as they can at the same moment."""
    engines = [create_async_engine(url, pool_timeout=0.2) for _ in range(workers)]
    held = [[] for _ in engines]
    refusals = []
    try:
        for engine, mine in zip(engines, held, strict=True):
            refused = await take_all(engine, mine)
            if refused is not None:
                refusals.append(refused)
        return [len(h) for h in held], refusals
    finally:
        for mine in held:
            for conn in mine:
                await conn.close()
        for engine in engines:
            await engine.dispose()


# ------------------------------------------------------------------------------ the data

def test_server_questions_follow_the_practice_format():
    data = quiz.load("server")
    assert [q.id for q in data] == ["server_max_connections", "server_restart_pre_ping"]
    ids = [q.id for kind in ("practice", "test", "server") for q in quiz.load(kind)]
    assert len(ids) == len(set(ids))
    for q in data:
        assert len(q.options) == 4 and len(set(q.options)) == 4 and q.answer in quiz.LETTERS
        assert len(q.why) == 4 and q.why[quiz.LETTERS.index(q.answer)].startswith("Right")
        assert sum(w.startswith("Right") for w in q.why) == 1 and q.hint and q.explanation
        assert q.difficulty in ("easy", "medium", "hard")


def test_server_questions_render_with_instant_feedback():
    views = quiz.build_practice("server")
    assert [v.question.id for v in views] == list(SERVER)
    view = views[0]
    view.choose(view.question.answer)
    view.check.click()
    assert "Right." in view.feedback.value
    assert len(quiz.build_practice()) == 5  # the practice quiz itself is unchanged


# ------------------------------------------------------------------------------ the proofs

@pytest.mark.anyio
async def test_server_server_max_connections(pg_server):
    assert answer("server_max_connections").startswith("60, which fits in 100")
    assert "sorry, too many clients already" in answer("server_max_connections")
    settings = {r["name"]: r["setting"] for r in await pg_server.execute(
        "SELECT name, setting FROM pg_settings WHERE name IN ('max_connections', 'superuser_reserved_connections')")}
    assert settings == {"max_connections": "100", "superuser_reserved_connections": "3"}  # the question's server
    others = await client_backends(pg_server)

    # 4 workers with default pools: 4 x (5 + 10) = 60 at once, all granted (not 15, not 20)
    held, refusals = await workers_at_once(pg_server.url, 4)
    assert held == [15] * 4 and sum(held) == 60 and not refusals

    # 8 workers could want 120: the server grants its 100 slots and refuses the rest at once
    held, refusals = await workers_at_once(pg_server.url, 8)
    assert sum(held) == 100 - others < 120
    assert refusals, "the server accepted more than max_connections"
    assert all("sorry, too many clients already" in str(r) for r in refusals)
    assert await client_backends(pg_server) == others  # every connection was given back

    # the explanation: an ordinary role is refused sooner, at max_connections - reserved
    await pg_server.execute("DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'app') "
                            "THEN CREATE ROLE app LOGIN; END IF; END $$")
    app_url = pg_server.url.replace("//course@", "//app@")
    held, refusals = await workers_at_once(app_url, 8)
    assert sum(held) == 100 - 3 - others
    assert refusals and all("remaining connection slots are reserved" in str(r) for r in refusals)


@pytest.mark.anyio
async def test_server_server_restart_pre_ping(pg_server):
    assert answer("server_restart_pre_ping").startswith("With `pool_pre_ping=True` the pool pings each connection")
    url = pg_server.url
    seeding = create_async_engine(url)
    await server_db.seed(seeding)
    await seeding.dispose()

    async def idle_pool(**options):
        """An app whose pool keeps 3 idle connections; their server process ids."""
        engine = create_async_engine(url, pool_size=3, **options)
        app = server_db.build_app(engine)
        async with server_db.client(app) as c:
            await asyncio.gather(*(c.get("/items") for _ in range(3)))
        conns = [await engine.connect() for _ in range(3)]
        pids = {(await conn.execute(text("SELECT pg_backend_pid()"))).scalar() for conn in conns}
        for conn in conns:
            await conn.close()
        assert engine.pool.checkedin() == 3 and len(pids) == 3
        return engine, app, pids

    async def restart():
        started = await pg_server.execute("SELECT pg_postmaster_start_time() AS t")
        await asyncio.to_thread(pg_server.restart)  # the app's event loop keeps running meanwhile
        assert (await pg_server.execute("SELECT pg_postmaster_start_time() AS t")) != started

    async def outcomes(app, n=3) -> list:
        results = []
        async with server_db.client(app) as c:
            for _ in range(n):
                try:
                    results.append((await c.get("/items")).status_code)
                except exc.DBAPIError as error:
                    results.append(error)
        return results

    # with pool_pre_ping: the stale connections are found and replaced; every request works
    engine, app, pids = await idle_pool(pool_pre_ping=True)
    await restart()
    assert engine.pool.checkedin() == 3  # A is wrong: the pool did not notice the restart by itself
    live = {r["pid"] for r in await pg_server.execute("SELECT pid FROM pg_stat_activity")}
    assert not pids & live  # D is wrong: the server processes behind the pool's connections are gone
    assert await outcomes(app) == [200, 200, 200]
    await engine.dispose()

    # without it: the first request fails on a dead connection, the next ones work (no app
    # restart, and no waiting for pool_recycle, which is off by default: B is wrong)
    engine, app, _ = await idle_pool()
    assert engine.pool._recycle == -1
    await restart()
    first, *rest = await outcomes(app)
    assert isinstance(first, exc.DBAPIError) and "connection is closed" in str(first)
    assert first.connection_invalidated
    assert rest == [200, 200]
    await engine.dispose()

    # pre_ping works at once, with pool_recycle off: no wait for a recycle time either
    engine, app, _ = await idle_pool(pool_pre_ping=True, pool_recycle=-1)
    await restart()
    start = time.perf_counter()
    assert await outcomes(app, 1) == [200]
    assert time.perf_counter() - start < 30  # a bound, not a speed target: it did not wait for anything
    await engine.dispose()
