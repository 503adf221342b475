"""Realistic mistakes in the lesson's four build steps, and what grading must say about each.

Each mistake is the solution with one step written the way a student plausibly gets it
wrong: `changes` (solution cell grade_id -> the student's code) and `loses` (graded cell
grade_id -> words its failure message must contain, in the lesson's terms: what to fix).
Every graded cell not in `loses` must keep full marks: a mistake costs its own step's points
only, since a later step is graded with the correct earlier value standing in (a wrong
POOL_SIZE loses step 2 only). `avoid`: words none of its failure messages may contain (a
message that would send the student the wrong way).

The words are what a good message says; today's checks need not say them yet.
tests/autograder/test_catalogue.py grades every mistake with the in-shell harness (tests/support/harness.py).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from tests.support.variants import DEPENDENCY, HEAD, LIFESPAN_HEAD  # the correct variants' step-4 openings

STEP1 = "step1_database_url_solution"
STEP2 = "step2_pool_size_solution"
STEP3 = "step3_engine_solution"
STEP4 = "step4_app_solution"

STEP3_CELLS = ("step3_engine_is_async", "step3_engine_pool_size", "step3_pool_size_uses_variable",
               "step3_engine_connects")
ROUTE = "step4_app_has_items_route"
REQUESTS = ("step4_items_returns_all_rows", "step4_items_reads_the_table", "step4_connections_returned",
            "step4_concurrent_requests_share_the_pool")
STEP4_CELLS = (ROUTE, *REQUESTS)
# a dependency that opens a new database connection per request: the reuse check fails, and the
# hidden concurrency check, which needs it, waits for it
NOT_REUSED = ("step4_connections_returned", "step4_concurrent_requests_share_the_pool")


@dataclass(frozen=True)
class Mistake:
    name: str
    step: int
    changes: dict[str, str]
    loses: dict[str, str]  # graded cell -> words its message must contain (case-insensitive)
    avoid: tuple[str, ...] = ()
    note: str = ""
    tags: tuple[str, ...] = field(default=())


def each(cells, words: str) -> dict[str, str]:
    return {cell: words for cell in cells}


def url(value: str) -> dict[str, str]:
    return {STEP1: value}


def size(value: str) -> dict[str, str]:
    return {STEP2: value}


def engine(code: str) -> dict[str, str]:
    return {STEP3: code.strip()}


IMPORT_ENGINE = "from sqlalchemy.ext.asyncio import create_async_engine\n\n"

ROUTE_CODE = '''

@app.get("/items")
async def read_items(conn: Annotated[AsyncConnection, Depends(get_connection)]):
    result = await conn.execute(text("SELECT * FROM items"))
    return [dict(row) for row in result.mappings()]
'''


STATE_DEPENDENCY = '''

async def get_connection(request: Request):
    async with request.app.state.engine.connect() as conn:
        yield conn
'''


def step4(body: str = ROUTE_CODE, dependency: str = DEPENDENCY, head: str = HEAD) -> dict[str, str]:
    return {STEP4: (head + dependency + body).strip()}


def route(returns: str = "[dict(row) for row in result.mappings()]",
          sql: str = 'text("SELECT * FROM items")', execute: str = "await conn.execute") -> str:
    return f'''

@app.get("/items")
async def read_items(conn: Annotated[AsyncConnection, Depends(get_connection)]):
    result = {execute}({sql})
    return {returns}
'''


# what the generic sentence around a raw error says: a named mistake never says it
GENERIC = ("GET /items failed with", "is missing or out of date")


def lifespan(setup: str, dependency: str = STATE_DEPENDENCY, body: str = ROUTE_CODE) -> dict[str, str]:
    """Step 4 with an app made by `FastAPI(lifespan=lifespan)`; `setup`: the lifespan function."""
    return step4(body, head=LIFESPAN_HEAD + setup + "\n\napp = FastAPI(lifespan=lifespan)\n", dependency=dependency)


LIFESPAN_ON_STATE = '''

@asynccontextmanager
async def lifespan(app: FastAPI):
    app.state.engine = create_async_engine(DATABASE_URL, pool_size=POOL_SIZE)
    yield
    await app.state.engine.dispose()
'''
JSON_RESPONSE = "\nfrom fastapi.responses import JSONResponse\n"
SESSION_ROUTE = '''

@app.get("/items")
async def read_items(session: Annotated[AsyncSession, Depends(get_connection)]):
    {body}
'''
SESSION_DEPENDENCY = '''

from sqlalchemy.ext.asyncio import AsyncSession


async def get_connection():
    async with AsyncSession(engine) as session:
        yield session
'''
ROUTER = '''

from fastapi import APIRouter

{name} = APIRouter({prefix})


@{name}.get("{path}")
async def read_items(conn: Annotated[AsyncConnection, Depends(get_connection)]):
    result = await conn.execute(text("SELECT * FROM items"))
    return result.mappings().all()
'''


def dependency(body: str) -> dict[str, str]:
    return step4(dependency="\n\nasync def get_connection():\n" + body)


MISTAKES = [
    # ---------------------------------------------------------------------------- step 1
    Mistake("url_sync_driver", 1, url('DATABASE_URL = "sqlite:///./test.db"'),
            {"step1_database_url": "aiosqlite"}),
    Mistake("url_missing_plus", 1, url('DATABASE_URL = "sqliteaiosqlite:///./test.db"'),
            {"step1_database_url": "dialect"}, note="a good message names the `+` between dialect and driver"),
    Mistake("url_colon_for_plus", 1, url('DATABASE_URL = "sqlite:aiosqlite:///./test.db"'),
            {"step1_database_url": "dialect"}),
    Mistake("url_wrong_file", 1, url('DATABASE_URL = "sqlite+aiosqlite:///./tests.db"'),
            {"step1_database_url": "file"}),
    Mistake("url_in_memory", 1, url('DATABASE_URL = "sqlite+aiosqlite://"'),
            {"step1_database_url": "in-memory"}),
    Mistake("url_driver_typo", 1, url('DATABASE_URL = "sqlite+aiosqllite:///./test.db"'),
            {"step1_database_url": "driver"}),
    Mistake("url_two_slashes", 1, url('DATABASE_URL = "sqlite+aiosqlite://./test.db"'),
            {"step1_database_url": "three slashes"}),
    Mistake("url_trailing_space", 1, url('DATABASE_URL = "sqlite+aiosqlite:///./test.db "'),
            {"step1_database_url": "space"}),
    Mistake("url_without_quotes", 1, url("DATABASE_URL = sqlite+aiosqlite:///./test.db"),
            {"step1_database_url": "quotes"}, note="a SyntaxError in the cell: DATABASE_URL never defined"),
    Mistake("url_lowercase_name", 1, url('database_url = "sqlite+aiosqlite:///./test.db"'),
            {"step1_database_url": "DATABASE_URL"}),

    # ---------------------------------------------------------------------------- step 2
    Mistake("size_string", 2, size('POOL_SIZE = "5"'), {"step2_pool_size": "quotes"}),
    Mistake("size_float", 2, size("POOL_SIZE = 5.0"), {"step2_pool_size": "whole number"}),
    Mistake("size_wrong_number", 2, size("POOL_SIZE = 10"), {"step2_pool_size": "POOL_SIZE = 5"}),
    Mistake("size_negative", 2, size("POOL_SIZE = -5"), {"step2_pool_size": "POOL_SIZE = 5"}),
    Mistake("size_trailing_comma", 2, size("POOL_SIZE = 5,"), {"step2_pool_size": "comma"},
            note="a tuple (5,)"),
    Mistake("size_comparison_not_assignment", 2, size("POOL_SIZE == 5"), {"step2_pool_size": "POOL_SIZE = 5"},
            note="NameError in the cell; POOL_SIZE never defined"),
    Mistake("size_lowercase_name", 2, size("pool_size = 5"), {"step2_pool_size": "POOL_SIZE"}),
    Mistake("size_cell_peeks_at_engine", 2, size("POOL_SIZE = 5\nprint(engine.pool.size())"),
            {"step2_pool_size": "engine"},
            note="POOL_SIZE is right but the cell raises NameError (no engine before step 3)"),

    # ---------------------------------------------------------------------------- step 3
    Mistake("engine_sync_create_engine", 3, engine('''
from sqlalchemy import create_engine

engine = create_engine(DATABASE_URL, pool_size=POOL_SIZE)
'''), each(("step3_engine_is_async", "step3_engine_connects"), "create_async_engine")),
    Mistake("engine_without_pool_size", 3, engine(IMPORT_ENGINE + "engine = create_async_engine(DATABASE_URL)"),
            {"step3_pool_size_uses_variable": "pool_size=POOL_SIZE"}),
    Mistake("engine_pool_size_typed_in", 3,
            engine(IMPORT_ENGINE + "engine = create_async_engine(DATABASE_URL, pool_size=5)"),
            {"step3_pool_size_uses_variable": "POOL_SIZE"}),
    Mistake("engine_nullpool", 3, engine('''
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

engine = create_async_engine(DATABASE_URL, poolclass=NullPool)
'''), each(("step3_engine_pool_size", "step3_pool_size_uses_variable"), "NullPool"),
            note="loses step 3's two pool checks only: step 4 is graded with a pooled engine standing in, "
                 "so its reuse check passes (nullpool_engine_in_step4 loses it)"),
    Mistake("engine_nullpool_with_pool_size", 3, engine('''
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

engine = create_async_engine(DATABASE_URL, pool_size=POOL_SIZE, poolclass=NullPool)
'''), each(STEP3_CELLS, "NullPool"), note="TypeError in the cell: NullPool takes no pool_size"),
    Mistake("engine_wrong_import_path", 3, engine('''
from sqlalchemy import create_async_engine

engine = create_async_engine(DATABASE_URL, pool_size=POOL_SIZE)
'''), each(STEP3_CELLS, "sqlalchemy.ext.asyncio"), note="ImportError in the cell"),
    Mistake("engine_not_imported", 3, engine("engine = create_async_engine(DATABASE_URL, pool_size=POOL_SIZE)"),
            each(STEP3_CELLS, "import"), note="NameError in the cell"),
    Mistake("engine_literal_url", 3,
            engine(IMPORT_ENGINE
                   + 'engine = create_async_engine("sqlite+aiosqlite:///./test.db", pool_size=POOL_SIZE)'),
            {"step3_engine_is_async": "DATABASE_URL"}),
    Mistake("engine_awaited", 3,
            engine(IMPORT_ENGINE + "engine = await create_async_engine(DATABASE_URL, pool_size=POOL_SIZE)"),
            each(STEP3_CELLS, "await"), note="TypeError in the cell: an AsyncEngine is not awaitable"),
    Mistake("engine_pool_size_positional", 3,
            engine(IMPORT_ENGINE + "engine = create_async_engine(DATABASE_URL, POOL_SIZE)"),
            each(STEP3_CELLS, "pool_size=POOL_SIZE"), note="TypeError in the cell"),
    Mistake("engine_keyword_typo", 3,
            engine(IMPORT_ENGINE + "engine = create_async_engine(DATABASE_URL, poolsize=POOL_SIZE)"),
            each(STEP3_CELLS, "pool_size"), note="TypeError in the cell: invalid argument 'poolsize'"),
    Mistake("engine_is_a_connection", 3,
            engine(IMPORT_ENGINE + "engine = create_async_engine(DATABASE_URL, pool_size=POOL_SIZE).connect()"),
            each(STEP3_CELLS, "AsyncEngine")),

    # ---------------------------------------------------------------------------- step 4
    Mistake("execute_not_awaited", 4, step4(route(execute="conn.execute")), each(REQUESTS, "await")),
    Mistake("sync_with_in_dependency", 4, step4(dependency='''

async def get_connection():
    with engine.connect() as conn:
        yield conn
'''), each(REQUESTS, "async with")),
    Mistake("rows_fetchall_tuples", 4, step4(route(returns="result.fetchall()")), each(REQUESTS, "dict")),
    Mistake("rows_scalars_ids", 4, step4(route(returns="result.scalars().all()")),
            each(REQUESTS, "single values ([1, 2, 3]), not rows"), avoid=("rows as lists",)),
    Mistake("mappings_without_all", 4, step4(route(returns="result.mappings()")), each(REQUESTS, ".all()")),
    Mistake("dict_of_plain_rows", 4, step4(route(returns="[dict(row) for row in result]")), each(REQUESTS, "mappings")),
    Mistake("connect_neither_await_nor_async_with", 4, step4(dependency='''

async def get_connection():
    conn = engine.connect()
    yield conn
'''), each(REQUESTS, "async with")),
    Mistake("sync_session", 4, step4(route(execute="conn.execute"), dependency='''

from sqlalchemy.orm import Session


def get_connection():
    with Session(engine) as session:
        yield session
'''), each(REQUESTS, "AsyncSession")),
    Mistake("return_inside_async_with", 4, step4(dependency='''

async def get_connection():
    async with engine.connect() as conn:
        return conn
'''), each(REQUESTS, "yield")),
    Mistake("yield_after_async_with_closed", 4, step4(dependency='''

async def get_connection():
    async with engine.connect() as conn:
        pass
    yield conn
'''), each(REQUESTS, "inside"), note="yield indented out of the block: the connection is closed first"),
    Mistake("leak_connect_never_closed", 4, step4(dependency='''

async def get_connection():
    conn = await engine.connect()
    yield conn
'''), each(("step4_connections_returned", "step4_concurrent_requests_share_the_pool"), "leak"),
            note="the central leak: every request keeps its connection checked out"),
    Mistake("leak_returned_never_closed", 4, step4(dependency='''

async def get_connection():
    return await engine.connect()
'''), each(("step4_connections_returned", "step4_concurrent_requests_share_the_pool"), "leak")),

    # connections not reused: every request opens a new database connection (the lesson's point missed)
    Mistake("dispose_after_each_request", 4, step4(dependency='''

async def get_connection():
    async with engine.connect() as conn:
        yield conn
    await engine.dispose()  # "clean up" after every request: closes the pooled connection
'''), each(NOT_REUSED, "does not reuse pooled connections")),
    Mistake("engine_per_request", 4, step4(dependency='''

from sqlalchemy.ext.asyncio import create_async_engine


async def get_connection():
    request_engine = create_async_engine(DATABASE_URL, pool_size=POOL_SIZE)
    async with request_engine.connect() as conn:
        yield conn
'''), each(NOT_REUSED, "new engine per request")),
    Mistake("engine_per_request_disposed", 4, step4(dependency='''

from sqlalchemy.ext.asyncio import create_async_engine


async def get_connection():
    request_engine = create_async_engine(DATABASE_URL, pool_size=POOL_SIZE)
    try:
        async with request_engine.connect() as conn:
            yield conn
    finally:
        await request_engine.dispose()
'''), each(NOT_REUSED, "new engine per request")),
    Mistake("nullpool_engine_in_step4", 4, step4(dependency='''

from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

app_engine = create_async_engine(DATABASE_URL, poolclass=NullPool)


async def get_connection():
    async with app_engine.connect() as conn:
        yield conn
'''), each(NOT_REUSED, "NullPool"), note="step 3's engine is right; the app uses another, without a pool"),
    Mistake("lifespan_engine_with_nullpool", 4, step4(ROUTE_CODE, head=HEAD.replace("app = FastAPI()\n", "") + '''
from contextlib import asynccontextmanager

from fastapi import Request
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool


@asynccontextmanager
async def lifespan(app: FastAPI):
    app.state.engine = create_async_engine(DATABASE_URL, poolclass=NullPool)
    yield
    await app.state.engine.dispose()


app = FastAPI(lifespan=lifespan)
''', dependency='''

async def get_connection(request: Request):
    async with request.app.state.engine.connect() as conn:
        yield conn
'''), each(NOT_REUSED, "does not reuse pooled connections")),
    Mistake("aiosqlite_connection_per_request", 4, step4('''

@app.get("/items")
async def read_items(conn: Annotated[aiosqlite.Connection, Depends(get_connection)]):
    cursor = await conn.execute("SELECT * FROM items")
    return [dict(row) for row in await cursor.fetchall()]
''', dependency='''

import aiosqlite


async def get_connection():
    async with aiosqlite.connect("test.db") as conn:  # the driver itself, not the engine's pool
        conn.row_factory = aiosqlite.Row
        yield conn
'''), each(NOT_REUSED, "the one `engine` of step 3")),
    Mistake("sqlite3_connection_per_request", 4, step4('''

@app.get("/items")
async def read_items(conn: Annotated[sqlite3.Connection, Depends(get_connection)]):
    return [dict(row) for row in conn.execute("SELECT * FROM items")]
''', dependency='''

import sqlite3


async def get_connection():
    conn = sqlite3.connect("test.db")  # a synchronous connection of its own, outside the pool
    conn.row_factory = sqlite3.Row
    try:
        yield conn
    finally:
        conn.close()
'''), each(NOT_REUSED, "does not reuse pooled connections")),

    # the app's lifespan (FastAPI(lifespan=...)), where an app may make or attach its engine
    Mistake("lifespan_startup_fails", 4, step4(ROUTE_CODE, head=LIFESPAN_HEAD + '''

@asynccontextmanager
async def lifespan(app: FastAPI):
    app.state.engine = create_async_engine(DATABSE_URL, pool_size=POOL_SIZE)
    yield
    await app.state.engine.dispose()


app = FastAPI(lifespan=lifespan)
''', dependency=STATE_DEPENDENCY), each(STEP4_CELLS, "did not start"),
            avoid=("GET /items failed",), note="NameError when the app starts: no request can be served"),
    Mistake("lifespan_not_given_to_app", 4, step4(ROUTE_CODE, head=LIFESPAN_HEAD + '''

@asynccontextmanager
async def lifespan(app: FastAPI):
    app.state.engine = create_async_engine(DATABASE_URL, pool_size=POOL_SIZE)
    yield
    await app.state.engine.dispose()


app = FastAPI()
''', dependency=STATE_DEPENDENCY), each(REQUESTS, "FastAPI(lifespan=lifespan)"),
            note="the lifespan never runs, so app.state has no engine: the route takes get_connection, which fails"),
    Mistake("lifespan_shutdown_fails", 4, step4(ROUTE_CODE, head=LIFESPAN_HEAD + '''

@asynccontextmanager
async def lifespan(app: FastAPI):
    app.state.engine = create_async_engine(DATABASE_URL, pool_size=POOL_SIZE)
    yield
    await app.state.engine.close()  # an AsyncEngine has no close(): dispose() closes its pool
''' + "\n\napp = FastAPI(lifespan=lifespan)\n", dependency=STATE_DEPENDENCY), each(NOT_REUSED, "did not stop"),
            note="requests are served; the check that connections go back also stops the app"),
    Mistake("hard_coded_rows", 4, step4('''

@app.get("/items")
async def read_items(conn: Annotated[AsyncConnection, Depends(get_connection)]):
    return [
        {"id": 1, "name": "Espresso cup", "price": 4.5},
        {"id": 2, "name": "Pour-over kettle", "price": 39.0},
        {"id": 3, "name": "Coffee grinder", "price": 89.99},
    ]
'''), {"step4_items_reads_the_table": "database"}),
    Mistake("rows_queried_once_at_definition", 4, step4('''

async with engine.connect() as first_conn:
    ROWS = [dict(row) for row in (await first_conn.execute(text("SELECT * FROM items"))).mappings()]


@app.get("/items")
async def read_items(conn: Annotated[AsyncConnection, Depends(get_connection)]):
    return ROWS
'''), {"step4_items_reads_the_table": "every request"}),
    Mistake("rows_cached_after_first_request", 4, step4('''

_cache: list[dict] = []


@app.get("/items")
async def read_items(conn: Annotated[AsyncConnection, Depends(get_connection)]):
    if not _cache:
        result = await conn.execute(text("SELECT * FROM items"))
        _cache.extend(dict(row) for row in result.mappings())
    return _cache
'''), {"step4_items_reads_the_table": "every request"}),
    Mistake("wrong_table_name", 4, step4(route(sql='text("SELECT * FROM item")')), each(REQUESTS, "table")),
    Mistake("some_columns_only", 4, step4(route(sql='text("SELECT name, price FROM items")')),
            each(("step4_items_returns_all_rows", "step4_items_reads_the_table"), "column")),
    Mistake("plain_string_sql", 4, step4(route(sql='"SELECT * FROM items"')), each(REQUESTS, "text(")),
    Mistake("wrong_path", 4, step4(ROUTE_CODE.replace('"/items"', '"/item"')), each(STEP4_CELLS, "/items")),
    Mistake("wrong_method_post", 4, step4(ROUTE_CODE.replace("@app.get", "@app.post")), each(STEP4_CELLS, "@app.get")),
    Mistake("annotation_without_depends", 4, step4('''

@app.get("/items")
async def read_items(conn: AsyncConnection):
    result = await conn.execute(text("SELECT * FROM items"))
    return [dict(row) for row in result.mappings()]
'''), each(STEP4_CELLS, "Depends"), avoid=("decorate",),
            note="FastAPI refuses the route when it is defined: the cell raises, no route is added"),
    Mistake("route_above_dependency", 4, {STEP4: (HEAD + ROUTE_CODE + DEPENDENCY).strip()},
            each(STEP4_CELLS, "before"), avoid=("decorate",),
            note="NameError at definition: get_connection is defined after the route that names it"),
    Mistake("depends_called", 4, step4(ROUTE_CODE.replace("Depends(get_connection)", "Depends(get_connection())")),
            each(STEP4_CELLS, "Depends(get_connection)"), avoid=("decorate",)),
    Mistake("no_dependency_engine_in_route", 4, step4('''

@app.get("/items")
async def read_items():
    async with engine.connect() as conn:
        result = await conn.execute(text("SELECT * FROM items"))
        return [dict(row) for row in result.mappings()]
''', dependency=DEPENDENCY), {ROUTE: "Depends(get_connection)"},
            note="decision: rows, connections and concurrency are right, so only the cell that "
                 "checks the route uses get_connection loses its point"),
    Mistake("dependency_name_typo", 4, step4(ROUTE_CODE.replace("get_connection", "get_conection"),
                                             dependency=DEPENDENCY.replace("get_connection", "get_conection")),
            {ROUTE: "get_connection"}, note="works, under another name: the task names get_connection"),
    Mistake("dependency_used_as_context_manager", 4, step4('''

@app.get("/items")
async def read_items():
    async with get_connection() as conn:
        result = await conn.execute(text("SELECT * FROM items"))
        return [dict(row) for row in result.mappings()]
'''), each(STEP4_CELLS, "Depends")),
    Mistake("depends_on_engine_connect", 4,
            step4(ROUTE_CODE.replace("Depends(get_connection)", "Depends(engine.connect)")),
            each(STEP4_CELLS, "get_connection")),
    Mistake("sync_generator_dependency", 4, step4(dependency='''

def get_connection():
    with engine.connect() as conn:
        yield conn
'''), each(REQUESTS, "async def")),
    Mistake("sync_route", 4, step4('''

@app.get("/items")
def read_items(conn: Annotated[AsyncConnection, Depends(get_connection)]):
    result = conn.execute(text("SELECT * FROM items"))
    return [dict(row) for row in result.mappings()]
'''), each(REQUESTS, "async def")),
    Mistake("app_not_created", 4, step4(head=HEAD.replace("app = FastAPI()\n", "")),
            each(STEP4_CELLS, "app = FastAPI()")),
    Mistake("app_created_again_after_route", 4, step4(ROUTE_CODE + "\n\napp = FastAPI()\n"),
            each(STEP4_CELLS, "/items")),
    Mistake("dependency_yields_engine", 4, step4(dependency='''

async def get_connection():
    yield engine
'''), each(REQUESTS, "engine.connect()")),
    Mistake("returns_result_object", 4, step4(route(returns="result")), each(REQUESTS, ".all()")),
    Mistake("returns_a_dict", 4, step4(route(returns='{"items": [dict(row) for row in result.mappings()]}')),
            each(REQUESTS, "list")),
    Mistake("engine_name_typo_in_dependency", 4, step4(dependency='''

async def get_connection():
    async with engin.connect() as conn:
        yield conn
'''), each(REQUESTS, "`engin` is not defined"), note="a name the dependency uses at request time only"),
    Mistake("sync_engine_made_in_step4", 4, step4(dependency='''

from sqlalchemy import create_engine

sync_engine = create_engine(DATABASE_URL)


async def get_connection():
    async with sync_engine.connect() as conn:
        yield conn
'''), each(REQUESTS, "create_async_engine"), note="MissingGreenlet: a synchronous engine with the async driver"),
    # a step's cell that works only because the lesson's read-only demo cell imported a name it
    # uses: in a fresh kernel (the judge's), or exported as a .py file, it fails
    Mistake("depends_not_imported", 4, step4(head=HEAD.replace("from fastapi import Depends, FastAPI",
                                                               "from fastapi import FastAPI")),
            each(STEP4_CELLS, "add `from fastapi import Depends` to that cell"), avoid=("spelling",),
            note="the demo cell imported Depends; the route's signature needs it as the cell runs"),
    Mistake("annotation_class_not_imported", 4, step4(route().replace(
        "conn: Annotated[AsyncConnection, Depends(get_connection)]", "conn: AsyncConnection = Depends(get_connection)"),
        head=HEAD.replace("from sqlalchemy.ext.asyncio import AsyncConnection\n", "")),
            each(STEP4_CELLS, "add `from sqlalchemy.ext.asyncio import AsyncConnection` to that cell"),
            note="an annotation is evaluated when the route is defined"),
    Mistake("text_not_imported", 4, step4(head=HEAD.replace("from sqlalchemy import text\n", "")),
            each(REQUESTS, "add `from sqlalchemy import text` to that cell"),
            note="used only inside the route: the cell runs, and GET /items fails when it runs on its own"),

    # a route the lesson's call of GET /items reaches only through a redirect, which it does not follow
    Mistake("route_with_trailing_slash", 4, step4(ROUTE_CODE.replace('"/items"', '"/items/"')),
            each(STEP4_CELLS, 'your route is at `/items/` but the lesson calls `/items`'), avoid=("404",)),
    Mistake("router_prefix_with_slash_route", 4, step4('''

from fastapi import APIRouter

router = APIRouter(prefix="/items")


@router.get("/")
async def read_items(conn: Annotated[AsyncConnection, Depends(get_connection)]):
    result = await conn.execute(text("SELECT * FROM items"))
    return [dict(row) for row in result.mappings()]


app.include_router(router)
'''), each(STEP4_CELLS, "`/items/`")),
    Mistake("items_redirects_elsewhere", 4, step4('''

from fastapi.responses import RedirectResponse


@app.get("/items")
async def items_moved():
    return RedirectResponse("/api/items")


@app.get("/api/items")
async def read_items(conn: Annotated[AsyncConnection, Depends(get_connection)]):
    result = await conn.execute(text("SELECT * FROM items"))
    return [dict(row) for row in result.mappings()]
'''), each(STEP4_CELLS, "redirect")),
    Mistake("asyncio_run_in_step_cell", 4, {STEP4: step4()[STEP4] + '''


import asyncio
import httpx


async def main():
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        print((await client.get("/items")).json())


asyncio.run(main())
'''}, each(STEP4_CELLS, "asyncio.run"),
            note="the app is right but the step's cell raises (asyncio.run() inside the notebook's "
                 "running loop): the step is not done, and the message names the cell's error"),
    # ---------------------------- errors that once had only the generic sentence, or a misleading one
    # `await` on what is not awaitable
    Mistake("await_on_a_chain", 4, step4(route(execute="await conn.execute", returns="result.all()").replace(
        'text("SELECT * FROM items"))', 'text("SELECT * FROM items")).mappings()')),
            each(REQUESTS, "applies to the whole expression"), avoid=("missing its `await`", *GENERIC)),
    Mistake("await_on_rows", 4, step4(route(returns="await result.mappings().all()")),
            each(REQUESTS, "not awaitable"), avoid=GENERIC),
    Mistake("await_on_fetchall", 4, step4(route(returns="await result.fetchall()")),
            each(REQUESTS, "not awaitable"), avoid=GENERIC),
    Mistake("await_on_engine_begin", 4,
            dependency("    async with await engine.begin() as conn:\n        yield conn\n"),
            each(REQUESTS, "entered, not awaited"), avoid=("decorated with @asynccontextmanager", *GENERIC)),
    Mistake("async_with_awaited_connect", 4,
            dependency("    async with await engine.connect() as conn:\n        yield conn\n"),
            each(REQUESTS, "without `await`"), avoid=GENERIC),
    Mistake("awaited_connection_entered_again", 4,
            dependency("    conn = await engine.connect()\n    async with conn:\n        yield conn\n"),
            each(REQUESTS, "without `await`"), avoid=GENERIC),
    # JSONResponse given SQLAlchemy's rows
    Mistake("json_response_of_mappings", 4,
            step4(JSON_RESPONSE + route(returns="JSONResponse(result.mappings().all())")),
            each(REQUESTS, "JSONResponse([dict(row)"), avoid=GENERIC),
    Mistake("json_response_of_rows", 4,
            step4(JSON_RESPONSE + route(returns="JSONResponse(content=result.fetchall())")),
            each(REQUESTS, "JSONResponse([dict(row)"), avoid=GENERIC),
    Mistake("json_response_of_wrapped_mappings", 4,
            step4(JSON_RESPONSE + route(returns='JSONResponse({"items": [row for row in result.mappings()]})')),
            each(REQUESTS, "JSONResponse([dict(row)"), avoid=GENERIC),
    Mistake("json_dumps_of_mappings", 4, step4("\nimport json\n\nfrom fastapi import Response\n" + route(
        returns='Response(json.dumps(result.mappings().all()), media_type="application/json")')),
            each(REQUESTS, "cannot turn SQLAlchemy's RowMapping objects into JSON"), avoid=GENERIC),
    # the app's state, or the app, without what the lifespan was meant to put there
    Mistake("state_under_another_name", 4,
            lifespan(LIFESPAN_ON_STATE.replace("app.state.engine", "app.state.db_engine")),
            each(REQUESTS, "`app.state.engine = ...`"), avoid=GENERIC),
    Mistake("engine_read_from_app_not_state", 4,
            lifespan(LIFESPAN_ON_STATE, STATE_DEPENDENCY.replace("request.app.state.engine", "request.app.engine")),
            each(REQUESTS, "request.app.state.engine"), avoid=GENERIC),
    Mistake("engine_read_from_request", 4,
            lifespan(LIFESPAN_ON_STATE, STATE_DEPENDENCY.replace("request.app.state.engine", "request.engine")),
            each(REQUESTS, "request.app.state.engine"), avoid=GENERIC),
    Mistake("state_read_in_the_cell", 4,
            {STEP4: lifespan(LIFESPAN_ON_STATE)[STEP4] + "\n\nprint(app.state.engine.pool.size())"},
            each(STEP4_CELLS, "not at the top of the cell"), avoid=GENERIC),
    Mistake("state_bound_in_the_cell", 4, {STEP4: lifespan(LIFESPAN_ON_STATE)[STEP4] + "\n\nengine = app.state.engine"},
            each(STEP4_CELLS, "not at the top of the cell"), avoid=GENERIC),
    # the legacy `.query()` on an AsyncSession or a connection
    Mistake("session_query", 4, step4(SESSION_ROUTE.format(
        body='return [dict(row._mapping) for row in session.query(text("SELECT * FROM items")).all()]'),
        dependency=SESSION_DEPENDENCY), each(REQUESTS, "legacy ORM API"), avoid=GENERIC),
    Mistake("session_query_awaited", 4, step4(SESSION_ROUTE.format(
        body='result = await session.query(text("SELECT * FROM items"))\n    return result.mappings().all()'),
        dependency=SESSION_DEPENDENCY.replace("AsyncSession(engine)", "async_sessionmaker(engine)()").replace(
            "import AsyncSession", "import AsyncSession, async_sessionmaker")),
            each(REQUESTS, "legacy ORM API"), avoid=GENERIC),
    Mistake("connection_query", 4, step4(route(execute="conn.query", returns="result.all()")),
            each(REQUESTS, "legacy ORM API"), avoid=GENERIC),
    # `async with engine`
    Mistake("async_with_engine_as_conn", 4, dependency("    async with engine as conn:\n        yield conn\n"),
            each(REQUESTS, "not a context manager"), avoid=GENERIC),
    Mistake("async_with_engine_around_connect", 4, dependency(
        "    async with engine:\n        async with engine.connect() as conn:\n            yield conn\n"),
            each(REQUESTS, "not a context manager"), avoid=GENERIC),
    Mistake("async_with_engine_in_step3", 3, engine(
        IMPORT_ENGINE + "async with create_async_engine(DATABASE_URL, pool_size=POOL_SIZE) as engine:\n    pass"),
            each(STEP3_CELLS, "not a context manager"), avoid=GENERIC),
    # methods an engine does not have
    Mistake("engine_acquire", 4, dependency("    async with engine.acquire() as conn:\n        yield conn\n"),
            each(REQUESTS, "has no `acquire`"), avoid=("gave the route the engine itself", *GENERIC)),
    Mistake("engine_get_connection", 4, dependency(
        "    conn = await engine.get_connection()\n"
        "    try:\n        yield conn\n    finally:\n        await conn.close()\n"),
            each(REQUESTS, "has no `get_connection`"), avoid=("gave the route the engine itself", *GENERIC)),
    Mistake("engine_execute_in_route", 4, step4(route(execute="await engine.execute")),
            each(REQUESTS, "has no `execute`"), avoid=("gave the route the engine itself", *GENERIC)),
    Mistake("engine_execute_in_step3", 3, engine(
        IMPORT_ENGINE + 'engine = create_async_engine(DATABASE_URL, pool_size=POOL_SIZE)\nengine.execute("SELECT 1")'),
            each(STEP3_CELLS, "has no `execute`"), avoid=GENERIC),
    Mistake("engine_close_in_step3", 3, engine(
        IMPORT_ENGINE + "engine = create_async_engine(DATABASE_URL, pool_size=POOL_SIZE)\nengine.close()"),
            each(STEP3_CELLS, "dispose()"), avoid=GENERIC),
    Mistake("engine_close_in_step4", 4, {STEP4: step4()[STEP4] + "\n\nawait engine.close()"},
            each(STEP4_CELLS, "only when the app stops"), avoid=GENERIC),
    Mistake("engine_close_in_route", 4, step4(route(returns="rows").replace(
        "    return rows\n", "    rows = result.mappings().all()\n    await engine.close()\n    return rows\n")),
            each(REQUESTS, "dispose()"), avoid=("gave the route the engine itself", *GENERIC),
            note="an error after the dependency's `yield` would fail only in-process: a server has sent the answer"),
    Mistake("route_added_to_engine", 4, step4(ROUTE_CODE.replace("@app.get", "@engine.get")),
            each(STEP4_CELLS, '@app.get("/items")'), avoid=GENERIC),
    # the app where the engine or the connection belongs
    Mistake("app_connect_in_dependency", 4, dependency("    async with app.connect() as conn:\n        yield conn\n"),
            each(REQUESTS, "a method of the engine"), avoid=("app.state.connect", *GENERIC)),
    Mistake("app_execute_in_route", 4, step4(route(execute="await app.execute")),
            each(REQUESTS, "a method of a connection"), avoid=("app.state.execute", *GENERIC)),
    Mistake("app_awaited", 4, step4(head=HEAD.replace("app = FastAPI()", "app = await FastAPI()")),
            each(STEP4_CELLS, "remove that `await`"), avoid=GENERIC),
    # the lesson's file by another path
    Mistake("url_same_file_without_dot", 1, url('DATABASE_URL = "sqlite+aiosqlite:///test.db"'),
            {"step1_database_url": "same file"}, avoid=("wrong file",)),
    Mistake("url_same_file_dot_dot", 1, url('DATABASE_URL = "sqlite+aiosqlite:///././test.db"'),
            {"step1_database_url": "same file"}, avoid=("wrong file",)),
    Mistake("url_same_file_double_slash", 1, url('DATABASE_URL = "sqlite+aiosqlite:///.//test.db"'),
            {"step1_database_url": "same file"}, avoid=("wrong file",)),
    # a router never included
    Mistake("router_not_included", 4, step4(ROUTER.format(name="router", prefix="", path="/items")),
            each(STEP4_CELLS, "app.include_router(router)"), avoid=("@app.get",)),
    Mistake("prefixed_router_not_included", 4,
            step4(ROUTER.format(name="items_router", prefix='prefix="/items"', path="")),
            each(STEP4_CELLS, "app.include_router(items_router)"), avoid=("@app.get",)),
    Mistake("router_route_added_not_included", 4, step4(
        ROUTER.format(name="api", prefix="", path="/items").replace('@api.get("/items")\n', "")
        + '\n\napi.add_api_route("/items", read_items)\n'),
            each(STEP4_CELLS, "app.include_router(api)"), avoid=("@app.get",)),
    # a limit on connections where the pool's size belongs
    Mistake("engine_max_connections", 3,
            engine(IMPORT_ENGINE + "engine = create_async_engine(DATABASE_URL, max_connections=POOL_SIZE)"),
            each(STEP3_CELLS, "PostgreSQL server setting"), avoid=GENERIC),
    Mistake("engine_max_size", 3,
            engine(IMPORT_ENGINE + "engine = create_async_engine(DATABASE_URL, max_size=POOL_SIZE)"),
            each(STEP3_CELLS, "PostgreSQL server setting"), avoid=GENERIC),
    Mistake("engine_pool_max", 3,
            engine(IMPORT_ENGINE + "engine = create_async_engine(DATABASE_URL, pool_max=POOL_SIZE)"),
            each(STEP3_CELLS, "PostgreSQL server setting"), avoid=GENERIC),
    Mistake("engine_maxconn_beside_pool_size", 3, engine(
        IMPORT_ENGINE + "engine = create_async_engine(DATABASE_URL, pool_size=POOL_SIZE, maxconn=20)"),
            each(STEP3_CELLS, "PostgreSQL server setting"), avoid=GENERIC),
    # a result's method called on another object (found by the mutation corpus, tests/support/mutants.py)
    Mistake("scalars_then_mappings", 4, step4(route(execute="await conn.scalars")),
            each(REQUESTS, "but your code calls it on a ScalarResult"), avoid=GENERIC),
    Mistake("scalar_then_mappings", 4, step4(route(execute="await conn.scalar")),
            each(REQUESTS, "but your code calls it on an int"), avoid=GENERIC),
    Mistake("mappings_of_connection", 4, step4(route(returns="conn.mappings().all()")),
            each(REQUESTS, "but your code calls it on an AsyncConnection"), avoid=GENERIC),
    # rows read from what holds no rows
    Mistake("rows_from_scalars", 4, step4(route(returns="[dict(row) for row in result.scalars()]")),
            each(REQUESTS, "reads rows from an int"), avoid=GENERIC),
    Mistake("rows_from_connection", 4, step4(route(returns="[dict(row) for row in conn]")),
            each(REQUESTS, "reads rows from an AsyncConnection"), avoid=GENERIC),
    Mistake("result_indexed", 4, step4(route(returns='[{"id": result["id"]}]')),
            each(REQUESTS, "reads rows from a CursorResult"), avoid=GENERIC),
    Mistake("stream_looped_with_for", 4, step4(route(execute="await conn.stream")),
            each(REQUESTS, "`async for`"), avoid=GENERIC),
    # a call without its argument
    Mistake("text_without_sql", 4, step4(route(sql="text()")),
            each(REQUESTS, '`text("SELECT * FROM items")`'), avoid=GENERIC),
    Mistake("execute_without_query", 4, step4(route(sql="")),
            each(REQUESTS, "`conn.execute()` was called without what it needs"), avoid=GENERIC),
    Mistake("route_without_path", 4, step4(ROUTE_CODE.replace('@app.get("/items")', "@app.get()")),
            each(STEP4_CELLS, '`@app.get("/items")`'), avoid=GENERIC),
    Mistake("exec_driver_sql_of_text", 4, step4(route(execute="await conn.exec_driver_sql")),
            each(REQUESTS, "plain string"), avoid=GENERIC),
    Mistake("exec_driver_sql_of_columns_text", 4,
            step4(route(execute="await conn.exec_driver_sql", sql='text("SELECT id, name, price FROM items")')),
            each(REQUESTS, "plain string"), avoid=GENERIC),
    # exactly one row asked of a table of several
    Mistake("one_row_of_mappings", 4, step4(route(returns="[dict(result.mappings().one())]")),
            each(REQUESTS, "exactly one row"), avoid=GENERIC),
    Mistake("scalar_one", 4, step4(route(returns="[{'id': result.scalar_one()}]")),
            each(REQUESTS, "exactly one row"), avoid=GENERIC),
    Mistake("one_row", 4, step4(route(returns="[dict(result.one()._mapping)]")),
            each(REQUESTS, "exactly one row"), avoid=GENERIC),
    Mistake("raw_connection_entered", 4,
            dependency("    async with engine.raw_connection() as conn:\n        yield conn\n"),
            each(REQUESTS, "`async with` was given a coroutine"), avoid=("missing its `await`", *GENERIC)),
    Mistake("rows_from_keys", 4, step4(route(returns="[dict(row) for row in result.keys()]")),
            each(REQUESTS, "something other than a row"), avoid=("does not work on a SQLAlchemy `Row`", *GENERIC)),
    Mistake("pool_size_given_to_max_overflow", 3,
            engine(IMPORT_ENGINE + "engine = create_async_engine(DATABASE_URL, max_overflow=POOL_SIZE)"),
            {"step3_pool_size_uses_variable": "went to `max_overflow`"}, avoid=("typed in",)),
    Mistake("pool_size_given_to_pool_timeout", 3,
            engine(IMPORT_ENGINE + "engine = create_async_engine(DATABASE_URL, pool_timeout=POOL_SIZE)"),
            {"step3_pool_size_uses_variable": "went to `pool_timeout`"}, avoid=("typed in",)),
    Mistake("rows_from_the_pool", 4, step4(route(returns="[dict(row) for row in engine.pool]")),
            each(REQUESTS, "the engine's pool"), avoid=GENERIC),
    # create_async_engine's arguments mixed up
    Mistake("engine_arguments_swapped", 3,
            engine(IMPORT_ENGINE + "engine = create_async_engine(POOL_SIZE, pool_size=DATABASE_URL)"),
            each(STEP3_CELLS, "takes the URL as its first argument"), avoid=GENERIC),
    Mistake("engine_size_as_url", 3, engine(IMPORT_ENGINE + "engine = create_async_engine(POOL_SIZE)"),
            each(STEP3_CELLS, "takes the URL as its first argument"), avoid=GENERIC),
    Mistake("engine_url_as_size", 3,
            engine(IMPORT_ENGINE + "engine = create_async_engine(DATABASE_URL, pool_size=DATABASE_URL)"),
            each(STEP3_CELLS, "`pool_size` got a string"), avoid=GENERIC),
    Mistake("engine_size_as_text", 3,
            engine(IMPORT_ENGINE + "engine = create_async_engine(DATABASE_URL, pool_size=str(POOL_SIZE))"),
            each(STEP3_CELLS, "`pool_size` got a string"), avoid=GENERIC),
]


def says(cells: dict[str, tuple[bool, str]], gid: str, words: str) -> bool:
    """The cell's message has the words; or it points to a message above that has them (a
    check may refer to the earlier cell that already explained the same mistake).
    `cells`: grade_id -> (full marks, message), in notebook order."""
    message = cells[gid][1].lower()
    if words.lower() in message:
        return True
    if "above" not in message:
        return False
    order = list(cells)
    return any(words.lower() in cells[earlier][1].lower()
               for earlier in order[:order.index(gid)] if not cells[earlier][0])


def problems(mistake: Mistake, cells: dict[str, tuple[bool, str]]) -> list[str]:
    """What is wrong with how a mistake was graded ([] when it lost exactly its cells, each
    saying its words). `cells`: grade_id -> (full marks, message), in notebook order."""
    lost = {gid for gid, (full, _) in cells.items() if not full}
    out = []
    if lost - set(mistake.loses):
        out.append(f"lost cells it should keep: {sorted(lost - set(mistake.loses))}")
    if set(mistake.loses) - lost:
        out.append(f"kept cells it should lose: {sorted(set(mistake.loses) - lost)}")
    for gid, words in mistake.loses.items():
        if gid in lost and not says(cells, gid, words):
            out.append(f"{gid}: expected {words!r} in {cells[gid][1]!r}")
    for gid in sorted(lost):
        for word in mistake.avoid:
            if word.lower() in cells[gid][1].lower():
                out.append(f"{gid}: must not say {word!r}: {cells[gid][1]!r}")
    return out
