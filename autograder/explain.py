"""Common mistakes, named: an error the student's code raised -> one sentence saying what is
wrong and how to fix it, in the lesson's terms (the raw error may follow, never alone).

Two tables, each a list of `Mistake`s tried in order, the first match wins:
- `AT_REQUEST`: errors raised while the app answered GET /items (the route, its dependency,
  the query, turning the return value into JSON), or as its lifespan started or stopped it;
- `IN_CELL`: errors a student's step cell raised when it ran (a wrong import, a name used
  before it is defined, a route parameter FastAPI cannot read ...).

To name a new mistake, add a `Mistake` to the right table (ARCHITECTURE.md has the recipe) and
a case to tests/support/mistakes.py.
"""
from __future__ import annotations

import ast
import dis
import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass

from autograder import registry

FIX_LEAK = "yield the connection inside `async with engine.connect() as conn:` so it is closed after every request."
NO_DEPENDS = (
    "GET /items does not take its connection from `get_connection`: give the route the parameter "
    "`conn: AsyncConnection = Depends(get_connection)`, and FastAPI calls the dependency for every request "
    "(if you changed `get_connection`, run the cell that defines the route again too)."
)
CONTEXT_MANAGER_DEPENDENCY = (
    "`get_connection` is decorated with @asynccontextmanager, so FastAPI hands the route a context manager, "
    "not a connection: remove the decorator; "
    "an `async def` that yields is already a dependency FastAPI enters and leaves."
)


@dataclass(frozen=True)
class Clue:
    """What we know about an error: the exception, its text, the chain of causes, the code
    it passed through, and (when FastAPI could not encode it) what the route returned."""
    exc: BaseException
    text: str
    chain: tuple[BaseException, ...]
    files: tuple[str, ...]
    returned: object = None
    codes: tuple = ()
    step: int = 0
    source: str = ""

    def any(self, kind) -> bool:
        return any(isinstance(e, kind) for e in self.chain)

    def named(self, *names: str) -> bool:
        return any(type(e).__name__ in names for e in self.chain)

    def says(self, *words: str) -> bool:
        text = " ".join(str(e) for e in self.chain).lower()
        return any(w.lower() in text for w in words)

    def through(self, fragment: str) -> bool:
        return any(fragment in f for f in self.files)

    def lifespan_stage(self) -> str | None:
        """"startup" or "shutdown" when the error came out of the app's lifespan as asgi-lifespan's
        `LifespanManager` started or stopped it (not out of a request it served), else None."""
        for code in self.codes:
            if "asgi_lifespan" in code.co_filename and code.co_name in ("__aenter__", "__aexit__"):
                return "startup" if code.co_name == "__aenter__" else "shutdown"
        return None

    def in_plain_def(self) -> bool:
        """The innermost frame of the student's own code is a plain `def` (not `async def`)."""
        codes = [code for code in self.codes if _students(code.co_filename)]
        return bool(codes) and not codes[-1].co_flags & (inspect.CO_COROUTINE | inspect.CO_ASYNC_GENERATOR)


@dataclass(frozen=True)
class Mistake:
    key: str                            # a short name, for tests and reports
    matches: Callable[[Clue], bool]
    message: str | Callable[[Clue], str]

    def say(self, clue: Clue) -> str:
        return self.message(clue) if callable(self.message) else self.message


@dataclass(frozen=True)
class Said:
    """A sentence for the student, and the key of the named mistake it names (None: none).
    `unexplained`: the generic sentence around a raw error, said when no named mistake and no
    specific check fits (the mutation corpus counts these; the item analysis shows them apart)."""
    message: str
    mistake: str | None = None
    unexplained: bool = False


def _chain(exc: BaseException) -> tuple[BaseException, ...]:
    seen = []
    while exc is not None and exc not in seen:
        seen.append(exc)
        group = getattr(exc, "exceptions", None)  # ExceptionGroup from a task group
        if group:
            seen.extend(e for e in group if e not in seen)
        exc = exc.__cause__ or exc.__context__
    return tuple(seen)


def _frames(exc: BaseException):
    tb = exc.__traceback__
    while tb is not None:
        yield tb.tb_frame
        tb = tb.tb_next


def _returned(chain) -> object:
    """What FastAPI was turning into JSON when it failed (fastapi.encoders.jsonable_encoder's
    `obj`), to tell "Row objects" from "the result itself"."""
    found = None
    for exc in chain:
        for frame in _frames(exc):
            if frame.f_code.co_name == "jsonable_encoder" and "obj" in frame.f_locals:
                found = frame.f_locals["obj"]
    return found


def _students(filename: str) -> bool:
    """Code from a notebook cell (not a library)."""
    return filename.startswith("<") or "ipykernel" in filename or "ipython-input" in filename


def clue(exc: BaseException, *, step: int = 0, source: str = "") -> Clue:
    chain = _chain(exc)
    codes = tuple(frame.f_code for frame in _frames(exc))
    files = tuple(frame.f_code.co_filename for e in chain for frame in _frames(e))
    return Clue(exc, str(exc), chain, files, _returned(chain), codes, step, source)


def _wordy(char: str) -> bool:
    return char.isalnum() or char == "_"


def clip(text: str, limit: int = 200) -> str:
    """`text`, or its first `limit` characters or fewer, cut at a word boundary (at a space when
    there is one in the second half), with an ellipsis when cut."""
    text = text.strip()
    if len(text) <= limit:
        return text
    space = text.rfind(" ", 0, limit + 1)
    if space > limit // 2:
        cut = space
    else:
        cut = next((i for i in range(limit, 0, -1) if not (_wordy(text[i - 1]) and _wordy(text[i]))), limit)
    return text[:cut].rstrip() + "…"


