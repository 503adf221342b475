"""The pool lab (notebooks/pool-lab.ipynb), executed as a reader's kernel runs it, and its helpers.

Nothing here asserts how fast anything ran: only what the pool did (limits, counts, the
errors and warnings SQLAlchemy gives) and that the printed numbers agree with each other.
"""
from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
import re
import shutil
import subprocess
import sys

import nbformat
import pytest
from nbclient import NotebookClient
from sqlalchemy import exc
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from autograder import lab
from tests.support.course import ROOT
from tools import build_pool_lab

pytestmark = pytest.mark.slow


NOTEBOOK = ROOT / "notebooks" / "pool-lab.ipynb"
IMAGE_CELLS = ["burst_plot", "queue_plot"]
REQUESTS = 30
GC_WARNING = ("SAWarning: The garbage collector is trying to clean up non-checked-in connection "
              "<AdaptedConnection <aiosqlite.core.Connection object at ")
GC_WARNING_END = ("which will be terminated.  Please ensure that SQLAlchemy pooled connections are returned "
                  "to the pool explicitly, either by calling ``close()`` or by using appropriate context "
                  "managers to manage their lifecycle.")
LINE = re.compile(r"^(?P<label>.+?)\s+limit\s+(?P<limit>\d+|none) \| peak checked out\s+(?P<peak>\d+) \| "
                  r"new connections\s+(?P<connects>\d+) \| kept open after\s+(?P<kept>\d+|-) \|", re.M)


