"""Every class of beginner's mistake below is told its own cause, by name, whole and true:
autograder.explain and autograder.verdicts on the real errors the pinned FastAPI, SQLAlchemy
and aiosqlite raise.

Each case is a mistake of the catalogue (tests/support/mistakes.py), run here in-process: its
steps' code in one namespace, in a folder holding the lesson's `test.db`. A step cell that
raises is told by `explain.in_cell` (and the judge, which sees only the error's name and text,
must name it alike); an app whose GET /items fails by `explain.at_request`; a 404 by
`verdicts.rows`; the URL by `verdicts.database_url`. tests/autograder/test_catalogue.py grades
the same mistakes through the notebook.
"""
from __future__ import annotations

import ast
import inspect
import re
import sqlite3

import httpx
import pytest
from asgi_lifespan import LifespanManager

from autograder import explain, solution, verdicts
from autograder import reference as ref
from course_grade.judge.session import CellRun
from tests.support.mistakes import MISTAKES

# what a mistake leaves behind (a coroutine never awaited, a connection never given back, whose
# driver thread then finds its loop gone) is the mistake's, not the test's
pytestmark = [pytest.mark.anyio, pytest.mark.filterwarnings("ignore:coroutine .* was never awaited:RuntimeWarning"),
              pytest.mark.filterwarnings("ignore:The garbage collector is trying to clean up"),
              pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")]

CELLS = {1: "step1_database_url_solution", 2: "step2_pool_size_solution", 3: "step3_engine_solution",
         4: "step4_app_solution"}
GENERIC = ("run your cell that calls /items to see the whole error", "is missing or out of date",
           "compare your route and `get_connection` with the hint")

# catalogue mistake -> (named mistake's key, words its message says, words it must not say)
CLASSES = {
    # `await` on what is not awaitable (and `await engine.connect()` entered again)
    "await_on_a_chain": ("await_misplaced", ("applies to the whole expression", "`.mappings`",
                                             "result = await conn.execute(text(...))"), ("missing its `await`",)),
    "await_on_rows": ("await_misplaced", ("before a list, which is not awaitable", "remove that `await`"), ()),
    "await_on_fetchall": ("await_misplaced", ("not awaitable", "result.mappings().all()"), ()),
    "await_on_engine_begin": ("await_misplaced", ("entered, not awaited", "async with engine.connect() as conn:"),
                              ("decorated with @asynccontextmanager",)),
    "async_with_awaited_connect": ("connect_awaited_and_entered",
                                   ("`await engine.connect()` opens the connection already", "without `await`"), ()),
    "awaited_connection_entered_again": ("connect_awaited_and_entered", ("cannot open it again",), ()),
    # JSONResponse (or json.dumps) given SQLAlchemy's rows
    "json_response_of_mappings": ("json_response_of_rows", ("RowMapping", "return result.mappings().all()"), ()),
    "json_response_of_rows": ("json_response_of_rows", ("SQLAlchemy's Row objects", "JSONResponse([dict(row)"), ()),
    "json_response_of_wrapped_mappings": ("json_response_of_rows", ("RowMapping",), ()),
    "json_dumps_of_mappings": ("json_response_of_rows", ("like `json.dumps`", "RowMapping"), ()),
    # an attribute the app's state (or the app, or the request) does not have
    "lifespan_not_given_to_app": ("state_not_set", ("app = FastAPI(lifespan=lifespan)",), ()),
    "state_under_another_name": ("state_not_set", ("app's state has no `engine`", "app.state.engine = ..."), ()),
    "engine_read_from_app_not_state": ("app_attribute_not_set", ("FastAPI object has no `engine`",
                                                                 "request.app.state.engine"), ()),
    "engine_read_from_request": ("app_attribute_not_set", ("Request object has no `engine`",
                                                           "request.app.state.engine"), ()),
    "state_read_in_the_cell": ("state_read_in_cell", ("`app.state` has no `engine` yet",
                                                      "not at the top of the cell"), ()),
    "state_bound_in_the_cell": ("state_read_in_cell", ("only when the app starts",), ()),
    # the legacy `.query()`
    "session_query": ("legacy_query", ("legacy ORM API", "an AsyncSession does not have",
                                       "await session.execute("), ()),
    "session_query_awaited": ("legacy_query", ("AsyncSession",), ()),
    "connection_query": ("legacy_query", ("an AsyncConnection does not have", "await conn.execute("), ()),
    # `async with engine`
    "async_with_engine_as_conn": ("async_with_engine", ("on the engine itself, which is not a context manager",
                                                        "async with engine.connect() as conn:"), ()),
    "async_with_engine_around_connect": ("async_with_engine", ("not a context manager",), ()),
    "async_with_engine_in_step3": ("async_with_engine", ("create it once", "pool_size=POOL_SIZE"), ()),
    # a method the engine does not have
    "engine_acquire": ("engine_has_no_method", ("AsyncEngine has no `acquire`", "engine.connect()"),
                       ("gave the route the engine itself",)),
    "engine_get_connection": ("engine_has_no_method", ("has no `get_connection`",),
                              ("gave the route the engine itself",)),
    "engine_execute_in_route": ("engine_has_no_method", ("has no `execute`", "await conn.execute"),
                                ("gave the route the engine itself",)),
    "engine_execute_in_step3": ("engine_has_no_method", ("has no `execute`",), ()),
    "engine_close_in_step3": ("engine_has_no_method", ("has no `close()`", "await engine.dispose()",
                                                       "only when the app stops"), ()),
    "engine_close_in_step4": ("engine_has_no_method", ("has no `close()`", "dispose()"), ()),
    "engine_close_in_route": ("engine_has_no_method", ("has no `close()`", "only when the app stops"),
                                        ("gave the route the engine itself",)),
    "route_added_to_engine": ("engine_has_no_method", ("has no `get`", '`@app.get("/items")`'),
                              ("take one and run the query",)),
    # the app where the engine or the connection belongs
    "app_connect_in_dependency": ("app_used_as_database", ("FastAPI object has no `connect()`",
                                                           "async with engine.connect() as conn:"), ("app.state",)),
    "app_execute_in_route": ("app_used_as_database", ("FastAPI object has no `execute()`", "await conn.execute"),
                             ("app.state",)),
    "app_awaited": ("await_misplaced", ("before a FastAPI", "remove that `await`"), ()),
    # a limit on connections where the pool's size belongs
    "engine_max_connections": ("connection_limit_argument", ("`max_connections` is a PostgreSQL server setting",
                                                             "not an argument of `create_async_engine`",
                                                             "pool_size=POOL_SIZE"), ()),
    "engine_max_size": ("connection_limit_argument", ("`max_size=` is not an argument", "PostgreSQL server setting",
                                                      "pool_size=POOL_SIZE"), ()),
    "engine_pool_max": ("connection_limit_argument", ("`pool_max=`", "PostgreSQL server setting"), ()),
    "engine_maxconn_beside_pool_size": ("connection_limit_argument", ("`maxconn=`", "max_connections"), ()),
    # the lesson's file by another path
    "url_same_file_without_dot": ("url_same_file", ("same file", "exact string",
                                                    '"sqlite+aiosqlite:///./test.db"'), ("wrong file",)),
    "url_same_file_dot_dot": ("url_same_file", ("same file",), ("wrong file",)),
    "url_same_file_double_slash": ("url_same_file", ("same file",), ("wrong file",)),
    # a router never included
    "router_not_included": ("router_not_included", ("`router`", "app.include_router(router)"), ("@app.get",)),
    "prefixed_router_not_included": ("router_not_included", ("app.include_router(items_router)",), ("@app.get",)),
    "router_route_added_not_included": ("router_not_included", ("app.include_router(api)",), ("@app.get",)),
    # a result's method called on another object; rows read from what holds none
    "scalars_then_mappings": ("method_on_wrong_object", ("`mappings()` is a method of the query's result",
                                                         "ScalarResult"), ()),
    "scalar_then_mappings": ("method_on_wrong_object", ("an int, a single number",), ()),
    "mappings_of_connection": ("method_on_wrong_object", ("an AsyncConnection, the connection",), ()),
    "rows_from_scalars": ("rows_from_wrong_object", ("reads rows from an int", "result.mappings().all()"), ()),
    "rows_from_connection": ("rows_from_wrong_object", ("reads rows from an AsyncConnection",), ()),
    "result_indexed": ("rows_from_wrong_object", ("reads rows from a CursorResult",), ()),
    "stream_looped_with_for": ("rows_from_wrong_object", ("`async for`", "result.mappings().all()"), ()),
    # a call without its argument
    "text_without_sql": ("argument_missing", ("`text()` was called without what it needs",), ()),
    "execute_without_query": ("argument_missing", ("`conn.execute()`",), ()),
    "route_without_path": ("argument_missing", ("`app.get()`", '`@app.get("/items")`'), ()),
    "exec_driver_sql_of_text": ("driver_sql_with_text", ("plain string", "conn.execute(text("), ()),
    "exec_driver_sql_of_columns_text": ("driver_sql_with_text", ("plain string",), ()),
    # one row asked of a table of several
    "one_row_of_mappings": ("one_row_expected", ("exactly one row", "result.mappings().all()"), ()),
    "scalar_one": ("one_row_expected", ("exactly one row",), ()),
    "one_row": ("one_row_expected", ("exactly one row",), ()),
    # create_async_engine's arguments mixed up
    "engine_arguments_swapped": ("engine_arguments_mixed_up", ("URL as its first argument",), ()),
    "engine_size_as_url": ("engine_arguments_mixed_up", ("URL as its first argument",), ()),
    "engine_url_as_size": ("engine_arguments_mixed_up", ("`pool_size` got a string",), ()),
    "engine_size_as_text": ("engine_arguments_mixed_up", ("`pool_size` got a string",), ()),
    # a name the step's cell uses but imports nowhere (in the notebook, the read-only demo cell imported it)
    "depends_not_imported": ("import_missing", ("uses `Depends` but does not import it", "runs on its own",
                                                "add `from fastapi import Depends` to that cell"), ("spelling",)),
    "annotation_class_not_imported": ("import_missing", (
        "add `from sqlalchemy.ext.asyncio import AsyncConnection` to that cell",), ("spelling",)),
    # a route the lesson's call reaches only through a redirect (never followed)
    "route_with_trailing_slash": ("route_has_trailing_slash", ("your route is at `/items/`",
                                                               '`@app.get("/items")`'), ("404",)),
    "router_prefix_with_slash_route": ("route_has_trailing_slash", ("your route is at `/items/`",), ("404",)),
}
CATALOGUE = {m.name: m for m in MISTAKES}


@pytest.fixture
def lesson_folder(tmp_path, monkeypatch):
    """A working folder with the lesson's `test.db`, as the setup cell makes it."""
    with sqlite3.connect(tmp_path / ref.DB_FILE) as con:
        con.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, price REAL)")
        con.executemany("INSERT INTO items VALUES (:id, :name, :price)", ref.SEED_ROWS)
    monkeypatch.chdir(tmp_path)
    return tmp_path