def raw(exc: BaseException) -> str:
    if isinstance(exc, SyntaxError):
        return f"SyntaxError: {exc.msg}"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {clip(text)}" if text else type(exc).__name__


def _type_name(obj) -> str:
    return type(obj).__name__


def _bad_return(c: Clue) -> str:
    kind = _type_name(c.returned)
    if kind == "Row":
        return ("the route returned SQLAlchemy `Row` objects, which FastAPI cannot turn into JSON objects: "
                "return `result.mappings().all()` (one dict-like row each) "
                "instead of `result.fetchall()` or `result.all()`.")
    if kind in ("CursorResult", "Result", "MappingResult", "ScalarResult", "AsyncResult"):
        return ("the route returned the query's result object, not its rows: add `.all()`, "
                "for example `return result.mappings().all()`.")
    if kind == "coroutine":
        return ("the route returned a coroutine: a call is missing its `await`, "
                "for example `result = await conn.execute(...)`.")
    return (f"the route returned a {kind}, which FastAPI cannot turn into JSON: return the rows as a list of "
            "dicts, for example `result.mappings().all()`.")


def _no_table(c: Clue) -> str:
    found = re.search(r"no such table: (\w+)", c.text)
    name = found.group(1) if found else "?"
    if name != "items":
        return (f"the query reads a table called `{name}`, which does not exist: "
                "the lesson's table is `items` (SELECT * FROM items).")
    return "the query found no `items` table: run the setup cell at the top of the notebook, then your cells again."


LIFESPAN = "the lifespan function given to `FastAPI(lifespan=...)`"


def _lifespan_failed(c: Clue) -> str:
    if c.lifespan_stage() == "startup":
        return (f"`app` did not start: {LIFESPAN} failed before its `yield`, where it prepares what requests "
                f"need (the engine); fix that code and run the step 4 cell again ({raw(c.exc)}).")
    return (f"`app` did not stop cleanly: {LIFESPAN} failed after its `yield`, where it cleans up when the app "
            f"stops (`await engine.dispose()`); fix that code and run the step 4 cell again ({raw(c.exc)}).")


def _lifespan_timeout(c: Clue) -> str:
    if c.lifespan_stage() == "startup":
        return (f"`app` did not start in time: {LIFESPAN} never reached its `yield`; the code before `yield` "
                "must finish (create the engine, then `yield`) before the app can answer requests.")
    return (f"`app` did not stop in time: {LIFESPAN} never finished the code after its `yield`; "
            "cleaning up there (`await engine.dispose()`) must end.")


CONNECTION_NOT_REUSED = (
    "`get_connection` does not reuse pooled connections: each request opened a new connection to the database, "
    "and none stayed in the pool for the next request; take every connection from the one `engine` of step 3 "
    "(`async with engine.connect() as conn: yield conn`), without `dispose()`, `NullPool` or a new engine per "
    "request."
)


ROUTE_TRAILING_SLASH = (
    "your route is at `/items/` but the lesson calls `/items`, which FastAPI answers with a redirect (307) that "
    "the lesson's call does not follow: write `@app.get(\"/items\")`, without the slash at the end."
)


def _never(_c: Clue) -> bool:
    """A named mistake seen by a check's observation, never by an exception's look."""
    return False


def _chain_text(c: Clue) -> str:
    return " ".join(str(e) for e in c.chain)


def _attribute_missing(c: Clue, *kinds: str) -> tuple[str, str] | None:
    """(the object's class, the attribute) of an "'Kind' object has no attribute 'name'" error
    in the chain, for a class `kinds` names (regular expressions), else None."""
    found = re.search(rf"'({'|'.join(kinds)})' object has no attribute '(\w+)'", _chain_text(c))
    return (found.group(1), found.group(2)) if found else None


def _innermost(exc: BaseException):
    """(frame, offset of its last instruction) of the innermost student's code `exc` passed
    through, or None."""
    found, tb = None, exc.__traceback__
    while tb is not None:
        if _students(tb.tb_frame.f_code.co_filename):
            found = tb.tb_frame, tb.tb_lasti
        tb = tb.tb_next
    return found


def _awaited_later(c: Clue) -> bool:
    """The statement of the student's code that failed on a coroutine awaits what it was
    building: `await` applies to the whole chain after it (`await conn.execute(...).mappings()`)."""
    failed = next((e for e in c.chain if isinstance(e, AttributeError) and "'coroutine' object" in str(e)), None)
    where = _innermost(failed) if failed is not None else None
    if where is None:
        return False
    frame, offset = where
    for instruction in dis.get_instructions(frame.f_code):
        if instruction.offset <= offset:
            continue
        if instruction.opname == "GET_AWAITABLE":
            return True
        if instruction.opname.startswith(("STORE_", "RETURN_", "POP_TOP", "JUMP", "POP_JUMP")):
            return False
    return False


def _unawaited_call(c: Clue) -> str:
    """The call whose coroutine the student used before awaiting it, as the lesson writes it."""
    coroutine = next((e.obj for e in c.chain if isinstance(e, AttributeError) and inspect.iscoroutine(
        getattr(e, "obj", None))), None)
    owner, _, method = getattr(coroutine, "__qualname__", "AsyncConnection.execute").rpartition(".")
    return f"{'session' if 'Session' in owner else 'conn'}.{method}(...)" if owner else f"{method}(...)"