def _text(cell) -> str:
    return "".join(out.text for out in cell.get("outputs", []) if out.output_type == "stream")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The notebook run top to bottom in a fresh kernel, then every code cell run once more in
    the same kernel (a reader running it again): {"first": cells, "again": cells} by cell id.
    matplotlib gets an empty config folder, as on a machine that has never built its font cache."""
    folder = tmp_path_factory.mktemp("pool-lab")
    nb = nbformat.read(shutil.copy(NOTEBOOK, folder), as_version=4)
    again = [nbformat.v4.new_code_cell(c.source, id=f"{c.id}-again") for c in nb.cells if c.cell_type == "code"]
    nb.cells += again
    env = {**os.environ, "MPLCONFIGDIR": str(folder / "mplconfig")}
    env.pop("MPLBACKEND", None)
    NotebookClient(nb, timeout=180, allow_errors=True, resources={"metadata": {"path": str(folder)}}).execute(env=env)
    cells = {c.id: c for c in nb.cells}
    first = {k: v for k, v in cells.items() if not k.endswith("-again")}
    second = {k.removesuffix("-again"): v for k, v in cells.items() if k.endswith("-again")}
    return {"folder": folder, "first": first, "again": second}


@pytest.fixture(params=["first", "again"])
def cells(request, runs):
    return runs[request.param]


def test_the_pool_status_cell_explains_each_number(cells):
    """The numbers of `pool.status()` for a fresh pool of 5 (proven in
    tests/notebooks/test_lesson_claims.py::test_the_pool_status_cell_explains_overflow_truly)."""
    shown = _text(cells["pool_status"])
    assert "Pool size: 5  Connections in pool: 0 Current Overflow: -5 Current Checked out connections: 0" in shown
    assert "pool class: AsyncAdaptedQueuePool" in shown
    for line in ("pool size: 5 =", "connections in pool: 0 =", "checked out: 0 =", "current overflow: -5 ="):
        assert line in shown, line
    assert "-5 means 5 can still open before any overflow one" in shown


def test_every_cell_runs_without_error_or_stderr(cells):
    code = [c for c in cells.values() if c.cell_type == "code"]
    assert len(code) >= 8
    for cell in code:
        assert cell.get("execution_count"), f"{cell.id} did not run"
        for out in cell.outputs:
            assert out.output_type != "error", f"{cell.id}: {out.ename}: {out.evalue}"
            assert not (out.output_type == "stream" and out.name == "stderr"), f"{cell.id} wrote to stderr: {out.text}"


def test_plots_are_static_png_images(cells):
    images = [out for c in cells.values() for out in c.get("outputs", []) if "image/png" in out.get("data", {})]
    assert len(images) >= len(IMAGE_CELLS)
    for cell_id in IMAGE_CELLS:
        pngs = [out for out in cells[cell_id].outputs if "image/png" in out.get("data", {})]
        assert len(pngs) == 1, f"{cell_id} shows {len(pngs)} PNG images"
    assert not any("application/vnd.jupyter.widget-view+json" in out.get("data", {})
                   for c in cells.values() for out in c.get("outputs", []))


def test_plots_survive_nbconvert_html(runs):
    """The executed lab exported to HTML (as nbconvert and feedback pages do) embeds every plot."""
    from nbconvert import HTMLExporter

    nb = nbformat.v4.new_notebook(cells=list(runs["first"].values()))
    body, _ = HTMLExporter().from_notebook_node(nb)
    assert body.count('src="data:image/png;base64,') == len(IMAGE_CELLS)


def test_app_answers_with_the_seeded_rows(cells, runs):
    shown = _text(cells["try_app"])
    assert "status: 200" in shown and "'name': 'Coffee grinder'" in shown
    assert "connections checked out: 0 | kept open in the pool: 1" in shown
    assert (runs["folder"] / "pool-lab.db").exists() and not (runs["folder"] / "test.db").exists()


def test_peaks_respect_each_pools_limit(cells):
    rows = {m["label"]: m for m in LINE.finditer(_text(cells["burst_run"]))}
    assert list(rows) == ["pool_size=5, max_overflow=0", "defaults (pool_size=5, max_overflow=10)", "NullPool"]
    for label, limit in [("pool_size=5, max_overflow=0", 5), ("defaults (pool_size=5, max_overflow=10)", 15)]:
        row = rows[label]
        assert row["limit"] == str(limit)
        assert 1 <= int(row["peak"]) <= limit, label
        assert 1 <= int(row["connects"]) <= limit, label
        assert 1 <= int(row["kept"]) <= 5, f"{label}: a queue pool keeps at most pool_size connections"
    null = rows["NullPool"]
    assert null["limit"] == "none" and null["kept"] == "-"
    assert int(null["connects"]) == REQUESTS, "NullPool opens a new connection for every checkout"
    assert 1 <= int(null["peak"]) <= REQUESTS


def test_queueing_beyond_the_limit_is_shown(cells):
    m = re.search(r"(\d+) requests found a free connection, (\d+) queued and waited ([\d.]+) s to ([\d.]+) s",
                  _text(cells["queue_plot"]))
    assert m, _text(cells["queue_plot"])
    free, queued, low, high = int(m[1]), int(m[2]), float(m[3]), float(m[4])
    assert (free, queued) == (5, REQUESTS - 5)
    assert 0 < low <= high


def test_exhausted_pool_raises_sqlalchemys_timeout_error(cells):
    shown = _text(cells["timeout_run"])
    assert "checked out: 2 of 2" in shown
    m = re.search(r"after ([\d.]+) s the request failed with sqlalchemy\.exc\.TimeoutError:\n"
                  r"QueuePool limit of size 2 overflow 0 reached, connection timed out, timeout 1\.00", shown)
    assert m, shown
    assert float(m[1]) > 0
    assert "with the connections back, the next request gets status 200" in shown


def test_leaked_connection_warning_is_caught_and_shown(cells):
    shown = _text(cells["leak_run"])
    counts = re.findall(r"checked out after (the query|del conn|gc\.collect\(\)):\s+(\d+)", shown)
    # the queried connection stays checked out after `del`, until the garbage collector runs
    assert counts == [("the query", "1"), ("del conn", "1"), ("gc.collect()", "0")], shown
    assert GC_WARNING in shown and GC_WARNING_END in shown
    assert "logged it at ERROR level, on the logger sqlalchemy.pool" in shown


def test_throughput_numbers_are_measured_and_consistent(cells):
    shown = _text(cells["speed_run"])
    m = re.search(r"pooled:\s+([\d.]+) requests/s \((\d+) new connections for (\d+) requests\)\n"
                  r"NullPool:\s+([\d.]+) requests/s \((\d+) new connections for (\d+) requests\)\n"
                  r"pooled / NullPool: ([\d.]+)x", shown)
    assert m, shown
    pooled, unpooled, ratio = float(m[1]), float(m[4]), float(m[7])
    assert pooled > 0 and unpooled > 0
    assert ratio == pytest.approx(pooled / unpooled, rel=0.01, abs=0.01)
    n = int(m[3])
    assert int(m[6]) == n and int(m[5]) == n, "NullPool connects once per request"
    assert int(m[2]) == 0, "the pooled engine reuses the connection its warm-up opened"


# The committed notebook and its generator ---------------------------------------------------

def test_committed_notebook_is_what_the_builder_writes():
    done = subprocess.run([sys.executable, str(ROOT / "tools" / "build_pool_lab.py"), "--check"],
                          cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_check_mode_fails_on_a_stale_notebook(tmp_path, monkeypatch):
    stale = tmp_path / "pool-lab.ipynb"
    from tools import notebook_builder

    stale.write_text(notebook_builder.render(build_pool_lab.CELLS).replace("Pool lab", "Old lab"))
    monkeypatch.setattr(build_pool_lab, "NOTEBOOK", stale)
    with pytest.raises(SystemExit) as raised:
        build_pool_lab.main(["--check"])
    assert raised.value.code and "differs" in str(raised.value.code)
    assert "Old lab" in stale.read_text(), "--check must not write"


def test_committed_notebook_has_no_outputs_and_stable_ids():
    nb = json.loads(NOTEBOOK.read_text())
    ids = [c["id"] for c in nb["cells"]]
    assert len(ids) == len(set(ids)) and all(re.fullmatch(r"[a-z0-9_-]+", i) for i in ids)
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None, cell["id"]
            assert "asyncio.run(" not in "".join(cell["source"]), cell["id"]
    text = NOTEBOOK.read_text()
    assert "test.db" not in text.replace("`test.db`", ""), "the lab must not use the lesson's database"


# autograder/lab.py on its own ------------------------------------------------------------------

def _make_app():
    """make_app from the notebook's own cell."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    source = next(c.source for c in nb.cells if c.id == "app")
    from autograder.solution import step4

    namespace = {"asyncio": asyncio, "step4": step4}  # what the notebook's imports cell gives it
    exec(source, namespace)
    return namespace["make_app"]


