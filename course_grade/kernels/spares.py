"""Pre-started kernels for the grading workers.

Starting an IPython kernel takes ~2 s, about a third of the time nbgrader spends on one
submission. A grading worker keeps one spare kernel booting in the background while it
grades, so the next submission starts at once. Each kernel still serves **one** submission
and is shut down after it: a student's code never shares a kernel with anyone else's.

A spare kernel boots in an empty folder of its own; before the first cell runs it is moved
into the submission's folder by a *silent* request (no history entry, no execution count,
no output, no name left in the user's namespace), so the notebook sees what a kernel started
there would show: `os.getcwd()`, relative paths, `''` on `sys.path`, an empty `In`.
tests/course_grade/kernels/test_spares.py compares both kinds of kernel on the same notebook.

A spare kernel also imports the libraries the lesson uses (`PRELOAD`: FastAPI, SQLAlchemy's
asyncio engine and the aiosqlite driver, httpx, pydantic, starlette, anyio, ipywidgets) while
it waits, so the submission's first `from autograder import checks` costs ~20 ms instead of
~0.7 s. The preload is a silent request too, sent from a background thread once the kernel is
up (after IPython's startup lines, so under the runtime guard): it binds no name, leaves `In`
and the execution count alone, fires no cell hooks, and runs in the spare's own empty folder.
It imports third-party libraries only, never the kernel-side `autograder` package (importing
`autograder.progress` or `autograder.checks` registers a `post_run_cell` hook and progress
listeners, which the notebook would see as cells recorded before it imported them). A module
that fails to import is skipped (the cell that imports it fails as it would in a fresh
kernel); a preload that does not finish, or a kernel that dies meanwhile, drops the spare and
the submission gets a fresh kernel. `take()` waits for the preload, so it has always finished
before the submission's first cell runs. What differs from a fresh kernel is only what an
import leaves behind: the modules in `sys.modules` (and ipywidgets' comm targets, which the
lesson's quiz cells register anyway).

Spare kernels are sandboxed like any other (course_grade/kernels/sandbox.py), one sandbox per kernel:
a spare boots in a sandbox that holds only its empty folder, and when it is taken the
submission's folder is bound into that sandbox (`SandboxedKernelManager.admit`) before the
move; if that fails the spare is dropped and the submission gets a kernel started for it.

Grading as root, a spare is forked from the worker's zygote (course_grade/kernels/zygote.py: ipykernel
and the libraries above imported once per worker) into a sandbox of its own instead of booting;
the preload then finds everything imported. A spare boots with the environment nbgrader
autograde gives its kernels (`kernel_env`) and is used only while that is still the notebook's.

Only the grading command's workers (a Dask `WorkerPlugin`, course_grade/commands/cluster.py) and the
self-grading service use this; plain `nbgrader autograde` runs stock nbgrader.
"""
from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time

from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_client.manager import AsyncKernelManager
from jupyter_core.utils import run_sync

from course_grade.kernels.processes import kill, running
from course_grade.kernels.sandbox import SandboxedKernelManager
from course_grade.kernels.zygote import Zygote

# what nbclient passes to every IPython kernel it starts (NotebookClient.ipython_hist_file)
HISTORY = "--HistoryManager.hist_file=:memory:"

# What `from autograder import checks` and the lesson's cells import (measured: sys.modules of a
# kernel after grading the solution, against a fresh kernel's), named by the modules that pull
# in the rest: 95% of the import time of the first test cell. Third-party only (module docstring).
PRELOAD = (
    "fastapi", "starlette", "pydantic", "httpx", "anyio", "anyio._backends._asyncio",
    "sqlalchemy", "sqlalchemy.ext.asyncio", "sqlalchemy.dialects.sqlite.aiosqlite", "aiosqlite", "greenlet",
    "ipywidgets",
)
# what a zygote (course_grade/kernels/zygote.py) imports besides PRELOAD: the kernel itself, and what
# IPython imports to show the first traceback (a wrong submission's cell shows several)
ZYGOTE_IMPORTS = ("ipykernel.kernelapp", "ipykernel.ipkernel", "ipykernel.zmqshell", "ipykernel_launcher",
                  "stack_data", "executing", "pure_eval", "asttokens", "bdb", "IPython.core.logger",
                  "pygments.lexers.python", "pygments.formatters.terminal256", "pygments.formatters.html",
                  "pygments.styles", "pygments.filters", "pygments.console")