def _await_misplaced(c: Clue) -> str:
    chained = _attribute_missing(c, "coroutine")
    if chained is not None:
        call = _unawaited_call(c)
        owner = call.split(".")[0] if "." in call else "conn"
        return (f"`await` applies to the whole expression after it, so `.{chained[1]}` was called on `{call}` "
                f"before it was awaited: await the query alone, `result = await {owner}.execute(text(...))`, "
                "then read `result.mappings().all()` without `await`.")
    found = re.search(r"object (\w+) can't be used in 'await' expression|'(\w+)' object can't be awaited", c.text)
    kind = next((k for k in found.groups() if k), "?") if found else "?"
    if "ContextManager" in kind:
        return (f"`await` was put before a context manager ({kind}, such as `engine.begin()`), which is entered, "
                "not awaited: write `async with engine.connect() as conn:` without `await`.")
    if kind.endswith("Engine"):
        return ("`await` was put before the engine, which is used as it is: take a connection from it, "
                "`async with engine.connect() as conn:`, and await only the query, `await conn.execute(text(...))`.")
    return (f"`await` was put before a {kind}, which is not awaitable: remove that `await`; only the query is "
            "awaited, `result = await conn.execute(text(...))`, and reading its rows, `result.mappings().all()`, "
            "needs none.")


def _not_awaitable(c: Clue) -> bool:
    return c.says("can't be used in 'await' expression", "object can't be awaited")


AWAIT_MISPLACED = Mistake(
    "await_misplaced",
    lambda c: _not_awaitable(c) or (_attribute_missing(c, "coroutine") is not None and _awaited_later(c)),
    _await_misplaced)

CONNECT_AWAITED_AND_ENTERED = Mistake(
    "connect_awaited_and_entered",
    lambda c: c.named("InvalidRequestError") and c.says("connection is already started"),
    "`await engine.connect()` opens the connection already, so `async with` cannot open it again: write "
    "`async with engine.connect() as conn:` without `await`.")


def _json_of_rows(c: Clue) -> str:
    found = re.search(r"Object of type (\w+) is not JSON serializable", _chain_text(c))
    kind = found.group(1) if found else "?"
    return (f"`JSONResponse(...)` (like `json.dumps`) cannot turn SQLAlchemy's {kind} objects into JSON, "
            "as FastAPI does with what a route returns: return the rows themselves, `return result.mappings().all()`, "
            "or give it plain dicts, `JSONResponse([dict(row) for row in result.mappings()])`.")


JSON_RESPONSE_OF_ROWS = Mistake(
    "json_response_of_rows",
    lambda c: re.search(r"Object of type \w*(Row|Result)\w* is not JSON serializable",
                        _chain_text(c)) is not None,
    _json_of_rows)


def _legacy_query(c: Clue) -> str:
    kind = (_attribute_missing(c, r"\w*Session", r"\w*Connection") or ("AsyncSession", "query"))[0]
    name = "session" if "Session" in kind else "conn"
    return (f"`.query(...)` is the legacy ORM API, which an {kind} does not have: run the SQL with `await`, "
            f"`result = await {name}.execute(text(\"SELECT * FROM items\"))`, and return `result.mappings().all()`.")


LEGACY_QUERY = Mistake(
    "legacy_query",
    lambda c: (_attribute_missing(c, r"\w*Session", r"\w*Connection") or ("", ""))[1] == "query",
    _legacy_query)

ASYNC_WITH_ENGINE = Mistake(
    "async_with_engine",
    lambda c: re.search(r"'(Async)?Engine' object does not support the asynchronous context manager protocol",
                        _chain_text(c)) is not None,
    "`async with` was used on the engine itself, which is not a context manager: create it once, "
    "`engine = create_async_engine(DATABASE_URL, pool_size=POOL_SIZE)`, and take a connection from it where you need "
    "one, `async with engine.connect() as conn:`.")


def _engine_handed_in(c: Clue) -> bool:
    """The engine an AttributeError is about came into the student's innermost function as an
    argument not named like an engine (the route's `conn`): `get_connection` gave the route the engine."""
    failed = next((e for e in c.chain if isinstance(e, AttributeError)
                   and type(getattr(e, "obj", None)).__name__ in ("AsyncEngine", "Engine")), None)
    where = _innermost(failed) if failed is not None else None
    if where is None:
        return False
    code, local = where[0].f_code, where[0].f_locals
    arguments = code.co_varnames[:code.co_argcount + code.co_kwonlyargcount]
    return any(local.get(name) is failed.obj and "engine" not in name.lower() for name in arguments)


POOL_METHODS = ("size", "checkedout", "checkedin", "overflow", "status", "timeout")
ROUTE_METHODS = ("get", "post", "put", "patch", "delete", "api_route", "route", "add_api_route", "include_router",
                 "state")
# what the lesson calls each method on, and how it writes the call
OWNERS = {
    **dict.fromkeys(("connect", "begin", "dispose"), ("the engine", "`async with engine.connect() as conn:`")),
    **dict.fromkeys(("execute", "stream", "commit", "rollback", "exec_driver_sql"),
                    ("a connection", "`result = await conn.execute(text(...))`")),
    **dict.fromkeys(("mappings", "all", "fetchall", "fetchone", "first", "one", "scalars"),
                    ("the query's result", "`result.mappings().all()`")),
}


def _engine_method(c: Clue) -> str:
    kind, name = _attribute_missing(c, "AsyncEngine", "Engine") or ("AsyncEngine", "?")
    if name == "close":
        return (f"an {kind} has no `close()`: `await engine.dispose()` closes its pool's connections, and the "
                "lesson disposes only when the app stops, after the `yield` of its lifespan; each request gives its "
                "connection back by leaving `async with engine.connect() as conn:`.")
    if name in POOL_METHODS:
        return f"`{name}()` belongs to the engine's pool, not the engine: write `engine.pool.{name}()`."
    if re.search(r"pool|size|overflow", name):
        return (f"an {kind} has no `{name}`: its pool's numbers are asked of `engine.pool`, "
                "`engine.pool.size()` (connections it keeps) and `engine.pool.checkedout()` (connections lent).")
    if name in ROUTE_METHODS:
        return (f"an {kind} has no `{name}`: routes are added to the app, `@app.get(\"/items\")`; the engine only "
                "lends the route its connections.")
    if OWNERS.get(name, ("",))[0] == "the query's result":
        return f"an {kind} has no `{name}`: it is a method of the query's result, {OWNERS[name][1]}."
    return (f"an {kind} has no `{name}`: it lends connections, so take one and run the query on it, "
            "`async with engine.connect() as conn:` and `result = await conn.execute(text(...))`.")


