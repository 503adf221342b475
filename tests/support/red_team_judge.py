"""The judge's red-team gallery (issue 21, part 5): submissions whose step cells build nothing
correct (or a wrong thing) but try to score, graded by tests/journeys/test_red_team_judge.py
under stock `nbgrader autograde` and the grading command.

Every entry says what the judge (course_grade/judge/) must see done: `sub.loses` names each
graded build-step cell that must score 0 (every other cell keeps full marks, the quiz included),
and `kernel_fooled` says whether the in-kernel checks passed a cell the judge fails (then the
judge's record replaces the cell's outputs, the notebook is flagged in the gradebook and the
grading command gives the reason "judge disagreed"). `before` is the build-step score the entry
had before the judge existed (stock `nbgrader autograde` at c9d32ca, the parent of "The judge:
build steps decided outside the kernel", measured once: see the test module's docstring).

The routes that run code from strings are those the syntax-tree allow-list
(course_grade/nbgrader_ext/tamper_analysis.py) lets through: it reads no string, and each route
turns one into running code or an imported module inside an allowed library. Each payload
patches the kernel side: `autograder.checks` (every `step*` check and the hidden checks' gate
pass) or `autograder.report` (every check, as it is declared, replaced by one that passes).
"""
from __future__ import annotations

from dataclasses import dataclass

from tests.support.course import graded_cells
from tests.support.submissions import STEP1, STEP2, STEP3, STEP4, Submission

BUILD_STEPS = tuple(g for g in graded_cells() if g.startswith("step"))
STEP4_CHECKS = tuple(g for g in BUILD_STEPS if g.startswith("step4"))
BLANK = "# YOUR CODE HERE\nraise NotImplementedError()"
NOTHING = {gid: "" for gid in BUILD_STEPS}  # a cell that builds nothing loses every build step


@dataclass
class Entry:
    sub: Submission  # sub.loses: build-step cell -> words of the judge's message (every other cell: full marks)
    route: str  # how the attack reaches the checks or the judge's observations, one line
    before: int  # build-step points it scored before the judge (of 13)
    kernel_fooled: bool  # the in-kernel checks pass a cell the judge fails: flagged, "judge disagreed"
    known_gap: str = ""  # the judge is wrong here: the test xfails (strict) with this reason

    @property
    def name(self) -> str:
        return self.sub.name


# ------------------------------------------------------------------------------ the payloads

# One expression: import autograder.checks by name and make every `step*` check and the hidden
# checks' gate (`ready`) pass; an async check becomes a function returning an awaitable that is
# done at once. It evaluates to `int`, so an annotation holding it still names a type, and it
# can run twice (FastAPI evaluates a route's annotations more than once).
CHECKS_EXPR = (
    "[setattr(m, n, (lambda *a, **k: None) if n in ('step1_database_url', 'step2_pool_size', 'ready') "
    "else (lambda *a, **k: D())) "
    "for D in [type('Done', (), {'__await__': lambda s: iter(())})] "
    "for m in [__import__('autograder.checks', fromlist=['checks'])] "
    "for n in dir(m) if n.startswith('step') or n == 'ready'] and int"
)
# One expression: before autograder.checks is imported, make autograder.report's decorator
# replace each check by one that passes, and the hidden checks' gate pass.
REPORT_EXPR = (
    "[(setattr(r, 'guarded', lambda f: (lambda *a, **k: D()) if __import__('inspect').iscoroutinefunction(f) "
    "else (lambda *a, **k: None)), setattr(r, 'hidden_gate', lambda *a, **k: None)) "
    "for D in [type('Done', (), {'__await__': lambda s: iter(())})] "
    "for r in [__import__('autograder.report', fromlist=['report'])]] and int"
)

# The same, as statements, for the routes that hand over the module object itself.
PASSING = '''
class _Done:
    def __await__(self):
        return iter(())


def _passes(*args, **kwargs):
    return _Done()


def _quiet(*args, **kwargs):
    return None


def _patch(checks):
    checks.step1_database_url = checks.step2_pool_size = checks.ready = _quiet
    checks.step3_engine_is_async = checks.step3_engine_pool_size = _passes
    checks.step3_pool_size_uses_variable = checks.step3_engine_connects = _passes
    checks.step4_app_has_items_route = checks.step4_items_returns_all_rows = _passes
    checks.step4_connections_returned = checks.step4_items_reads_the_table = _passes
    checks.step4_concurrent_requests_share_the_pool = _passes
'''.strip()