async def _run(code: str, ns: dict) -> None:
    """Run a cell's code as a notebook does (top-level `await` allowed)."""
    # dont_inherit: annotations evaluated as in a notebook, not postponed by this module's `annotations` future
    code = compile(code, "<cell>", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True)
    done = eval(code, ns)  # the catalogue's code
    if inspect.iscoroutine(done):
        await done


async def _said(changes: dict[str, str]) -> explain.Said:
    """What the student is told about the submission's first failure (its steps run in order)."""
    ns: dict = {"__name__": "__main__"}
    for step, cell in CELLS.items():
        code = changes.get(cell, solution.step_code(step))
        try:
            await _run(code, ns)
        except Exception as exc:
            said = explain.in_cell(step, exc, code)
            judged = explain.in_cell(step, CellRun(0, cell, code, type(exc).__name__, str(exc)).error(), code)
            assert (judged.mistake, judged.message) == (said.mistake, said.message), (
                f"the judge, seeing only {type(exc).__name__}: {exc}, says {judged} where the kernel says {said}")
            return said
        if step == 1:
            said = verdicts.database_url(ns.get("DATABASE_URL", verdicts.MISSING))
            if said is not None:
                return said
    try:
        try:
            async with LifespanManager(ns["app"]) as manager:
                transport = httpx.ASGITransport(app=manager.app)
                async with httpx.AsyncClient(transport=transport, base_url="http://lesson") as client:
                    response = await client.get("/items")
        finally:
            await ns["engine"].dispose()
    except Exception as exc:
        return explain.at_request(exc)
    router = explain.router_left_out(ns, ns["app"]) if response.status_code == 404 else None
    said = verdicts.rows(response.status_code, response.text, router=router,
                         location=response.headers.get("location", ""))[1]
    assert said is not None, f"GET /items answered {response.status_code} {response.text[:200]}: no mistake to tell"
    return said


