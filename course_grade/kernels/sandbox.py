"""Every kernel that runs a submission runs in a sandbox (Debian's `bwrap`, bubblewrap).

`SandboxedKernelManager` is a jupyter_client kernel manager; `nbgrader_config.py` makes it
the kernel manager of nbclient (so of nbgrader's Execute preprocessor), so stock
`nbgrader autograde`, `nbgrader validate`, the grading command and self-grading all start
their kernels through it. Each kernel gets a sandbox of its own:

- its own PID namespace (`--unshare-pid --die-with-parent`): everything the submission
  starts, detached or not, dies with the kernel;
- its own network namespace: only its own loopback; the client reaches the kernel over the
  `ipc` transport (Unix sockets in a private folder bound into the sandbox);
- a filesystem built from an allow-list: the system (`/usr`, `/etc`, ...), the Python
  environment and the `autograder` package read-only. The working folder, at its own path, is
  a memory-backed folder of `scratch` bytes holding the files the grader put there read-only,
  and `/tmp` another: what the kernel writes stays in the sandbox and goes with it, so nothing
  the grader later reads, writes or copies on the host was made by the submission. Nothing
  else exists inside: not the course folder (source/, gradebook.db, other students' folders),
  not the exchange, not /root or /home. Every folder above a mount point exists inside, mode
  0755 (bwrap would make a missing one 0700, owned by root, which the kernel's user could not
  traverse), and no folder that holds the working folder is bound;
- an unprivileged user with no capabilities. Grading as root, bwrap sets the sandbox up as
  root and `setpriv` then becomes a fresh uid (`uid_base` + random, one per sandbox: root is
  exempt from RLIMIT_NPROC, and a uid shared by two sandboxes would share their count).
  Grading as another user, bwrap runs unprivileged in a user namespace of its own (the count
  is then per namespace);
- a pre-started (spare) kernel learns its folder only when it is taken: `admit()` mounts the
  same memory-backed folder with the grader's files into its running sandbox (open_tree +
  setns + mount + move_mount, in a helper process);
- limits (`prlimit`): address space (`memory` less both scratch folders), processes
  (`processes`), file size (`file_size`) and CPU seconds (`cpu_seconds`).

Where the sandbox cannot start (no bwrap, user namespaces refused, or `COURSE_SANDBOX=off`
in the environment), kernels start as usual and ONE line says which protections are missing
(`status()` gives it; the grading command records it in grading-report.csv).
"""
from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import os
import random
import shutil
import stat
import subprocess
import sys
import tempfile
import time

from jupyter_client.manager import AsyncKernelManager
from traitlets import Bool, Integer

# Every grading kernel, sandboxed or not, installs the runtime guard (autograder/guard.py: an
# audit hook) before the first cell; it binds no name in the notebook's namespace.
GUARD = "--IPKernelApp.exec_lines=__import__('autograder.guard').guard.install()"
SWITCH = "COURSE_SANDBOX"  # COURSE_SANDBOX=off forces the fallback (kernels start unsandboxed)
# why the sandbox cannot start (`unavailable()`), besides bwrap's own failure
SWITCHED_OFF = f"{SWITCH}=off"
NO_BWRAP = "bwrap is not installed (apt-get install bubblewrap)"
NO_UTIL_LINUX = "prlimit/setpriv (util-linux) are not installed"
GIB, MIB = 1 << 30, 1 << 20
MISSING = ("no PID namespace (processes a submission starts can outlive grading), open network, "
           "the whole filesystem readable and writable as the grader's user (course folder, "
           "gradebook and hidden tests included), no memory/process/file-size/CPU limits")
UID_BASE = 2_000_000_000  # sandboxes run as uids from here (when grading runs as root)
SYSTEM = ("/usr", "/etc", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
log = logging.getLogger("course_grade.kernels.sandbox")


class SandboxUnavailable(RuntimeError):
    """The sandbox cannot start here; the message says why."""


@functools.cache
def _python_paths(python: str) -> tuple[tuple[str, ...], str | None]:
    """What the kernel's interpreter reads: its prefixes and sys.path folders, and the folder
    of the `autograder` package (an editable install maps it into the course repository)."""
    code = ("import sys, json, importlib.util as u\n"
            "s = u.find_spec('autograder')\n"
            "loc = list(s.submodule_search_locations or [])[:1] if s else []\n"
            "print(json.dumps([sys.prefix, sys.base_prefix, sys.exec_prefix, *sys.path, *loc]))")
    try:
        out = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=60, cwd="/")
        found = json.loads(out.stdout.strip().splitlines()[-1])
    except (OSError, ValueError, IndexError, subprocess.TimeoutExpired):
        found = [sys.prefix, sys.base_prefix, *sys.path]
    package = None
    if len(found) > 3 and found[-1].endswith("autograder"):
        package = os.path.realpath(found.pop())
    return tuple(found), package