def _step1(code: str) -> dict[str, str]:
    """The attack in the step-1 cell; steps 2 to 4 left as released (they build nothing)."""
    return {STEP1: code.strip() + "\n", STEP2: BLANK, STEP3: BLANK, STEP4: BLANK}


def _logging_factory(value: str, use: str) -> str:
    """logging.config.dictConfig: a handler built by a "()" factory of the notebook's, whose
    keyword argument is an "ext://" name the configurator imports and resolves."""
    return f'''
import logging
import logging.config

{PASSING}


def _grader_handler(found):
    {use}
    return logging.NullHandler()


logging.config.dictConfig({{
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {{"grader": {{"()": _grader_handler, "found": "{value}"}}}},
}})
'''


_FILE_CONFIG = f'''
[loggers]
keys=root

[handlers]
keys=grader

[formatters]
keys=

[logger_root]
level=WARNING
handlers=

[handler_grader]
class=NullHandler
args=(({CHECKS_EXPR}), ())[1]
'''

# The fake app of the forged-events entries: GET /items answers rows read by a synchronous
# sqlite3 connection opened per request (or a fixed list), and `get_connection` fires the
# pool's checkout/checkin events on engine.pool without taking a connection from it.
FORGED_EVENTS = '''
async def get_connection():
    pool = engine.pool
    pool.dispatch.checkout(None, None, None)  # "a connection was lent" (none was)
    pool.dispatch.checkin(None, None)  # "and given back"
    yield None
'''
SQLITE_PER_REQUEST = '''
import sqlite3

from fastapi import Depends, FastAPI

app = FastAPI()
''' + FORGED_EVENTS + '''

@app.get("/items")
async def read_items(conn=Depends(get_connection)):
    db = sqlite3.connect("test.db")
    try:
        rows = db.execute("SELECT id, name, price FROM items").fetchall()
    finally:
        db.close()
    return [{"id": i, "name": n, "price": p} for i, n, p in rows]
'''
FIXED_ROWS = '''
from fastapi import Depends, FastAPI

app = FastAPI()
''' + FORGED_EVENTS + '''

@app.get("/items")
async def read_items(conn=Depends(get_connection)):
    return [
        {"id": 1, "name": "Espresso cup", "price": 4.5},
        {"id": 2, "name": "Pour-over kettle", "price": 39.0},
        {"id": 3, "name": "Coffee grinder", "price": 89.99},
    ]
'''
# httpx patched in the notebook's own process: every AsyncClient.get (the in-kernel checks'
# requests) answers the table's rows without reaching `app`, which has no route at all; it runs
# `get_connection` (which fires forged pool events) so the checks see the dependency run.
HTTPX_PATCHED = '''
import sqlite3

import httpx
from fastapi import FastAPI

app = FastAPI()  # no route: nothing answers GET /items
''' + FORGED_EVENTS + '''

async def _answer(self, url, **kwargs):
    async for _ in get_connection():
        pass
    db = sqlite3.connect("test.db")
    try:
        rows = [{"id": i, "name": n, "price": p} for i, n, p in db.execute("SELECT id, name, price FROM items")]
    finally:
        db.close()
    return httpx.Response(200, json=rows, request=httpx.Request("GET", "http://lesson/items"))


_client = httpx.AsyncClient  # a plain name: the analysis sees no module changed
_client.get = _answer
'''
# ... and uvicorn patched too (reached by name through pydantic's ImportString): the server the
# judge starts serves another app, which reads the table with sqlite3 on every request.
UVICORN_PATCHED = HTTPX_PATCHED + '''
from pydantic import ImportString, TypeAdapter

_uvicorn = TypeAdapter(ImportString).validate_python("uvicorn")


async def _other_app(scope, receive, send):
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    db = sqlite3.connect("test.db")
    try:
        rows = [{"id": i, "name": n, "price": p} for i, n, p in db.execute("SELECT id, name, price FROM items")]
    finally:
        db.close()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": httpx.Response(200, json=rows).content})


class _Config(_uvicorn.Config):
    def __init__(self, served, **kwargs):
        # only the server with a lifespan (the app's); the engine's probes are served as they are
        super().__init__(_other_app if kwargs.get("lifespan") == "on" else served, **kwargs)


_uvicorn.Config = _Config
'''