ENGINE_HAS_NO_METHOD = Mistake(
    "engine_has_no_method",
    lambda c: _attribute_missing(c, "AsyncEngine", "Engine") is not None and not _engine_handed_in(c),
    _engine_method)


def _app_used_as_database(c: Clue) -> str:
    kind, name = _attribute_missing(c, "FastAPI", "Starlette", "Request") or ("FastAPI", "execute")
    owner, example = OWNERS.get(name, OWNERS["execute"])
    return f"the {kind} object has no `{name}()`: it is a method of {owner}, {example}."


APP_USED_AS_DATABASE = Mistake(
    "app_used_as_database",
    lambda c: (_attribute_missing(c, "FastAPI", "Starlette", "Request") or ("", ""))[1] in OWNERS,
    _app_used_as_database)


def _app_attribute(c: Clue) -> str:
    kind, name = _attribute_missing(c, "FastAPI", "Starlette", "Request") or ("FastAPI", "engine")
    return (f"the {kind} object has no `{name}`: what the lifespan makes is kept on the app's state, "
            f"`app.state.{name} = ...` before its `yield`, and `get_connection` reads it as "
            f"`request.app.state.{name}`.")


APP_ATTRIBUTE_NOT_SET = Mistake(
    "app_attribute_not_set",
    lambda c: _attribute_missing(c, "FastAPI", "Starlette", "Request") is not None,
    _app_attribute)


# What each of the lesson's objects is, for a method called on the wrong one or rows read from it.
WHAT_IT_IS = {
    "AsyncEngine": "the engine, which lends connections", "Engine": "an engine, which lends connections",
    "AsyncConnection": "the connection, which runs the query", "Connection": "a connection, which runs the query",
    "CursorResult": "the query's result itself", "Result": "the query's result itself",
    "AsyncResult": "a streamed result, read with `async for`", "AsyncMappingResult": "a streamed result, read with "
    "`async for`", "ScalarResult": "the first column's values (`scalars()`), not rows",
    "MappingResult": "the rows as mappings, not yet a list", "FastAPI": "the application, which holds the routes",
    "int": "a single number (`scalar()`, `first()`, `scalars()` and `one()` give single values or one row)",
    "str": "a string", "NoneType": "None (a function that returned nothing)",
}
READ_ROWS = "read the table's rows from the query's result: `result = await conn.execute(text(...))`, then " \
    "`return result.mappings().all()`"


def _a(kind: str) -> str:
    return f"{'an' if kind[:1] in 'AEIOU' or kind == 'int' else 'a'} {kind}"


def _method_owner(c: Clue) -> tuple[str, str] | None:
    """(the object's class, the method) of "'Kind' object has no attribute 'name'", for a method
    the lesson calls on another of its objects, else None."""
    found = _attribute_missing(c, r"\w+")
    return found if found is not None and found[1] in OWNERS and _what_it_is(found[0]) else None


def _wrong_owner(c: Clue) -> str:
    kind, name = _method_owner(c) or ("int", "mappings")
    owner, example = OWNERS[name]
    return f"`{name}()` is a method of {owner}, {example}, but your code calls it on {_a(kind)}, {_what_it_is(kind)}."


METHOD_ON_WRONG_OBJECT = Mistake("method_on_wrong_object", lambda c: _method_owner(c) is not None, _wrong_owner)

_NOT_ROWS = re.compile(r"'(\w+)' object is not (?:iterable|subscriptable)")


def _what_it_is(kind: str) -> str | None:
    return WHAT_IT_IS.get(kind) or ("the engine's pool, which keeps the connections" if kind.endswith("Pool") else None)


def _not_rows(c: Clue) -> str | None:
    found = _NOT_ROWS.search(_chain_text(c))
    return found.group(1) if found and _what_it_is(found.group(1)) else None


def _rows_from(c: Clue) -> str:
    kind = _not_rows(c) or "int"
    if kind.startswith("Async") and "Result" in kind:
        return (f"your route loops over {_a(kind)} with a plain `for`: `conn.stream(...)` gives a streamed result, "
                f"read with `async for`; the lesson's way is simpler: {READ_ROWS}.")
    return f"your route reads rows from {_a(kind)}, {_what_it_is(kind)}: {READ_ROWS}."


ROWS_FROM_WRONG_OBJECT = Mistake("rows_from_wrong_object", lambda c: _not_rows(c) is not None, _rows_from)

# a call that lost its argument -> (how the lesson names it, how it writes the call)
CALLS = {"text": ("text", '`text("SELECT * FROM items")`'),
         "execute": ("conn.execute", '`await conn.execute(text("SELECT * FROM items"))`'),
         "get": ("app.get", '`@app.get("/items")`'), "api_route": ("app.api_route", '`@app.get("/items")`'),
         "include_router": ("app.include_router", "`app.include_router(router)`"),
         "create_async_engine": ("create_async_engine", "`create_async_engine(DATABASE_URL, pool_size=POOL_SIZE)`"),
         "connect": ("engine.connect", "`async with engine.connect() as conn:`"),
         "Depends": ("Depends", "`Depends(get_connection)`")}
_MISSING_ARGUMENT = re.compile(r"(?:\w+\.)?(\w+)\(\) missing \d+ required (?:positional|keyword-only) argument")


