"""The judge's hands inside its kernel: serve the notebook's app as a deployment does.

The judge (course_grade/judge/) runs a submission's cells again in a fresh sandboxed kernel
of its own, then calls these to serve over Unix sockets in the kernel's folder:
- `probe`: a route of the lesson's own (`SELECT * FROM items` through `engine.connect()`)
  on the notebook's `engine`, or on the step-3 cell run again with other values;
- `app`: the notebook's `app`, with its lifespan on, as uvicorn runs it.

Nothing this module says is believed. It runs in the same process as the student's code,
which may have changed anything in it; the judge decides from what it sees from outside:
the HTTP answers, the rows it put in the database itself, and the process's open files.
What it prints (one JSON line per call, after `MARK`) only chooses the judge's sentences.
"""
from __future__ import annotations

import asyncio
import contextlib
import gc
import json

from autograder import cells, explain
from autograder import reference as ref

MARK = "course-judge:"
_servers: list = []  # keeps the servers (and their tasks) alive while the judge asks them
_probes: list = []  # the engines the probes served
_name_errors: list = []  # a NameError's text, for each request the app failed with one


def _say(**facts) -> None:
    print(MARK + json.dumps(facts, default=repr))


def _kind(value) -> str:
    return "missing" if value is _MISSING else type(value).__name__


_MISSING = object()


def _brief(exc: BaseException) -> str:
    return explain.clip(f"{type(exc).__name__}: {exc}", 500)


def report(ns: dict) -> None:
    """The values steps 1 and 2 define, as written (repr), and the kinds of the later names."""
    facts = {}
    for name in ("DATABASE_URL", "POOL_SIZE"):
        if name in ns:
            value = ns[name]
            kind = type(value)
            facts[name] = repr(value)[:2000]
            # a subclass writes any repr it likes: its kind is then named in full, and no literal matches it
            facts[f"{name}_type"] = kind.__name__ if kind in (str, int, bool, float, tuple) else \
                f"{kind.__module__}.{kind.__qualname__}"
    facts.update({f"{name}_kind": _kind(ns.get(name, _MISSING)) for name in ("engine", "app", "get_connection")})
    _say(**facts)


async def _serve(app, socket: str, lifespan: str) -> str | None:
    """Serve `app` on the Unix socket `socket` (in the background); None once it accepts
    requests, else why not."""
    import uvicorn

    config = uvicorn.Config(app, uds=socket, lifespan=lifespan, log_config=None, log_level="critical",
                            access_log=False, timeout_graceful_shutdown=1)
    server = uvicorn.Server(config)
    server.install_signal_handlers = lambda: None  # the kernel keeps its own
    task = asyncio.ensure_future(server.serve())
    _servers.append((server, task))
    try:
        async with asyncio.timeout(ref.CHECK_TIME_LIMIT):
            while not server.started and not task.done():
                await asyncio.sleep(0.01)
    except TimeoutError:
        return f"the app did not start within {ref.CHECK_TIME_LIMIT} s"
    if server.started:
        return None
    error = task.exception() if not task.cancelled() else None
    return _brief(error) if error else "the app's lifespan failed at startup"


def _as_async(engine):
    """A synchronous Engine on an async driver, wrapped so the probe can use its very pool."""
    from sqlalchemy.engine import Engine
    from sqlalchemy.ext.asyncio import AsyncEngine

    if isinstance(engine, Engine):
        with contextlib.suppress(Exception):
            return AsyncEngine(engine)
    return engine


def _probe_app(engine):
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse
    from sqlalchemy import text

    probe = FastAPI()

    @probe.get("/rows")
    async def rows():
        try:
            async with engine.connect() as conn:
                result = await conn.execute(text(f"SELECT * FROM {ref.TABLE}"))
                return [dict(row) for row in result.mappings()]
        except Exception as exc:  # the judge reads the status; the text only explains it
            return JSONResponse({"error": _brief(exc)}, status_code=500)

    return probe


async def probe(ns: dict, socket: str, values: dict | None = None) -> None:
    """Serve the lesson's own route on `engine`: the notebook's, or (with `values`) the one
    its step-3 cell makes when those names have those values."""
    gc.collect()  # connections the notebook's cells left to the garbage collector close now, not mid-count
    engine, error = ns.get("engine", _MISSING), None
    if not values:
        with contextlib.suppress(Exception):  # the probe starts from an empty pool, as a fresh server's
            await engine.dispose()
    if values:
        engine, exc = await cells.rerun(ns, "engine", values)
        error = _brief(exc) if exc is not None else None
        engine = _MISSING if engine is None else engine
    pool = getattr(engine, "pool", None)
    facts = {"engine_kind": _kind(engine), "pool_kind": type(pool).__name__ if pool is not None else None,
             "error": error}
    try:
        facts["url"] = engine.url.render_as_string(hide_password=True)
        facts["limit"] = pool.size() + max(pool._max_overflow, 0)
    except Exception:  # not an engine, or a pool without a size: the judge sees it anyway
        pass
    facts["serve_error"] = await _serve(_probe_app(_as_async(engine)), socket, "off")
    _probes.append(engine)
    _say(**facts)


