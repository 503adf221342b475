"""The lesson's checks, one function per graded test cell (the function name is the grade_id).

Each check is declared with `@check(...)` (autograder.registry): its step, points, whether it
is hidden, and one line saying what passes. The lesson's test cells, the progress panel and
the tests' lists are all made from those declarations.

Every check takes the notebook's namespace (`globals()`), so a name the student has not
defined yet gives a sentence to act on, not a NameError. Checks grade behaviour, never
FastAPI's or SQLAlchemy's internals nor single lines of source:
- whether `GET /items` is served is found by sending requests through the app (decorators,
  routers, `add_api_route`, mounted apps all count);
- whether the route draws its connection from `get_connection` is observed while a request
  runs (the function's code runs, whatever wires it in);
- "the pool size comes from POOL_SIZE" is asked of the student's own step-3 code, run again
  with another POOL_SIZE (autograder.cells).
Where a step builds on an earlier one that is wrong, the check grades this step on its own
with the earlier step's correct value standing in, and says so (report.stand_in).
"""
from __future__ import annotations

import ast
import asyncio
import contextlib
import functools
import gc
import inspect
import os
import sys
import tempfile

import httpx
from asgi_lifespan import LifespanManager
from sqlalchemy import event, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import Pool, QueuePool

from autograder import cells, connects, db, explain, progress, registry, report, verdicts
from autograder import reference as ref
from autograder.registry import STEP_NAMES
from autograder.report import fail, guarded, hidden_gate, stand_in

progress.listen()  # the progress panel hears every check's result, shown or not


def check(**declaration):
    """Declare a check in the registry (step, points, description, hidden, needs) and guard it
    (report.guarded: one sentence, nothing on stderr, results to the progress panel)."""
    return lambda func: guarded(registry.check(**declaration)(func))

# Every check ends with a full garbage collection (see report._quiet). Freezing what exists
# now (FastAPI, SQLAlchemy, IPython...) keeps those collections from rescanning it: ~50 ms
# per test cell otherwise. Objects created later are collected as usual.
gc.freeze()
cells.install()

_MISSING = verdicts.MISSING

STEP3_HOW = verdicts.STEP3_HOW
FIXED_LIST, QUERY_PARAMETER = verdicts.FIXED_LIST, verdicts.QUERY_PARAMETER
NO_DEPENDS = explain.named("dependency_opened_by_hand")
# a cell that adds a route to an app, for "did the student's step 4 cell fail?"
_ROUTE_CODE = r"@\w+\.(get|api_route|route)\(|\.(include_router|add_api_route|mount)\("

ready = hidden_gate  # the visible part of a hidden check's cell: checks.ready("name")


def _fail(said: explain.Said) -> None:
    fail(said.message, said.mistake, unexplained=said.unexplained)


def _cell_failed(step: int, also: str | None = None) -> None:
    run = cells.raised(STEP_NAMES[step], also)
    if run is not None:
        _fail(explain.in_cell(step, run.error, run.source))


# --------------------------------------------------------------------------- step 1 and 2

@check(step=1, points=1, description='DATABASE_URL is exactly "sqlite+aiosqlite:///./test.db"')
def step1_database_url(ns: dict) -> None:
    _cell_failed(1)
    said = verdicts.database_url(ns.get("DATABASE_URL", verdicts.MISSING))
    if said is not None:
        _fail(said)


def _pool_size_ok(value) -> bool:
    return type(value) is int and value == ref.POOL_SIZE


@check(step=2, points=1, description=f"POOL_SIZE is the integer {ref.POOL_SIZE}")
def step2_pool_size(ns: dict) -> None:
    _cell_failed(2)
    said = verdicts.pool_size(ns.get("POOL_SIZE", verdicts.MISSING))
    if said is not None:
        _fail(said)


# --------------------------------------------------------------------------------- step 3

