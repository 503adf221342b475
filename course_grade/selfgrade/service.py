"""The warm self-grading service: a click on **Grade my notebook** graded in seconds.

One long-lived local process per user and per course folder (and Python environment) has
nbgrader imported, holds the assignment (`task.AssignmentBundle`) in memory and keeps one
kernel booted (`kernel_pool.Spare`, sandboxed like every grading kernel). A client
(`python -m course_grade selfgrade`, course_grade/selfgrade/client.py) sends the notebook's bytes and
its quiz answers; the service grades them with `task.grade`, exactly what the instructor's
Dask workers run, and sends back the `Graded` result. The learner's folder is never written:
the service only ever sees bytes, and grades in a scratch folder of its own.

- Where: a Unix socket in a private folder (0700), `$XDG_RUNTIME_DIR/course-grade/`, else
  `<tmp>/course-grade-<uid>/`, with the connection key in a 0600 file there (`authkey`); the
  socket's name is a hash of the course folder, the Python interpreter and COURSE_SANDBOX.
- One service per course: it holds a lock file (`<name>.lock`) while it runs; a socket left
  by a service that died is removed by the next one, which holds the lock.
- It exits by itself after COURSE_SELFGRADE_IDLE seconds without a request (default 1800),
  or when its socket is removed. It checks the course's source at each request and rebuilds
  the assignment when it changed.
- The assignment is made once (`nbgrader generate_assignment` in a temporary copy of the
  course) and cached in `$XDG_CACHE_HOME/course-grade/` (else `~/.cache/course-grade/`) under
  a hash of nbgrader_config.py and source/connection-pooling/: a new service, or grading
  without one, skips generate_assignment when nothing changed.
- COURSE_SELFGRADE_SERVICE=off: no service; the client grades in its own process (cold).

    python -m course_grade.selfgrade.service --course DIR    # run the service (clients start it)
"""
from __future__ import annotations

import argparse
import base64
import contextlib
import fcntl
import fnmatch
import hashlib
import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from multiprocessing.connection import Client, Listener
from pathlib import Path

from course_grade.course import ANSWERS_FILE, ASSIGNMENT, LEFTOVERS, atomic_write, nbgrader_command, tool_env
from course_grade.engine.bundles import AssignmentBundle, Graded, SubmissionBundle

SWITCH = "COURSE_SELFGRADE_SERVICE"  # =off: no service, grade in the client's process
IDLE_VARIABLE = "COURSE_SELFGRADE_IDLE"  # seconds without a request before the service exits
IDLE_DEFAULT = 1800.0
START_WAIT = 120.0  # seconds a client waits for a service it started
CACHE_FORMAT = 1
# what the temporary course copy leaves out of source/ (and so what the cache key reads)
SOURCE_SKIPPED = (*LEFTOVERS, f"{ANSWERS_FILE}*")


class ServiceUnavailable(Exception):
    """No service: the client grades in its own process. The message says why."""


def disabled() -> bool:
    return os.environ.get(SWITCH, "").lower() in ("off", "0", "no", "false")


def idle_seconds() -> float:
    try:
        return max(1.0, float(os.environ.get(IDLE_VARIABLE, IDLE_DEFAULT)))
    except ValueError:
        return IDLE_DEFAULT


# ------------------------------------------------------------------------------ places

def _private_folder(path: Path) -> Path:
    """`path`, made if missing, owned by us and closed to everyone else (0700)."""
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = os.lstat(path)
    except OSError as exc:
        raise ServiceUnavailable(f"cannot make the folder {path} ({exc})") from None
    if not os.path.isdir(path) or os.path.islink(path) or st.st_uid != os.getuid():
        raise ServiceUnavailable(f"{path} is not a folder of this user")
    if st.st_mode & 0o077:
        os.chmod(path, 0o700)
    return path


def runtime_folder() -> Path:
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg and os.path.isdir(xdg):
        return _private_folder(Path(xdg) / "course-grade")
    return _private_folder(Path(tempfile.gettempdir()) / f"course-grade-{os.getuid()}")


def cache_folder() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return _private_folder(Path(base) / "course-grade")


