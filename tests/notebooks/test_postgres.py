"""The lesson's app on a real PostgreSQL server, and notebooks/postgres.ipynb run against it.

The server is a throwaway one that tests/support/pg_server.py starts (initdb + pg_ctl on 127.0.0.1).
Without the server binaries these tests are skipped (`apt-get install postgresql`), except on
CI, where they fail. No test asserts a speed: time bounds only check that a wait happened and
did not hang.
"""
from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from sqlalchemy import event, exc, text
from sqlalchemy.ext.asyncio import create_async_engine

from autograder import server_db
from tests.support.pg_server import INSTALL_HINT, find_bindir, free_port, require_bindir

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "postgres.ipynb"
BUILDER = ROOT / "tools" / "build_postgres_notebook.py"


def by_id(rows):
    return sorted(rows, key=lambda row: row["id"])


def engine_for(url: str, name: str, **options):
    """An engine whose connections carry an application_name, so the server can count them."""
    return create_async_engine(url, connect_args={"server_settings": {"application_name": name}}, **options)


async def server_side_connections(server, name: str) -> int:
    rows = await server.execute(f"SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = '{name}'")
    return rows[0]["n"]


@pytest.fixture
async def seeded(pg_url):
    engine = create_async_engine(pg_url)
    await server_db.seed(engine)
    await engine.dispose()
    return pg_url


# ------------------------------------------------------------------------- the skip policy

def test_missing_binaries_skip_with_how_to_install_them():
    with pytest.raises(pytest.skip.Exception, match="apt-get install postgresql"):
        require_bindir(None, env={})
    with pytest.raises(pytest.skip.Exception):
        require_bindir(None, env={"CI": ""})  # set but empty: not CI


def test_missing_binaries_fail_on_ci():
    with pytest.raises(pytest.fail.Exception, match="apt-get install postgresql") as failed:
        require_bindir(None, env={"CI": "true"})
    assert INSTALL_HINT in str(failed.value)


def test_binaries_are_found_on_path_or_in_debian_folders(tmp_path):
    assert require_bindir(tmp_path, env={"CI": "true"}) == tmp_path  # found: nothing to decide
    assert find_bindir(path_env="", pattern=str(tmp_path / "none" / "*" / "bin")) is None
    for version in ("9.6", "15", "16"):  # Debian's layout: the newest version wins
        folder = tmp_path / "lib" / version / "bin"
        folder.mkdir(parents=True)
        for tool in ("initdb", "pg_ctl", "postgres"):
            (folder / tool).touch(mode=0o755)
    assert find_bindir(path_env="", pattern=str(tmp_path / "lib" / "*" / "bin")) == tmp_path / "lib" / "16" / "bin"
    on_path = tmp_path / "lib" / "15" / "bin"
    assert find_bindir(path_env=str(on_path), pattern=str(tmp_path / "none")) == on_path


# ---------------------------------------------------------------------------- the app

@pytest.mark.anyio
async def test_items_returns_the_seeded_rows_from_postgresql(seeded):
    engine = create_async_engine(seeded, pool_size=5)
    assert engine.dialect.name == "postgresql" and engine.dialect.driver == "asyncpg"
    await server_db.seed(engine)  # seeding twice is idempotent
    async with server_db.client(server_db.build_app(engine)) as c:
        response = await c.get("/items")
    assert response.status_code == 200
    rows = response.json()
    assert isinstance(rows, list) and all(isinstance(row, dict) for row in rows)
    assert by_id(rows) == server_db.SEED_ROWS  # 89.99 stays 89.99: the column is DOUBLE PRECISION
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT version()"))).scalar().startswith("PostgreSQL")
    await engine.dispose()


@pytest.mark.anyio
async def test_connections_are_back_in_the_pool_after_requests(seeded, pg_server):
    engine = engine_for(seeded, "back-in-pool", pool_size=5)
    async with server_db.client(server_db.build_app(engine)) as c:
        for _ in range(3):
            assert (await c.get("/items")).status_code == 200
            assert engine.pool.checkedout() == 0
    assert engine.pool.checkedin() == 1  # one connection, reused
    assert await server_side_connections(pg_server, "back-in-pool") == 1  # kept open on the server
    await engine.dispose()
    assert await server_side_connections(pg_server, "back-in-pool") == 0


@pytest.mark.anyio
async def test_fifty_concurrent_requests_stay_within_the_pool_limit(seeded, pg_server):
    engine = engine_for(seeded, "burst", pool_size=5, max_overflow=10)
    out = {"now": 0, "peak": 0}

    def checkout(*_):
        out["now"] += 1
        out["peak"] = max(out["peak"], out["now"])

    def checkin(*_):
        out["now"] -= 1

    event.listen(engine.sync_engine.pool, "checkout", checkout)
    event.listen(engine.sync_engine.pool, "checkin", checkin)
    async with server_db.client(server_db.build_app(engine)) as c:
        responses = await asyncio.gather(*(c.get("/items") for _ in range(50)))
    assert [r.status_code for r in responses] == [200] * 50
    assert all(by_id(r.json()) == server_db.SEED_ROWS for r in responses)
    assert 1 < out["peak"] <= 5 + 10  # the requests overlapped, and never more than the pool allows
    assert engine.pool.checkedout() == 0 and out["now"] == 0
    assert engine.pool.checkedin() <= 5  # the overflow connections were closed when given back
    assert await server_side_connections(pg_server, "burst") == engine.pool.checkedin()
    await engine.dispose()