def _standing_in(ns: dict) -> dict:
    """The earlier steps' values that must stand in for the student's (wrong or failing) ones."""
    values = {}
    if ns.get("DATABASE_URL") != ref.DATABASE_URL or cells.raised(STEP_NAMES[1]):
        values["DATABASE_URL"] = ref.DATABASE_URL
    if not _pool_size_ok(ns.get("POOL_SIZE")) or cells.raised(STEP_NAMES[2]):
        values["POOL_SIZE"] = ref.POOL_SIZE
    return values


def _steps_named(values: dict) -> str:
    return " and ".join(f"step {registry.defined_in(k)}" for k in values)


@contextlib.asynccontextmanager
async def _step3_engine(ns: dict):
    """The engine step 3 is graded on: the student's own `engine`, or, when step 1 or 2 is
    wrong, the student's step-3 code run again with the correct values standing in."""
    values = _standing_in(ns)
    if not values:
        _cell_failed(3)
        engine = ns.get("engine", _MISSING)
        if engine is _MISSING:
            fail(f"`engine` is not defined: create it in the step 3 cell with {STEP3_HOW} and run it.")
        yield engine
        return
    if cells.latest("engine") is None:
        fail(f"`engine` is not defined: create it in the step 3 cell with {STEP3_HOW} and run it.")
    names = " and ".join(f"`{k}`" for k in values)
    rebuilt, error = await cells.rerun(ns, "engine", values)
    try:
        if error is not None or rebuilt is None:
            why = explain.in_cell(3, error, cells.latest("engine").source) if error else explain.Said(
                f"`engine` is not defined: create it in the step 3 cell with {STEP3_HOW} and run it.")
            fail(f"{why.message} (Step 3 was run again with the correct {names} standing in for "
                 f"{_steps_named(values)}.)",
                 why.mistake)
        stand_in(f"Step 3 is graded with the correct {names} standing in for yours: fix {_steps_named(values)}, "
                 "then run step 3 again.")
        yield rebuilt
    finally:
        await _dispose(rebuilt)


async def _dispose(engine) -> None:
    if isinstance(engine, AsyncEngine):
        await engine.dispose()
    elif isinstance(engine, Engine):
        engine.dispose()


def _not_an_engine(engine) -> None:
    _fail(verdicts.engine_kind(type(engine).__name__))


def _require_async(engine) -> AsyncEngine:
    if isinstance(engine, AsyncEngine):
        return engine
    _fail(verdicts.engine_kind("Engine" if isinstance(engine, Engine) else type(engine).__name__))


def _probe_url() -> str:
    """Another SQLite file URL (creating an engine on it opens nothing)."""
    return f"sqlite+aiosqlite:///{os.path.join(tempfile.gettempdir(), 'course-probe.db')}"


@check(step=3, points=1, description="engine is an AsyncEngine made from DATABASE_URL")
async def step3_engine_is_async(ns: dict) -> None:
    async with _step3_engine(ns) as engine:
        engine = _require_async(engine)
        url = engine.url.render_as_string(hide_password=False)
        if url != ref.DATABASE_URL:
            fail(
                f"`engine` was made from {url!r}, not from DATABASE_URL: pass DATABASE_URL as the "
                "first argument of create_async_engine (and run step 3 again after changing step 1)."
            )
    # If DATABASE_URL named another file, would the student's step-3 code follow it?
    probe = _probe_url()
    rebuilt, _ = await cells.rerun(ns, "engine", {**_standing_in(ns), "DATABASE_URL": probe})
    try:
        if isinstance(rebuilt, AsyncEngine) and rebuilt.url.render_as_string(hide_password=False) != probe:
            fail(verdicts.URL_TYPED_IN)
    finally:
        await _dispose(rebuilt)


def _check_pool(engine, size_wanted: int) -> None:
    if not isinstance(engine, (AsyncEngine, Engine)):
        _not_an_engine(engine)
    pool = engine.pool
    if not isinstance(pool, QueuePool):
        _fail(verdicts.pool_kind(type(pool).__name__) or verdicts.Said("`engine` has no queue pool: remove any "
                                                                        "`poolclass=` argument."))
    if pool.size() != size_wanted:
        fail(
            f"`engine`'s pool keeps {pool.size()} connections but POOL_SIZE is {size_wanted}: "
            "pass pool_size=POOL_SIZE to create_async_engine."
        )


