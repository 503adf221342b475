"""Kernels forked from a zygote (course_grade/kernels/zygote.py) against kernels bwrap booted: the same
sandbox seen from inside (namespaces, uid, capabilities, no_new_privs, limits, session,
environment, open files), the sandbox ends with the kernel and the kernel with the sandbox,
and a zygote that cannot fork gives kernels booted the usual way.

Forking needs grading to run as root (CI does, and fails these tests otherwise); elsewhere they
skip, saying so."""
from __future__ import annotations

import os
import signal
import time
import uuid

import psutil
import pytest
from nbformat.v4 import new_code_cell, new_notebook
from nbgrader.utils import setenv

from course_grade.kernels import sandbox
from course_grade.kernels import spares as kernel_pool
from course_grade.kernels.sandbox import SandboxedKernelManager
from course_grade.kernels.zygote import ForkRefused, Zygote
from course_grade.nbgrader_ext import pooled_execute

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", autouse=True)
def root_and_bwrap():
    if os.geteuid() != 0:  # CI runs as root: there this is a failure, never a skip
        stop = pytest.fail if os.environ.get("CI") else pytest.skip
        stop("kernels are forked from a zygote only when grading runs as root")
    why = sandbox._probe()
    if why is not None:
        if os.environ.get("CI"):
            pytest.fail(f"the sandbox cannot start under CI: {why}")
        pytest.skip(f"the sandbox cannot start here: {why}")


# What the kernel sees of its sandbox: each line is compared between a forked and a booted kernel.
PROBE = r"""
import os, resource as r
status = dict(line.split(':\t', 1) for line in open('/proc/self/status').read().splitlines() if ':\t' in line)
print('ids', os.getuid() >= 2_000_000_000, os.getuid() == os.getgid() == os.geteuid() == os.getegid(), os.getgroups())
print('caps', {k: status[k].strip() for k in ('CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb')})
print('no_new_privs', status['NoNewPrivs'].strip())
print('limits', [r.getrlimit(k) for k in (r.RLIMIT_AS, r.RLIMIT_NPROC, r.RLIMIT_FSIZE, r.RLIMIT_CPU)])
try:
    open('/dev/tty'); print('controlling terminal', True)
except OSError:
    print('controlling terminal', False, 'pid small', os.getpid() < 10)
print('cwd', os.getcwd())
print('env', sorted((k, v) for k, v in os.environ.items() if k not in ('JPY_SESSION_NAME',)))
fds = []
for fd in os.listdir('/proc/self/fd'):
    try:
        fds.append(os.readlink(f'/proc/self/fd/{fd}').split(':')[0])
    except OSError:
        pass  # the listing's own descriptor
print('open files and pipes', sorted(f for f in fds if f not in ('socket', 'anon_inode')))  # ZMQ's vary in number
print('processes', sorted(open(f'/proc/{p}/comm').read().strip() for p in os.listdir('/proc')
                          if p.isdigit() and int(p) != os.getpid()))
print('hostname', os.uname().nodename)
"""


