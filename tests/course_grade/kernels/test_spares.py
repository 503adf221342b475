"""The grading workers' pre-started kernels (course_grade/kernels/spares.py): a notebook run in a
spare kernel sees exactly what it would see in a kernel started for it, except that the
lesson's libraries are already imported (the preload), and no kernel ever serves two
submissions; a spare whose preload fails is dropped and the notebook gets a fresh kernel.
Both kinds run in the course's sandbox (course_grade/kernels/sandbox.py), as
nbgrader_config.py has it; a kernel is told apart by its connection file (inside its own PID
namespace every kernel has the same small pid)."""
from __future__ import annotations

import os
import signal

import psutil
import pytest
from nbformat.v4 import new_code_cell, new_notebook
from nbgrader.preprocessors import Execute

from course_grade.kernels import processes
from course_grade.kernels import spares as kernel_pool
from course_grade.kernels.sandbox import SandboxedKernelManager
from course_grade.nbgrader_ext import pooled_execute

pytestmark = pytest.mark.slow

PRELOADED = f"import sys\nprint(sorted(m for m in {list(kernel_pool.PRELOAD)!r} if m in sys.modules))"
PROBE = [
    # the first cell finds the preloaded libraries imported (a fresh kernel: none of them)
    PRELOADED,
    "import os\nprint(os.getcwd())",
    # history and namespace as the notebook finds them: nothing left by the move or the preload
    "print(len(In), get_ipython().execution_count, sorted(k for k in globals() if not k.startswith('_')))",
    "print(In, sorted(globals()), _i, _ii, _iii, _, __, ___, Out)",
    "print(sorted(k for k in vars(__builtins__) if not k.startswith('__')))",
    "print('' in sys.path, sys.path.index('') > 0)",
    "open('made-here.txt', 'w').write('x'); print(sorted(os.listdir('.')))",
    "print(os.environ.get('NBGRADER_EXECUTION'))",
    "from ipykernel.connect import get_connection_file\nprint(get_connection_file())",
]


def autograding():
    """What `nbgrader autograde` does around its Execute preprocessor (the kernel inherits it)."""
    from nbgrader.utils import setenv

    return setenv(NBGRADER_EXECUTION="autograde")


def probe_notebook():
    return new_notebook(cells=[new_code_cell(src) for src in PROBE],
                        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})


def pooled(spare: kernel_pool.Spare) -> type:
    """The Execute preprocessor of a grading worker whose spare kernels come from `spare`."""
    return type("PooledExecute", (pooled_execute.PooledExecute,), {"spare": spare})


def run(preprocessor_class, folder) -> list[str]:
    with autograding():
        nb, _ = preprocessor_class(timeout=60, kernel_manager_class=SandboxedKernelManager).preprocess(
            probe_notebook(), {"metadata": {"path": str(folder)}})
    outputs = []
    for cell in nb.cells:
        assert all(o.output_type == "stream" and o.name == "stdout" for o in cell.outputs), cell.outputs
        outputs.append("".join(o.text for o in cell.outputs).replace(str(folder), "<folder>"))
    return outputs


@pytest.fixture(params=["forked", "booted"])
def spare(request, monkeypatch):
    """A spare kernel forked from a zygote (course_grade/kernels/zygote.py: grading as root), or booted
    by bwrap as any kernel is."""
    forked = request.param == "forked"
    if forked and os.geteuid() != 0:
        stop = pytest.fail if os.environ.get("CI") else pytest.skip
        stop("kernels are forked from a zygote only when grading runs as root")
    # a spare is used only by a notebook whose environment is the one it booted with: boot it
    # with the value pytest gives this variable while the test runs
    monkeypatch.setenv("PYTEST_CURRENT_TEST", f"{request.node.nodeid} (call)")
    spare = kernel_pool.Spare(fork=forked)
    spare.start()
    assert spare.km is not None and spare.km.forked == forked, f"the spare kernel was not {request.param}"
    yield spare
    spare.close()


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_spare_kernel_looks_like_a_fresh_one(tmp_path, spare):
    """Working folder, history, namespace, sys.path and file writes match a kernel started in
    the folder; only the preloaded libraries are already imported when the first cell runs."""
    (tmp_path / "stock").mkdir()
    (tmp_path / "pooled").mkdir()
    booted_in = spare.home
    stock = run(Execute, tmp_path / "stock")
    used = run(pooled(spare), tmp_path / "pooled")
    assert spare.last_preload is not None and spare.last_preload.ok, "the notebook ran in a preloaded spare"
    assert stock[0].strip() == "[]", "a fresh kernel has imported none of the preloaded libraries"
    assert used[0].strip() == str(sorted(kernel_pool.PRELOAD)), "the preload finished before the first cell"
    assert used[1:-1] == stock[1:-1]
    assert used[1].strip() == "<folder>"
    # In holds '' and the three cells run so far: the move and the preload left no entry and took no count
    assert stock[2].strip() == "4 4 ['In', 'Out', 'exit', 'get_ipython', 'open', 'os', 'quit', 'sys']"
    assert "'made-here.txt'" in used[PROBE.index(next(c for c in PROBE if 'made-here' in c))], (
        "the kernel sees what it wrote in its working folder")
    assert os.listdir(tmp_path / "pooled") == os.listdir(tmp_path / "stock") == [], \
        "what a kernel writes stays in its sandbox (course_grade/kernels/sandbox.py), spare or not"
    assert os.listdir(booted_in) == [], "the spare kernel's own folder must stay empty"