def _authkey(folder: Path) -> bytes:
    """The key every connection proves it knows: a 0600 file in the private folder."""
    path = folder / "authkey"
    if not path.exists():
        fd, partial = tempfile.mkstemp(dir=folder, prefix=".authkey-")  # 0600
        try:
            os.write(fd, os.urandom(32).hex().encode())
            os.close(fd)
            with contextlib.suppress(FileExistsError):
                os.link(partial, path)  # atomic: the first one made wins
        finally:
            os.unlink(partial)
    st = os.lstat(path)
    if st.st_uid != os.getuid() or st.st_mode & 0o077 or not path.is_file():
        raise ServiceUnavailable(f"{path} is not a private file of this user: remove it")
    key = path.read_bytes()
    if len(key) < 32:
        raise ServiceUnavailable(f"{path} is damaged: remove it")
    return key


@dataclass(frozen=True)
class Place:
    """Where the service of one course listens."""
    course: Path
    folder: Path
    name: str

    @classmethod
    def of(cls, course: Path) -> Place:
        course = course.resolve()
        ident = "\0".join([str(course), sys.executable, os.environ.get("COURSE_SANDBOX", "")])
        return cls(course, runtime_folder(), hashlib.sha256(ident.encode()).hexdigest()[:20])

    @property
    def socket(self) -> Path:
        return self.folder / f"{self.name}.sock"

    @property
    def lock(self) -> Path:
        return self.folder / f"{self.name}.lock"

    @property
    def log(self) -> Path:
        return self.folder / f"{self.name}.log"

    def authkey(self) -> bytes:
        return _authkey(self.folder)


# ------------------------------------------------------------------- the assignment, cached

def _source_files(course: Path) -> list[tuple[str, Path]]:
    source = course / "source" / ASSIGNMENT
    found = []
    for folder, dirs, files in os.walk(source):
        dirs[:] = sorted(d for d in dirs if not any(fnmatch.fnmatch(d, p) for p in SOURCE_SKIPPED))
        for name in sorted(files):
            if not any(fnmatch.fnmatch(name, p) for p in SOURCE_SKIPPED):
                path = Path(folder) / name
                found.append((path.relative_to(source).as_posix(), path))
    return found


def source_key(course: Path) -> str:
    """A hash of what the assignment is made from: nbgrader_config.py, source/<assignment>/
    (the files the temporary copy takes) and the nbgrader that makes it."""
    import nbgrader

    digest = hashlib.sha256(f"{CACHE_FORMAT}\0{nbgrader.__version__}\0".encode())
    digest.update((course / "nbgrader_config.py").read_bytes())
    for rel, path in _source_files(course):
        digest.update(f"\0{rel}\0{path.stat().st_size}\0".encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def build_bundle(course: Path) -> AssignmentBundle:
    """Make the assignment with `nbgrader generate_assignment` in a temporary copy of the
    course (the course folder is only read)."""
    with tempfile.TemporaryDirectory(prefix="selfgrade-assignment-") as tmp:
        scratch = Path(tmp)
        shutil.copy(course / "nbgrader_config.py", scratch)
        for rel, path in _source_files(course):
            target = scratch / "source" / ASSIGNMENT / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, target)
        made = subprocess.run([*nbgrader_command(), "generate_assignment", ASSIGNMENT, "--force", "--log-level=ERROR"],
                              cwd=scratch, env=tool_env(), capture_output=True, text=True)
        if made.returncode:
            raise RuntimeError(f"nbgrader generate_assignment failed:\n{made.stdout[-1500:]}{made.stderr[-1500:]}")
        return AssignmentBundle.from_course(scratch, ASSIGNMENT)


def _encode(bundle: AssignmentBundle, key: str) -> bytes:
    b64 = lambda data: base64.b64encode(data).decode()  # noqa: E731
    return json.dumps({"format": CACHE_FORMAT, "key": key, "name": bundle.name, "notebooks": list(bundle.notebooks),
                       "config": b64(bundle.config), "gradebook": b64(bundle.gradebook),
                       "files": {rel: b64(data) for rel, data in bundle.files.items()}}).encode()


def _decode(data: bytes, key: str) -> AssignmentBundle | None:
    try:
        d = json.loads(data)
        if d.get("format") != CACHE_FORMAT or d.get("key") != key:
            return None
        raw = base64.b64decode
        return AssignmentBundle(d["name"], tuple(d["notebooks"]), raw(d["config"]), raw(d["gradebook"]),
                                {rel: raw(v) for rel, v in d["files"].items()})
    except (ValueError, KeyError, TypeError):
        return None


