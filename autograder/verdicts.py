"""What the lesson's answers must be, as pure functions: a value or a response in, a sentence out.

The in-kernel checks (autograder/checks.py) and the judge outside the kernel
(course_grade/judge/) both decide with these, so the same mistake gets the same sentence and
the same named-mistake key wherever it is seen. Each function returns None when the value is
right, else an `explain.Said`. Nothing here imports IPython, SQLAlchemy or the checks.
"""
from __future__ import annotations

import collections
import json
import posixpath
from urllib.parse import urlsplit

from autograder import reference as ref
from autograder.explain import FIX_LEAK, Said, clip, named

MISSING = object()  # a name the notebook does not define

LEAK = (
    "`get_connection` leaks connections: after GET /items finished, {n} connection(s) were "
    "still checked out of the pool, and once all are out the next request waits and fails; " + FIX_LEAK
)
LEAK_KEY = "connection_leak"


def leak(n: int) -> Said:
    """A dependency that did not give its connection back: `n` still checked out after a request."""
    return Said(LEAK.format(n=n), LEAK_KEY)


FIXED_LIST = (
    "{when}, GET /items returned other rows: read them from the database with "
    "SELECT * FROM items on every request instead of returning a fixed or saved list."
)
NOT_REUSED = named("connection_not_reused")
STEP3_HOW = "engine = create_async_engine(DATABASE_URL, pool_size=POOL_SIZE)"
ENGINE_MISSING = f"`engine` is not defined: create it in the step 3 cell with {STEP3_HOW} and run it."
URL_TYPED_IN = (
    "`engine` was made from a URL typed into create_async_engine, not from the DATABASE_URL "
    "variable: pass DATABASE_URL as its first argument, so that changing step 1 changes the engine."
)
QUERY_PARAMETER = (
    "GET /items answered 422 because FastAPI read the route's connection parameter from the "
    "request's query: give it `Depends`, `conn: AsyncConnection = Depends(get_connection)`."
)


SQLITE_FILE = "sqlite+aiosqlite:///"


def _path(url: str) -> str:
    return url[len(SQLITE_FILE):]


def _same_file(url: str, want: str) -> bool:
    """`url` names the lesson's file by another relative path (`test.db`, `././test.db`), without
    `..` (which depends on folders that may not exist) or query options."""
    path = _path(url)
    if not url.startswith(SQLITE_FILE) or not path or path.startswith("/") or "?" in path or ".." in path.split("/"):
        return False
    return posixpath.normpath(path) == posixpath.normpath(_path(want))


def database_url(url) -> Said | None:
    """Step 1: DATABASE_URL is exactly the lesson's URL."""
    want = ref.DATABASE_URL
    if url is MISSING:
        return Said(f'`DATABASE_URL` is not defined: write DATABASE_URL = "{want}" in the step 1 cell and run it.')
    if not isinstance(url, str):
        return Said(f'`DATABASE_URL` is a {type(url).__name__}; it must be the string "{want}" (in quotes).')
    if url == want:
        return None
    if url.strip() == want:
        return Said("`DATABASE_URL` has spaces or a newline around it; remove them.")
    if url.startswith("sqlite://") and not url.startswith("sqlite+aiosqlite://") or "+pysqlite" in url:
        return Said(f"`DATABASE_URL` uses SQLite's synchronous driver ({url!r}); an async engine needs "
                    f'the aiosqlite driver: write "{want}".')
    if url in ("sqlite+aiosqlite://", "sqlite+aiosqlite:///:memory:"):
        return Said("`DATABASE_URL` names an in-memory database: SQLAlchemy gives it a StaticPool with no "
                    f'size to set, and it has no `items` table; use the file: "{want}".')
    if "aiosqlite" in url and not url.startswith("sqlite+aiosqlite:"):
        return Said(f"`DATABASE_URL` ({url!r}) must join the dialect and the driver with a `+`: a URL reads "
                    f'dialect+driver://location, so write "{want}".')
    if url.startswith("sqlite+aiosqlite:") and not url.startswith("sqlite+aiosqlite:///"):
        return Said(f'`DATABASE_URL` ({url!r}) needs three slashes before the file\'s path: write "{want}".')
    if _same_file(url, want):
        return Said(f"`DATABASE_URL` ({url!r}) names the same file as the lesson's URL, {_path(want)}, but the lesson "
                    f'asks for its exact string: write "{want}".', "url_same_file")
    if url.startswith("sqlite+aiosqlite://"):
        return Said(f'`DATABASE_URL` points at the wrong file ({url!r}); use exactly "{want}", '
                    "the file the setup cell filled.")
    if url.startswith("sqlite") and "aiosqlite" not in url:
        return Said(f"`DATABASE_URL` does not name the aiosqlite driver ({url!r}): "
                    f'the URL reads dialect+driver://location, so write "{want}".')
    return Said(f'`DATABASE_URL` is {url!r} but must be exactly "{want}".')


def pool_size(size) -> Said | None:
    """Step 2: POOL_SIZE is the integer the lesson asks for (not a bool, str or tuple)."""
    want = f"POOL_SIZE = {ref.POOL_SIZE}"
    if size is MISSING:
        return Said(f"`POOL_SIZE` is not defined: write {want} in the step 2 cell and run it.")
    if isinstance(size, str):
        return Said(f"`POOL_SIZE` is the string {size!r}; write the number without quotes: {want}.")
    if isinstance(size, tuple):
        return Said(f"`POOL_SIZE` is a tuple {size!r} because of a comma after the number: "
                    f"remove the trailing comma, {want}.")
    if isinstance(size, bool) or not isinstance(size, int):
        return Said(f"`POOL_SIZE` is a {type(size).__name__} ({size!r}); the pool size is a whole number: {want}.")
    if size != ref.POOL_SIZE:
        return Said(f"`POOL_SIZE` is {size}; this lesson's pool keeps {ref.POOL_SIZE} connections: {want}.")
    return None