@pytest.mark.anyio
async def test_an_exhausted_pool_raises_timeout_error_after_pool_timeout(seeded):
    engine = create_async_engine(seeded, pool_size=2, max_overflow=0, pool_timeout=0.5)
    held = [await engine.connect() for _ in range(2)]
    async with server_db.client(server_db.build_app(engine)) as c:
        start = time.perf_counter()
        with pytest.raises(exc.TimeoutError):
            await c.get("/items")
        waited = time.perf_counter() - start
        assert 0.45 <= waited < 15  # it waited pool_timeout, then gave up (no speed target)
        await held.pop().close()
        assert (await c.get("/items")).status_code == 200  # the app carries on
    for conn in held:
        await conn.close()
    await engine.dispose()


async def _fill_pool(app, connections: int) -> None:
    """Leave `connections` idle connections in the app's pool."""
    async with server_db.client(app) as c:
        await asyncio.gather(*(c.get("/items") for _ in range(connections)))


@pytest.mark.anyio
async def test_a_server_restart_is_survived_with_pool_pre_ping(seeded, pg_server):
    engine = create_async_engine(seeded, pool_size=3, pool_pre_ping=True)
    opened = []
    event.listen(engine.sync_engine, "connect", lambda *a: opened.append(1))
    app = server_db.build_app(engine)
    await _fill_pool(app, 3)
    before = len(opened)
    await asyncio.to_thread(pg_server.restart)  # the event loop keeps running, as in an app
    async with server_db.client(app) as c:
        for _ in range(3):
            response = await c.get("/items")
            assert response.status_code == 200 and by_id(response.json()) == server_db.SEED_ROWS
    assert len(opened) > before  # the dead connection was replaced by a new one
    await engine.dispose()


@pytest.mark.anyio
async def test_without_pre_ping_the_first_request_after_a_restart_fails(seeded, pg_server):
    engine = create_async_engine(seeded, pool_size=3)
    app = server_db.build_app(engine)
    await _fill_pool(app, 3)
    await asyncio.to_thread(pg_server.restart)
    async with server_db.client(app) as c:
        with pytest.raises(exc.DBAPIError, match="connection is closed") as failed:
            await c.get("/items")
        assert failed.value.connection_invalidated  # SQLAlchemy saw a disconnect...
        for _ in range(3):  # ...and dropped the pool's old connections: the next requests work
            assert (await c.get("/items")).status_code == 200
    await engine.dispose()


# ------------------------------------------------------------------------- the notebook