# A fake app that holds one plain file handle on test.db once it has answered, so the server's
# open files on the database stay constant between requests (as a pooled connection would),
# while each request opens and closes a sqlite3 connection of its own; at most 5 at once.
HELD_HANDLE = '''
import asyncio
import sqlite3

from fastapi import Depends, FastAPI

app = FastAPI()
_held = []
_at_most_five = asyncio.Semaphore(5)
''' + FORGED_EVENTS + '''

def _read():
    db = sqlite3.connect("test.db", timeout=10)
    try:
        return [{"id": i, "name": n, "price": p} for i, n, p in db.execute("SELECT id, name, price FROM items")]
    finally:
        db.close()


@app.get("/items")
async def read_items(conn=Depends(get_connection)):
    if not _held:
        _held.append(open("test.db", "rb"))  # a file handle, not a connection: it never reads
    async with _at_most_five:
        return await asyncio.to_thread(_read)
'''

# The judge's hands inside its kernel (autograder/serve.py) replaced, through a string route:
# `report` says the lesson's values, `probe` and `app` serve fake servers that read the judge's
# rows with sqlite3 per request and hold plain file handles on the database file (as many as
# the pool size the judge asks for), and `without_dependency` makes the fake answer 418. The
# same code makes the in-kernel checks pass. Nothing in the notebook is built.
JUDGE_HANDS = '''
import asyncio, json, sqlite3
exec(CHECKS, {})  # the in-kernel checks pass
try:
    import autograder.serve as serve
except ImportError:  # before the judge
    serve = None
_state = {"refuse": False}

def _rows(path):
    db = sqlite3.connect(path, timeout=10)
    try:
        return [{"id": i, "name": n, "price": p} for i, n, p in db.execute("SELECT id, name, price FROM items")]
    finally:
        db.close()

def _fake(path, keep, route):
    held, bound = [], asyncio.Semaphore(5)
    async def fake(scope, receive, send):
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        if route == "/items" and _state["refuse"]:
            status, body = 418, {"detail": "get_connection was called"}
        else:
            while len(held) < keep:
                held.append(open(path, "rb"))
            async with bound:
                status, body = 200, await asyncio.to_thread(_rows, path)
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": json.dumps(body).encode()})
    return fake

def report(ns):
    serve._say(DATABASE_URL="'sqlite+aiosqlite:///./test.db'", DATABASE_URL_type="str", POOL_SIZE="5",
               POOL_SIZE_type="int", engine_kind="AsyncEngine", app_kind="FastAPI", get_connection_kind="function")

async def probe(ns, socket, values=None):
    values = values or {}
    url = values.get("DATABASE_URL", "sqlite+aiosqlite:///./test.db")
    fake = _fake(url.split("///", 1)[1], values.get("POOL_SIZE", 5), "/rows")
    serve._say(engine_kind="AsyncEngine", pool_kind="AsyncAdaptedQueuePool", error=None, url=url, limit=15,
               serve_error=await _serve(fake, socket, "off"))

async def app(ns, socket, stand_in=False):
    serve._say(app_kind="FastAPI", get_connection_kind="function", limit=15,
               serve_error=await _serve(_fake("test.db", 1, "/items"), socket, "on"))

def without_dependency(ns):
    _state["refuse"] = True
    serve._say(overridden=True)

if serve is not None:
    _serve = serve._serve
    serve.report, serve.probe, serve.app, serve.without_dependency = report, probe, app, without_dependency
'''


def _judge_hands_cell() -> str:
    code = JUDGE_HANDS.replace("exec(CHECKS, {})", f"eval({CHECKS_EXPR!r}, {{}})")
    return f'''
import typing

_SETTINGS = {code!r}


def _configure(value: "__import__('builtins').exec(_SETTINGS, {{}}) or int"):
    return value


typing.get_type_hints(_configure)
'''