REDIRECTS = (301, 302, 303, 307, 308)


def rows(status: int, body: str, *, router: str | None = None, location: str = "") -> tuple[list | None, Said | None]:
    """Step 4: the rows a GET /items response carries (status code and body text), or why
    it carries none. `router`: the name of an APIRouter with GET /items that the app does not
    include (explain.router_left_out), which explains a 404. `location`: where a redirect
    points; it is not followed, as the lesson's own call of GET /items does not follow one."""
    if status in REDIRECTS:
        if urlsplit(location).path == "/items/":
            return None, named("route_has_trailing_slash")
        return None, Said(f"GET /items answered a redirect ({status}) to `{location}` instead of the rows, and the "
                          "lesson's call does not follow redirects: answer GET /items itself with the rows.")
    if status == 404 and router:
        return None, Said(f"`app` does not answer GET /items (404 Not Found): your route is on `{router}`, an "
                          f"APIRouter that `app` does not include; add `app.include_router({router})`.",
                          "router_not_included")
    if status == 404:
        return None, Said('`app` does not answer GET /items (404 Not Found): add the route with @app.get("/items").')
    if status == 405:
        return None, Said("`app` has /items, but not for GET (405 Method Not Allowed): "
                          'use @app.get("/items"), not post or put.')
    if status == 422:
        return None, Said(QUERY_PARAMETER)
    if status != 200:
        return None, Said(f"GET /items answered {status} instead of 200: {clip(body)}", unexplained=True)
    try:
        found = json.loads(body)
    except ValueError:
        return None, Said("GET /items did not answer JSON: return the rows (a list of dicts) from the route.")
    if found is None:
        return None, Said("GET /items answered null: the route function returns nothing; "
                          "end it with `return result.mappings().all()`.")
    if found == {}:
        return None, Said("GET /items answered {}, an empty JSON object: the route returned a result object, "
                          "not its rows; add `.all()`, for example `return result.mappings().all()`.")
    if isinstance(found, dict):
        return None, Said(f"GET /items answered a JSON object (keys {sorted(found)[:5]}), not a list: return the "
                          "list of rows itself, for example `return result.mappings().all()`.")
    if not isinstance(found, list):
        return None, Said(f"GET /items returned a JSON {type(found).__name__}, not a list: "
                          "return one dict per row in a list.")
    if found and all(isinstance(row, (int, float, str)) or row is None for row in found):
        shown = json.dumps(found[:3])[:60] if len(found) <= 3 else json.dumps(found[:3])[:60].rstrip("]") + ", …]"
        return None, Said(f"GET /items returned single values ({shown}), not rows: "
                          "`scalars()` and `scalar()` give one column only; return `result.mappings().all()`.")
    if found and not all(isinstance(row, dict) for row in found):
        return None, Said("GET /items returned rows as lists, not dicts: return `result.mappings().all()` or "
                          "`[dict(row._mapping) for row in result]`.")
    return found, None


def _normal(row: dict):
    return tuple(sorted((k, round(v, 6) if isinstance(v, float) else v) for k, v in row.items()))


def same_rows(got: list, want: list[dict], when: str, *, fixed_list_likely: bool = False) -> Said | None:
    """Step 4: the rows GET /items returned are the table's (`when` says which table)."""
    if want and got and set(got[0]) != set(want[0]):
        return Said(f"{when}, each row's keys were {sorted(got[0])} but the table's columns are "
                    f"{sorted(want[0])}: select every column (SELECT * FROM items).")
    if collections.Counter(map(_normal, got)) == collections.Counter(map(_normal, want)):
        return None
    if len(got) != len(want) and not fixed_list_likely:
        return Said(f"{when}, GET /items returned {len(got)} row(s) but the table holds {len(want)}: "
                    "return every row of `items` (SELECT * FROM items, then .all()), read from the database.")
    return Said(FIXED_LIST.format(when=when))


def engine_kind(kind: str) -> Said | None:
    """Step 3: `engine` is an AsyncEngine (`kind` is its class's name)."""
    if kind == "AsyncEngine":
        return None
    if kind == "missing":
        return Said(ENGINE_MISSING)
    if kind == "Engine":
        return Said("`engine` is a synchronous Engine made by `create_engine`; use `create_async_engine` "
                    "from sqlalchemy.ext.asyncio, which works with the async aiosqlite driver and `await`.")
    if "Connection" in kind or "Session" in kind:
        return Said(f"`engine` is a connection ({kind}), not an AsyncEngine: `engine` is the engine itself, "
                    f"{STEP3_HOW}, without `.connect()`; connections are taken from it in step 4.")
    return Said(f"`engine` is {'an' if kind[:1] in 'AEIOU' else 'a'} {kind}, not an AsyncEngine: create it with "
                f"{STEP3_HOW}.")


def pool_kind(kind: str | None) -> Said | None:
    """Step 3: the engine's pool is a queue pool (`kind`: its class's name)."""
    if kind in (None, "QueuePool", "AsyncAdaptedQueuePool"):
        return None
    why = {
        "StaticPool": "an in-memory SQLite URL gets a StaticPool (one shared connection); "
                      "use the file URL from step 1",
        "NullPool": "NullPool opens and closes a connection per use; remove `poolclass=NullPool`",
    }.get(kind, "remove any `poolclass=` argument")
    return Said(f"`engine` has a {kind}, not a queue pool: {why}.")
