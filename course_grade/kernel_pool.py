"""Pre-started kernels for the grading workers.

Starting an IPython kernel takes ~2 s, about a third of the time nbgrader spends on one
submission. A grading worker keeps one spare kernel booting in the background while it
grades, so the next submission starts at once. Each kernel still serves **one** submission
and is shut down after it: a student's code never shares a kernel with anyone else's.

A spare kernel boots in an empty folder of its own; before the first cell runs it is moved
into the submission's folder by a *silent* request (no history entry, no execution count,
no output, no name left in the user's namespace), so the notebook sees what a kernel started
there would show: `os.getcwd()`, relative paths, `''` on `sys.path`, an empty `In`.
tests/test_kernel_pool.py compares both kinds of kernel on the same notebook.

Spare kernels are sandboxed like any other (course_grade/sandbox.py), one sandbox per kernel:
a spare boots in a sandbox that holds only its empty folder, and when it is taken the
submission's folder is bound into that sandbox (`SandboxedKernelManager.admit`) before the
move; if that fails the spare is dropped and the submission gets a kernel started for it.

Only the grading command's workers (a Dask `WorkerPlugin`, course_grade/cluster.py) and the
self-grading service use this; plain `nbgrader autograde` runs stock nbgrader.
"""
from __future__ import annotations

import json
import shutil
import tempfile

from jupyter_client.manager import AsyncKernelManager
from jupyter_core.utils import run_sync
from nbgrader.preprocessors import Execute

from course_grade.sandbox import SandboxedKernelManager

# what nbclient passes to every IPython kernel it starts (NotebookClient.ipython_hist_file)
HISTORY = "--HistoryManager.hist_file=:memory:"


class Spare:
    """At most one pre-started kernel, booting while the current submission is graded."""

    def __init__(self, kernel_name: str = "python3", manager_class: type = SandboxedKernelManager):
        self.kernel_name = kernel_name
        self.home = tempfile.mkdtemp(prefix="spare-kernel-")  # stays empty: no student's folder
        self.km: AsyncKernelManager | None = None
        self.extra_arguments: list[str] = []
        self.manager_class = manager_class  # the course config's (nbgrader_config.py): the sandbox
        self.config = None

    def start(self, extra_arguments: list[str] | None = None, manager_class: type | None = None, config=None) -> None:
        """Launch the next kernel; returns as soon as its process exists (it boots by itself).
        The kernel manager class and config are those of the notebook client that used the last one."""
        if extra_arguments is not None:
            self.extra_arguments = list(extra_arguments)
        if manager_class is not None:
            self.manager_class, self.config = manager_class, config
        km = self.manager_class(kernel_name=self.kernel_name, **({"config": self.config} if self.config is not None else {}))
        args = self.extra_arguments + ([HISTORY] if not any(a.startswith("--HistoryManager.hist_file")
                                                            for a in self.extra_arguments) else [])
        try:
            run_sync(km.start_kernel)(extra_arguments=args, cwd=self.home)
        except Exception:  # no spare this time: the next submission starts its kernel itself
            stop(km)
            return
        self.km = km

    def take(self, kernel_name: str, extra_arguments: list[str], manager_class: type | None = None,
             folder: str | None = None) -> AsyncKernelManager | None:
        """The spare kernel if it fits the notebook and is alive, with `folder` bound into its
        sandbox, else None (start one fresh)."""
        km, self.km = self.km, None
        if km is None:
            return None
        if kernel_name != self.kernel_name or list(extra_arguments) != self.extra_arguments \
                or (manager_class is not None and type(km) is not manager_class) or not run_sync(km.is_alive)():
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
        if self.km is not None:
            stop(self.km)
            self.km = None
        shutil.rmtree(self.home, ignore_errors=True)


def stop(km: AsyncKernelManager) -> None:
    try:
        run_sync(km.shutdown_kernel)(now=True)
    except Exception:  # already gone
        pass
    try:
        run_sync(km.cleanup_resources)()
    except Exception:
        pass


class PooledExecute(Execute):
    """nbgrader's Execute preprocessor, run in a spare kernel when there is one. `spare` is
    set on a subclass made per worker by `use_spare_kernels` (None: start kernels as usual)."""

    spare: Spare | None = None

    def preprocess(self, nb, resources=None, km=None):
        pool = type(self).spare
        kernel_name = self.kernel_name or nb.metadata.get("kernelspec", {}).get("name", "")
        folder = (resources or {}).get("metadata", {}).get("path") or None
        spare = pool.take(kernel_name, self.extra_arguments, self.kernel_manager_class, folder) \
            if pool is not None and km is None else None
        if spare is None:
            result = super().preprocess(nb, resources, km)
            if pool is not None:
                pool.start(self.extra_arguments, self.kernel_manager_class, self.config)
            return result
        # the next submission's kernel boots while this one runs
        pool.start(self.extra_arguments, self.kernel_manager_class, self.config)
        self._move_to = folder
        try:
            return super().preprocess(nb, resources, spare)
        finally:
            self._move_to = None
            if self.kc is not None:
                self.kc.stop_channels()
                self.kc = None
            stop(spare)  # one submission per kernel, as in stock nbgrader
            self.km = None

    async def async_start_new_kernel_client(self):
        kc = await super().async_start_new_kernel_client()
        folder = getattr(self, "_move_to", None)
        if folder:
            # a silent request: not in `In`, no execution count, no output, no new names
            code = f"__import__('os').chdir({json.dumps(folder)})"
            reply = await self.async_wait_for_reply(kc.execute(code, silent=True, store_history=False))
            if reply is None or reply["content"].get("status") != "ok":
                raise RuntimeError(f"could not move the pre-started kernel into {folder}")
        return kc

    # nbclient binds the sync wrapper to its own coroutine at class creation: rebind it
    start_new_kernel_client = run_sync(async_start_new_kernel_client)


def use_spare_kernels(config, spare: Spare) -> type:
    """Swap nbgrader's Execute for a PooledExecute drawing on `spare`, in a loaded course
    config (in place); returns the class put in."""
    from nbgrader.converters import Autograde

    pooled = type("PooledExecute", (PooledExecute,), {"spare": spare})
    chosen = config.Autograde.get("autograde_preprocessors") \
        or Autograde.class_traits()["autograde_preprocessors"].default()
    config.Autograde.autograde_preprocessors = [
        pooled if p is Execute or p in ("nbgrader.preprocessors.Execute", "nbgrader.preprocessors.execute.Execute")
        else p for p in chosen]
    return pooled