async def retire() -> None:
    """Stop the probes' servers and close their engines' connections: the app starts from
    an empty pool, as a freshly started server's would."""
    for server, task in _servers:
        server.should_exit = True
        with contextlib.suppress(Exception):
            async with asyncio.timeout(5):
                await task
    _servers.clear()
    for engine in _probes:
        with contextlib.suppress(Exception):
            await engine.dispose()
    _probes.clear()
    _say(retired=True)


def _noting_name_errors(target):
    """`target` as an ASGI app that notes the NameError a request fails with (uvicorn answers
    it 500 and logs nothing at the judge's log level): which name is missing picks the judge's
    sentence."""
    async def noted(scope, receive, send):
        try:
            await target(scope, receive, send)
        except Exception as exc:
            found = [e for e in _chain(exc) if isinstance(e, NameError)]
            if scope.get("type") == "http" and found:
                _name_errors.append(str(found[0])[:300])
            raise

    return noted


def _chain(exc: BaseException) -> list:
    seen = []
    while exc is not None and exc not in seen and len(seen) < 20:
        seen.append(exc)
        seen += [e for e in getattr(exc, "exceptions", ()) if isinstance(e, BaseException)]
        exc = exc.__cause__ or exc.__context__
    return seen


def name_errors() -> None:
    """The NameErrors the app's requests failed with so far."""
    _say(name_errors=list(_name_errors))


async def app(ns: dict, socket: str, stand_in: bool = False) -> None:
    """Serve the notebook's `app` with its lifespan; with `stand_in`, a correct `engine`
    first replaces the notebook's (step 3 is wrong, and step 4 is judged on its own)."""
    gc.collect()
    if stand_in:
        from sqlalchemy.ext.asyncio import create_async_engine

        ns["engine"] = create_async_engine(ref.DATABASE_URL, pool_size=ref.POOL_SIZE)
    target = ns.get("app", _MISSING)
    facts = {"app_kind": _kind(target), "get_connection_kind": _kind(ns.get("get_connection", _MISSING))}
    engine = ns.get("engine")
    with contextlib.suppress(Exception):  # a stand-in, or any engine with a sized pool
        facts["limit"] = engine.pool.size() + max(engine.pool._max_overflow, 0)
    with contextlib.suppress(Exception):  # explains a 404
        facts["router_left_out"] = explain.router_left_out(ns, target)
    facts["serve_error"] = "no app" if target is _MISSING else await _serve(_noting_name_errors(target), socket, "on")
    _say(**facts)


async def stop_app() -> None:
    """Stop the app's server as a deployment stops it: its lifespan's shutdown runs."""
    failed = None
    for server, task in _servers:
        server.should_exit = True
        try:
            async with asyncio.timeout(ref.CHECK_TIME_LIMIT):
                await task
        except Exception as exc:
            failed = _brief(exc)
        lifespan = getattr(server, "lifespan", None)
        broke = getattr(lifespan, "shutdown_failed", False) or getattr(lifespan, "error_occurred", False)
        if failed is None and broke:
            failed = "the lifespan raised an error after its `yield`"
    _servers.clear()
    _say(shutdown_error=failed)


def without_dependency(ns: dict) -> None:
    """Make `get_connection` answer 418 wherever the app depends on it (the judge then sees
    whether GET /items goes through it)."""
    from fastapi import HTTPException

    def refuse():
        raise HTTPException(status_code=418, detail="get_connection was called")

    target, dependency = ns.get("app"), ns.get("get_connection")
    try:
        for each in _apps(target):
            each.dependency_overrides[dependency] = refuse
        _say(overridden=True)
    except Exception as exc:
        _say(overridden=False, error=_brief(exc))


def _apps(target, depth: int = 0) -> list:
    """`target` and every FastAPI app mounted in it (each resolves its own overrides)."""
    found = [target]
    for route in getattr(target, "routes", ()) if depth < 5 else ():
        inner = getattr(route, "app", None)
        if inner is not None and hasattr(inner, "dependency_overrides") and inner is not target:
            found += _apps(inner, depth + 1)
    return found
