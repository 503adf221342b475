"""What the judge sees of a submission, from outside its process, as plain data.

`observe()` runs the submission's cells in the judge's kernel, then three servers in turn:
the lesson's own route on the notebook's `engine` (step 3 as written), on the step-3 cell run
again with another database and with another POOL_SIZE (step 3 follows its variables), and the
notebook's `app` with its lifespan (step 4). For each it writes rows into the database
itself, sends real requests, and counts the server's open connections to the database file
(between requests, and while 20 requests wait on a write lock the judge holds).
"""
from __future__ import annotations

import ast
import asyncio
import contextlib
import os
from dataclasses import dataclass, field

import httpx

from autograder import reference as ref
from autograder import verdicts
from autograder.explain import clip
from course_grade.judge import database as tables
from course_grade.judge.folder import Database, JudgeError, JudgeFolder, Socket
from course_grade.judge.session import CellRun, JudgeKernel
from course_grade.judge.watch import Opens, open_connections, settled

OTHER_POOL_SIZE = ref.POOL_SIZE + 2  # step 3 run again with this POOL_SIZE must make this pool
SEQUENTIAL = 3  # requests one after another, after the first: a pooled connection is reused by each
SERVE = "__import__('autograder.serve').serve"
LOCK_SECONDS = 4.0  # the longest the judge holds a write lock (SQLite's queries give up after 5 s)
BURSTS = 3  # attempts at a burst of requests that opens enough connections to show the pool's size
BODY_BYTES = 1_000_000  # the most the judge reads of one answer (the lesson's rows are a few hundred bytes)


@dataclass
class Answer:
    """One HTTP answer, or why there was none (status None)."""
    status: int | None
    body: str = ""
    error: str = ""
    location: str = ""  # where a redirect points (never followed)


@dataclass
class PoolSeen:
    """A server reading a database through a pool, seen from outside."""
    facts: dict                 # the server's own account (explains, never decides)
    wanted: list = field(default_factory=list)  # the rows the judge put in the table
    first: Answer | None = None  # GET after the judge wrote them
    after_first: int = 0        # open connections to the file after it
    reused: list = field(default_factory=list)  # open connections after each sequential request
    sequential: list = field(default_factory=list)  # their answers
    opened: int = 0             # new opens of the database file during those requests (a pool makes none)
    peak: int = 0               # open connections while 20 requests waited on the judge's lock
    concurrent: list = field(default_factory=list)  # the 20 answers
    idle: int = 0               # open connections once all 20 had their answer


@dataclass
class AppSeen(PoolSeen):
    """The notebook's app: as a PoolSeen on the seed rows, plus the hidden checks' requests."""
    stand_in: bool = False      # served with a correct engine standing in for the notebook's
    fresh: list = field(default_factory=list)  # rows the judge put in at grading time
    fresh_answer: Answer | None = None
    empty_answer: Answer | None = None
    without_dependency: Answer | None = None  # GET /items once get_connection answers 418
    shutdown_error: str | None = None  # how the server's stop went (the lifespan's shutdown runs then)
    name_error: str | None = None  # the server's account of the first request's 500: the NameError it raised


@dataclass
class Observed:
    cells: list[CellRun] = field(default_factory=list)
    values: dict = field(default_factory=dict)  # DATABASE_URL and POOL_SIZE as the fresh process reports them
    standing_in: dict = field(default_factory=dict)  # the values step 3 was judged with, when steps 1-2 are wrong
    probe: PoolSeen | None = None
    rerun: PoolSeen | None = None    # step 3 run again with another DATABASE_URL
    resized: PoolSeen | None = None  # step 3 run again with another POOL_SIZE
    app: AppSeen | None = None
    trouble: str | None = None  # what stopped the judge from seeing the rest


class Unreadable:
    """A value whose repr is not a Python literal: only its kind and repr are known."""

    def __init__(self, kind: str, text: str):
        self.kind, self.text = kind, text

    def __repr__(self) -> str:
        return self.text


def reported(values: dict, name: str):
    """The value the fresh process reported for `name` (verdicts.MISSING when undefined)."""
    text, kind = values.get(name), values.get(f"{name}_type")
    if not isinstance(text, str):
        return verdicts.MISSING
    with contextlib.suppress(ValueError, SyntaxError, MemoryError, RecursionError):
        value = ast.literal_eval(text)
        if type(value).__name__ == kind:
            return value
    return type(str(kind or "object"), (Unreadable,), {})(kind, text)