def _call_missing(c: Clue) -> tuple[str, str] | None:
    found = _MISSING_ARGUMENT.search(_chain_text(c))
    return CALLS.get(found.group(1)) if found else None


ARGUMENT_MISSING = Mistake(
    "argument_missing", lambda c: _call_missing(c) is not None,
    lambda c: "`{}()` was called without what it needs: write {}.".format(*_call_missing(c)))
DRIVER_SQL_WITH_TEXT = Mistake(
    "driver_sql_with_text", lambda c: c.says("argument 1 must be str, not TextClause"),
    "`exec_driver_sql` takes the SQL as a plain string, and `text(...)` is for `execute`: write "
    '`result = await conn.execute(text("SELECT * FROM items"))`.')
ONE_ROW_EXPECTED = Mistake(
    "one_row_expected", lambda c: c.named("MultipleResultsFound", "NoResultFound"),
    "`one()` asks for exactly one row, and the table holds several: return them all, "
    "`result.mappings().all()`.")
ENGINE_CALL = "`engine = create_async_engine(DATABASE_URL, pool_size=POOL_SIZE)`"
ENGINE_ARGUMENTS_MIXED_UP = Mistake(  # the URL where the size goes, or the size where the URL goes
    "engine_arguments_mixed_up",
    lambda c: c.step == 3 and (c.says("Expected string or URL object")
                               or (c.named("TypeError") and c.says("unsupported operand", "not supported between")
                                   and c.says("'str'"))),
    lambda c: (f"`create_async_engine` takes the URL as its first argument, and yours got something else: "
               f"write {ENGINE_CALL}.") if c.says("Expected string or URL object") else
              (f"`pool_size` got a string, but the pool's size is a number: write {ENGINE_CALL}."))


AT_REQUEST: list[Mistake] = [
    Mistake("lifespan_timeout", lambda c: c.lifespan_stage() is not None and type(c.exc) is TimeoutError,
            _lifespan_timeout),
    Mistake("lifespan_failed", lambda c: c.lifespan_stage() is not None, _lifespan_failed),
    Mistake("closed_connection",
            lambda c: c.named("ResourceClosedError") or (c.says("closed") and c.through("sqlalchemy")),
            "`get_connection` handed the route a closed connection: `return` inside `async with` closes it "
            "before the route runs; use `yield conn` inside the `async with` block instead."),
    Mistake("pool_exhausted", lambda c: c.any(_sa_timeout()),
            "`get_connection` leaks connections: every pooled connection was checked out and never given "
            "back, so a request gave up waiting for one (sqlalchemy.exc.TimeoutError); " + FIX_LEAK),
    Mistake("no_answer", lambda c: type(c.exc) is TimeoutError,
            "GET /items did not answer in time: the route is waiting for something that never comes, usually a "
            "pooled connection that was never given back; " + FIX_LEAK),
    Mistake("sync_session", lambda c: c.named("AsyncContextNotStarted") and c.through("sqlalchemy/orm/"),
            "a synchronous `Session` cannot use the async engine: use `AsyncSession` from "
            "sqlalchemy.ext.asyncio (`async with AsyncSession(engine) as session:`), or "
            "`async with engine.connect() as conn:`."),
    Mistake("connection_not_opened", lambda c: c.named("AsyncContextNotStarted"),
            "the connection was never opened: `engine.connect()` on the async engine must be entered with "
            "`async with engine.connect() as conn:` (or awaited: `conn = await engine.connect()`)."),
    ASYNC_WITH_ENGINE,
    CONNECT_AWAITED_AND_ENTERED,
    Mistake("sync_with_on_async",
            lambda c: c.says("does not support the context manager protocol",
                             "object does not support the context manager"),
            "`with` is the synchronous form: the async engine's connection is opened with "
            "`async with engine.connect() as conn:` inside `async def get_connection()`."),
    AWAIT_MISPLACED,
    Mistake("context_manager_dependency", lambda c: c.says("GeneratorContextManager"), CONTEXT_MANAGER_DEPENDENCY),
    Mistake("dependency_opened_by_hand",
            lambda c: c.says("'async_generator' object does not support the asynchronous context manager"),
            NO_DEPENDS),
    Mistake("sync_route_awaits_nothing",
            lambda c: c.says("'coroutine' object", "coroutine object") and c.in_plain_def(),
            "a plain `def` route cannot await the async connection: write the route as `async def read_items(...)` "
            "and `result = await conn.execute(text(...))`."),
    Mistake("coroutine_entered",
            lambda c: c.says("'coroutine' object does not support the asynchronous context manager protocol"),
            "`async with` was given a coroutine (the call of an async function, such as `engine.raw_connection()`), "
            "not a context manager: take each connection with `async with engine.connect() as conn:`."),
    Mistake("missing_await",
            lambda c: c.says("'coroutine' object", "coroutine object") or _type_name(c.returned) == "coroutine",
            "a call to the database is missing its `await`: `conn.execute(...)` gives a coroutine until "
            "awaited, so write `result = await conn.execute(text(...))`."),
    Mistake("plain_string_sql", lambda c: c.named("ObjectNotExecutableError"),
            '`conn.execute()` was given a plain string: wrap the SQL in `text()`, e.g. '
            '`await conn.execute(text("SELECT * FROM items"))` (`from sqlalchemy import text`).'),
    Mistake("no_such_table", lambda c: c.says("no such table"), _no_table),
    Mistake("no_such_column", lambda c: c.says("no such column"),
            "the query names a column that `items` does not have: its columns are id, name and price "
            "(SELECT * FROM items reads them all)."),
    Mistake("sql_syntax", lambda c: c.named("OperationalError") and c.says("syntax error"),
            "the SQL has a syntax error: the query is `SELECT * FROM items`."),
    Mistake("response_model_mismatch", lambda c: c.named("ResponseValidationError"),
            lambda c: ("FastAPI rejected what the route returned against its `response_model`: make the model's "
                       "fields match the columns id (int), name (str) and price (float), and return a list of rows. "
                       f"({raw(c.exc)})")),
    JSON_RESPONSE_OF_ROWS,
    Mistake("not_json", lambda c: c.returned is not None or (c.named("ValueError") and c.through("fastapi/encoders")),
            _bad_return),
    Mistake("dict_of_row", lambda c: c.says("dictionary update sequence"),
            lambda c: ("`dict(...)` was given something other than a row (each item of what your route loops over "
                       "is a name or a value, as `result.keys()` gives): " if c.says("has length") else
                       "`dict(row)` does not work on a SQLAlchemy `Row`: ")
            + "take the rows as mappings, `[dict(row) for row in result.mappings()]` or `result.mappings().all()`."),
    LEGACY_QUERY,
    ENGINE_HAS_NO_METHOD,
    APP_USED_AS_DATABASE,
    Mistake("engine_given_to_route",
            lambda c: c.says("'AsyncEngine' object has no attribute", "'Engine' object has no attribute"),
            "`get_connection` gave the route the engine itself, not a connection: yield a connection from "
            "`async with engine.connect() as conn:`."),
    Mistake("async_generator_called",
            lambda c: c.says("async_generator", "'async_generator' object"),
            "`Depends(get_connection())` calls the dependency yourself: pass the function itself, "
            "`Depends(get_connection)`, and FastAPI calls it for every request."),
    Mistake("sync_engine_at_request", lambda c: c.named("MissingGreenlet") and not c.through("sqlalchemy/ext/asyncio"),
            "the connection came from a synchronous engine (made by `create_engine`), which cannot run queries "
            "inside async code (MissingGreenlet): make `engine` with `create_async_engine` from "
            "sqlalchemy.ext.asyncio (step 3) and take connections with `async with engine.connect() as conn:`."),
    Mistake("state_not_set", lambda c: c.says("'State' object has no attribute"), lambda c: _state_not_set(c)),
    APP_ATTRIBUTE_NOT_SET,
    METHOD_ON_WRONG_OBJECT,
    ROWS_FROM_WRONG_OBJECT,
    ARGUMENT_MISSING,
    DRIVER_SQL_WITH_TEXT,
    ONE_ROW_EXPECTED,
    Mistake("name_not_defined_at_request", lambda c: c.any(NameError) and _missing_name(c) is not None,
            lambda c: _name_at_request(c)),
    Mistake("connection_not_reused", _never, CONNECTION_NOT_REUSED),
    Mistake("route_has_trailing_slash", _never, ROUTE_TRAILING_SLASH),
]


