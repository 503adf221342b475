"""Measuring and plotting helpers for the self-study notebook notebooks/pool-lab.ipynb.

Nothing here is graded. The notebook builds the lesson's FastAPI app itself (so readers see
its code) and hands the app and its engine to these helpers, which send requests in-process
through httpx's ASGITransport and watch the engine's pool through SQLAlchemy's pool events:

    burst = await lab.burst(app, engine, n=30, label="pool_size=5, max_overflow=0")
    fig = lab.plot_timelines([burst, ...]); plt.show()

Every helper is a coroutine or a plain function the notebook awaits or calls at the top
level of a cell (the kernel already runs an event loop, so never asyncio.run).
"""
from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
import warnings

import httpx
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import QueuePool

# Importing pyplot builds matplotlib's font cache on a machine that has none yet, and says
# so through logging, which would land on the notebook's stderr: keep that one notice quiet.
_font_log = logging.getLogger("matplotlib.font_manager")
_level = _font_log.level
_font_log.setLevel(logging.ERROR)
try:
    import matplotlib.pyplot as plt
finally:
    _font_log.setLevel(_level)

__all__ = ["Burst", "Rate", "PoolMessages", "pool_limit", "burst", "throughput", "plot_timelines",
           "plot_waits", "catch_pool_messages"]

BASE_URL = "http://lab"


def pool_limit(engine: AsyncEngine) -> int | None:
    """The most connections the engine's pool lets out at once: pool_size + max_overflow for a
    queue pool (None when unlimited, as with max_overflow=-1), None for NullPool and others."""
    pool = engine.pool
    if isinstance(pool, QueuePool):
        overflow = pool._max_overflow  # max_overflow as given to create_async_engine
        return None if overflow < 0 else pool.size() + overflow
    return None


class _PoolWatch:
    """Counts checkouts, checkins and new connections of an engine's pool as they happen, and
    notes which asyncio task (which request) each checkout was for."""

    def __init__(self, engine: AsyncEngine):
        self._target = engine.sync_engine  # pool events on the Engine apply to its pool
        self._listeners = [("checkout", self._on_checkout), ("checkin", self._on_checkin),
                           ("connect", self._on_connect)]
        self.start = time.perf_counter()
        self.out = 0
        self.changes: list[tuple[float, int]] = [(0.0, 0)]
        self.checked_out_at: dict[asyncio.Task, float] = {}
        self.connects = 0

    def now(self) -> float:
        return time.perf_counter() - self.start

    def _on_checkout(self, dbapi_connection, record, proxy):
        self.out += 1
        self.changes.append((self.now(), self.out))
        task = asyncio.current_task()
        if task is not None:
            self.checked_out_at.setdefault(task, self.now())

    def _on_checkin(self, dbapi_connection, record):
        self.out -= 1
        self.changes.append((self.now(), self.out))

    def _on_connect(self, dbapi_connection, record):
        self.connects += 1

    def __enter__(self):
        for name, fn in self._listeners:
            event.listen(self._target, name, fn)
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc_info):
        for name, fn in self._listeners:
            event.remove(self._target, name, fn)


@dataclasses.dataclass
class Burst:
    """What happened while n requests were sent at once."""
    label: str
    limit: int | None         # pool_size + max_overflow; None when the pool has no limit
    times: list[float]        # seconds since the first request, at every checkout or checkin
    counts: list[int]         # connections checked out right after each of those moments
    sent: list[float]         # per request, in the order sent: when it was sent (seconds)
    checked_out: list[float]  # per request, in the order sent: when it had its connection
    statuses: list[int]       # HTTP status of each request
    connects: int             # new database connections opened during the burst
    kept_open: int | None     # connections left open in the pool afterwards (None: NullPool)
    seconds: float            # from the first request sent to the last response

    @property
    def peak(self) -> int:
        """The most connections that were checked out at the same moment."""
        return max(self.counts)

    @property
    def waits(self) -> list[float]:
        """Per request, in the order sent: seconds from sending it until it had a connection."""
        return [got - sent for sent, got in zip(self.sent, self.checked_out, strict=True)]

    def queued(self) -> list[bool]:
        """Per request, in the order sent: False for the first `limit` requests to get a
        connection (they found one free), True for those that had to wait for one to come back."""
        if self.limit is None:
            return [False] * len(self.sent)
        first = sorted(range(len(self.sent)), key=self.checked_out.__getitem__)[:self.limit]
        return [i not in first for i in range(len(self.sent))]