def _readable(python: str) -> list[str]:
    """Folders bound read-only: the interpreter's, never one that holds a course."""
    found, package = _python_paths(python)
    real = os.path.realpath(python)
    paths = [os.path.dirname(os.path.dirname(real)), *found]
    if package:
        paths.append(package)
    keep: list[str] = []
    for p in sorted({os.path.realpath(p) for p in paths if p and os.path.isabs(p) and os.path.isdir(p)}, key=len):
        if p == "/" or any(p == s or p.startswith(s + "/") for s in SYSTEM + tuple(keep)):
            continue
        if p != package and (os.path.exists(os.path.join(p, "nbgrader_config.py"))
                             or os.path.exists(os.path.join(p, "gradebook.db"))):
            continue  # a course root on sys.path (e.g. a test runner's): never bind it whole
        keep.append(p)
    return keep


def _sandbox_uid(base: int) -> int | None:
    """The uid a sandbox runs as when grading runs as root: a fresh unprivileged uid per
    sandbox (RLIMIT_NPROC counts a uid's processes, so sandboxes never share the count).
    None when we are not root: the sandbox then runs as us, in a user namespace of its own."""
    if os.geteuid() != 0:
        return None
    return base + random.SystemRandom().randrange(1_000_000)


def _under(path: str, folders) -> bool:
    return any(path == f or path.startswith(f.rstrip("/") + "/") for f in folders)


def _entries(workdir: str) -> list[str]:
    """The regular files and folders already in the working folder (nbgrader's copy of the
    submission), never following a link: each is shown read-only inside the sandbox."""
    found = []
    for top, dirs, files in os.walk(workdir):
        for name in dirs + files:
            path = os.path.join(top, name)
            mode = os.lstat(path).st_mode
            if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
                found.append(path)
        dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(top, d))]
    return found


def bwrap_command(workdir: str, private: str, python: str = sys.executable, *, uid: int | None = None,
                  memory: int = 4 * GIB, processes: int = 512, file_size: int = 100 * MIB,
                  cpu_seconds: int = 600, scratch: int = 256 * MIB, writable: tuple[str, ...] = ()) -> list[str]:
    """The command prefix that runs a command in a sandbox whose working folder is `workdir`
    and `private` (the kernel's connection folder) writable. As root (`uid` given) bwrap sets
    the sandbox up with root's rights and `setpriv` then becomes `uid` with no capabilities;
    otherwise bwrap runs unprivileged in a user namespace.

    The working folder inside is a tmpfs of `scratch` bytes holding the files already there,
    read-only: what the kernel writes (test.db, links, anything) stays in the sandbox and is
    gone with it, so nothing the grader later reads or writes on the host was made by the
    submission. /tmp is another such tmpfs; the address space gets `memory` less both, so
    the three together stay within `memory`. Files of the working folder named in `writable`
    are bound writable instead (the judge's databases: the kernel writes into them, and
    cannot replace them)."""
    tools = {name: shutil.which(name) for name in ("bwrap", "prlimit", "setpriv")}
    if tools["bwrap"] is None:
        raise SandboxUnavailable(NO_BWRAP)
    if tools["prlimit"] is None or (uid is not None and tools["setpriv"] is None):
        raise SandboxUnavailable(NO_UTIL_LINUX)
    if memory <= 2 * scratch:
        raise ValueError(f"the sandbox's memory ({memory} bytes) must exceed twice its scratch size ({scratch})")
    workdir, private = os.path.realpath(workdir), os.path.realpath(private)
    cmd = [tools["bwrap"]]
    cmd += ["--unshare-user"] if uid is None else ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    cmd += ["--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
            "--hostname", "sandbox", "--die-with-parent", "--new-session",
            "--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--size", str(scratch), "--tmpfs", "/tmp"]
    for path in SYSTEM:
        if os.path.islink(path):
            cmd += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            cmd += ["--ro-bind", path, path]
    # Folders that exist inside: host folders bound there (with everything below them) and
    # folders made here. Any other parent of a mount point is made here, mode 0755: bwrap
    # would make it itself as root with mode 0700, which the kernel's uid cannot traverse.
    bound: list[str] = list(SYSTEM)
    made: list[str] = ["/", "/tmp"]

    def parents(path: str) -> None:
        missing, parent = [], os.path.dirname(path)
        while parent not in made and not _under(parent, bound):
            missing.append(parent)
            parent = os.path.dirname(parent)
        for folder in reversed(missing):
            cmd.extend(["--perms", "0755", "--dir", folder])
            made.append(folder)

    def bind(option: str, path: str) -> None:
        parents(path)
        cmd.extend([option, path, path])
        bound.append(path)

    for path in _readable(python):
        if not _under(workdir, [path]) and not _under(private, [path]):  # never a folder holding the course
            bind("--ro-bind", path)
    bind("--bind", private)
    if workdir != private:
        parents(workdir)
        cmd.extend(["--perms", "0777", "--size", str(scratch), "--tmpfs", workdir])
        made.append(workdir)
        for path in _entries(workdir):
            if os.path.isdir(path) and not os.path.islink(path):
                cmd.extend(["--perms", "0777", "--dir", path])
            else:
                cmd.extend(["--bind" if path in writable else "--ro-bind", path, path])
    cmd += ["--chdir", workdir, "--setenv", "HOME", "/tmp", "--setenv", "TMPDIR", "/tmp",
            # the kernel's parent inside is bwrap's init (pid 1): ipykernel must not watch it
            # (bwrap --die-with-parent ends the sandbox with its parent instead)
            "--setenv", "JPY_PARENT_PID", "1", "--"]
    if uid is not None:
        cmd += [tools["setpriv"], f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--inh-caps=-all",
                "--bounding-set=-all", "--"]
    cmd += [tools["prlimit"], f"--as={memory - 2 * scratch}", f"--nproc={processes}", f"--fsize={file_size}",
            f"--cpu={cpu_seconds}", "--"]
    return cmd