def _state_not_set(c: Clue) -> str:
    found = re.search(r"'State' object has no attribute '(\w+)'", c.text)
    name = found.group(1) if found else "engine"
    return (f"the app's state has no `{name}` when GET /items runs: {LIFESPAN} sets it before its `yield` "
            f"(`app.state.{name} = ...`, or `yield {{\"{name}\": ...}}` for `request.state`), and it runs only "
            "when the app is made with `app = FastAPI(lifespan=lifespan)`.")


def _name_at_request(c: Clue) -> str:
    name = _missing_name(c) or "?"
    earlier = _defined_earlier(name)
    if earlier is not None:
        return (f"`{name}` was not defined when GET /items ran: run your step {earlier} cell until it runs without "
                "an error, then the cells after it again.")
    if name in IMPORTS:
        return (f"`{name}` is not defined where your route or `get_connection` uses it: "
                f"import it, `{IMPORTS[name]}`, and run that cell again.")
    return (f"`{name}` is not defined where your route or `get_connection` uses it: check its spelling "
            "(Python is case-sensitive) and run that cell again.")


def _sa_timeout():
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    return PoolTimeout


def named_at_request(exc: BaseException) -> Said | None:
    """The named mistake an error raised while the app answered GET /items shows, or None
    when it is none of them."""
    c = clue(exc)
    for mistake in AT_REQUEST:
        if mistake.matches(c):
            return Said(mistake.say(c), mistake.key)
    return None


def at_request(exc: BaseException) -> Said:
    """One sentence for an error raised while the app answered GET /items."""
    return named_at_request(exc) or Said(
        f"GET /items failed with {raw(exc)}: run your cell that calls /items to see the whole error, "
        "and compare your route and `get_connection` with the hint of step 4.", unexplained=True)


ITEMS_PATHS = ("/items", "/items/")


def _endpoints(target, depth: int = 0) -> set:
    """The endpoints `target` (an app or a router) serves: its routes', its included routers'
    (FastAPI keeps an included router itself, or copies its routes) and its mounted apps'."""
    found = set()
    for route in getattr(target, "routes", ()) if depth < 6 else ():
        found.add(getattr(route, "endpoint", None))
        for inner in (getattr(route, "original_router", None), getattr(route, "app", None)):
            if inner is not None and inner is not target and hasattr(inner, "routes"):
                found |= _endpoints(inner, depth + 1)
    return found


def router_left_out(ns: dict, app) -> str | None:
    """The name of an APIRouter of the notebook with a GET /items route that `app` does not serve
    (the router was never given to `app.include_router`), else None."""
    from fastapi import APIRouter

    served = None
    for name, value in list(ns.items()):
        if name.startswith("_") or not isinstance(value, APIRouter):
            continue
        for route in value.routes:
            if getattr(route, "path", None) in ITEMS_PATHS and "GET" in (getattr(route, "methods", None) or ()):
                served = _endpoints(app) if served is None else served
                if getattr(route, "endpoint", None) not in served:
                    return name
    return None


class RequestFailed(Exception):
    """GET /items failed inside the student's app with a named mistake: the message says what
    is wrong and how to fix it, then the raw error."""