def standing_in(values: dict, cells: list[CellRun], step_of) -> dict:
    """The correct values that stand in for wrong or failing steps 1 and 2 (as the in-kernel
    checks do): step 3 is then judged on its own."""
    failed = {step_of(run.grade_id) for run in cells if run.ename is not None}
    found = {}
    if verdicts.database_url(reported(values, "DATABASE_URL")) is not None or 1 in failed:
        found["DATABASE_URL"] = ref.DATABASE_URL
    if verdicts.pool_size(reported(values, "POOL_SIZE")) is not None or 2 in failed:
        found["POOL_SIZE"] = ref.POOL_SIZE
    return found


def client(socket: Socket) -> httpx.AsyncClient:
    transport = httpx.AsyncHTTPTransport(uds=socket.path)
    return httpx.AsyncClient(transport=transport, base_url="http://judge", timeout=ref.CHECK_TIME_LIMIT,
                             follow_redirects=False)  # as the lesson's own call: a redirect is an answer


async def get(http: httpx.AsyncClient, path: str) -> Answer:
    """GET `path`: at most BODY_BYTES of the answer are read, all of it within CHECK_TIME_LIMIT."""
    try:
        async with asyncio.timeout(ref.CHECK_TIME_LIMIT), http.stream("GET", path) as response:
            location = response.headers.get("location", "")[:2000]
            body = bytearray()
            async for chunk in response.aiter_bytes():  # decoded (gzip), read no further than needed
                body += chunk
                if len(body) > BODY_BYTES:
                    return Answer(response.status_code, body[:BODY_BYTES].decode("utf-8", "replace"),
                                  error=f"an answer longer than {BODY_BYTES} bytes, cut", location=location)
            return Answer(response.status_code, body.decode(response.encoding or "utf-8", "replace"), location=location)
    except TimeoutError:
        return Answer(None, error=f"no whole answer within {ref.CHECK_TIME_LIMIT} s")
    except httpx.HTTPError as exc:
        return Answer(None, error=clip(f"{type(exc).__name__}: {exc}", 300))


class Counter:
    """The server's open connections to the databases, above those open before a phase began."""

    def __init__(self, pids: list[int], *databases: Database):
        self.pids, self.identities = pids, [d.identity() for d in databases]
        self.base = 0

    def __call__(self) -> int:
        return max(sum(open_connections(self.pids, i) for i in self.identities) - self.base, 0)

    async def start(self) -> None:
        self.base = 0
        self.base = await settled(self, quiet=0.3)


async def _first(seen: PoolSeen, http, path: str, database: Database, count: Counter, rows: list) -> None:
    """Write `rows`, ask once, and count the connections left open."""
    await count.start()
    tables.put_rows(database, rows)
    seen.wanted = rows
    seen.first = await get(http, path)
    seen.after_first = await settled(count)


async def _one_by_one(seen: PoolSeen, http, path: str, database: Database, count: Counter, times: int) -> None:
    """Ask `times` more times, one request after another, counting the connections left
    open after each and every new open of the database file meanwhile (a pool opens none)."""
    opens = Opens(database.path)
    try:
        for _ in range(times):
            seen.sequential.append(await get(http, path))
            seen.reused.append(await settled(count))
        seen.opened = opens.take()
    finally:
        opens.close()


async def _at_once(seen: PoolSeen, http, path: str, databases: list[Database], count: Counter,
                   enough: int = ref.POOL_SIZE + 1) -> None:
    """20 requests at once, while the judge holds the databases' write locks: each waits with
    its connection open, so the peak is how many connections the server opens at once, and
    the connections left open afterwards are the pool's size. A burst that opened fewer than
    `enough` (a busy machine: the lock is held at most LOCK_SECONDS, under SQLite's own busy
    timeout) says nothing of a pool that size, and is made again, up to BURSTS times."""
    for _ in range(BURSTS):
        with contextlib.ExitStack() as locks:
            for database in databases:
                locks.enter_context(tables.locked(database))
            waiting = [asyncio.ensure_future(get(http, path)) for _ in range(ref.CONCURRENT_REQUESTS)]
            seen.peak = await settled(count, quiet=0.4, longest=LOCK_SECONDS)
        seen.concurrent = list(await asyncio.gather(*waiting))
        seen.idle = await settled(count, quiet=0.2)
        if seen.peak >= enough or any(a.status != 200 for a in seen.concurrent):
            return