def _hand_over(path: str, uid: int | None) -> None:
    """Make `path` (and what it holds) writable by the sandbox's user."""
    if uid is None:
        return
    for folder, _dirs, files in os.walk(path):
        os.chown(folder, uid, uid)
        for name in files:
            with contextlib.suppress(OSError):
                os.chown(os.path.join(folder, name), uid, uid, follow_symlinks=False)


@functools.cache
def _probe() -> str | None:
    """None when a sandbox starts here, else why not (one short sentence)."""
    if os.environ.get(SWITCH, "").lower() in ("off", "0", "no", "false"):
        return SWITCHED_OFF
    private = tempfile.mkdtemp(prefix="sandbox-probe-")
    work = os.path.join(private, "work")
    uid = _sandbox_uid(UID_BASE)
    try:
        os.mkdir(work)
        _hand_over(private, uid)
        cmd = bwrap_command(work, private, uid=uid) + [
            sys.executable, "-c", f"open('test.db', 'w'); open({os.path.join(private, 'ok')!r}, 'w')"]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd="/")
        if done.returncode or not os.path.exists(os.path.join(private, "ok")):
            return f"bwrap could not start a sandbox ({(done.stderr.strip() or f'exit {done.returncode}')[:160]})"
        return None
    except SandboxUnavailable as exc:
        return str(exc)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"bwrap could not start a sandbox ({exc})"
    finally:
        shutil.rmtree(private, ignore_errors=True)


def unavailable() -> str | None:
    """None when a sandbox starts here, else why not: SWITCHED_OFF, NO_BWRAP, NO_UTIL_LINUX, or
    bwrap's own failure (checked once per process)."""
    return _probe()


def status() -> str:
    """'on', or the one line saying the sandbox is off, why, and which protections are missing."""
    why = _probe()
    return "on" if why is None else f"OFF ({why}): kernels run unsandboxed: {MISSING}"


_warned = False


def _warn_once(logger) -> None:
    global _warned
    if not _warned:
        _warned = True
        (logger or log).warning("course sandbox %s", status())