def load_bundle(course: Path) -> tuple[AssignmentBundle, str, bool]:
    """The assignment of `course`: (bundle, its source key, whether generate_assignment ran)."""
    key = source_key(course)
    try:
        folder = cache_folder()
    except ServiceUnavailable:
        folder = None
    path = folder / f"{ASSIGNMENT}-{key[:32]}.json" if folder else None
    if path is not None and path.is_file():
        bundle = _decode(path.read_bytes(), key)
        if bundle is not None:
            return bundle, key, False
    bundle = build_bundle(course)
    if path is not None:
        with contextlib.suppress(OSError):
            with atomic_write(path, "wb") as f:
                f.write(_encode(bundle, key))
            old = sorted(folder.glob(f"{ASSIGNMENT}-*.json"), key=lambda p: p.stat().st_mtime)[:-5]
            for stale in old:  # keep the last few versions of the course
                stale.unlink()
    return bundle, key, True


def grade_here(course: Path, submission: SubmissionBundle, timeout: float) -> Graded:
    """Grading without a service: the same task, in this process, with a kernel started for it."""
    from course_grade.engine.task import grade

    bundle, _key, _made = load_bundle(course)
    return grade(bundle, submission, timeout)


# ------------------------------------------------------------------------------ the service

def _spare_class():
    from course_grade.kernels.spares import Spare

    class LaterSpare(Spare):
        """A Spare whose next kernel boots after the answer is sent (`boot`), not while the
        learner's notebook runs: one learner, one click at a time, and the cores go to it."""

        pending: tuple | None = (None, None, None)

        def start(self, extra_arguments=None, manager_class=None, config=None) -> None:
            self.pending = (extra_arguments, manager_class, config)

        def boot(self) -> None:
            if self.pending is not None and self.km is None:
                args, self.pending = self.pending, None
                Spare.start(self, *args)

    return LaterSpare


class Service:
    def __init__(self, place: Place):
        self.place = place
        self.bundle: AssignmentBundle | None = None
        self.key = ""
        self.generated = 0  # how many times this service ran generate_assignment
        self.graded = 0
        self.spare = _spare_class()()
        self.started = time.time()

    def status(self) -> dict:
        km, preload = self.spare.km, getattr(self.spare, "preloading", None)
        ready = km is not None and (preload is None or (not preload.is_alive() and preload.ok))
        return {"pid": os.getpid(), "course": str(self.place.course), "generated": self.generated,
                "gradings": self.graded, "spare": km is not None, "spare_ready": ready, "key": self.key,
                "started": self.started}

    def refresh(self) -> None:
        """Load the assignment, again when the course's source changed."""
        if self.bundle is None or source_key(self.place.course) != self.key:
            self.bundle, self.key, made = load_bundle(self.place.course)
            self.generated += made

    def rehearse(self) -> None:
        """Grade the course's own source notebook once and throw the result away: the first
        grading in a process loads much (nbconvert, nbgrader's preprocessors, the database
        layer) that a learner's first click would otherwise wait for."""
        from course_grade.engine.task import grade

        source = self.place.course / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
        if self.bundle is not None and source.is_file():
            done = grade(self.bundle, SubmissionBundle("rehearsal", {source.name: source.read_bytes()}), 120,
                         spare=self.spare)
            _log(f"rehearsal: {done.status} in {done.seconds:.2f} s")

    def handle(self, message: dict) -> tuple[dict, bool]:
        op = message.get("op")
        if op == "ping":
            return {"ok": True, **self.status()}, False
        if op == "stop":
            return {"ok": True, **self.status()}, True
        if op == "grade":
            from course_grade.engine.task import grade

            self.refresh()
            graded = grade(self.bundle, message["submission"], float(message.get("timeout", 600)), spare=self.spare)
            self.graded += 1
            _log(f"graded: {graded.status} {graded.score}/{graded.max_score} in {graded.seconds:.2f} s {graded.note}")
            return {"ok": True, "graded": graded, **self.status()}, False
        return {"ok": False, "error": f"unknown request {op!r}"}, False


def _accept(listener: Listener, into: queue.Queue) -> None:
    while True:
        try:
            into.put(listener.accept())
        except OSError:  # closed: the service is stopping
            return
        except Exception:  # a client with the wrong key: ignore it
            continue