def request_failed(exc: BaseException):
    """For the lesson's cell that calls GET /items: raise a named mistake as RequestFailed, one
    sentence and the raw error, without the framework's frames in between (httpx, Starlette,
    FastAPI: forty and more, none of them the student's); any other error is raised again
    whole, every frame shown. An error of the app's lifespan (it did not start or stop) is
    named as well."""
    said = named_at_request(exc)
    if said is None:
        raise exc
    where = "" if said.mistake in ("lifespan_failed", "lifespan_timeout") else "GET /items failed: "
    error = "" if raw(exc) in said.message else f" ({raw(exc)})"
    raise RequestFailed(f"{where}{said.message}{error}") from None


# ------------------------------------------------------------------- errors in a step cell

IMPORTS = {
    "FastAPI": "from fastapi import FastAPI",
    "Depends": "from fastapi import Depends",
    "APIRouter": "from fastapi import APIRouter",
    "text": "from sqlalchemy import text",
    "select": "from sqlalchemy import select",
    "create_async_engine": "from sqlalchemy.ext.asyncio import create_async_engine",
    "AsyncConnection": "from sqlalchemy.ext.asyncio import AsyncConnection",
    "AsyncSession": "from sqlalchemy.ext.asyncio import AsyncSession",
    "AsyncEngine": "from sqlalchemy.ext.asyncio import AsyncEngine",
    "Annotated": "from typing import Annotated",
}


def _defined_earlier(name: str) -> int | None:
    """The step that defines `name` when it is one the route's step builds on, else None."""
    step = registry.defined_in(name)
    return step if step is not None and step < max(registry.STEPS) else None


def _missing_name(c: Clue) -> str | None:
    found = re.search(r"name '(\w+)' is not defined", c.text)
    return found.group(1) if found else None


def _name_error(c: Clue) -> str:
    name = _missing_name(c) or "?"
    if name == "app":
        return "`app` is not defined when the route is added: create the app first, `app = FastAPI()`, above the route."
    if name in IMPORTS:
        return f"`{name}` is not defined in your step {c.step} cell: import it first, `{IMPORTS[name]}`."
    if c.source and re.search(rf"^\s*(async\s+def|def|class)\s+{name}\b|^\s*{name}\s*=", c.source, re.M):
        return (f"`{name}` was used before your step {c.step} cell defined it: Python runs a cell from top to "
                f"bottom, so define `{name}` above the code that uses it (the dependency above the route).")
    earlier = _defined_earlier(name)
    if earlier is not None and c.step > 1:
        return (f"`{name}` was not defined when your step {c.step} cell ran: "
                f"run the step {earlier} cell first, then this one.")
    return f"`{name}` is not defined in your step {c.step} cell: check its spelling (Python is case-sensitive)."


def _import_error(c: Clue) -> str:
    found = re.search(r"cannot import name '(\w+)'", c.text)
    name = found.group(1) if found else None
    if name in IMPORTS:
        return f"`{name}` cannot be imported from there: write `{IMPORTS[name]}`."
    return f"an import in your step {c.step} cell failed: check the module's and the name's spelling ({raw(c.exc)})."


def _binds(source: str, name: str) -> bool:
    """Whether `source` imports or defines `name` anywhere (True when it cannot be read)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return True
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)) and any(
                (a.asname or a.name.split(".")[0]) in (name, "*") for a in node.names):
            return True
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name == name:
            return True
        if isinstance(node, ast.Name) and node.id == name and isinstance(node.ctx, ast.Store):
            return True
    return False


def _unimported(c: Clue) -> str | None:
    """The name a NameError in the chain misses, when the lesson knows its import and the
    cell's own code imports it nowhere."""
    for e in c.chain:
        found = re.search(r"name '(\w+)' is not defined", str(e)) if isinstance(e, NameError) else None
        if found and found.group(1) in IMPORTS and not _binds(c.source, found.group(1)):
            return found.group(1)
    return None


def _not_imported(c: Clue) -> str:
    name = _unimported(c)
    return (f"your step {c.step} cell uses `{name}` but does not import it, so the cell fails when it runs on its "
            f"own (in a fresh kernel, or exported as a .py file): add `{IMPORTS[name]}` to that cell.")


def _no_depends(c: Clue) -> str:
    return ("FastAPI tried to read the route's connection parameter from the request, because it has no "
            "`Depends`: write `conn: AsyncConnection = Depends(get_connection)` (or "
            "`conn: Annotated[AsyncConnection, Depends(get_connection)]`).")


ENGINE_ARGUMENTS = ("max_overflow", "connect_args")  # real ones, refused only by a pool without a size


def _limit_arguments(c: Clue) -> list[str]:
    """The arguments create_async_engine refused that look like a limit on connections
    (`max_connections=`, `max_size=`, `pool_max=`, `maxconn=` ...)."""
    found = re.search(r"Invalid argument\(s\) (.+?) sent to create_engine", c.text)
    names = re.findall(r"'(\w+)'", found.group(1)) if found else []
    return [name for name in names if re.search(r"max|limit|conn", name) and name not in ENGINE_ARGUMENTS]


def _connection_limit(c: Clue) -> str:
    name = (_limit_arguments(c) or ["max_connections"])[0]
    if name == "max_connections":
        return ("`max_connections` is a PostgreSQL server setting (how many connections the server accepts), "
                "not an argument of `create_async_engine`: the pool's size is `pool_size=POOL_SIZE`.")
    return (f"`{name}=` is not an argument of `create_async_engine` (nor is `max_connections`, a PostgreSQL server "
            "setting): the pool's size is `pool_size=POOL_SIZE`.")