class SandboxedKernelManager(AsyncKernelManager):
    """An async kernel manager whose kernel runs in its own bwrap sandbox (module docstring)."""

    enabled = Bool(True, config=True, help="Run kernels in the sandbox "
                   f"(the environment variable {SWITCH}=off also turns it off).")
    memory = Integer(4 * GIB, config=True, help="RLIMIT_AS of the kernel and what it starts (bytes).")
    processes = Integer(512, config=True, help="RLIMIT_NPROC inside the sandbox (processes and threads).")
    file_size = Integer(100 * MIB, config=True, help="RLIMIT_FSIZE: the largest file a submission can write (bytes).")
    cpu_seconds = Integer(600, config=True, help="RLIMIT_CPU of each process in the sandbox (seconds).")
    scratch = Integer(256 * MIB, config=True, help="Size of each of the sandbox's two memory-backed folders, /tmp and "
                      "the working folder (bytes); the address space gets `memory` less both.")
    guard = Bool(True, config=True, help="Install the runtime guard (autograder/guard.py) before the first cell; "
                 "off only to test the sandbox itself.")
    uid_base = Integer(UID_BASE, config=True, help="Grading as root, each sandbox runs as a fresh uid "
                       "from uid_base to uid_base + 10**6.")

    sandboxed = False  # whether the running kernel is in a sandbox
    zygote = None  # a course_grade.kernels.zygote.Zygote to fork the kernel from (a grading worker's), or None
    _forked: dict | None = None  # what the zygote needs to start the kernel being launched
    forked = False  # whether the running kernel was forked from the zygote
    uid: int | None = None  # the uid it runs as (grading as root), else None
    _private: str | None = None
    writable: tuple[str, ...] = ()  # files of the working folder bound writable (bwrap_command)

    async def _async_pre_start_kernel(self, **kw):
        self.sandboxed = bool(self.enabled) and _probe() is None
        if not self.sandboxed:
            _warn_once(self.log)
            cmd, kw = await super()._async_pre_start_kernel(**kw)
            return cmd + ([GUARD] if self.guard else []), kw
        if self._private is None:  # one private folder per kernel: connection file and sockets
            self._private = tempfile.mkdtemp(prefix="kernel-sandbox-")
            self.transport = "ipc"
            self.connection_file = os.path.join(self._private, "kernel.json")
            self.ip = os.path.join(self._private, "kernel-ipc")
            self.uid = _sandbox_uid(self.uid_base)
        workdir = os.path.realpath(kw.get("cwd") or os.getcwd())
        cmd, kw = await super()._async_pre_start_kernel(**kw)
        _hand_over(self._private, self.uid)
        self.kernel_spec.interrupt_mode = "message"  # a signal would reach bwrap, not the kernel
        python = cmd[0] if os.path.isabs(cmd[0]) else (shutil.which(cmd[0]) or sys.executable)
        # the interpreter by its folder's real path (a course reached through a link is bound
        # at its real path), keeping its own name: a venv's python is a link to the base one
        python = os.path.join(os.path.realpath(os.path.dirname(python)), os.path.basename(python))
        prefix = bwrap_command(workdir, self._private, python, uid=self.uid, memory=self.memory,
                               processes=self.processes, file_size=self.file_size, cpu_seconds=self.cpu_seconds,
                               scratch=self.scratch, writable=self.writable)
        kernel = [python, *cmd[1:]] + ([GUARD] if self.guard else [])
        self._forked, self.forked = None, False
        setenv = {prefix[i + 1]: prefix[i + 2]
                  for i, arg in enumerate(prefix[:prefix.index("--")]) if arg == "--setenv"}
        env = {**(kw.get("env") or os.environ), **setenv, "PWD": workdir}  # inside, as bwrap --chdir sets it
        if self.zygote is not None and self.uid is not None and self.zygote.fits(kernel, env):
            # the sandbox holds a placeholder; the zygote forks the kernel into it (_async_launch_kernel)
            self.forked = True
            self._forked = {"cwd": workdir, "argv": kernel[3:], "env": env, "uid": self.uid,
                            "limits": {"as": self.memory - 2 * self.scratch, "nproc": self.processes,
                                       "fsize": self.file_size, "cpu": self.cpu_seconds}}
            return prefix + [shutil.which("sleep") or "/bin/sleep", "infinity"], kw
        return prefix + kernel, kw

    async def _async_launch_kernel(self, kernel_cmd, **kw):
        await super()._async_launch_kernel(kernel_cmd, **kw)
        forked, self._forked = self._forked, None
        if forked is not None:
            holder = await self._holder()
            await asyncio.get_running_loop().run_in_executor(None, lambda: self.zygote.spawn(holder, **forked))

    async def _async_cleanup_resources(self, restart: bool = False) -> None:
        await super()._async_cleanup_resources(restart=restart)
        if restart or self._private is None:
            return
        shutil.rmtree(self._private, ignore_errors=True)  # the only host folder the kernel could write
        self._private = None

    # AsyncKernelManager binds these names to KernelManager's coroutines: point them at ours
    pre_start_kernel = _async_pre_start_kernel
    _launch_kernel = _async_launch_kernel
    cleanup_resources = _async_cleanup_resources

    def sandbox_pid(self) -> int | None:
        """A process inside the running sandbox (for admit), or None."""
        import psutil

        if not self.sandboxed or self.provisioner is None or getattr(self.provisioner, "process", None) is None:
            return None
        try:
            mine = os.readlink("/proc/self/ns/mnt")
            for child in psutil.Process(self.provisioner.process.pid).children(recursive=True):
                try:
                    if os.readlink(f"/proc/{child.pid}/ns/mnt") != mine:
                        return child.pid
                except OSError:
                    continue
        except psutil.Error:
            return None
        return None

    async def _holder(self, timeout: float = 30.0) -> tuple[int, int]:
        """The placeholder process of the sandbox just launched, once bwrap has set it up: its
        pid and start time, read while it is known to be that process."""
        import psutil

        from course_grade.kernels.zygote import start_ticks

        deadline = time.monotonic() + timeout
        bwrap = self.provisioner.process
        while time.monotonic() < deadline and bwrap.poll() is None:
            with contextlib.suppress(psutil.Error, OSError, ValueError, IndexError):
                for child in psutil.Process(bwrap.pid).children(recursive=True):
                    if child.name() == "sleep":  # bwrap has run it: the sandbox is complete
                        started = start_ticks(child.pid)
                        if child.is_running():  # psutil: still the process it listed (same start time)
                            return child.pid, started
            await asyncio.sleep(0.005)
        raise RuntimeError("the sandbox's placeholder did not start")

    def admit(self, folder: str) -> None:
        """Make `folder` (a submission's working folder) appear, writable, inside this running
        sandbox at the same path: a pre-started kernel learns its folder only when it is taken.
        Raises OSError when that is impossible (the caller then starts a fresh kernel)."""
        if not self.sandboxed:
            return
        pid = self.sandbox_pid()
        if pid is None:
            raise OSError("the sandbox is not running")
        folder = os.path.realpath(folder)
        done = subprocess.run([sys.executable, "-S", "-c", _INJECT, str(pid), folder, str(self.scratch),
                               *_entries(folder)],
                              capture_output=True, text=True, timeout=30)
        if done.returncode:
            raise OSError(f"could not bind {folder} into the sandbox: {done.stderr.strip()[-300:]}")