def _take_lock(place: Place, wait: float = 15.0):
    """The course's lock, or None when another service holds it (and answers) for `wait` s."""
    fd = os.open(place.lock, os.O_RDWR | os.O_CREAT, 0o600)
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.ftruncate(fd, 0)
            os.write(fd, str(os.getpid()).encode())
            return fd
        except BlockingIOError:
            if time.monotonic() > deadline or _alive(place):
                os.close(fd)
                return None
            time.sleep(0.2)


def _log(message: str) -> None:
    """One line in the service's log file (<runtime folder>/<name>.log)."""
    print(f"{time.strftime('%H:%M:%S')} [{os.getpid()}] {message}", file=sys.stderr, flush=True)


def serve(course: Path) -> int:
    """Run the service of `course` until it has been idle for IDLE seconds; 0 also when
    another service of the course already runs."""
    place = Place.of(course)
    key = place.authkey()
    lock = _take_lock(place)
    if lock is None:
        _log(f"another service of {course} runs")
        return 0
    _log(f"serving {course} on {place.socket}")
    os.chdir(place.folder)  # never a learner's folder
    with contextlib.suppress(FileNotFoundError):
        place.socket.unlink()  # left by a service that died: we hold the lock
    listener = Listener(str(place.socket), "AF_UNIX", authkey=key)
    os.chmod(place.socket, 0o600)
    ours = os.stat(place.socket).st_ino
    service = Service(place)
    incoming: queue.Queue = queue.Queue()
    idle = idle_seconds()
    import signal

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    # connections are accepted at once (clients see the service is up) and answered in turn
    threading.Thread(target=_accept, args=(listener, incoming), daemon=True).start()
    try:
        service.spare.boot()  # the kernel boots while the assignment loads
        with contextlib.suppress(Exception):  # said again at the first request
            service.refresh()
        _prime(service)
        if incoming.empty():  # nobody waits yet (a warm-up): make the first click as fast as the next
            with contextlib.suppress(Exception):
                service.rehearse()
            service.spare.boot()
        _log(f"ready: assignment {service.key[:12]} (generate_assignment runs: {service.generated}), spare kernel "
             f"{'started' if service.spare.km is not None else 'not started'}")
        last = time.monotonic()
        while True:
            left = idle - (time.monotonic() - last)
            if left <= 0:
                _log(f"idle for {idle:g} s: stopping")
                break
            try:
                if os.stat(place.socket).st_ino != ours:
                    break
            except FileNotFoundError:
                _log("the socket was removed: stopping")
                break  # nobody can reach us any more
            try:
                conn = incoming.get(timeout=min(left, 5.0))
            except queue.Empty:
                continue
            stop = False
            with conn:
                try:
                    answer, stop = service.handle(conn.recv())
                except (EOFError, OSError):
                    answer = None
                except Exception as exc:  # say it to the client, keep serving
                    answer = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:2000]}
                if answer is not None:
                    with contextlib.suppress(OSError, ValueError):
                        conn.send(answer)
            last = time.monotonic()
            if stop:
                break
            service.spare.boot()  # the next click's kernel
    finally:
        with contextlib.suppress(OSError):
            if os.stat(place.socket).st_ino == ours:
                place.socket.unlink()
        with contextlib.suppress(Exception):
            listener.close()
        while not incoming.empty():  # connected as we stopped: they get no answer and retry
            with contextlib.suppress(Exception):
                incoming.get_nowait().close()
        service.spare.close()
        os.close(lock)
    return 0


def _prime(service: Service) -> None:
    """Import and load what the first grading needs, so the first click is as fast as the next."""
    with contextlib.suppress(Exception):
        from nbgrader.apps.api import NbGraderAPI  # noqa: F401
        from nbgrader.converters import Autograde  # noqa: F401
        from traitlets.config.loader import PyFileConfigLoader

        from course_grade.kernels.sandbox import status

        status()
        if service.bundle is not None:
            with tempfile.TemporaryDirectory(prefix="selfgrade-prime-") as tmp:
                (Path(tmp) / "nbgrader_config.py").write_bytes(service.bundle.config)
                PyFileConfigLoader("nbgrader_config.py", path=tmp).load_config()


# ------------------------------------------------------------------------------- the client