async def burst(app, engine: AsyncEngine, n: int = 30, label: str = "") -> Burst:
    """Send n GET /items requests to `app` at once and record the pool of `engine` meanwhile."""
    starts: dict[asyncio.Task, float] = {}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL) as client:
        with _PoolWatch(engine) as watch:
            async def one():
                task = asyncio.current_task()
                starts[task] = watch.now()
                response = await client.get("/items")
                return task, response.status_code

            done = await asyncio.gather(*(one() for _ in range(n)))
            seconds = watch.now()
    missing = [task for task, _ in done if task not in watch.checked_out_at]
    if missing:
        raise RuntimeError(f"{len(missing)} of {n} requests never checked a connection out of the pool")
    return Burst(
        label=label or type(engine.pool).__name__,
        limit=pool_limit(engine),
        times=[t for t, _ in watch.changes],
        counts=[c for _, c in watch.changes],
        sent=[starts[task] for task, _ in done],
        checked_out=[watch.checked_out_at[task] for task, _ in done],
        statuses=[status for _, status in done],
        connects=watch.connects,
        kept_open=engine.pool.checkedin() if isinstance(engine.pool, QueuePool) else None,
        seconds=seconds,
    )


@dataclasses.dataclass
class Rate:
    """Requests sent one after another, and how fast they were answered."""
    requests: int
    seconds: float
    connects: int             # new database connections opened while measuring

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds


async def throughput(app, engine: AsyncEngine, n: int = 200, warmup: int = 5) -> Rate:
    """Time n GET /items requests sent one after another (after `warmup` untimed ones)."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL) as client:
        for _ in range(warmup):
            (await client.get("/items")).raise_for_status()
        with _PoolWatch(engine) as watch:
            started = time.perf_counter()
            for _ in range(n):
                (await client.get("/items")).raise_for_status()
            seconds = time.perf_counter() - started
    return Rate(requests=n, seconds=seconds, connects=watch.connects)


def plot_timelines(bursts: list[Burst]):
    """One panel per burst: connections checked out over time, with the pool's limit dashed."""
    top = max(max(b.peak for b in bursts), max((b.limit or 0) for b in bursts)) + 2
    fig, axes = plt.subplots(1, len(bursts), figsize=(4.2 * len(bursts), 3.6), sharex=True, sharey=True,
                             layout="constrained")
    for ax, b in zip(axes, bursts, strict=True):
        ax.step(b.times, b.counts, where="post", color="tab:blue", label="checked out")
        if b.limit is not None:
            ax.axhline(b.limit, color="tab:red", linestyle="--", label=f"limit = {b.limit}")
        else:
            ax.text(0.6, 0.5, "no limit", transform=ax.transAxes, ha="center", color="tab:red")
        ax.set_title(f"{b.label}\npeak {b.peak}, {len(b.waits)} requests", fontsize=10)
        ax.set_xlabel("time since the requests were sent (s)")
        ax.set_ylim(0, top)
        ax.grid(alpha=0.3)
        ax.legend(loc="upper right", fontsize=8)
    axes[0].set_ylabel("connections checked out")
    return fig


def plot_waits(b: Burst):
    """A bar per request (in the order sent): how long it waited for a pooled connection."""
    fig, ax = plt.subplots(figsize=(9, 3.4), layout="constrained")
    waited = [w * 1000 for w in b.waits]
    colors = ["tab:orange" if q else "tab:blue" for q in b.queued()]
    ax.bar(range(1, len(waited) + 1), waited, color=colors)
    ax.set_xlabel("request (in the order it was sent)")
    ax.set_ylabel("wait for a connection (ms)")
    ax.set_title(f"{b.label}: blue got a connection at once, orange queued", fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    return fig


@dataclasses.dataclass
class PoolMessages:
    """What SQLAlchemy said while the block ran: its warnings, and its pool log lines."""
    warnings: list[warnings.WarningMessage] = dataclasses.field(default_factory=list)
    log: list[logging.LogRecord] = dataclasses.field(default_factory=list)


class _ListHandler(logging.Handler):
    def __init__(self, into: list[logging.LogRecord]):
        super().__init__()
        self.into = into

    def emit(self, record):
        self.into.append(record)


@contextlib.contextmanager
def catch_pool_messages():
    """Catch every warning, and the pool's log records, raised inside the block.

    When the garbage collector finds a connection that was never given back, SQLAlchemy both
    warns (SAWarning) and logs an error on the logger `sqlalchemy.pool`; with no logging set
    up, Python would print that log line to stderr. Here both are kept for printing instead.
    """
    caught = PoolMessages()
    logger = logging.getLogger("sqlalchemy.pool")
    handler, propagate = _ListHandler(caught.log), logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            yield caught
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate
        caught.warnings.extend(seen)