FORK_ATTEMPTS = 3  # failed forks in a row before a worker's kernels boot the usual way
PRELOAD_TIMEOUT = 120.0  # seconds for the kernel to boot and import them (a loaded machine is slow)


def preload_code(modules) -> str:
    """One statement that imports `modules` and binds no name in the user's namespace (the loop
    runs in a namespace of its own); a module that fails to import is skipped."""
    loop = "for m in M:\n    try:\n        __import__(m)\n    except Exception:\n        pass\n"
    return f"exec({loop!r}, {{'M': {tuple(modules)!r}}})"


class _Preload(threading.Thread):
    """Sends the preload to a booting kernel and waits for its reply, in the background."""

    def __init__(self, km: AsyncKernelManager, modules, timeout: float = PRELOAD_TIMEOUT):
        super().__init__(name="spare-kernel-preload", daemon=True)
        self.km, self.code, self.timeout = km, preload_code(modules), timeout
        self.ok = False
        self.why = ""
        self.seconds = 0.0
        self.cancelled = threading.Event()

    def _exited(self) -> bool:
        process = getattr(self.km.provisioner, "process", None)
        return process is not None and process.poll() is not None

    def run(self) -> None:
        start = time.perf_counter()
        try:
            asyncio.run(self._preload())  # a loop of its own, closed with the thread's work
        except Exception as exc:  # any failure only costs this spare
            self.ok, self.why = False, f"{type(exc).__name__}: {exc}"
        finally:
            self.seconds = time.perf_counter() - start

    async def _preload(self) -> None:
        from jupyter_client.asynchronous import AsyncKernelClient

        kc = AsyncKernelClient()
        try:
            kc.load_connection_info(self.km.get_connection_info())
            kc.start_channels(shell=True, iopub=False, stdin=False, hb=False, control=False)
            # the kernel binds its sockets when it is up: the request waits for it, and runs
            # after IPython's startup lines (the runtime guard)
            msg_id = kc.execute(self.code, silent=True, store_history=False, allow_stdin=False)
            deadline = time.perf_counter() + self.timeout
            while not self.cancelled.is_set():
                if time.perf_counter() > deadline:
                    self.why = f"no reply to the preload within {self.timeout:g} s"
                    return
                try:
                    reply = await kc.get_shell_msg(timeout=0.2)
                except queue.Empty:
                    if self._exited():
                        self.why = "the kernel exited while booting"
                        return
                    continue
                if reply.get("parent_header", {}).get("msg_id") != msg_id:
                    continue
                status = reply["content"].get("status")
                self.ok = status == "ok"
                self.why = "" if self.ok else f"the preload request ended with status {status}"
                return
            self.why = "cancelled"
        finally:
            kc.stop_channels()
            kc.context.destroy(linger=0)


