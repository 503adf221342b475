"""nbgrader's Execute preprocessor, run in a grading worker's spare kernel (course_grade/kernels/spares.py).

`use_spare_kernels` swaps it into a loaded course config (course_grade/engine/task.py). Kept apart from
kernel_pool.py so that a worker starts its first spare kernel (and its zygote) without waiting
for nbgrader's own import.
"""
from __future__ import annotations

import json

from jupyter_core.utils import run_sync
from nbclient import NotebookClient
from nbgrader.preprocessors import Execute

from course_grade.kernels.spares import ReadyClient, Spare, stop


class PooledExecute(Execute):
    """nbgrader's Execute preprocessor, run in a spare kernel when there is one. `spare` is
    set on a subclass made per worker by `use_spare_kernels` (None: start kernels as usual)."""

    spare: Spare | None = None

    def preprocess(self, nb, resources=None, km=None):
        pool = type(self).spare
        # nbgrader's Execute is made with kernel_manager_class=AsyncKernelManager, and the
        # course config's class (the sandbox) only takes over when preprocess() initialises the
        # notebook client again: do that first, so the spare is matched against the class used
        NotebookClient.__init__(self, nb, km)
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
        spare.client_class = f"{ReadyClient.__module__}.{ReadyClient.__qualname__}"
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
    """Swap nbgrader's Execute for a PooledExecute drawing on `spare`, and the judge for one
    forking its kernel from `spare`'s zygote, in a loaded course config (in place); returns
    the Execute class put in."""
    from course_grade.nbgrader_ext.cached_check_cell_metadata import chain
    from course_grade.nbgrader_ext.judge_build_steps import JudgeBuildSteps

    pooled = type("PooledExecute", (PooledExecute,), {"spare": spare})
    judge = type("JudgeBuildSteps", (JudgeBuildSteps,), {"spare": spare})  # forks its kernel from the same zygote
    config.Autograde.autograde_preprocessors = [
        pooled if p is Execute or p in ("nbgrader.preprocessors.Execute", "nbgrader.preprocessors.execute.Execute")
        else judge if p is JudgeBuildSteps else p for p in chain(config, "autograde_preprocessors")]
    return pooled