def test_every_case_is_in_the_catalogue():
    assert set(CLASSES) <= set(CATALOGUE), sorted(set(CLASSES) - set(CATALOGUE))
    per_key: dict[str, int] = {}
    for key, _, _ in CLASSES.values():
        per_key[key] = per_key.get(key, 0) + 1
    few = {key: n for key, n in per_key.items() if n < 2}
    assert not few, f"each named mistake is tried with several spellings: {few}"


@pytest.mark.parametrize("name", list(CLASSES))
async def test_the_message_names_the_cause(lesson_folder, name):
    key, says, never = CLASSES[name]
    said = await _said(CATALOGUE[name].changes)
    assert said.mistake == key, f"{name}: {said}"
    assert not said.unexplained, f"{name}: the generic sentence: {said.message}"
    for words in says:
        assert words in said.message, f"{name}: {words!r} not in {said.message!r}"
    for words in (*never, *GENERIC):
        assert words not in said.message, f"{name}: {words!r} in {said.message!r}"


# ------------------------------------------------------------------------ raw text, cut

def _cut_words(message: str, original: str) -> list[str]:
    """The words right before an ellipsis in `message` that are not whole words of `original`
    (the raw text it was cut from): each a word cut in two."""
    return [word for word in re.findall(r"(\w+)…", message) if not re.search(rf"\b{re.escape(word)}\b", original)]