async def _probe(kernel: JudgeKernel, name: str, database: Database, values: dict,
                 also: Database | None = None, at_once: bool = True, size: int = ref.POOL_SIZE) -> PoolSeen:
    """The lesson's route on an engine: it reads `database` (the judge's rows go there), and
    its connections are counted there and in `also` (where an engine that ignores
    DATABASE_URL goes)."""
    path = os.path.join(kernel.socket_folder, name)
    said = await kernel.call(f"await {SERVE}.probe(globals(), {path!r}, {values!r})")
    seen = PoolSeen(facts={**said.facts, **({"call_error": said.error} if said.error else {})})
    if said.facts.get("serve_error") or said.error:
        return seen
    socket = Socket(kernel.socket_folder, name)
    databases = [database, *([also] if also else [])]
    count = Counter(kernel.processes(), *databases)
    try:
        async with client(socket) as http:
            await _first(seen, http, "/rows", database, count, tables.random_rows(4))
            await _one_by_one(seen, http, "/rows", database, count, 1)
            if at_once:
                await _at_once(seen, http, "/rows", databases, count, enough=size + 1)
    finally:
        socket.close()
    return seen


async def _app(kernel: JudgeKernel, folder: JudgeFolder, stand_in: bool) -> AppSeen:
    path = os.path.join(kernel.socket_folder, "app.sock")
    said = await kernel.call(f"await {SERVE}.app(globals(), {path!r}, stand_in={stand_in!r})")
    seen = AppSeen(facts={**said.facts, **({"call_error": said.error} if said.error else {})}, stand_in=stand_in)
    if said.facts.get("serve_error") or said.error:
        return seen
    socket = Socket(kernel.socket_folder, "app.sock")
    count = Counter(kernel.processes(), folder.main)
    try:
        async with client(socket) as http:
            await _first(seen, http, "/items", folder.main, count, [dict(r) for r in ref.SEED_ROWS])
            if seen.first.status == 500:
                errors = (await kernel.call(f"{SERVE}.name_errors()")).facts.get("name_errors")
                seen.name_error = errors[0] if isinstance(errors, list) and errors and isinstance(errors[0], str) \
                    else None
            await _one_by_one(seen, http, "/items", folder.main, count, SEQUENTIAL)
            seen.fresh = tables.random_rows(7)
            tables.put_rows(folder.main, seen.fresh)
            seen.fresh_answer = await get(http, "/items")
            tables.put_rows(folder.main, [])
            seen.empty_answer = await get(http, "/items")
            tables.put_rows(folder.main, [dict(r) for r in ref.SEED_ROWS])
            if seen.after_first >= 1 and not seen.opened and all(n == seen.after_first for n in seen.reused):
                # (else the requests wait for connections that never come back)
                await _at_once(seen, http, "/items", [folder.main], count)
            overridden = await kernel.call(f"{SERVE}.without_dependency(globals())")
            if overridden.facts.get("overridden"):
                seen.without_dependency = await get(http, "/items")
            stopped = await kernel.call(f"await {SERVE}.stop_app()")
            seen.shutdown_error = stopped.facts.get("shutdown_error") if stopped.facts else "the server did not stop"
    finally:
        socket.close()
    return seen


def usable(seen: PoolSeen | None) -> bool:
    """Whether the notebook's engine served the table's rows through a pool that keeps connections."""
    if seen is None or seen.first is None or seen.first.status != 200 or seen.facts.get("engine_kind") != "AsyncEngine":
        return False
    rows, said = verdicts.rows(seen.first.status, seen.first.body)
    return said is None and verdicts.same_rows(rows, seen.wanted, "") is None and seen.after_first >= 1


async def observe(kernel: JudgeKernel, folder: JudgeFolder, cells: list[tuple[int, str | None, str]],
                  step_of) -> Observed:
    """Everything the judge sees of one submission (`cells`: index, grade_id, source)."""
    seen = Observed()
    try:
        await kernel.start()
        await kernel.call("__import__('autograder.cells').cells.install()")
        for index, grade_id, source in cells:
            seen.cells.append(await kernel.cell(index, grade_id, source))
        seen.values = (await kernel.call(f"{SERVE}.report(globals())")).facts
        seen.standing_in = standing_in(seen.values, seen.cells, step_of)
        seen.probe = await _probe(kernel, "probe.sock", folder.main, seen.standing_in)
        # step 3 run again with another database, then with another pool size (one at a time,
        # as the in-kernel checks do: a cell that sets one of them again must not hide the other)
        seen.rerun = await _probe(kernel, "rerun.sock", folder.other,
                                  {**seen.standing_in, "DATABASE_URL": folder.other.url()}, also=folder.main,
                                  at_once=False)
        seen.resized = await _probe(kernel, "resized.sock", folder.main,
                                    {**seen.standing_in, "POOL_SIZE": OTHER_POOL_SIZE}, size=OTHER_POOL_SIZE)
        await kernel.call(f"await {SERVE}.retire()")
        seen.app = await _app(kernel, folder, stand_in=bool(seen.standing_in) or not usable(seen.probe))
    except JudgeError as exc:
        seen.trouble = str(exc)
    return seen