def _connect(place: Place, key: bytes):
    """A connection to the running service, or None when none listens."""
    try:
        return Client(str(place.socket), "AF_UNIX", authkey=key)
    except (FileNotFoundError, ConnectionRefusedError):
        return None
    except OSError as exc:
        raise ServiceUnavailable(f"cannot reach the self-grading service ({exc})") from None
    except Exception as exc:  # AuthenticationError: a key that changed
        raise ServiceUnavailable(f"the self-grading service refused the connection ({type(exc).__name__})") from None


def _ask(conn, message: dict, timeout: float | None) -> dict:
    with conn:
        conn.send(message)
        if timeout is not None and not conn.poll(timeout):
            raise ServiceUnavailable("the self-grading service did not answer in time")
        return conn.recv()


def _alive(place: Place) -> bool:
    """Whether a service listens on the course's socket (it accepts at once, even while busy)."""
    try:
        conn = _connect(place, place.authkey())
    except ServiceUnavailable:
        return False
    if conn is None:
        return False
    conn.close()
    return True


def _ping(place: Place) -> dict | None:
    try:
        conn = _connect(place, place.authkey())
        return None if conn is None else _ask(conn, {"op": "ping"}, 30)
    except (ServiceUnavailable, EOFError, OSError):
        return None


def _service_env() -> dict:
    # not the learner's kernel's own variables (the session's notebook, its parent process)
    return {k: v for k, v in tool_env().items() if not k.startswith("JPY_")}


def spawn(place: Place) -> subprocess.Popen:
    """Start the service in the background, detached from this process and its terminal."""
    with contextlib.suppress(OSError):
        if place.log.stat().st_size > 1 << 20:
            place.log.unlink()
    log = os.open(place.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        return subprocess.Popen([sys.executable, "-m", "course_grade.selfgrade.service", "--course", str(place.course)],
                                cwd=place.folder, env=_service_env(), stdin=subprocess.DEVNULL, stdout=log,
                                stderr=log, start_new_session=True, close_fds=True)
    finally:
        os.close(log)


def connect(course: Path, start: bool = True, wait: float = START_WAIT):
    """A connection to the course's service, started (and waited for) if it is not running."""
    if disabled():
        raise ServiceUnavailable(f"{SWITCH}=off")
    place = Place.of(course)
    key = place.authkey()
    conn = _connect(place, key)
    if conn is not None or not start:
        return conn
    proc = spawn(place)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        conn = _connect(place, key)
        if conn is not None:
            return conn
        code = proc.poll()
        if code not in (None, 0):
            raise ServiceUnavailable(f"the self-grading service did not start (exit {code}, see {place.log})")
        time.sleep(0.05)
    raise ServiceUnavailable(f"the self-grading service did not start within {wait:g} s (see {place.log})")


def warm(course: Path) -> str:
    """Start the course's service if it is not running, without waiting: 'running', 'started'
    or 'off'."""
    if disabled():
        return "off"
    place = Place.of(course)
    if _alive(place):
        return "running"
    spawn(place)
    return "started"


def status(course: Path) -> dict | None:
    """What the running service says about itself (pid, generate_assignment runs, gradings), or None."""
    try:
        return _ping(Place.of(course))
    except ServiceUnavailable:
        return None


def stop(course: Path) -> dict | None:
    try:
        conn = _connect(Place.of(course), Place.of(course).authkey())
        return None if conn is None else _ask(conn, {"op": "stop"}, 60)
    except (ServiceUnavailable, EOFError, OSError):
        return None


def grade(course: Path, submission: SubmissionBundle, timeout: float = 600) -> tuple[Graded, str]:
    """Grade on the course's service (started if need be), else in this process: (result,
    'service' or why it graded here)."""
    why = ""
    for _attempt in range(3):
        try:
            conn = connect(course)
            answer = _ask(conn, {"op": "grade", "submission": submission, "timeout": timeout}, timeout + 300)
        except ServiceUnavailable as exc:
            why = str(exc)
            break
        except (EOFError, OSError):  # the service stopped as we connected (idle): start another
            why = "the self-grading service stopped"
            continue
        if not answer.get("ok"):
            raise RuntimeError(f"the self-grading service failed: {answer.get('error')}")
        return answer["graded"], "service"
    return grade_here(course, submission, timeout), why or "service unavailable"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_grade.selfgrade.service",
                                     description="Run the self-grading service of a course (clients start it).")
    parser.add_argument("--course", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        return serve(args.course.resolve())
    except ServiceUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