class Spare:
    """At most one pre-started kernel, booting while the current submission is graded."""

    def __init__(self, kernel_name: str = "python3", manager_class: type = SandboxedKernelManager,
                 preload=PRELOAD, preload_wait: float = PRELOAD_TIMEOUT, fork: bool = True):
        self.kernel_name = kernel_name
        self.home = tempfile.mkdtemp(prefix="spare-kernel-")  # stays empty: no student's folder
        self.km: AsyncKernelManager | None = None
        self.preload = tuple(preload or ())  # () : no preload
        self.preload_wait = preload_wait  # the longest take() waits for it
        self.preloading: _Preload | None = None  # the preload of self.km
        self.last_preload: _Preload | None = None  # that of the last kernel taken (for reports)
        self.extra_arguments: list[str] = []
        self.manager_class = manager_class  # the course config's (nbgrader_config.py): the sandbox
        self.config = None
        self.zygote: Zygote | None = None  # forks sandboxed kernels ready-imported (grading as root)
        self.forking = fork  # whether to try a zygote at all
        self.fork_failures = 0  # in a row

    def start(self, extra_arguments: list[str] | None = None, manager_class: type | None = None, config=None) -> None:
        """Launch the next kernel; returns as soon as its process exists (it boots by itself).
        The kernel manager class and config are those of the notebook client that used the last one."""
        if extra_arguments is not None:
            self.extra_arguments = own_arguments(extra_arguments)
        if manager_class is not None:
            self.manager_class, self.config = manager_class, config
        km = self.manager_class(kernel_name=self.kernel_name,
                                **({"config": self.config} if self.config is not None else {}))
        args = self.extra_arguments + ([HISTORY] if not any(a.startswith("--HistoryManager.hist_file")
                                                            for a in self.extra_arguments) else [])
        self._zygote(km)
        km.spare_env = kernel_env()
        try:
            run_sync(km.start_kernel)(extra_arguments=args, cwd=self.home, env=km.spare_env)
        except Exception as exc:  # no spare this time: the next submission starts its kernel itself
            stop(km)
            if getattr(km, "forked", False):  # try the zygote again (a new one); after three failures in a row,
                self.fork_failures += 1       # boot kernels the usual way from now on
                if self.fork_failures >= FORK_ATTEMPTS:
                    km.log.warning("forking kernels from a zygote failed, kernels boot the usual way: %s", exc)
                    self.zygote.close()
                    self.forking = False
                return self.start()
            return
        if getattr(km, "forked", False):
            self.fork_failures = 0
        self.km = km
        if self.preload:
            self.preloading = _Preload(km, self.preload, self.preload_wait)
            self.preloading.start()

    def _zygote(self, km: AsyncKernelManager) -> None:
        """Give `km` this spare's zygote (started by the first kernel that fits it)."""
        if not self.forking or not isinstance(km, SandboxedKernelManager) or not km.enabled or not self.preload:
            return
        if self.zygote is None:
            self.zygote = Zygote(modules=ZYGOTE_IMPORTS + self.preload)  # started by the first kernel
        km.zygote = self.zygote

    def ready(self, timeout: float | None = None) -> bool:
        """Wait until the spare kernel has finished its preload (at most `timeout` s); whether
        there is a spare that did."""
        if self.km is None:
            return False
        if self.preloading is None:
            return True
        self.preloading.join(timeout)
        return not self.preloading.is_alive() and self.preloading.ok

    def take(self, kernel_name: str, extra_arguments: list[str], manager_class: type | None = None,
             folder: str | None = None) -> AsyncKernelManager | None:
        """The spare kernel if it fits the notebook and is alive, with `folder` bound into its
        sandbox, else None (start one fresh)."""
        km, self.km = self.km, None
        preloading, self.preloading = self.preloading, None
        if km is None:
            return None
        if preloading is not None:  # its imports must be done before the first cell
            preloading.join(self.preload_wait)
            self.last_preload = preloading
            if preloading.is_alive() or not preloading.ok:
                preloading.cancelled.set()
                km.log.warning("spare kernel not used: preload failed (%s)", preloading.why or "still running")
                stop(km)
                return None
        if kernel_name != self.kernel_name or own_arguments(extra_arguments) != self.extra_arguments \
                or (manager_class is not None and type(km) is not manager_class) or km.spare_env != dict(os.environ) \
                or not run_sync(km.is_alive)():
            stop(km)
            return None
        if folder and isinstance(km, SandboxedKernelManager):
            try:
                km.admit(folder)
            except OSError as exc:
                km.log.warning("spare kernel not used: %s", exc)
                stop(km)
                return None
        return km

    def close(self) -> None:
        if self.preloading is not None:
            self.preloading.cancelled.set()
        if self.km is not None:
            stop(self.km)
            self.km = None
        if self.preloading is not None:
            self.preloading.join(5)
            self.preloading = None
        if self.zygote is not None:
            self.zygote.close()
        shutil.rmtree(self.home, ignore_errors=True)