@check(step=3, points=1, description="engine's pool is a queue pool of POOL_SIZE connections")
async def step3_engine_pool_size(ns: dict) -> None:
    async with _step3_engine(ns) as engine:
        _check_pool(engine, ref.POOL_SIZE)


def _keyword_passed(source: str, name: str) -> bool:
    """Whether the code passes `name=` to some call (comments and strings do not count)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return name in source
    return any(k.arg == name for node in ast.walk(tree) if isinstance(node, ast.Call) for k in node.keywords)


@check(step=3, points=1, hidden=True, needs=("step3_engine_pool_size",),
       description="the pool size comes from POOL_SIZE, not a typed-in number")
async def step3_pool_size_uses_variable(ns: dict) -> None:
    """If POOL_SIZE were another number, would the student's step-3 code make that pool?"""
    async with _step3_engine(ns) as engine:
        _check_pool(engine, ref.POOL_SIZE)
    probe = ref.POOL_SIZE + 2
    values = {**_standing_in(ns), "POOL_SIZE": probe}
    rebuilt, error = await cells.rerun(ns, "engine", values)
    try:
        pool = getattr(rebuilt, "pool", None)
        if isinstance(pool, QueuePool) and pool.size() == probe:
            return
        moved = next((name for name, value in (("max_overflow", getattr(pool, "_max_overflow", None)),
                                               ("pool_timeout", getattr(pool, "_timeout", None))) if value == probe),
                     None) if isinstance(pool, QueuePool) else None
        if moved:
            fail(f"POOL_SIZE went to `{moved}`, not to the pool's size: pass pool_size=POOL_SIZE to "
                 "create_async_engine.")
        source = (cells.latest("engine") or cells.Run("", None, frozenset())).source
        if error is None and not _keyword_passed(source, "pool_size"):
            fail(
                "`engine` was created without pool_size, so its pool has SQLAlchemy's default size "
                "(which happens to be 5): pass pool_size=POOL_SIZE to create_async_engine."
            )
        fail(
            f"with POOL_SIZE = {probe}, your step 3 code still made a pool of "
            f"{pool.size() if isinstance(pool, QueuePool) else 'another size'}: the pool size is typed in as a "
            "number; pass pool_size=POOL_SIZE so that changing POOL_SIZE changes the pool."
        )
    finally:
        await _dispose(rebuilt)


@check(step=3, points=1, description="engine really connects to the database")
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

async def _step4(ns: dict, *, requests: bool = True):
    """The student's app, after their step-4 cells ran without error, and ran on their own too
    (`_runs_alone`; with `requests`, also answering a request on their own)."""
    from fastapi import FastAPI

    _cell_failed(4, also=_ROUTE_CODE)
    app = ns.get("app", _MISSING)
    if app is _MISSING:
        fail("`app` is not defined: create it in the step 4 cell with app = FastAPI() and run the cell.")
    if not isinstance(app, FastAPI):
        fail(f"`app` is a {type(app).__name__}, not a FastAPI application: write app = FastAPI().")
    await _runs_alone(ns, requests)
    return app


IMPORT_MISSING = "import_missing"
_alone: dict = {}  # (the cells' code, with a request) -> what running them on their own found (a Said or None)


async def _runs_alone(ns: dict, requests: bool) -> None:
    """Step 4's own cells, run again in a namespace holding only what steps 1 to 3 define
    (DATABASE_URL, POOL_SIZE and a correct `engine`, as the lesson defines them, and the names
    the step 1-3 cells import), as a fresh kernel runs them without the lesson's read-only
    cells: a name they use but import nowhere (one the demo cell imported, say) fails, named
    (explain: import_missing). With `requests`, the app they make answers GET /items once too
    (a name used only inside the route fails only then). Any other outcome is the other
    checks' business. Each distinct code is run once per kernel."""
    step = cells.step_runs(STEP_NAMES[4], _ROUTE_CODE)
    earlier = [run for run in (cells.latest(STEP_NAMES[n][0]) for n in (1, 2, 3)) if run is not None]
    key = (tuple(run.source for run in earlier + step), requests)
    if step and key not in _alone:
        _alone[key] = await _alone_said(ns, earlier, step, requests)
    if _alone.get(key) is not None:
        _fail(_alone[key])


