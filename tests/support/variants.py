"""Correct ways of writing the lesson's four build steps: each must earn full marks.

Written in the idioms of FastAPI's and SQLAlchemy's own documentation. Each variant changes
one or more solution cells (grade_id -> code); the cells it does not name keep the solution.
tests/autograder/test_catalogue.py grades every one with the in-shell harness (tests/support/harness.py).
"""
from __future__ import annotations

from dataclasses import dataclass, field

STEP1 = "step1_database_url_solution"
STEP2 = "step2_pool_size_solution"
STEP3 = "step3_engine_solution"
STEP4 = "step4_app_solution"


@dataclass(frozen=True)
class Variant:
    name: str
    changes: dict[str, str]
    note: str = ""
    tags: tuple[str, ...] = field(default=())


HEAD = '''
from typing import Annotated

from fastapi import Depends, FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

app = FastAPI()
'''

DEPENDENCY = '''

async def get_connection():
    async with engine.connect() as conn:
        yield conn
'''


ROUTE = '''

@app.get("/items")
async def read_items(conn: Annotated[AsyncConnection, Depends(get_connection)]):
    result = await conn.execute(text("SELECT * FROM items"))
    return result.mappings().all()
'''

LIFESPAN_HEAD = '''
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
'''


def step4(body: str, head: str = HEAD, dependency: str = DEPENDENCY) -> dict[str, str]:
    return {STEP4: (head + dependency + body).strip()}