@pytest.fixture
def make_app():
    return _make_app()


@pytest.mark.parametrize("options, limit", [
    ({}, 15),
    ({"pool_size": 5, "max_overflow": 0}, 5),
    ({"pool_size": 3, "max_overflow": 1}, 4),
    ({"max_overflow": -1}, None),
    ({"poolclass": NullPool}, None),
])
def test_pool_limit(db_url, options, limit):
    engine = create_async_engine(db_url, **options)
    assert lab.pool_limit(engine) == limit


@pytest.mark.anyio
async def test_burst_queues_beyond_the_limit(db_url, make_app):
    hold = 0.1
    engine = create_async_engine(db_url, pool_size=2, max_overflow=0)
    try:
        burst = await lab.burst(make_app(engine, hold=hold), engine, n=6, label="two")
    finally:
        await engine.dispose()
    assert burst.statuses == [200] * 6 and burst.limit == 2 and burst.label == "two"
    assert 1 <= burst.peak <= 2 and burst.connects <= 2 and burst.kept_open <= 2
    assert burst.counts[0] == 0 and burst.counts[-1] == 0 and len(burst.times) == len(burst.counts) == 13
    assert sum(burst.queued()) == 4
    # the third checkout had to wait for a connection to come back, held at least `hold`
    got = sorted(burst.checked_out)
    assert got[2] >= got[0] + hold * 0.9
    assert all(w >= 0 for w in burst.waits)


@pytest.mark.anyio
async def test_burst_with_nullpool_opens_a_connection_per_request(db_url, make_app):
    engine = create_async_engine(db_url, poolclass=NullPool)
    try:
        burst = await lab.burst(make_app(engine, hold=0.05), engine, n=8)
    finally:
        await engine.dispose()
    assert burst.connects == 8 and burst.limit is None and burst.kept_open is None
    assert burst.queued() == [False] * 8 and burst.counts[-1] == 0