async def _alone_said(ns: dict, earlier: list, step: list, requests: bool) -> explain.Said | None:
    source = "\n\n".join(run.source for run in step)

    def named(exc: BaseException) -> explain.Said | None:
        said = explain.in_cell(4, exc, source)
        return said if said.mistake == IMPORT_MISSING else None

    namespace = {"__name__": ns.get("__name__", "__main__")}
    namespace.update({name: ns[name] for run in earlier for name in run.defines if name in ns})
    engine = create_async_engine(ref.DATABASE_URL, pool_size=ref.POOL_SIZE, pool_timeout=ref.CHECK_POOL_TIMEOUT)
    namespace.update(DATABASE_URL=ref.DATABASE_URL, POOL_SIZE=ref.POOL_SIZE, engine=engine)
    try:
        _, error = await cells.alone(step, namespace)
        if error is not None:
            return named(error)
        app = namespace.get("app")
        if not requests or not hasattr(app, "router"):
            return None
        try:
            async with asyncio.timeout(cells.RERUN_TIME_LIMIT), LifespanManager(app) as manager:
                transport = httpx.ASGITransport(app=manager.app)
                async with httpx.AsyncClient(transport=transport, base_url="http://lesson") as client:
                    await client.get("/items")
        except Exception as exc:
            return named(exc)
        return None
    finally:
        await engine.dispose()


def _dependency(ns: dict):
    """The student's `get_connection`."""
    dependency = ns.get("get_connection", _MISSING)
    if dependency is _MISSING:
        fail("`get_connection` is not defined: write the dependency `async def get_connection():` in the step 4 cell.")
    if not callable(dependency):
        fail(f"`get_connection` is a {type(dependency).__name__}; "
             "it must be a function (async def get_connection(): ...).")
    return dependency