def probe(spare: kernel_pool.Spare, folder) -> list[str]:
    pooled = type("PooledExecute", (pooled_execute.PooledExecute,), {"spare": spare})
    nb = new_notebook(cells=[new_code_cell(PROBE)],
                      metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    with setenv(NBGRADER_EXECUTION="autograde"):  # as nbgrader autograde runs it
        executor = pooled(timeout=60, kernel_manager_class=SandboxedKernelManager)
        nb, _ = executor.preprocess(nb, {"metadata": {"path": str(folder)}})
    outputs = nb.cells[0].outputs
    assert all(o.output_type == "stream" for o in outputs), outputs
    return "".join(o.text for o in outputs).replace(str(folder), "<folder>").replace(spare.home,
                                                                                     "<spare's folder>").splitlines()


def spare_of(kind: str) -> kernel_pool.Spare:
    spare = kernel_pool.Spare(fork=kind == "forked")
    spare.start()
    assert spare.km is not None and spare.km.forked == (kind == "forked")
    return spare


def test_a_forked_kernel_has_the_sandbox_of_a_booted_one(tmp_path):
    seen = {}
    for kind in ("forked", "booted"):
        (tmp_path / kind).mkdir()
        spare = spare_of(kind)
        try:
            seen[kind] = probe(spare, tmp_path / kind)
        finally:
            spare.close()
    forked, booted = seen["forked"], seen["booted"]
    # the one difference: the sandbox's placeholder, which a booted kernel replaces, is there
    assert forked[8] == "processes ['bwrap', 'sleep']" and booted[8] == "processes ['bwrap']", (forked[8], booted[8])
    forked[8] = booted[8]
    assert forked == booted, "\n".join(f"{a}\n  vs {b}" for a, b in zip(forked, booted, strict=False) if a != b)
    assert forked[0] == "ids True True []"
    zero = "0000000000000000"
    assert forked[1] == "caps " + str({k: zero for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")})
    assert forked[2] == "no_new_privs 1"
    assert forked[4] == "controlling terminal False pid small True" and forked[5] == "cwd <folder>"


def test_a_forked_kernel_is_in_every_namespace_of_its_sandbox():
    spare = spare_of("forked")
    try:
        spare.ready(kernel_pool.PRELOAD_TIMEOUT)
        kernel, bwrap = _kernel_and_sandbox(spare.km)
        init = next(p for p in bwrap.children()
                    if os.readlink(f"/proc/{p.pid}/ns/mnt") != os.readlink("/proc/self/ns/mnt"))
        for ns in ("pid", "net", "ipc", "uts", "mnt", "cgroup"):
            theirs = os.readlink(f"/proc/{kernel.pid}/ns/{ns}")
            assert theirs == os.readlink(f"/proc/{init.pid}/ns/{ns}"), (
                f"the kernel is not in its sandbox's {ns} namespace")
            if ns != "cgroup":
                assert theirs != os.readlink(f"/proc/self/ns/{ns}"), f"the kernel shares the grader's {ns} namespace"
    finally:
        spare.close()


def _kernel_and_sandbox(km: SandboxedKernelManager) -> tuple[psutil.Process, psutil.Process]:
    """The forked kernel (a grandchild of the zygote) and the sandbox's bwrap process."""
    bwrap = psutil.Process(km.provisioner.process.pid)
    zygote = psutil.Process(km.zygote.process.pid)
    kernels = [p for p in zygote.children(recursive=True) if p.ppid() != zygote.pid]
    assert len(kernels) == 1, kernels
    return kernels[0], bwrap


def _zombies(parent: psutil.Process) -> list[psutil.Process]:
    """`parent`'s children that have exited and wait to be reaped (one reaped meanwhile is not)."""
    found = []
    for child in parent.children():
        try:
            if child.status() == psutil.STATUS_ZOMBIE:
                found.append(child)
        except psutil.NoSuchProcess:
            continue
    return found


def test_the_sandbox_ends_with_the_forked_kernel_and_what_it_started(tmp_path):
    """A notebook leaves a detached process behind; once the notebook is done, its kernel, that
    process and the sandbox are gone, without jupyter_client's wait for a kernel that ignores
    a shutdown request."""
    marker = f"{2000 + uuid.uuid4().int % 1000}.{uuid.uuid4().int % 10**6}"
    from jupyter_client.blocking import BlockingKernelClient
    from traitlets.config import Config

    config = Config()
    config.SandboxedKernelManager.guard = False  # start a process as a submission could without the runtime guard
    spare = kernel_pool.Spare()
    try:
        spare.start(manager_class=SandboxedKernelManager, config=config)
        spare.ready(kernel_pool.PRELOAD_TIMEOUT)
        km = spare.km
        assert km.forked
        kernel, bwrap = _kernel_and_sandbox(km)
        client = BlockingKernelClient()
        client.load_connection_info(km.get_connection_info())
        client.start_channels()
        client.wait_for_ready(timeout=60)
        reply = client.execute_interactive(
            f"import subprocess; subprocess.Popen(['sleep', '{marker}'], start_new_session=True)", timeout=60)
        assert reply["content"]["status"] == "ok", reply["content"]
        assert [p for p in psutil.process_iter(["cmdline"]) if marker in " ".join(p.info["cmdline"] or [])]
        client.stop_channels()
        start = time.monotonic()
        kernel_pool.stop(km)
        psutil.wait_procs([kernel, bwrap], timeout=10)
        assert time.monotonic() - start < 4, "shut down without waiting out jupyter_client's grace period"
        assert not kernel.is_running() and not bwrap.is_running()
        time.sleep(0.2)
        assert not [p for p in psutil.process_iter(["cmdline"]) if marker in " ".join(p.info["cmdline"] or [])]
        zygote = psutil.Process(spare.zygote.process.pid)
        deadline = time.monotonic() + 10
        while _zombies(zygote) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _zombies(zygote), "the zygote reaps its children"
    finally:
        spare.km = None
        spare.close()


def test_killing_the_sandbox_kills_the_forked_kernel():
    """What a time limit does (the kernel manager kills bwrap): the kernel dies with it."""
    spare = kernel_pool.Spare()
    try:
        spare.start()
        spare.ready(kernel_pool.PRELOAD_TIMEOUT)
        kernel, bwrap = _kernel_and_sandbox(spare.km)
        os.kill(bwrap.pid, signal.SIGKILL)
        gone, alive = psutil.wait_procs([kernel], timeout=10)
        assert not alive, "the forked kernel outlived its sandbox"
    finally:
        spare.close()


def test_a_zygote_that_cannot_fork_gives_booted_kernels(tmp_path, monkeypatch):
    """A zygote that refuses (here: told so) three times in a row is closed, with one warning,
    and every kernel from then on boots the usual way; the notebook runs unharmed."""
    asked = []

    def refuse(self, *args, **kwargs):
        asked.append(1)
        raise ForkRefused("setns: Operation not permitted")

    monkeypatch.setattr(Zygote, "spawn", refuse)
    spare = kernel_pool.Spare()
    try:
        spare.start()
        assert spare.km is not None and not spare.km.forked and spare.forking is False
        assert len(asked) == kernel_pool.FORK_ATTEMPTS
        assert spare.zygote is not None and not spare.zygote.alive()
        out = probe(spare, tmp_path)
        assert out[5] == "cwd <folder>"
        assert spare.km is not None and not spare.km.forked
    finally:
        spare.close()


def test_the_zygote_refuses_a_holder_outside_a_sandbox(tmp_path):
    """A holder that shares our namespaces is no sandbox: nothing is forked into it. And a
    kernel of another environment (another venv on the same base python) is never forked from it."""
    zygote = Zygote(modules=())
    try:
        assert zygote.fits(["python", "-m", "ipykernel_launcher"], dict(os.environ)) is False  # another python
        import sys
        import venv

        other = tmp_path / "other-venv"  # another environment on the same base interpreter
        venv.create(other, with_pip=False, symlinks=True)
        assert os.path.realpath(other / "bin" / "python") == os.path.realpath(sys.executable)
        assert zygote.fits([str(other / "bin" / "python"), "-m", "ipykernel_launcher"], dict(os.environ)) is False

        assert zygote.fits([sys.executable, "-m", "ipykernel_launcher"], dict(os.environ))
        from course_grade.kernels.zygote import start_ticks

        me = (os.getpid(), start_ticks(os.getpid()))
        uid = sandbox.UID_BASE + 7
        with pytest.raises(ForkRefused, match="not in a sandbox"):
            zygote.spawn(me, cwd="/", argv=[], env={}, uid=uid, limits={})
        with pytest.raises(ForkRefused, match="is gone"):  # a pid now another process's (its start time differs)
            zygote.spawn((me[0], me[1] - 1), cwd="/", argv=[], env={}, uid=uid, limits={})
        for root in (None, 0):
            with pytest.raises(ForkRefused, match="never keeps root's rights"):
                zygote.spawn(me, cwd="/", argv=[], env={}, uid=root, limits={})
        assert zygote.alive(), "one refused kernel does not end the zygote"
    finally:
        zygote.close()