def test_a_spare_booted_under_another_environment_is_not_used(tmp_path, spare, monkeypatch):
    """The notebook's kernel gets the environment of the moment it runs (nbgrader's own
    variable included), never that of the moment its spare booted."""
    waiting = spare.km.connection_file
    monkeypatch.setenv("COURSE_TEST_CHANGED", "1")
    used = run(pooled(spare), tmp_path)
    assert used[-1].strip() != waiting, "a spare whose environment differs was used"
    assert used[-2].strip() == "autograde"


def test_start_returns_while_the_spare_boots_and_preloads(tmp_path):
    """start() does not wait for the kernel or its imports; ready() and take() do."""
    spare = kernel_pool.Spare()
    try:
        spare.start()
        assert spare.preloading is not None and spare.preloading.is_alive(), "start() returned before the preload"
        assert spare.ready(kernel_pool.PRELOAD_TIMEOUT) and spare.preloading.ok, spare.preloading.why
    finally:
        spare.close()


@pytest.mark.parametrize("failure", ["error", "too slow"])
def test_a_failed_preload_gives_a_fresh_kernel(tmp_path, monkeypatch, failure):
    """A spare whose preload raised or did not finish in time is dropped: the notebook runs,
    unharmed, in a kernel started for it, and a new spare boots for the next one."""
    if failure == "error":
        monkeypatch.setattr(kernel_pool, "preload_code", lambda modules: "raise RuntimeError('preload')")
        spare = kernel_pool.Spare()
    else:
        spare = kernel_pool.Spare(preload_wait=0.01)
    try:
        spare.start()
        dropped, dropped_file = spare.km.provisioner.process.pid, spare.km.connection_file
        (tmp_path / "stock").mkdir()
        (tmp_path / "pooled").mkdir()
        used = run(pooled(spare), tmp_path / "pooled")
        stock = run(Execute, tmp_path / "stock")
        assert not spare.last_preload.ok
        assert used[-1].strip() != dropped_file, "the notebook ran in a kernel started for it"
        assert used[:-1] == stock[:-1], "the fresh kernel is a stock one"
        assert not alive(dropped), "the dropped spare is shut down"
        assert spare.km is not None and spare.km.has_kernel
    finally:
        spare.close()


def test_preload_binds_no_name():
    """The preload statement imports in a namespace of its own and skips a missing module."""
    import sys

    for name in ("colorsys", "fractions"):
        sys.modules.pop(name, None)
    namespace: dict = {}
    exec(kernel_pool.preload_code(["colorsys", "no_such_module_here", "fractions"]), namespace)
    assert sorted(namespace) == ["__builtins__"]
    assert "colorsys" in sys.modules and "fractions" in sys.modules


def test_each_kernel_serves_one_notebook(tmp_path, spare):
    """After a run its kernel is gone and a new spare is booting; two runs get two kernels."""
    kernels = []
    for name in ("first", "second"):
        (tmp_path / name).mkdir()
        waiting = spare.km
        assert waiting is not None and waiting.has_kernel
        assert isinstance(waiting, SandboxedKernelManager) and waiting.sandboxed
        spare_pid, spare_file = waiting.provisioner.process.pid, waiting.connection_file
        inside = psutil.Process(spare_pid).children(recursive=True)
        kernel = run(pooled(spare), tmp_path / name)[-1].strip()
        assert kernel == spare_file, "the notebook ran in the spare kernel"
        assert not alive(spare_pid) and not any(alive(p.pid) for p in inside), "a used kernel must be shut down"
        assert spare.km is not None and spare.km is not waiting
        kernels.append(kernel)
    assert kernels[0] != kernels[1]