@contextlib.asynccontextmanager
async def _step4_engine(ns: dict):
    """The engine the app runs on while step 4 is checked, with an empty pool.

    The student's `engine` when it is a working pooled AsyncEngine on the lesson's database;
    otherwise (steps 1-3 unfinished or wrong) a correct engine stands in under the name
    `engine`, so that step 4 is graded on its own, and the check says so. Its pool gives up
    after a few seconds instead of 30, so a leaking dependency is caught quickly.
    """
    engine = ns.get("engine", _MISSING)
    usable = (
        not _standing_in(ns)  # step 1 or 2 is wrong: the engine built on it is not step 4's to answer for
        and isinstance(engine, AsyncEngine)
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
            pool._timeout = engine.pool._timeout = saved_timeout  # a lifespan's dispose() made a new pool
            await engine.dispose()
        return
    stand_in("Step 4 is graded with a correct `engine` standing in for yours, which is missing or not a working "
             "pooled AsyncEngine on DATABASE_URL: make steps 1 to 3 pass, then run step 4 again.")
    substitute = create_async_engine(ref.DATABASE_URL, pool_size=ref.POOL_SIZE, pool_timeout=ref.CHECK_POOL_TIMEOUT)
    ns["engine"] = substitute
    try:
        yield substitute
    finally:
        if engine is _MISSING:
            ns.pop("engine", None)
        else:
            ns["engine"] = engine
        await substitute.dispose()


def _class_call(obj, default=None):
    """The `__call__` method of `obj`'s class (to read its code), or `default`."""
    return getattr(type(obj), "__call__", default)  # noqa: B004 - fetches the method; not a callable() test


def _code_objects(dependency) -> set:
    """The student's own code that runs when FastAPI calls `dependency` (a function, a
    partial, or an object whose class defines `__call__`): the innermost function of any
    decorator, since a decorator's wrapper runs even when the function itself never does."""
    found = set()
    for item in (dependency, getattr(dependency, "func", None), _class_call(dependency)):
        if item is None or isinstance(item, type(object.__call__)):
            continue
        item = inspect.unwrap(getattr(item, "__func__", item))
        code = getattr(item, "__code__", None)
        if code is not None:
            found.add(code)
    return found


@contextlib.contextmanager
def _watching(dependency):
    """Notes whether `dependency`'s code runs inside the block (in this thread: async code)."""
    codes, seen, started = _code_objects(dependency), [], []
    previous = sys.getprofile()
    lazy = inspect.CO_GENERATOR | inspect.CO_COROUTINE | inspect.CO_ASYNC_GENERATOR

    def profile(frame, event, _arg):
        # Calling a generator or coroutine function only creates its frame (a first "call"
        # event); its body runs when the frame is resumed (a second one for the same frame).
        if event == "call" and frame.f_code in codes:
            if not frame.f_code.co_flags & lazy or any(f is frame for f in started):
                seen.append(frame.f_code)
            else:
                started.append(frame)

    sys.setprofile(profile)
    try:
        yield seen
    finally:
        sys.setprofile(previous)


def _spy(dependency, seen: list):
    """A stand-in for `dependency` in `app.dependency_overrides` that notes each call and
    delegates to it (same kind of callable, same signature, so FastAPI treats it alike)."""
    inner = inspect.unwrap(dependency) if inspect.isfunction(dependency) else _class_call(dependency, dependency)
    if inspect.isasyncgenfunction(inner):
        async def spy(*args, **kwargs):
            seen.append(1)
            async for value in dependency(*args, **kwargs):
                yield value
    elif inspect.iscoroutinefunction(inner):
        async def spy(*args, **kwargs):
            seen.append(1)
            return await dependency(*args, **kwargs)
    elif inspect.isgeneratorfunction(inner):
        def spy(*args, **kwargs):
            seen.append(1)
            yield from dependency(*args, **kwargs)
    else:
        def spy(*args, **kwargs):
            seen.append(1)
            return dependency(*args, **kwargs)
    return functools.wraps(dependency)(spy)


@contextlib.asynccontextmanager
async def _serving(app, *, graded_stop: bool = False):
    """A client sending requests to `app` in this process, with the app started as a server
    starts it: its lifespan (`FastAPI(lifespan=...)`, where an app may make or attach its engine)
    runs its startup before the first request and its shutdown after the last, each bounded in
    time. An error at startup is the check's failure, in one sentence (explain: lifespan_failed);
    one at shutdown only where `graded_stop` (the check that connections are given back). The
    app is stopped after a failed check too, and only that failure is said."""
    manager = LifespanManager(app, startup_timeout=ref.CHECK_TIME_LIMIT, shutdown_timeout=ref.CHECK_TIME_LIMIT)
    try:
        await manager.__aenter__()
    except Exception as exc:
        _fail(explain.at_request(exc))
    failed = False
    try:
        transport = httpx.ASGITransport(app=manager.app)  # manager.app: requests see the lifespan's state
        # as the lesson's own call of GET /items: a redirect is an answer, never followed
        async with httpx.AsyncClient(transport=transport, base_url="http://lesson", follow_redirects=False) as client:
            yield client
    except BaseException:
        failed = True
        raise
    finally:
        try:
            await manager.__aexit__(None, None, None)
        except Exception as exc:
            if graded_stop and not failed:
                _fail(explain.at_request(exc))


async def _send(client: httpx.AsyncClient, count: int = 1) -> list[httpx.Response]:
    """`count` concurrent GET /items, each bounded in time."""
    try:
        async with asyncio.timeout(ref.CHECK_TIME_LIMIT):
            return await asyncio.gather(*(client.get("/items") for _ in range(count)))
    except Exception as exc:  # the app's own exception, re-raised by ASGITransport
        if report.latest("step4_app_has_items_route") == (False, NO_DEPENDS.message):
            _fail(NO_DEPENDS)  # the route fails because it does not use get_connection
        _fail(explain.at_request(exc))


async def _get_items(app, count: int = 1) -> list[httpx.Response]:
    """`count` concurrent GET /items, in-process, with the app started and stopped around them."""
    async with _serving(app) as client:
        return await _send(client, count)


@contextlib.contextmanager
def _pool_use():
    """Connections lent by every SQLAlchemy pool while the block runs: the app may take them
    from step 3's `engine` or from an engine its lifespan made. Yields pool -> counts: "out"
    (lent and not yet given back), "peak" (most lent at once), "checkouts"."""
    use: dict = {}
    lent: dict = {}  # a pooled connection's record -> the pool that lent it

    def on_checkout(_dbapi, record, proxy):
        pool = getattr(proxy, "_pool", None)
        counts = use.setdefault(pool, {"out": 0, "peak": 0, "checkouts": 0})
        lent[record] = pool
        counts["out"] += 1
        counts["checkouts"] += 1
        counts["peak"] = max(counts["peak"], counts["out"])

    def on_checkin(_dbapi, record):
        pool = lent.pop(record, _MISSING)
        if pool is not _MISSING:
            use[pool]["out"] -= 1

    event.listen(Pool, "checkout", on_checkout)
    event.listen(Pool, "checkin", on_checkin)
    try:
        yield use
    finally:
        event.remove(Pool, "checkout", on_checkout)
        event.remove(Pool, "checkin", on_checkin)


async def _wait_all_given_back(engine: AsyncEngine, use: dict) -> int:
    """Connections still lent by step 3's `engine` or any pool the app used, after giving
    cleanup that runs after the response a moment."""
    def out() -> int:
        return max(engine.pool.checkedout(), sum(counts["out"] for counts in use.values()))

    for _ in range(20):
        if out() <= 0:
            return 0
        await asyncio.sleep(0.05)
    return out()


def _rows_of(response: httpx.Response, ns: dict) -> list:
    router = explain.router_left_out(ns, ns.get("app")) if response.status_code == 404 else None
    rows, said = verdicts.rows(response.status_code, response.text, router=router,
                               location=response.headers.get("location", ""))
    if said is not None:
        _fail(said)
    return rows


def _is_async(dependency) -> bool:
    call = _class_call(dependency)
    return any(inspect.iscoroutinefunction(f) or inspect.isasyncgenfunction(f)
               for f in (inspect.unwrap(dependency) if inspect.isfunction(dependency) else dependency, call))


@check(step=4, points=1,
       description="app answers GET /items with a route that takes its connection from get_connection")
async def step4_app_has_items_route(ns: dict) -> None:
    app = await _step4(ns, requests=False)
    dependency = _dependency(ns)
    failed = False
    async with _step4_engine(ns), _serving(app) as client:
        with _watching(dependency) as seen:
            try:
                async with asyncio.timeout(ref.CHECK_TIME_LIMIT):
                    response = await client.get("/items")
            except Exception:
                failed = True  # the route exists and failed: the next checks say why
        if not seen and not (not failed and response.status_code in (404, 405, *verdicts.REDIRECTS)):
            # code run in another thread (a plain `def` dependency) is not seen above:
            # ask FastAPI itself, through an override that notes its calls
            saved = dict(app.dependency_overrides)
            app.dependency_overrides[dependency] = _spy(dependency, seen)
            try:
                async with asyncio.timeout(ref.CHECK_TIME_LIMIT):
                    await client.get("/items")
            except Exception:
                pass
            finally:
                app.dependency_overrides.clear()
                app.dependency_overrides.update(saved)
    if not failed and response.status_code in (404, 405, *verdicts.REDIRECTS):
        _rows_of(response, ns)
    if seen:
        return
    if not failed and response.status_code == 422:
        fail(QUERY_PARAMETER)
    code = getattr(dependency, "__code__", None)
    if (getattr(dependency, "__wrapped__", None) is not None and code is not None
            and code.co_filename.endswith("contextlib.py")):
        _fail(explain.named("context_manager_dependency"))
    if not _is_async(dependency):
        fail(
            "`get_connection` is a plain `def`, but the async engine's connection needs `async with`: write "
            "`async def get_connection():` with `async with engine.connect() as conn: yield conn`."
        )
    _fail(NO_DEPENDS)


def _assert_same_rows(got: list, want: list[dict], when: str, *, fixed_list_likely: bool = False) -> None:
    said = verdicts.same_rows(got, want, when, fixed_list_likely=fixed_list_likely)
    if said is not None:
        _fail(said)


@check(step=4, points=2, description="GET /items answers 200 with every row of items as a list of dicts")
async def step4_items_returns_all_rows(ns: dict) -> None:
    app = await _step4(ns)
    async with _step4_engine(ns):
        (response,) = await _get_items(app)
        _assert_same_rows(_rows_of(response, ns), db.table_rows(), "With the rows the setup cell made")


@check(step=4, points=1,
       description="after each request every connection is back in the pool, and the next request reuses it")
async def step4_connections_returned(ns: dict) -> None:
    """A first request opens the pool's first connection; the requests after it, one at a
    time, must each find every connection given back (a leak is said first), and open no new
    connection to the database at all: whatever opens one (dispose(), NullPool, an engine or a
    driver connection per request) is seen by connects.counting()."""
    app = await _step4(ns)
    async with _step4_engine(ns) as engine, _serving(app, graded_stop=True) as client:
        with _pool_use() as use:
            for request in range(4):  # the first opens the pool's first connection
                with connects.counting() as opened:
                    (response,) = await _send(client)
                    _rows_of(response, ns)
                    still_out = await _wait_all_given_back(engine, use)
                if still_out:
                    fail(verdicts.leak(still_out).message, verdicts.LEAK_KEY)
                if request and opened.count:
                    _fail(explain.named("connection_not_reused"))


@check(step=4, points=2, hidden=True, needs=("step4_items_returns_all_rows",),
       description="rows put in the table at grading time come back, and an empty table gives []")
async def step4_items_reads_the_table(ns: dict) -> None:
    app = await _step4(ns)
    async with _step4_engine(ns):
        with db.rows_replaced(db.random_rows(7)) as rows:
            (response,) = await _get_items(app)
            _assert_same_rows(_rows_of(response, ns), rows, "With 7 new rows put in the table at grading time",
                              fixed_list_likely=True)
        with db.rows_replaced([]):
            (response,) = await _get_items(app)
            if _rows_of(response, ns) != []:
                fail(FIXED_LIST.format(when="With the table emptied"))


@check(step=4, points=1, hidden=True, needs=("step4_connections_returned",),
       description="20 requests at once all succeed through the pool, within its limit")
async def step4_concurrent_requests_share_the_pool(ns: dict) -> None:
    """Counted on every pool, whichever engine the app takes its connections from."""
    app = await _step4(ns)
    n = ref.CONCURRENT_REQUESTS
    async with _step4_engine(ns) as engine, _serving(app) as client:
        with _pool_use() as use:
            responses = await _send(client, n)
            for response in responses:
                _rows_of(response, ns)
            checkouts = sum(counts["checkouts"] for counts in use.values())
            if checkouts < n:
                fail(
                    f"{n} requests took only {checkouts} connection(s) from a pool: "
                    "every request must get its connection from `engine` through get_connection."
                )
            for pool, counts in use.items():
                limit = pool.size() + max(pool._max_overflow, 0) if isinstance(pool, QueuePool) else None
                if limit is not None and counts["peak"] > limit:
                    fail(f"{n} requests held {counts['peak']} connections at once, "
                         f"more than the pool allows ({limit}).")
            still_out = await _wait_all_given_back(engine, use)
            if still_out:
                fail(verdicts.leak(still_out).message, verdicts.LEAK_KEY)