def fork_check(kernel_name: str = "python3", timeout: float = PRELOAD_TIMEOUT) -> str | None:
    """None when a kernel forks from a zygote here into a sandbox of its own and answers there,
    as a grading worker's spare does; else why not (one short sentence). Starts and stops a
    zygote and one kernel (seconds); as another user than root it starts nothing."""
    zygote = Zygote(modules=ZYGOTE_IMPORTS + PRELOAD)
    if os.geteuid() != 0:
        zygote.start({})  # refuses at once, saying why
        return zygote.why
    home = tempfile.mkdtemp(prefix="fork-check-")
    km = SandboxedKernelManager(kernel_name=kernel_name)
    km.zygote = zygote
    try:
        run_sync(km.start_kernel)(extra_arguments=[HISTORY], cwd=home, env=kernel_env(),
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # a booted kernel's
        if not km.sandboxed:
            return "the sandbox cannot start"
        if not km.forked:
            if zygote.why:
                return zygote.why
            python = km.format_kernel_cmd()[0]
            return (f"kernelspec {kernel_name} ({km.kernel_spec.resource_dir}) runs {python}, not the grader's "
                    f"python {zygote.python}")
        answered = _Preload(km, PRELOAD, timeout)
        answered.run()  # here: the forked kernel imported them already, it only answers
        return None if answered.ok else f"the forked kernel did not answer ({answered.why})"
    except Exception as exc:  # ForkRefused, a kernel that would not start
        return f"{type(exc).__name__}: {exc}"
    finally:
        stop(km)
        zygote.close()
        shutil.rmtree(home, ignore_errors=True)


def kernel_env() -> dict:
    """The environment a kernel nbgrader autograde starts now would get: ours, with the variable
    nbgrader sets while it autogrades (a spare boots before it, or while it grades another)."""
    return {**os.environ, "NBGRADER_EXECUTION": "autograde"}


def own_arguments(extra_arguments) -> list[str]:
    """A notebook client's kernel arguments without the history file nbclient adds to them (in
    place, when it starts a kernel itself): a spare kernel always gets that one (HISTORY)."""
    return [a for a in extra_arguments if not a.startswith("--HistoryManager.hist_file")]


def _end_processes(km: AsyncKernelManager) -> None:
    """End a kernel's process and everything in its sandbox; when this returns, none of them runs."""
    import psutil

    process = getattr(km.provisioner, "process", None)
    if process is not None:  # jupyter_client would poll for its end every 0.1 s
        try:
            inside = psutil.Process(process.pid).children(recursive=True)
        except psutil.Error:
            inside = []
        try:
            process.kill()
            process.wait(10)
        except Exception:  # already gone, or the manager's shutdown below deals with it
            pass
        # bwrap's --die-with-parent ends the sandbox's own processes a moment after bwrap:
        # wait for that, so no used kernel outlives its stop (and kill any that would)
        left = running(inside, within=5)
        kill(left)
        running(left, within=5)
        # what the manager still sends the kernel (its shutdown interrupts it on the control
        # socket) is for a kernel that has ended: dropped when the socket closes, rather than
        # waited for (0.1 s of linger in jupyter_client's cleanup, after every submission)
        try:
            km.context.linger = 0  # sockets made from now on
            control = getattr(km, "_control_socket", None)
            if control is not None and not control.closed:
                control.linger = 0
        except Exception:  # then the cleanup only waits as usual
            pass


def stop(km: AsyncKernelManager) -> None:
    """End a kernel and everything in its sandbox; when this returns, none of them runs."""
    _end_processes(km)
    with contextlib.suppress(Exception):  # already gone
        run_sync(km.shutdown_kernel)(now=True)
    with contextlib.suppress(Exception):
        run_sync(km.cleanup_resources)()


async def astop(km: AsyncKernelManager) -> None:
    """`stop`, from a coroutine running on the kernel manager's own event loop."""
    _end_processes(km)
    with contextlib.suppress(Exception):
        await km.shutdown_kernel(now=True)
    with contextlib.suppress(Exception):
        await km.cleanup_resources()


class ReadyClient(AsyncKernelClient):
    """The client of a spare kernel. jupyter_client's wait_for_ready ends by waiting for 0.2 s
    of silence on IOPub; this one reads IOPub up to the `idle` status of the kernel_info
    request that was answered (the kernel's last message for it, in order), the same handshake
    without the wait. A spare has already answered its preload, so it is up."""

    async def _async_wait_for_ready(self, timeout: float | None = None) -> None:
        deadline = time.monotonic() + (timeout if timeout is not None else float("inf"))
        while time.monotonic() < deadline:
            if not await self._async_is_alive():
                raise RuntimeError("Kernel died before replying to kernel_info")
            msg_id = self.kernel_info()
            try:
                reply = await self._async_recv_reply(msg_id, timeout=1)
            except (queue.Empty, TimeoutError):
                continue
            try:  # IOPub connected: its messages for that request arrive, `idle` last
                while True:
                    msg = await self.iopub_channel.get_msg(timeout=0.2)
                    if msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "status" \
                            and msg["content"].get("execution_state") == "idle":
                        self._handle_kernel_info_reply(reply)
                        return
            except queue.Empty:
                continue  # IOPub was not connected yet: ask again
        raise RuntimeError(f"Kernel didn't respond in {timeout} seconds")

    wait_for_ready = _async_wait_for_ready