VARIANTS = [
    Variant("solution", {}),

    # ------------------------------------------------------------------ steps 1 and 2
    Variant("url_annotated_and_size_annotated", {STEP1: 'DATABASE_URL: str = "sqlite+aiosqlite:///./test.db"',
                                                 STEP2: "POOL_SIZE: int = 5"}),
    Variant("url_from_parts", {STEP1: '''
DB_FILE = "./test.db"
DATABASE_URL = f"sqlite+aiosqlite:///{DB_FILE}"
'''.strip()}),
    Variant("url_from_environment_with_default", {STEP1: '''
import os

DATABASE_URL = os.environ.get("DATABASE_URL", "sqlite+aiosqlite:///./test.db")
'''.strip()}),
    Variant("size_from_a_named_default", {STEP2: '''
DEFAULT_POOL_SIZE = 5
POOL_SIZE = DEFAULT_POOL_SIZE  # connections kept open for reuse
'''.strip()}),

    # ----------------------------------------------------------------------------- step 3
    Variant("engine_url_keyword", {STEP3: '''
from sqlalchemy.ext.asyncio import create_async_engine

engine = create_async_engine(url=DATABASE_URL, pool_size=POOL_SIZE)
'''.strip()}),
    Variant("engine_extra_pool_arguments", {STEP3: '''
from sqlalchemy.ext.asyncio import create_async_engine

engine = create_async_engine(
    DATABASE_URL,
    pool_size=POOL_SIZE,
    max_overflow=10,
    pool_pre_ping=True,
    pool_timeout=30,
    pool_recycle=1800,
)
'''.strip()}),
    Variant("engine_annotated", {STEP3: '''
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

engine: AsyncEngine = create_async_engine(DATABASE_URL, pool_size=POOL_SIZE)
'''.strip()}),
    Variant("engine_module_import", {STEP3: '''
import sqlalchemy.ext.asyncio as sa_async

engine = sa_async.create_async_engine(DATABASE_URL, pool_size=POOL_SIZE, echo=False)
'''.strip()}),
    Variant("engine_options_dict", {STEP3: '''
from sqlalchemy.ext.asyncio import create_async_engine

engine_options = {"pool_size": POOL_SIZE, "max_overflow": 10}
engine = create_async_engine(DATABASE_URL, **engine_options)
'''.strip()}, note="pool size passed indirectly, through a dict built from POOL_SIZE"),
    Variant("engine_size_alias", {STEP3: '''
from sqlalchemy.ext.asyncio import create_async_engine

size = POOL_SIZE
engine = create_async_engine(DATABASE_URL, pool_size=size)
'''.strip()}, note="pool size passed indirectly, through another name"),
    Variant("engine_factory_function", {STEP3: '''
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine


def make_engine(url: str, size: int) -> AsyncEngine:
    return create_async_engine(url, pool_size=size)


engine = make_engine(DATABASE_URL, POOL_SIZE)
'''.strip()}),

    # ----------------------------------------------------------------------------- step 4
    Variant("default_depends_mappings_all", step4('''

@app.get("/items")
async def read_items(conn: AsyncConnection = Depends(get_connection)):
    result = await conn.execute(text("SELECT * FROM items"))
    return result.mappings().all()
''')),
    Variant("annotated_type_alias", step4('''

Conn = Annotated[AsyncConnection, Depends(get_connection)]


@app.get("/items")
async def read_items(conn: Conn) -> list[dict]:
    result = await conn.execute(text("SELECT * FROM items"))
    return [dict(row) for row in result.mappings()]
''')),
    Variant("api_router", step4('''

from fastapi import APIRouter

router = APIRouter()


@router.get("/items")
async def read_items(conn: Annotated[AsyncConnection, Depends(get_connection)]):
    result = await conn.execute(text("SELECT * FROM items"))
    return result.mappings().all()


app.include_router(router)
''')),
    Variant("api_router_with_prefix", step4('''

from fastapi import APIRouter

router = APIRouter(prefix="/items", tags=["items"])


@router.get("")
async def read_items(conn: Annotated[AsyncConnection, Depends(get_connection)]):
    result = await conn.execute(text("SELECT * FROM items"))
    return result.mappings().all()


app.include_router(router)
''')),
    Variant("add_api_route", step4('''

async def read_items(conn: Annotated[AsyncConnection, Depends(get_connection)]):
    result = await conn.execute(text("SELECT * FROM items"))
    return [row._asdict() for row in result]


app.add_api_route("/items", read_items, methods=["GET"])
''')),
    Variant("mounted_sub_application", step4('''

items_api = FastAPI()


@items_api.get("/items")
async def read_items(conn: Annotated[AsyncConnection, Depends(get_connection)]):
    result = await conn.execute(text("SELECT * FROM items"))
    return result.mappings().all()


app.mount("/", items_api)  # app serves everything items_api serves
'''), note="the route lives on a sub-application mounted at / on app"),
    Variant("api_route_decorator_with_docs", step4('''

@app.api_route("/items", methods=["GET"], summary="List every item", tags=["items"], status_code=200)
async def read_items(conn: Annotated[AsyncConnection, Depends(get_connection)]):
    result = await conn.execute(text("SELECT * FROM items"))
    return [dict(row._mapping) for row in result]
''')),
    Variant("response_model_pydantic", step4('''

from pydantic import BaseModel


class Item(BaseModel):
    id: int
    name: str
    price: float


@app.get("/items", response_model=list[Item])
async def read_items(conn: Annotated[AsyncConnection, Depends(get_connection)]):
    result = await conn.execute(text("SELECT id, name, price FROM items"))
    return result.mappings().all()
''')),
    Variant("return_pydantic_models", step4('''

from pydantic import BaseModel, ConfigDict


class Item(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    price: float


@app.get("/items")
async def read_items(conn: Annotated[AsyncConnection, Depends(get_connection)]) -> list[Item]:
    result = await conn.execute(text("SELECT * FROM items"))
    return [Item.model_validate(row) for row in result]
''')),
    Variant("core_table_select", step4('''

from sqlalchemy import Column, Float, Integer, MetaData, String, Table, select

metadata = MetaData()
items_table = Table(
    "items",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String, nullable=False),
    Column("price", Float, nullable=False),
)


@app.get("/items")
async def read_items(conn: Annotated[AsyncConnection, Depends(get_connection)]):
    result = await conn.execute(select(items_table).order_by(items_table.c.id))
    return result.mappings().all()
''')),
    Variant("core_table_reflected_per_request", step4('''

from sqlalchemy import MetaData, Table, select


@app.get("/items")
async def read_items(conn: Annotated[AsyncConnection, Depends(get_connection)]):
    items_table = await conn.run_sync(lambda sync_conn: Table("items", MetaData(), autoload_with=sync_conn))
    result = await conn.execute(select(items_table))
    return [dict(row) for row in result.mappings()]
''')),
    Variant("orm_model_async_session", step4('''

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Item(Base):
    __tablename__ = "items"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]
    price: Mapped[float]


@app.get("/items")
async def read_items(session: Annotated[AsyncSession, Depends(get_connection)]):
    items = (await session.scalars(select(Item))).all()
    return [{"id": i.id, "name": i.name, "price": i.price} for i in items]
''', dependency='''

from sqlalchemy.ext.asyncio import AsyncSession


async def get_connection():
    async with AsyncSession(engine) as session:
        yield session
''')),
    Variant("async_sessionmaker_text", step4('''

@app.get("/items")
async def read_items(session: Annotated[AsyncSession, Depends(get_connection)]):
    result = await session.execute(text("SELECT * FROM items"))
    return result.mappings().all()
''', dependency='''

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

SessionLocal = async_sessionmaker(engine, expire_on_commit=False)


async def get_connection():
    async with SessionLocal() as session:
        yield session
''')),
    Variant("session_connection", step4('''

@app.get("/items")
async def read_items(conn: Annotated[AsyncConnection, Depends(get_connection)]):
    result = await conn.execute(text("SELECT * FROM items"))
    return result.mappings().all()
''', dependency='''

from sqlalchemy.ext.asyncio import AsyncSession


async def get_connection():
    async with AsyncSession(engine) as session:
        yield await session.connection()
''')),
    Variant("engine_begin", step4('''

@app.get("/items")
async def read_items(conn=Depends(get_connection)):
    result = await conn.execute(text("SELECT id, name, price FROM items ORDER BY id"))
    return result.mappings().all()
''', dependency='''

async def get_connection():
    async with engine.begin() as conn:  # a transaction, committed when the block ends
        yield conn
''')),
    Variant("try_finally_close", step4('''

@app.get("/items")
async def read_items(conn: Annotated[AsyncConnection, Depends(get_connection)]):
    result = await conn.execute(text("SELECT * FROM items"))
    return result.mappings().all()
''', dependency='''

async def get_connection():
    conn = await engine.connect()
    try:
        yield conn
    finally:
        await conn.close()
''')),
    Variant("asynccontextmanager_helper", step4('''

@app.get("/items")
async def read_items(conn: Annotated[AsyncConnection, Depends(get_connection)]):
    result = await conn.execute(text("SELECT * FROM items"))
    return result.mappings().all()
''', dependency='''

from contextlib import asynccontextmanager


@asynccontextmanager
async def borrowed_connection():
    async with engine.connect() as conn:
        yield conn


async def get_connection():
    async with borrowed_connection() as conn:
        yield conn
''')),
    Variant("class_based_dependency", step4('''

@app.get("/items")
async def read_items(conn: Annotated[AsyncConnection, Depends(get_connection)]):
    result = await conn.execute(text("SELECT * FROM items"))
    return result.mappings().all()
''', dependency='''

class ConnectionDependency:
    """A callable class: FastAPI calls the instance, as it would a function."""

    async def __call__(self):
        async with engine.connect() as conn:
            yield conn


get_connection = ConnectionDependency()
''')),
    Variant("exec_driver_sql", step4('''

@app.get("/items")
async def read_items(conn: Annotated[AsyncConnection, Depends(get_connection)]):
    result = await conn.exec_driver_sql("SELECT * FROM items")
    return [dict(row._mapping) for row in result.fetchall()]
''')),
    Variant("explicit_columns_order_by_zip_keys", step4('''

@app.get("/items")
async def read_items(conn: Annotated[AsyncConnection, Depends(get_connection)]):
    result = await conn.execute(text("SELECT id, name, price FROM items ORDER BY id"))
    columns = list(result.keys())
    return [dict(zip(columns, row)) for row in result.fetchall()]
''')),
    Variant("stream_results", step4('''

@app.get("/items")
async def read_items(conn: Annotated[AsyncConnection, Depends(get_connection)]):
    result = await conn.stream(text("SELECT * FROM items"))
    return [dict(row) async for row in result.mappings()]
''')),
    Variant("lifespan_disposes_engine", step4('''

@app.get("/items")
async def read_items(conn: Annotated[AsyncConnection, Depends(get_connection)]):
    result = await conn.execute(text("SELECT * FROM items"))
    return result.mappings().all()
''', head='''
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends, FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection


@asynccontextmanager
async def lifespan(app: FastAPI):
    yield
    await engine.dispose()  # close the pooled connections when the app stops


app = FastAPI(lifespan=lifespan)
''')),

    # the engine made or attached in the app's lifespan (FastAPI's "Lifespan Events"): the checks
    # start the app as a server does, and count the pool the app really uses
    Variant("lifespan_engine_on_app_state", step4(ROUTE, head=LIFESPAN_HEAD + '''

@asynccontextmanager
async def lifespan(app: FastAPI):
    app.state.engine = create_async_engine(DATABASE_URL, pool_size=POOL_SIZE)
    yield
    await app.state.engine.dispose()


app = FastAPI(lifespan=lifespan)
''', dependency='''

async def get_connection(request: Request):
    async with request.app.state.engine.connect() as conn:
        yield conn
'''), note="a second engine, made at startup: step 3's `engine` is never used by the app"),
    Variant("lifespan_yields_state", step4(ROUTE, head=LIFESPAN_HEAD + '''

@asynccontextmanager
async def lifespan(app: FastAPI):
    app_engine = create_async_engine(DATABASE_URL, pool_size=POOL_SIZE)
    yield {"engine": app_engine}  # lifespan state: each request's request.state
    await app_engine.dispose()


app = FastAPI(lifespan=lifespan)
''', dependency='''

async def get_connection(request: Request):
    async with request.state.engine.connect() as conn:
        yield conn
''')),
    Variant("lifespan_attaches_step3_engine", step4(ROUTE, head=LIFESPAN_HEAD + '''

@asynccontextmanager
async def lifespan(app: FastAPI):
    app.state.engine = engine  # step 3's engine, one pool for the whole app
    yield
    await engine.dispose()


app = FastAPI(lifespan=lifespan)
''', dependency='''

async def get_connection(request: Request):
    async with request.app.state.engine.connect() as conn:
        yield conn
''')),
    Variant("lifespan_engine_sub_dependency", step4(ROUTE, head=LIFESPAN_HEAD + '''
from sqlalchemy.ext.asyncio import AsyncEngine


@asynccontextmanager
async def lifespan(app: FastAPI):
    app.state.engine = create_async_engine(DATABASE_URL, pool_size=POOL_SIZE)
    try:
        yield
    finally:
        await app.state.engine.dispose()


app = FastAPI(lifespan=lifespan)
''', dependency='''

def get_engine(request: Request) -> AsyncEngine:
    return request.app.state.engine


async def get_connection(engine: Annotated[AsyncEngine, Depends(get_engine)]):
    async with engine.connect() as conn:
        yield conn
'''), note="a sub-dependency hands get_connection the lifespan's engine (its parameter shadows step 3's)"),
    Variant("lifespan_sessionmaker_on_app_state", step4('''

@app.get("/items")
async def read_items(session: Annotated[AsyncSession, Depends(get_connection)]):
    result = await session.execute(text("SELECT * FROM items"))
    return result.mappings().all()
''', head=LIFESPAN_HEAD + '''
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker


@asynccontextmanager
async def lifespan(app: FastAPI):
    app.state.sessions = async_sessionmaker(engine, expire_on_commit=False)
    yield
    await engine.dispose()


app = FastAPI(lifespan=lifespan)
''', dependency='''

async def get_connection(request: Request):
    async with request.app.state.sessions() as session:
        yield session
''')),
    Variant("lifespan_on_included_router", step4('''

router = APIRouter(lifespan=lifespan)


@router.get("/items")
async def read_items(conn: Annotated[AsyncConnection, Depends(get_connection)]):
    result = await conn.execute(text("SELECT * FROM items"))
    return result.mappings().all()


app.include_router(router)  # FastAPI runs the router's lifespan with the app's
''', head=LIFESPAN_HEAD + '''
from fastapi import APIRouter


@asynccontextmanager
async def lifespan(app: FastAPI):
    app.state.engine = create_async_engine(DATABASE_URL, pool_size=POOL_SIZE)
    yield
    await app.state.engine.dispose()


app = FastAPI()
''', dependency='''

async def get_connection(request: Request):
    async with request.app.state.engine.connect() as conn:
        yield conn
''')),
    Variant("startup_and_shutdown_events", step4(ROUTE, head=LIFESPAN_HEAD + '''
app = FastAPI()


@app.on_event("startup")  # FastAPI's older form of a lifespan (deprecated, still supported)
async def open_pool():
    app.state.engine = create_async_engine(DATABASE_URL, pool_size=POOL_SIZE)


@app.on_event("shutdown")
async def close_pool():
    await app.state.engine.dispose()
''', dependency='''

async def get_connection(request: Request):
    async with request.app.state.engine.connect() as conn:
        yield conn
''')),

    # reuse: correct ways of taking pooled connections, none of which opens a new one per request
    Variant("engine_lifo_pool_recycled", {STEP3: '''
from sqlalchemy.ext.asyncio import create_async_engine

engine = create_async_engine(DATABASE_URL, pool_size=POOL_SIZE, pool_use_lifo=True, pool_recycle=3600)
'''.strip()}),
    Variant("engine_without_overflow", {STEP3: '''
from sqlalchemy.ext.asyncio import create_async_engine

# at most POOL_SIZE connections: a request beyond them waits for one to come back
engine = create_async_engine(DATABASE_URL, pool_size=POOL_SIZE, max_overflow=0)
'''.strip()}),
    Variant("transaction_per_request", step4(ROUTE, dependency='''

async def get_connection():
    async with engine.connect() as conn, conn.begin():  # rolled back or committed at the end
        yield conn
''')),
    Variant("sessionmaker_begin", step4('''

@app.get("/items")
async def read_items(session: Annotated[AsyncSession, Depends(get_connection)]):
    result = await session.execute(text("SELECT * FROM items"))
    return result.mappings().all()
''', dependency='''

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

SessionLocal = async_sessionmaker(engine)


async def get_connection():
    async with SessionLocal.begin() as session:  # one transaction per request, committed at the end
        yield session
''')),
    Variant("return_connection_route_closes", step4('''

@app.get("/items")
async def read_items(conn: Annotated[AsyncConnection, Depends(get_connection)]):
    try:
        result = await conn.execute(text("SELECT * FROM items"))
        return result.mappings().all()
    finally:
        await conn.close()
''', dependency='''

async def get_connection():
    return await engine.connect()
''')),
    Variant("depends_no_cache_and_route_dependencies", step4('''

@app.get("/items", response_model=None)
async def read_items(conn: AsyncConnection = Depends(get_connection, use_cache=False)) -> list[dict]:
    rows = (await conn.execute(text("SELECT * FROM items"))).mappings().fetchall()
    return [dict(r) for r in rows]
''')),

    # a step's cell runs on its own: every name it uses is imported in it (or by an earlier
    # step's cell), whichever way (the lesson's read-only demo cell imports some of them too)
    Variant("imports_inside_the_functions", step4('''

@app.get("/items")
async def read_items(conn=Depends(get_connection)):
    from sqlalchemy import text

    result = await conn.execute(text("SELECT * FROM items"))
    return result.mappings().all()
''', head='''
from fastapi import Depends, FastAPI

app = FastAPI()
''')),
    Variant("module_imports_with_attributes", step4('''

@app.get("/items")
async def read_items(conn: sqlalchemy.ext.asyncio.AsyncConnection = fastapi.Depends(get_connection)):
    result = await conn.execute(sqlalchemy.text("SELECT * FROM items"))
    return result.mappings().all()
''', head='''
import fastapi
import sqlalchemy
import sqlalchemy.ext.asyncio

app = fastapi.FastAPI()
''')),
    Variant("star_imports", step4('''

@app.get("/items")
async def read_items(conn: AsyncConnection = Depends(get_connection)):
    result = await conn.execute(text("SELECT * FROM items"))
    return result.mappings().all()
''', head='''
from fastapi import *  # noqa: F403 - Depends, FastAPI (sqlalchemy's star would rebind `engine` to a module)
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

app = FastAPI()
''')),
    Variant("step4_imports_in_the_step3_cell", {STEP3: '''
from typing import Annotated

from fastapi import Depends, FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

engine = create_async_engine(DATABASE_URL, pool_size=POOL_SIZE)
'''.strip(), **step4(ROUTE, head="app = FastAPI()\n")}, note="the imports come with an earlier step's cell"),

    # GET /items answered at /items itself (the lesson's call does not follow a redirect)
    Variant("route_with_and_without_slash", step4('''

@app.get("/items")
@app.get("/items/")
async def read_items(conn: Annotated[AsyncConnection, Depends(get_connection)]):
    result = await conn.execute(text("SELECT * FROM items"))
    return result.mappings().all()
''')),
    Variant("redirect_slashes_off",
            step4(ROUTE, head=HEAD.replace("app = FastAPI()", "app = FastAPI(redirect_slashes=False)"))),
]