def _state_in_cell(c: Clue) -> str:
    name = (_attribute_missing(c, "State") or ("State", "engine"))[1]
    return (f"`app.state` has no `{name}` yet: the lifespan sets it only when the app starts, before its `yield`, "
            f"so read it inside `get_connection` (`request.app.state.{name}`), not at the top of the cell.")


def _unknown_argument(c: Clue) -> str:
    names = ", ".join(f"`{name}=`" for name in re.findall(r"'(\w+)'", c.text.split(" sent to")[0]))
    pool = re.search(r"using configuration \w+/(\w+)/", c.text)
    if pool and pool.group(1) in ("NullPool", "StaticPool", "SingletonThreadPool", "AssertionPool"):
        return (f"a {pool.group(1)} has no size, so `create_async_engine` does not take {names or 'pool_size'} "
                "with it: remove the `poolclass` argument, and the file URL gets a queue pool of "
                "`pool_size=POOL_SIZE`.")
    return (f"`create_async_engine` does not take {names or f'one of your arguments ({raw(c.exc)})'}: "
            "the pool's size is `pool_size=POOL_SIZE`.")


IN_CELL: list[Mistake] = [
    Mistake("interrupted", lambda c: c.any(KeyboardInterrupt),
            lambda c: f"your step {c.step} cell was stopped before it finished (interrupted, or over the time "
                      "limit for a cell): remove whatever keeps it running, and run it again."),
    Mistake("unquoted_url", lambda c: c.any(SyntaxError) and re.search(r"=\s*sqlite\b", c.source or "") is not None,
            "the URL is not in quotes, so Python reads it as code: write "
            'DATABASE_URL = "sqlite+aiosqlite:///./test.db" (a string, in quotes).'),
    Mistake("syntax_error", lambda c: c.any(SyntaxError),
            lambda c: f"your step {c.step} cell is not valid Python ({raw(c.exc)}, "
                      f"line {getattr(c.exc, 'lineno', '?')}): fix that line and run the cell again."),
    Mistake("import_error", lambda c: c.any(ImportError), _import_error),
    Mistake("import_missing", lambda c: c.any(NameError) and c.step > 0 and _unimported(c) is not None,
            _not_imported),
    Mistake("name_error", lambda c: c.any(NameError) and _missing_name(c) is not None, _name_error),
    Mistake("parameter_without_depends",
            lambda c: c.named("FastAPIError") and c.says("Invalid args for response field"),
            lambda c: _no_depends(c) if c.says("AsyncConnection", "Connection", "Session", "Engine") else
            f"FastAPI could not use a type in your route ({raw(c.exc)}): "
            "annotate the connection parameter and give it `Depends(get_connection)`."),
    Mistake("dependency_called", lambda c: c.says("is not a callable object") and c.says("generator", "coroutine"),
            "`Depends(get_connection())` calls the dependency yourself: pass the function itself, "
            "`Depends(get_connection)`, and FastAPI calls it for every request."),
    Mistake("memory_url_pool_size", lambda c: c.says("pool_size") and c.says("StaticPool", "SingletonThreadPool"),
            "an in-memory SQLite URL gets a pool without a size, so `pool_size` is rejected: "
            "use the file URL from step 1."),
    Mistake("pool_size_positional",
            lambda c: c.says("positional argument") and c.says("create_async_engine", "create_engine"),
            "`create_async_engine` takes the URL as its only positional argument and the pool size as a keyword: "
            "`create_async_engine(DATABASE_URL, pool_size=POOL_SIZE)`."),
    Mistake("engine_awaited",
            lambda c: c.says("can't be used in 'await' expression", "object can't be awaited") and c.says("Engine"),
            "`create_async_engine(...)` is not awaited: it returns the engine at once; write "
            "`engine = create_async_engine(DATABASE_URL, pool_size=POOL_SIZE)` without `await`."),
    Mistake("connection_limit_argument", lambda c: bool(_limit_arguments(c)), _connection_limit),
    Mistake("unknown_engine_argument", lambda c: c.says("Invalid argument(s)") and c.says("create_engine"),
            _unknown_argument),
    Mistake("sync_driver_for_async_engine",
            lambda c: c.says("is not async", "pysqlite") and c.named("InvalidRequestError"),
            "`create_async_engine` needs an async driver: the URL must start with `sqlite+aiosqlite://` (step 1)."),
    Mistake("await_misplaced", _not_awaitable, _await_misplaced),
    ASYNC_WITH_ENGINE,
    CONNECT_AWAITED_AND_ENTERED,
    ENGINE_HAS_NO_METHOD,
    APP_USED_AS_DATABASE,
    LEGACY_QUERY,
    Mistake("state_read_in_cell", lambda c: _attribute_missing(c, "State") is not None, _state_in_cell),
    ENGINE_ARGUMENTS_MIXED_UP,
    METHOD_ON_WRONG_OBJECT,
    ARGUMENT_MISSING,
]


def named(key: str) -> Said:
    """The named mistake `key`, one whose message is a fixed sentence."""
    mistake = next((m for m in [*AT_REQUEST, *IN_CELL] if m.key == key), None)
    if mistake is None or callable(mistake.message):
        raise KeyError(f"no named mistake {key!r} with a fixed message")
    return Said(mistake.message, key)


def in_cell(step: int, exc: BaseException, source: str = "") -> Said:
    """One sentence for an error the student's step cell raised when it last ran."""
    c = clue(exc, step=step, source=source)
    for mistake in IN_CELL:
        if mistake.matches(c):
            said = mistake.say(c)
            if said.startswith("your step"):
                return Said("Y" + said[1:], mistake.key)
            return Said(f"Your step {step} cell stopped with an error: {said}", mistake.key)
    return Said(f"Your step {step} cell stopped with {raw(exc)} when you last ran it, so what it defines is missing "
                "or out of date: fix the line the error points to and run the cell again.", unexplained=True)