def test_builder_check_passes_and_the_notebook_has_no_outputs():
    done = subprocess.run([sys.executable, str(BUILDER), "--check"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, cell.id
    ids = [cell.id for cell in nb.cells]
    assert len(ids) == len(set(ids)) and "check-server" in ids and "measure-throughput" in ids


def test_builder_check_fails_when_the_notebook_differs(tmp_path, monkeypatch):
    from tools import build_postgres_notebook as builder
    from tools import notebook_builder

    stale = tmp_path / "postgres.ipynb"
    stale.write_text(notebook_builder.render(builder.CELLS).replace("Wrap-up", "Wrap up"))
    monkeypatch.setattr(builder, "NOTEBOOK", stale)
    with pytest.raises(SystemExit) as raised:
        builder.main(["--check"])
    assert "differs" in str(raised.value.code)
    builder.main([])
    builder.main(["--check"])  # no SystemExit: now it matches


def test_the_notebook_runs_the_lesson_app_code_in_process():
    code = "\n".join(c.source for c in nbformat.read(NOTEBOOK, as_version=4).cells if c.cell_type == "code")
    assert "asyncio.run(" not in code and "test.db" not in code
    assert "async with engine.connect() as conn:\n            yield conn" in code
    assert 'httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")' in code
    assert 'os.environ.get("COURSE_DATABASE_URL"' in code and "sqlite+aiosqlite:///./postgres-lab.db" in code
    assert "SHOW max_connections" in code and "NullPool" in code and "pool_pre_ping" in code


def run_notebook(folder: Path, url: str | None) -> dict:
    """Execute the committed notebook in a fresh kernel whose environment has `url` (or no
    COURSE_DATABASE_URL at all); cells by id."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    with pytest.MonkeyPatch.context() as mp:  # the kernel inherits this process's environment
        if url is None:
            mp.delenv(server_db.ENV_VAR, raising=False)
        else:
            mp.setenv(server_db.ENV_VAR, url)
        NotebookClient(nb, timeout=60, allow_errors=True, resources={"metadata": {"path": str(folder)}}).execute()
    return {cell.id: cell for cell in nb.cells}


def text_of(cell) -> str:
    return "".join(out.text for out in cell.get("outputs", []) if out.output_type == "stream")


def assert_clean(cells: dict) -> None:
    for cell_id, cell in cells.items():
        if cell.cell_type != "code":
            continue
        assert cell.execution_count, f"{cell_id} did not run"
        for out in cell.outputs:
            assert out.output_type != "error", f"{cell_id}: {out.ename}: {out.evalue}"
            assert not (out.output_type == "stream" and out.name == "stderr"), f"{cell_id} wrote to stderr: {out.text}"


RATIO = r"pooled/NullPool = \d+(\.\d+)?x"


@pytest.fixture(scope="module")
def on_server(pg_server, tmp_path_factory):
    return run_notebook(tmp_path_factory.mktemp("nb-server"), pg_server.url)


def test_notebook_on_the_server_runs_clean_and_prints_both_ratios(on_server):
    assert_clean(on_server)
    assert "Connected to the PostgreSQL server" in text_of(on_server["check-server"])
    shown = text_of(on_server["call-items"])
    assert "status: 200" in shown and "'price': 89.99" in shown and "checked out after the request: 0" in shown
    measured = text_of(on_server["measure-throughput"])
    assert re.search(r"^SQLite .*" + RATIO, measured, re.M), measured
    assert re.search(r"^PostgreSQL .*" + RATIO, measured, re.M), measured


def test_notebook_reads_max_connections_from_the_server(on_server):
    shown = text_of(on_server["max-connections"])
    assert "max_connections = 100, of which 3 are kept for superusers: 97" in shown  # the fixture's server
    assert "4 worker(s) x 15 =   60 connections at most: fits" in shown
    assert "8 worker(s) x 15 =  120 connections at most: does NOT fit" in shown


def test_notebook_shows_a_dead_connection_fail_without_pre_ping_and_recover_with_it(on_server):
    shown = text_of(on_server["stale-connection-demo"])
    assert re.search(r"pool_pre_ping=False: request 1: failed with \w+Error: .+; request 2: status 200", shown), shown
    assert "pool_pre_ping=True: request 1: status 200; request 2: status 200" in shown


def test_notebook_with_an_unreachable_server_says_how_to_start_one(tmp_path):
    closed = f"postgresql+asyncpg://course@127.0.0.1:{free_port()}/course"  # nothing listens there
    cells = run_notebook(tmp_path, closed)
    assert_clean(cells)
    message = text_of(cells["check-server"])
    assert "Cannot connect to the database at" in message and "ConnectionRefusedError" in message
    assert "docker run" in message and "apt-get install postgresql" in message
    assert "export COURSE_DATABASE_URL=postgresql+asyncpg://" in message
    guarded = [cid for cid, c in cells.items() if c.cell_type == "code" and c.source.startswith("if lab.ready(")]
    assert len(guarded) >= 5
    for cell_id in guarded:
        assert text_of(cells[cell_id]).startswith("skipped: cannot connect to the database"), cell_id
    assert not (tmp_path / "postgres-lab.db").exists()


def test_notebook_without_the_variable_runs_on_sqlite(tmp_path):
    cells = run_notebook(tmp_path, None)
    assert_clean(cells)
    assert "Connected to SQLite" in text_of(cells["check-server"])
    assert "status: 200" in text_of(cells["call-items"])
    measured = text_of(cells["measure-throughput"])
    assert re.search(r"^SQLite .*" + RATIO, measured, re.M) and "PostgreSQL  not measured" in measured
    assert (tmp_path / "postgres-lab.db").exists() and not (tmp_path / "test.db").exists()


def test_server_check_accepts_only_the_async_driver_and_hides_passwords():
    async def check(url):
        return await server_db.server_version(url)

    with pytest.raises(ValueError, match="postgresql\\+asyncpg://"):
        asyncio.run(check("postgresql://course@127.0.0.1:1/course"))
    assert server_db.describe("postgresql+asyncpg://u:secret@127.0.0.1/d") == "postgresql+asyncpg://u:***@127.0.0.1/d"


def test_the_notebooks_app_is_the_lessons_solution():
    """The PostgreSQL notebook's build_app runs the lesson's step-4 solution as the lesson shows it."""
    import nbformat

    from autograder.solution import step_code
    from tests.support.course import ROOT

    nb = nbformat.read(ROOT / "notebooks" / "postgres.ipynb", as_version=4)
    cell = next(c for c in nb.cells if c.id == "app-code")
    body = [line[4:] for line in cell.source.split("def build_app(engine):", 1)[1].splitlines()[2:]]
    body = "\n".join(body)
    assert body[:body.index("return app")].strip() == step_code(4)
