"""A throwaway PostgreSQL server for the tests: initdb + pg_ctl in a temporary folder.

Its fixtures reach every test: tests/conftest.py names this module in `pytest_plugins`.

`pg_server` (session-scoped) starts one server on 127.0.0.1 on a free port, creates the
database `course` owned by the superuser `course` (trust authentication, loopback only), and
stops it with `pg_ctl stop -m immediate` at the end, whatever happened. `pg_url` is its
`postgresql+asyncpg://course@127.0.0.1:PORT/course` URL.

When the server binaries cannot be found (on PATH or in /usr/lib/postgresql/*/bin) the tests
that use the server are skipped with a message saying how to install them; on CI (the
environment variable CI is set and not empty) they fail instead, so a CI machine without
PostgreSQL cannot pass by skipping everything.

We run as root in containers and CI, and initdb/postgres refuse to run as root: then every
server command runs as the `postgres` system user (Debian's package creates it), in a
temporary folder that user owns.
"""
from __future__ import annotations

import asyncio
import glob
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

USER = "course"       # the superuser initdb creates, and the app's user in the URL
DATABASE = "course"   # the database the tests use
HOST = "127.0.0.1"    # loopback only, never any other address
START_TIMEOUT = 30    # seconds pg_ctl waits for the server to start or stop
TOOLS = ("initdb", "pg_ctl", "postgres")

INSTALL_HINT = (
    "PostgreSQL server binaries (initdb, pg_ctl, postgres) were not found on PATH or in "
    "/usr/lib/postgresql/*/bin: install them with `apt-get install postgresql` "
    "(Debian/Ubuntu; the tests start their own throwaway server, nothing needs to be running)"
)


# ------------------------------------------------------------------------ finding the server

def _version_key(path: str) -> tuple:
    return tuple(int(n) for n in re.findall(r"\d+", path))


def find_bindir(path_env: str | None = None, pattern: str = "/usr/lib/postgresql/*/bin") -> Path | None:
    """The folder holding initdb, pg_ctl and postgres: from PATH first, else the newest
    Debian-style /usr/lib/postgresql/<version>/bin (Debian keeps them off PATH)."""
    path_env = os.environ.get("PATH", "") if path_env is None else path_env
    found = shutil.which("pg_ctl", path=path_env)
    if found:
        folder = Path(found).resolve().parent
        if all((folder / tool).exists() for tool in TOOLS):
            return folder
    for folder in sorted(glob.glob(pattern), key=_version_key, reverse=True):
        if all(os.access(Path(folder) / tool, os.X_OK) for tool in TOOLS):
            return Path(folder)
    return None


def require_bindir(bindir: Path | None, env: Mapping[str, str] | None = None) -> Path:
    """The skip policy: no binaries -> skip (how to install them), but fail on CI."""
    env = os.environ if env is None else env
    if bindir is None:
        if env.get("CI"):
            pytest.fail(f"{INSTALL_HINT}. CI is set, so this is a failure, not a skip.", pytrace=False)
        pytest.skip(INSTALL_HINT)
    return bindir


# ------------------------------------------------------------------------------ the server

def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _run_as() -> list[str]:
    """Prefix for server commands: as root, run them as the `postgres` system user."""
    if os.geteuid() != 0:
        return []
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return ["runuser", "-u", name, "--"]
    raise RuntimeError("running as root, and there is neither a `postgres` nor a `nobody` user to run PostgreSQL as")


