"""autograder/explain.py: the named mistakes of the app's lifespan, and of connections not reused."""
from __future__ import annotations

from contextlib import asynccontextmanager

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from autograder import explain

pytestmark = pytest.mark.anyio

NOT_REUSED = (
    "`get_connection` does not reuse pooled connections: each request opened a new connection to the database, "
    "and none stayed in the pool for the next request; take every connection from the one `engine` of step 3 "
    "(`async with engine.connect() as conn: yield conn`), without `dispose()`, `NullPool` or a new engine per "
    "request."
)


def _app(before=None, after=None, route=None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app):
        if before:
            await before()
        yield
        if after:
            await after()

    app = FastAPI(lifespan=lifespan)

    @app.get("/items")
    async def items():
        if route:
            await route()
        return []

    return app


async def _raised(app: FastAPI, startup_timeout: float = 5) -> BaseException:
    with pytest.raises(Exception) as caught:
        async with LifespanManager(app, startup_timeout=startup_timeout) as manager:
            transport = httpx.ASGITransport(app=manager.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                await client.get("/items")
    return caught.value


async def _name_error():
    return engin  # noqa: F821 - the student's typo


async def _hang():
    import asyncio

    await asyncio.sleep(60)


async def _no_close():
    raise AttributeError("'AsyncEngine' object has no attribute 'close'")


@pytest.mark.parametrize("app, key, words", [
    (lambda: _app(before=_name_error), "lifespan_failed",
     ("`app` did not start", "before its `yield`", "NameError: name 'engin' is not defined")),
    (lambda: _app(after=_no_close), "lifespan_failed",
     ("`app` did not stop cleanly", "after its `yield`", "AttributeError: 'AsyncEngine' object has no attribute")),
    (lambda: _app(before=_hang), "lifespan_timeout", ("`app` did not start in time", "never reached its `yield`")),
    (lambda: _app(route=_name_error), "name_not_defined_at_request", ("`engin` is not defined",)),
], ids=["startup error", "shutdown error", "startup never ends", "an error in a request is no lifespan's"])
async def test_an_error_of_the_lifespan_is_named_by_where_it_happened(app, key, words):
    error = await _raised(app(), startup_timeout=0.2)
    said = explain.at_request(error)
    assert said.mistake == key, said
    for word in words:
        assert word in said.message
    with pytest.raises(explain.RequestFailed) as shown:  # the lesson's call cell: once, the raw error once
        explain.request_failed(error)
    text = str(shown.value)
    assert text.startswith("GET /items failed: " if key.startswith("name") else "`app` did not")
    assert text.count(explain.raw(error)) == 1


def test_connection_not_reused_is_a_fixed_sentence_no_exception_matches():
    said = explain.named("connection_not_reused")
    assert said == explain.Said(NOT_REUSED, "connection_not_reused")
    for error in (TimeoutError(), NameError("name 'engine' is not defined"), RuntimeError("connection closed")):
        assert (explain.named_at_request(error) or explain.Said("")).mistake != "connection_not_reused"
