"""The grading workers' pre-started kernels (course_grade/kernel_pool.py): a notebook run in a
spare kernel sees exactly what it would see in a kernel started for it, and no kernel ever
serves two submissions. Both kinds run in the course's sandbox (course_grade/sandbox.py), as
nbgrader_config.py has it; a kernel is told apart by its connection file (inside its own PID
namespace every kernel has the same small pid)."""
from __future__ import annotations

import os
import signal

import psutil
import pytest
from nbformat.v4 import new_code_cell, new_notebook
from nbgrader.preprocessors import Execute

from course_grade import kernel_pool
from course_grade.sandbox import SandboxedKernelManager

pytestmark = pytest.mark.slow

PROBE = [
    "import os, sys\nprint(os.getcwd())",
    # history and namespace as the notebook finds them: nothing left by the move
    "print(len(In), get_ipython().execution_count, sorted(k for k in globals() if not k.startswith('_')))",
    "print('' in sys.path, sys.path.index('') > 0)",
    "open('made-here.txt', 'w').write('x'); print(sorted(os.listdir('.')))",
    "from ipykernel.connect import get_connection_file\nprint(get_connection_file())",
]


def probe_notebook():
    return new_notebook(cells=[new_code_cell(src) for src in PROBE],
                        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})


def run(preprocessor_class, folder) -> list[str]:
    nb, _ = preprocessor_class(timeout=60, kernel_manager_class=SandboxedKernelManager).preprocess(probe_notebook(), {"metadata": {"path": str(folder)}})
    outputs = []
    for cell in nb.cells:
        assert all(o.output_type == "stream" and o.name == "stdout" for o in cell.outputs), cell.outputs
        outputs.append("".join(o.text for o in cell.outputs).replace(str(folder), "<folder>"))
    return outputs


@pytest.fixture
def spare():
    kernel_pool.SPARE = kernel_pool.Spare()
    kernel_pool.SPARE.start()
    yield kernel_pool.SPARE
    kernel_pool.SPARE.close()
    kernel_pool.SPARE = None


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_spare_kernel_looks_like_a_fresh_one(tmp_path, spare):
    """Working folder, history, namespace, sys.path and file writes match a kernel started in the folder."""
    (tmp_path / "stock").mkdir()
    (tmp_path / "pooled").mkdir()
    booted_in = spare.home
    stock = run(Execute, tmp_path / "stock")
    pooled = run(kernel_pool.PooledExecute, tmp_path / "pooled")
    assert pooled[:-1] == stock[:-1]
    assert pooled[0].strip() == "<folder>"
    # In holds '' and the two cells run so far: the move left no entry and took no count
    assert stock[1].strip() == "3 3 ['In', 'Out', 'exit', 'get_ipython', 'open', 'os', 'quit', 'sys']"
    assert (tmp_path / "pooled" / "made-here.txt").exists()
    assert os.listdir(booted_in) == [], "the spare kernel's own folder must stay empty"


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
        kernel = run(kernel_pool.PooledExecute, tmp_path / name)[-1].strip()
        assert kernel == spare_file, "the notebook ran in the spare kernel"
        assert not alive(spare_pid) and not any(alive(p.pid) for p in inside), "a used kernel must be shut down"
        assert spare.km is not None and spare.km is not waiting
        kernels.append(kernel)
    assert kernels[0] != kernels[1]


def test_a_dead_spare_is_replaced_by_a_fresh_kernel(tmp_path, spare):
    """A spare kernel that died while waiting is not used: the notebook runs in a new kernel."""
    dead, dead_file = spare.km.provisioner.process.pid, spare.km.connection_file
    os.kill(dead, signal.SIGKILL)
    psutil.Process(dead).wait(timeout=10)
    outputs = run(kernel_pool.PooledExecute, tmp_path)
    assert outputs[0].strip() == "<folder>"
    assert outputs[-1].strip() != dead_file
    assert spare.km is not None and spare.km.has_kernel


def test_worker_config_swaps_only_execute():
    """The grading workers replace nbgrader's Execute and keep every other preprocessor in place."""
    from traitlets.config import Config

    from course_grade.nbgrader_plugins import LimitOutputSize

    config = Config()
    config.Autograde.autograde_preprocessors = [Execute, LimitOutputSize]
    kernel_pool.use_spare_kernels(config)
    assert config.Autograde.autograde_preprocessors == [kernel_pool.PooledExecute, LimitOutputSize]
    default = Config()
    kernel_pool.use_spare_kernels(default)
    assert kernel_pool.PooledExecute in default.Autograde.autograde_preprocessors
    assert Execute not in default.Autograde.autograde_preprocessors