@dataclass
class PgServer:
    bindir: Path
    folder: Path
    port: int = field(default_factory=free_port)

    @property
    def data(self) -> Path:
        return self.folder / "data"

    @property
    def log(self) -> Path:
        return self.folder / "server.log"

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://{USER}@{HOST}:{self.port}/{DATABASE}"

    def dsn(self, database: str = DATABASE) -> str:
        """The same server, for asyncpg directly (no SQLAlchemy)."""
        return f"postgresql://{USER}@{HOST}:{self.port}/{database}"

    # -- commands. Every start names the log file (-l): without one the server would keep
    # pg_ctl's output pipe open, and waiting for pg_ctl would never end.
    def _run(self, *args: str, timeout: float = START_TIMEOUT + 30) -> subprocess.CompletedProcess:
        cmd = [*_run_as(), str(self.bindir / args[0]), *args[1:]]
        done = subprocess.run(cmd, cwd=self.folder, stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=timeout)
        if done.returncode:
            raise RuntimeError(f"{' '.join(args[:2])} failed ({done.returncode}):\n{done.stdout}{done.stderr}\n"
                               f"server log:\n{self.log_tail()}")
        return done

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no log)"

    def init(self) -> None:
        self._run("initdb", "-D", str(self.data), "-U", USER, "--auth=trust", "--encoding=UTF8",
                  "--locale=C", "--no-sync", "--no-instructions")
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write(
                "\n# set by tests/support/pg_server.py: loopback TCP only, no Unix socket, fast and throwaway\n"
                f"listen_addresses = '{HOST}'\n"
                f"port = {self.port}\n"
                "unix_socket_directories = ''\n"
                "max_connections = 100\n"
                "fsync = off\n"
                "synchronous_commit = off\n"
                "full_page_writes = off\n"
                "shared_buffers = 32MB\n"
            )

    def start(self) -> None:
        self._run("pg_ctl", "start", "-D", str(self.data), "-l", str(self.log), "-w", "-t", str(START_TIMEOUT))

    def stop(self, mode: str = "immediate") -> None:
        self._run("pg_ctl", "stop", "-D", str(self.data), "-m", mode, "-w", "-t", str(START_TIMEOUT))

    def restart(self, mode: str = "fast") -> None:
        """Restart the server: every open connection to it is closed by the server."""
        self._run("pg_ctl", "restart", "-D", str(self.data), "-l", str(self.log), "-m", mode, "-w",
                  "-t", str(START_TIMEOUT))

    def running(self) -> bool:
        cmd = [*_run_as(), str(self.bindir / "pg_ctl"), "status", "-D", str(self.data)]
        return subprocess.run(cmd, cwd=self.folder, stdin=subprocess.DEVNULL, capture_output=True,
                              timeout=30).returncode == 0

    async def execute(self, sql: str, database: str = DATABASE):
        """Run one SQL statement as the superuser (for test set-up), outside any pool."""
        import asyncpg

        conn = await asyncpg.connect(self.dsn(database), timeout=10)
        try:
            return await conn.fetch(sql)
        finally:
            await conn.close()


def start_server(bindir: Path) -> PgServer:
    """initdb, start, create the database. On any failure the server is stopped again."""
    folder = Path(tempfile.mkdtemp(prefix="course-pg-"))
    prefix = _run_as()
    if prefix:  # the server's user must own its folder (mkdtemp made it 0700 for root)
        user = pwd.getpwnam(prefix[2])
        os.chown(folder, user.pw_uid, user.pw_gid)
    server = PgServer(bindir, folder)
    try:
        server.init()
        server.start()
        asyncio.run(server.execute(f"CREATE DATABASE {DATABASE}", database="postgres"))
    except BaseException:
        stop_server(server)
        raise
    return server


def stop_server(server: PgServer) -> None:
    try:
        if (server.data / "postmaster.pid").exists():
            server.stop("immediate")
    finally:
        shutil.rmtree(server.folder, ignore_errors=True)


# ---------------------------------------------------------------------------- the fixtures

@pytest.fixture(scope="session")
def pg_server():
    """A running throwaway PostgreSQL server (PgServer), stopped at the end of the session."""
    server = start_server(require_bindir(find_bindir()))
    try:
        yield server
    finally:
        stop_server(server)


@pytest.fixture(scope="session")
def pg_url(pg_server) -> str:
    """postgresql+asyncpg://course@127.0.0.1:PORT/course"""
    return pg_server.url