LONG = ("Invalid argument(s) 'poolsize' sent to create_engine(), using configuration "
        "SQLiteDialect_aiosqlite/AsyncAdaptedQueuePool/Engine.  Please check that the keyword arguments are "
        "appropriate for this combination of components.")


@pytest.mark.parametrize("text", [LONG, "word " * 60, "x" * 150 + " " + "y" * 150, "a/b/c/" * 60, "short enough"],
                         ids=["sqlalchemy's error", "many words", "two long words", "a long path", "short"])
def test_clip_cuts_between_words_and_says_so(text):
    clipped = explain.clip(text)
    if len(text.strip()) <= 200:
        assert clipped == text.strip()
        return
    assert clipped.endswith("…") and len(clipped) <= 201, clipped
    kept = clipped[:-1]
    assert text.startswith(kept) and len(kept) > 100, (kept, text)
    assert not (kept[-1].isalnum() and text[len(kept)].isalnum()), (
        f"cut mid-word: {kept[-10:]!r}|{text[len(kept):len(kept) + 10]!r}")
    assert not _cut_words(clipped, text), clipped


async def test_raw_error_text_in_a_message_ends_with_a_whole_word(lesson_folder):
    """SQLAlchemy's error for an unknown engine argument is longer than a message keeps: its named
    message gives the argument alone, and raw text that is shown is cut between words."""
    said = await _said(CATALOGUE["engine_keyword_typo"].changes)
    assert said.mistake == "unknown_engine_argument" and "`poolsize=`" in said.message, said
    odd = LONG.replace("Invalid argument(s)", "Unusual value")  # no named mistake: the raw text is shown
    shown_raw = explain.in_cell(3, RuntimeError(odd))
    assert shown_raw.unexplained and "…" in shown_raw.message, shown_raw
    assert not _cut_words(shown_raw.message, odd), shown_raw.message
    answered = verdicts.rows(500, "Internal error: " + LONG)[1]
    assert answered.message.endswith("…") and not _cut_words(answered.message, LONG), answered.message


# ----------------------------------------------------------------- the URL and the router

@pytest.mark.parametrize("url, same", [
    ("sqlite+aiosqlite:///test.db", True),
    ("sqlite+aiosqlite:///././test.db", True),
    ("sqlite+aiosqlite:///.//test.db", True),
    ("sqlite+aiosqlite:///./tests.db", False),
    ("sqlite+aiosqlite:///data/test.db", False),
    ("sqlite+aiosqlite:///../test.db", False),
    ("sqlite+aiosqlite:///sub/../test.db", False),
    ("sqlite+aiosqlite:////tmp/test.db", False),
    ("sqlite+aiosqlite:///test.db?mode=ro", False),
])
def test_a_url_is_the_same_file_only_when_it_is(url, same):
    said = verdicts.database_url(url)
    assert said is not None, url
    assert (said.mistake == "url_same_file") is same, said
    assert ("same file" in said.message) is same and ("wrong file" in said.message) is not same, said.message


def test_an_included_router_or_an_app_route_is_no_router_left_out():
    from fastapi import APIRouter, FastAPI

    async def read_items():
        return []

    async def read_items_too():
        return []

    included, left, app = APIRouter(), APIRouter(prefix="/items"), FastAPI()
    included.add_api_route("/items", read_items)
    left.add_api_route("", read_items_too)
    app.include_router(included)
    assert explain.router_left_out({"router": included}, app) is None
    assert explain.router_left_out({"router": included, "items_router": left}, app) == "items_router"
    mounted = FastAPI()
    mounted.mount("/api", app)
    assert explain.router_left_out({"router": included}, mounted) is None
    assert explain.router_left_out({"_hidden": left}, app) is None
    assert verdicts.rows(404, "")[1].mistake is None  # no router to name: the plain 404 sentence