def test_stopping_a_used_kernel_never_waits_to_send_it_anything(tmp_path, spare, monkeypatch):
    """Its kernel has ended when the manager's sockets close: what they have not sent (the
    shutdown's interrupt on the control socket) is dropped, linger 0, not waited for
    (jupyter_client's cleanup would wait 0.1 s for it, after every submission)."""
    import zmq

    used = spare.km
    closed = []
    close = zmq.Socket.close

    def recording(self, linger=None):
        if not self.closed and self.context is used.context:
            closed.append(self.linger if linger is None else linger)
        return close(self, linger=linger)

    monkeypatch.setattr(zmq.Socket, "close", recording)
    run(pooled(spare), tmp_path)
    assert used.context.closed, "the used kernel's sockets are closed"
    assert closed and not any(closed), f"the ended kernel's sockets were closed with a linger (ms): {closed}"


def test_a_dead_spare_is_replaced_by_a_fresh_kernel(tmp_path, spare):
    """A spare kernel that died while waiting is not used: the notebook runs in a new kernel."""
    dead, dead_file = spare.km.provisioner.process.pid, spare.km.connection_file
    os.kill(dead, signal.SIGKILL)
    psutil.Process(dead).wait(timeout=10)
    outputs = run(pooled(spare), tmp_path)
    assert outputs[1].strip() == "<folder>"
    assert outputs[-1].strip() != dead_file
    assert spare.km is not None and spare.km.has_kernel


def test_spare_is_used_with_the_course_config(tmp_path, spare):
    """As nbgrader makes it (Execute's own kernel_manager_class=AsyncKernelManager, the sandbox
    from the config's NotebookClient section), the spare kernel is used; and after a notebook
    that got a fresh kernel (nbclient then adds its history argument to extra_arguments in
    place) the next spare is used too."""
    from traitlets.config import Config

    config = Config()
    config.NotebookClient.kernel_manager_class = SandboxedKernelManager
    config.Execute.timeout = 60

    def run_as_nbgrader(folder):
        with autograding():
            nb, _ = pooled(spare)(config=config).preprocess(probe_notebook(), {"metadata": {"path": str(folder)}})
        return "".join(o.text for o in nb.cells[-1].outputs).strip()

    for name in ("spare", "dead-spare", "next-spare"):
        (tmp_path / name).mkdir()
    waiting = spare.km.connection_file
    assert run_as_nbgrader(tmp_path / "spare") == waiting, "the spare kernel was used"
    spare.ready(kernel_pool.PRELOAD_TIMEOUT)
    dead, dead_file = spare.km.provisioner.process.pid, spare.km.connection_file
    os.kill(dead, signal.SIGKILL)
    psutil.Process(dead).wait(timeout=10)
    assert run_as_nbgrader(tmp_path / "dead-spare") != dead_file, "a dead spare is never used"
    waiting = spare.km.connection_file
    assert spare.extra_arguments == [], "the history argument nbclient added is not the notebook's"
    assert run_as_nbgrader(tmp_path / "next-spare") == waiting, "the spare kernel started after a fresh one was used"


def test_worker_config_swaps_only_execute():
    """The grading workers replace nbgrader's Execute and keep every other preprocessor in place."""
    from traitlets.config import Config

    from course_grade.nbgrader_ext.limit_output_size import LimitOutputSize

    spare = kernel_pool.Spare()
    try:
        config = Config()
        config.Autograde.autograde_preprocessors = [Execute, LimitOutputSize]
        made = pooled_execute.use_spare_kernels(config, spare)
        assert issubclass(made, pooled_execute.PooledExecute) and made.spare is spare
        assert config.Autograde.autograde_preprocessors == [made, LimitOutputSize]
        default = Config()
        other = pooled_execute.use_spare_kernels(default, spare)
        assert other in default.Autograde.autograde_preprocessors
        assert Execute not in default.Autograde.autograde_preprocessors
        assert pooled_execute.PooledExecute.spare is None, "the base class stays unbound (stock kernels)"
    finally:
        spare.close()


def test_stop_waits_for_processes_to_end_and_counts_a_zombie_as_ended():
    """processes.running, which stop() uses on a sandbox's processes: a process still running
    after the wait is returned (stop then kills it); one that ended, even unreaped, is not."""
    import subprocess
    import time

    child = subprocess.Popen(["sleep", "30"])
    try:
        proc = psutil.Process(child.pid)
        start = time.monotonic()
        assert processes.running([proc], within=0.2) == [proc], "a running process is reported"
        assert time.monotonic() - start >= 0.2, "it waited before saying so"
        os.kill(child.pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while proc.status() != psutil.STATUS_ZOMBIE and time.monotonic() < deadline:
            time.sleep(0.01)
        assert proc.status() == psutil.STATUS_ZOMBIE  # killed, not yet reaped by us, its parent
        start = time.monotonic()
        assert processes.running([proc], within=5) == [], "a zombie has ended"
        assert time.monotonic() - start < 1, "a zombie is not waited for"
    finally:
        child.kill()
        child.wait()
    assert processes.running([proc], within=1) == [], "a reaped process has ended"