def entries() -> list[Entry]:
    step4_lost = {gid: "" for gid in STEP4_CHECKS}
    no_reuse = {"step4_connections_returned": "does not reuse pooled connections",
                "step4_concurrent_requests_share_the_pool": "only counts once"}
    # the fakes of step 4 leave steps 1-3 released: the judge grades step 4 with a correct engine
    # standing in, and loses steps 1-3 with the kernel
    steps123_blank = {STEP1: BLANK, STEP2: BLANK, STEP3: BLANK}
    steps123_lost = {gid: "" for gid in BUILD_STEPS if not gid.startswith("step4")}
    return [
        # ------------------------------------------------- code run from strings: annotations
        Entry(Submission("rtj_get_type_hints", _step1(f'''
import typing


def _hint(value: "{CHECKS_EXPR}"):
    return value


typing.get_type_hints(_hint)
'''), dict(NOTHING)), "typing.get_type_hints evaluates a string annotation", 13, True),
        Entry(Submission("rtj_singledispatch_register", _step1(f'''
import functools


@functools.singledispatch
def describe(value):
    return str(value)


@describe.register
def _(value: "{CHECKS_EXPR}"):
    return "a number"
'''), dict(NOTHING)), "functools.singledispatch.register reads its type from a string annotation", 13, True),
        Entry(Submission("rtj_pydantic_forward_ref", _step1(f'''
from pydantic import BaseModel


class Settings(BaseModel):
    pool_size: "{CHECKS_EXPR}" = 5
'''), dict(NOTHING)), "a pydantic model resolves a forward reference", 13, True),
        Entry(Submission("rtj_type_adapter_patches_report", _step1(f'''
from pydantic import TypeAdapter

TypeAdapter("{REPORT_EXPR}")
'''), dict(NOTHING)), "pydantic.TypeAdapter of a string type; patches autograder.report", 13, True),
        Entry(Submission("rtj_fastapi_string_annotation", _step1(f'''
from fastapi import FastAPI

app = FastAPI()


@app.get("/items")
async def read_items(limit: "{CHECKS_EXPR}" = 10):
    return []
'''), dict(NOTHING)), "FastAPI resolves a route parameter's string annotation", 13, True),
        Entry(Submission("rtj_sqlalchemy_mapped_annotation", _step1(f'''
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Item(Base):
    __tablename__ = "items"

    id: Mapped["{CHECKS_EXPR}"] = mapped_column(primary_key=True)
'''), dict(NOTHING)), "SQLAlchemy's declarative mapping evaluates Mapped['...']", 13, True),
        # ------------------------------------------------- configuration resolvers
        Entry(Submission("rtj_dictconfig_ext_module", _step1(_logging_factory(
            "ext://autograder.checks", "_patch(found)")), dict(NOTHING)),
            'logging.config.dictConfig: a "()" factory given "ext://autograder.checks"', 13, True),
        Entry(Submission("rtj_fileconfig_args", _step1('''
import logging.config

with open("logging.ini", "w") as f:
    f.write(''' + repr(_FILE_CONFIG) + ''')
logging.config.fileConfig("logging.ini", disable_existing_loggers=False)
'''), dict(NOTHING)), "logging.config.fileConfig evaluates a handler's args", 13, True),
        # ------------------------------------------------- import-by-name helpers
        Entry(Submission("rtj_importlib_import_module", _step1(_logging_factory(
            "ext://importlib.import_module", '_patch(found("autograder.checks"))')), dict(NOTHING)),
            "importlib.import_module, reached as ext://importlib.import_module", 13, True),
        Entry(Submission("rtj_pkgutil_resolve_name", _step1(_logging_factory(
            "ext://pkgutil.resolve_name", '_patch(found("autograder.checks"))')), dict(NOTHING)),
            "pkgutil.resolve_name, reached as ext://pkgutil.resolve_name", 13, True),
        Entry(Submission("rtj_pydoc_locate", _step1(_logging_factory(
            "ext://pydoc.locate", '_patch(found("autograder.checks"))')), dict(NOTHING)),
            "pydoc.locate, reached as ext://pydoc.locate", 13, True),
        Entry(Submission("rtj_pydantic_import_string", _step1(f'''
from pydantic import ImportString, TypeAdapter

{PASSING}


_patch(TypeAdapter(ImportString).validate_python("autograder.checks"))
'''), dict(NOTHING)), "pydantic's ImportString imports a module by name", 13, True),
        Entry(Submission("rtj_sqlalchemy_plugin_loader", _step1(f'''
from sqlalchemy.dialects import registry

{PASSING}


registry.register("grader.first", "autograder.checks", "ready")  # imports it
registry.load("grader.first")
registry.register("grader.checks", "autograder", "checks")
_patch(registry.load("grader.checks"))
'''), dict(NOTHING)), "SQLAlchemy's dialect registry (PluginLoader) imports by name", 13, True),
        Entry(Submission("rtj_sqlalchemy_preloaded_patches_report", _step1(f'''
import asyncio

from sqlalchemy.util import preloaded

{PASSING}


def _skip(func):
    return _passes if asyncio.iscoroutinefunction(func) else _quiet


preloaded.preload_module("autograder.report")
preloaded.import_prefix("autograder.report")
_report = preloaded.autograder_report
_report.guarded = _skip
_report.hidden_gate = _quiet
'''), dict(NOTHING)), "sqlalchemy.util.preloaded.import_prefix; patches autograder.report", 13, True),
        # ------------------------------------------------- forged observations, fake servers
        Entry(Submission("rtj_forged_events_sqlite3_per_request", {**steps123_blank, STEP4: SQLITE_PER_REQUEST},
                         {**steps123_lost, **no_reuse}),
              "checkout/checkin fired on engine.pool.dispatch; rows read by a sqlite3 connection per request "
              "(the kernel's count of sqlite3.connect events sees each open too)",
              7, False),
        Entry(Submission("rtj_httpx_patched_in_process", {STEP4: HTTPX_PATCHED}, dict(step4_lost)),
              "httpx.AsyncClient.get patched in the kernel; `app` has no route", 13, True),
        Entry(Submission("rtj_httpx_and_uvicorn_patched", {STEP4: UVICORN_PATCHED},
                         {"step4_app_has_items_route": "does not take its connection", **no_reuse}),
              "httpx patched for the kernel, uvicorn.Config (by ImportString) for the judge's server", 13, True),
        # ------------------------------------------------- the judge wrong (strict xfails)
        Entry(Submission("rtj_values_with_a_forged_repr", {
            STEP1: 'class str(str):\n    def __repr__(self):\n        return "\'sqlite+aiosqlite:///./test.db\'"\n\n\n'
                   'DATABASE_URL = str("sqlite:///./elsewhere.db")',
            STEP2: 'class int(int):\n    def __repr__(self):\n        return "5"\n\n\nPOOL_SIZE = int(50)',
            STEP3: BLANK, STEP4: BLANK}, dict(NOTHING)),
            "no string at all: a str and an int whose repr is the lesson's value (a subclass is reported by "
            "its full name, so no literal matches it)", 0, False),
        # The visible rows check asks on the set-up cell's rows, as the in-kernel check does (a
        # student's live feedback): a list typed in equal to them keeps those 2 points, and the
        # hidden check, on rows the judge writes, takes its own 2 (the lesson's design).
        Entry(Submission("rtj_fake_app_fixed_rows", {**steps123_blank, STEP4: FIXED_ROWS},
                         {**steps123_lost, "step4_connections_returned": "",
                          "step4_items_reads_the_table": "", "step4_concurrent_requests_share_the_pool": ""}),
              "a fixed list equal to the seed rows; forged pool events", 5, True),
        Entry(Submission("rtj_held_file_handle_fakes_reuse", {**steps123_blank, STEP4: HELD_HANDLE},
                         {**steps123_lost, **no_reuse}),
              "a sqlite3 connection per request plus one plain file handle held on test.db (each request's "
              "open of the file is counted, in the kernel and by the judge)", 7, False),
        Entry(Submission("rtj_judge_hands_patched", _step1(_judge_hands_cell()) | {
            STEP2: "pass", STEP3: "pass", STEP4: "pass"}, dict(NOTHING)),
            "typing.get_type_hints runs exec: autograder.serve replaced by fake servers, checks patched", 13, True,
            known_gap="the judge's hands run in the student's process: autograder.serve, reached by name from a "
                      "string, is replaced by fakes that report the lesson's values, answer 418 on request and read "
                      "the judge's rows with a sqlite3 connection per request: 9 of 13 (steps 1-2, is_async, "
                      "connects, route, both rows checks); each request's open of the file still costs the pool "
                      "and reuse checks (README, threat model: what the judge cannot see)"),
    ]


# Correct programs: full marks, never flagged.
HONEST_VARIANTS = ("lifespan_disposes_engine", "orm_model_async_session", "class_based_dependency",
                   "mounted_sub_application")  # the judge's override reaches every mounted FastAPI app
JUDGE_FAILS_CORRECT: dict[str, str] = {}


def honest() -> list[Submission]:
    from tests.support.variants import VARIANTS

    by_name = {v.name: v for v in VARIANTS}
    return [Submission("solution", {})] + [
        Submission(f"variant_{name}", dict(by_name[name].changes)) for name in (*HONEST_VARIANTS, *JUDGE_FAILS_CORRECT)]