# Run in a single-threaded helper (setns refuses a threaded process): clone each file already in
# the folder here (never following a link) and make the clone read-only, enter the sandbox's
# mount namespace, mount a tmpfs of the given size at the folder's path there, and attach the
# clones in it: the kernel sees the folder's files and writes only into its own memory.
_INJECT = r"""
import ctypes, os, stat, sys
pid, folder, size, entries = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4:]
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
def ok(r, what):
    if r < 0:
        e = ctypes.get_errno()
        raise SystemExit(f"{what}: {os.strerror(e)}")
    return r
AT_FDCWD, OPEN_TREE_CLONE, O_CLOEXEC, MOVE_MOUNT_F_EMPTY_PATH = -100, 1, 0o2000000, 4
AT_SYMLINK_NOFOLLOW, AT_EMPTY_PATH, MOUNT_ATTR_RDONLY, MS_NOSUID, MS_NODEV = 0x100, 0x1000, 1, 2, 4
class Attr(ctypes.Structure):
    _fields_ = [("set", ctypes.c_uint64), ("clr", ctypes.c_uint64), ("prop", ctypes.c_uint64),
                ("userns", ctypes.c_uint64)]
trees = {}
for path in entries:
    if stat.S_ISREG(os.lstat(path).st_mode):
        tree = ok(libc.syscall(428, ctypes.c_int(AT_FDCWD), path.encode(),
                               ctypes.c_uint(OPEN_TREE_CLONE | O_CLOEXEC | AT_SYMLINK_NOFOLLOW)), "open_tree")
        attr = Attr(MOUNT_ATTR_RDONLY, 0, 0, 0)
        ok(libc.syscall(442, ctypes.c_int(tree), b"", ctypes.c_uint(AT_EMPTY_PATH), ctypes.byref(attr),
                        ctypes.c_size_t(ctypes.sizeof(attr))), "mount_setattr")
        trees[path] = tree
ns = os.open(f"/proc/{pid}/ns/mnt", os.O_RDONLY)
ok(libc.setns(ns, 0x00020000), "setns")
os.umask(0o022)
os.makedirs(folder, exist_ok=True)
ok(libc.mount(b"tmpfs", folder.encode(), b"tmpfs", ctypes.c_ulong(MS_NOSUID | MS_NODEV),
              f"size={size},mode=0777".encode()), "mount")
for path in entries:
    if path not in trees:
        os.mkdir(path, 0o777)
        os.chmod(path, 0o777)
        continue
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444))
    ok(libc.syscall(429, ctypes.c_int(trees[path]), b"", ctypes.c_int(AT_FDCWD), path.encode(),
                    ctypes.c_uint(MOVE_MOUNT_F_EMPTY_PATH)), "move_mount")
"""