@pytest.mark.anyio
async def test_throughput_counts_new_connections(db_url, make_app):
    pooled = create_async_engine(db_url)
    null = create_async_engine(db_url, poolclass=NullPool)
    try:
        a = await lab.throughput(make_app(pooled), pooled, n=10)
        b = await lab.throughput(make_app(null), null, n=10)
    finally:
        await pooled.dispose()
        await null.dispose()
    assert (a.requests, a.connects) == (10, 0) and (b.requests, b.connects) == (10, 10)
    assert a.per_second > 0 and b.per_second > 0


@pytest.mark.anyio
async def test_catch_pool_messages_keeps_the_gc_warning_off_stderr(db_url, capfd):
    engine = create_async_engine(db_url)
    try:
        conn = await engine.connect()
        assert engine.pool.checkedout() == 1
        with lab.catch_pool_messages() as caught:
            del conn
            gc.collect()
        assert engine.pool.checkedout() == 0
    finally:
        await engine.dispose()
    assert [w.category for w in caught.warnings] == [exc.SAWarning]
    assert str(caught.warnings[0].message).startswith(GC_WARNING.removeprefix("SAWarning: "))
    assert [(r.levelname, r.name) for r in caught.log] == [("ERROR", "sqlalchemy.pool.impl.AsyncAdaptedQueuePool")]
    assert capfd.readouterr().err == ""
    assert logging.getLogger("sqlalchemy.pool").propagate


@pytest.mark.anyio
async def test_a_leaked_connection_is_freed_at_del_unless_a_query_left_it_in_a_cycle(db_url):
    """What the lab's leak experiment says: a connection that ran a query is held by a reference
    cycle (the connection and its transaction) until gc.collect(); one that never ran a query
    is freed by reference counting at `del`. Either way SQLAlchemy warns and terminates it."""
    from sqlalchemy import text

    engine = create_async_engine(db_url)
    gc.disable()  # only the explicit gc.collect() below may run the collector
    try:
        for queried in (False, True):
            conn = await engine.connect()
            if queried:
                await conn.execute(text("SELECT * FROM items"))
                transaction = conn.sync_connection.get_transaction()
                assert transaction.connection is conn.sync_connection  # the cycle
                del transaction
            with lab.catch_pool_messages() as caught:
                del conn
                after_del = engine.pool.checkedout()
                gc.collect()
            assert (after_del, engine.pool.checkedout()) == ((1, 0) if queried else (0, 0))
            assert [w.category for w in caught.warnings] == [exc.SAWarning]
            assert "garbage collector is trying to clean up non-checked-in" in str(caught.warnings[0].message)
    finally:
        gc.enable()
        await engine.dispose()


@pytest.mark.anyio
async def test_plots_draw_labelled_axes_and_the_limit(db_url, make_app):
    bursts = []
    for options in [{"pool_size": 2, "max_overflow": 0}, {"poolclass": NullPool}]:
        engine = create_async_engine(db_url, **options)
        try:
            bursts.append(await lab.burst(make_app(engine, hold=0.02), engine, n=4))
        finally:
            await engine.dispose()
    import matplotlib.pyplot as plt  # here, not at the top: collecting this module costs no matplotlib

    fig = lab.plot_timelines(bursts)
    try:
        limited, unlimited = fig.axes
        assert limited.get_xlabel() and limited.get_ylabel() == "connections checked out"
        assert any(list(line.get_ydata()) == [2, 2] for line in limited.get_lines()), "no line at the limit"
        assert len(unlimited.get_lines()) == 1 and any(t.get_text() == "no limit" for t in unlimited.texts)
    finally:
        plt.close(fig)
    fig = lab.plot_waits(bursts[0])
    try:
        (ax,) = fig.axes
        assert len(ax.patches) == 4 and ax.get_xlabel() and ax.get_ylabel()
    finally:
        plt.close(fig)
