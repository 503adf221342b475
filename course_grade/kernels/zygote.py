"""Kernels forked from a warmed-up process (a zygote), each in a sandbox of its own.

Booting an IPython kernel and importing the lesson's libraries costs about 0.6 s of CPU per
submission, more than anything else a grading worker does. A zygote pays it once: it is a
plain Python process that imports ipykernel, IPython and the libraries of `PRELOAD` (nothing
else: no course file, no key, no student's data ever reaches it) and then forks one child per
kernel. Each kernel still serves one submission and runs in a sandbox of its own:

1. the kernel manager (course_grade/kernels/sandbox.py) starts the sandbox as usual with bwrap, but
   with a placeholder (`sleep infinity`, the *holder*) where the kernel would be: namespaces,
   filesystem allow-list, uid and limits are bwrap's, built by the same `bwrap_command`;
2. the zygote forks; the child joins the holder's PID namespace and forks again; that
   grandchild joins its network, IPC, UTS, cgroup and mount namespaces (`setns`), starts a
   new session, sets the same rlimits as `prlimit`, sets no_new_privs, empties the capability
   bounding set, drops to the sandbox's uid with no groups (`setpriv`'s work; every
   capability goes with root), closes every inherited file descriptor, takes the kernel's
   environment, and only then becomes `python -m ipykernel_launcher` with the kernel's own
   arguments (runtime guard included). Its readiness is reported before any of the kernel's
   code runs; a step that fails ends it and the manager starts a kernel the usual way;
3. the middle child waits for the kernel and then ends the holder, so the sandbox, and
   everything the submission started in it, ends with the kernel, as with a kernel bwrap ran
   itself. Killing the sandbox (shutdown, time limit) kills the kernel with it.

What a forked kernel shares with its zygote is code and memory layout only: the zygote is
executed (not forked) by the worker, imports nothing but `modules`, and is sent only the
sandbox to enter, the uid, the limits and the kernel's arguments and environment (no key:
each kernel reads its connection file itself, inside its sandbox). A kernel can read that
much of it (its own memory, the zygote's stack frames below the kernel's), and the path of
this file in its command line; none of it is a secret.

Only a worker grading as root uses it (setns into bwrap's namespaces needs root's rights; a
sandbox built in a user namespace is entered the usual way). tests/course_grade/kernels/test_zygote.py checks every
protection from inside a forked kernel, and tests/course_grade/kernels/test_spares.py that it looks like a
fresh kernel to the notebook.

Run as a script (`python zygote.py MODULES_JSON ANSWERS_FD`) so that nothing of this package is among
the kernel's modules; `Zygote` below is the worker's side.
"""
from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import threading

# setns(2) namespace types, prctl(2) options
CLONE_NEWNS, CLONE_NEWCGROUP, CLONE_NEWUTS = 0x00020000, 0x02000000, 0x04000000
CLONE_NEWIPC, CLONE_NEWPID, CLONE_NEWNET = 0x08000000, 0x20000000, 0x40000000
JOINED = (("net", CLONE_NEWNET), ("ipc", CLONE_NEWIPC), ("uts", CLONE_NEWUTS), ("cgroup", CLONE_NEWCGROUP),
          ("mnt", CLONE_NEWNS))  # the mount namespace last: it changes what /proc shows
MUST_DIFFER = ("pid", "net", "ipc", "uts", "mnt")  # a holder that shares one of these with us is no sandbox
PR_SET_PDEATHSIG, PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS = 1, 24, 38
LAUNCHER = ("-m", "ipykernel_launcher")


class ForkRefused(RuntimeError):
    """The zygote could not start this kernel; the message says why (start one the usual way)."""


# --- the worker's side ------------------------------------------------------------------------

def _without_pwd(env: dict) -> dict:
    """An environment without PWD: each kernel gets its own folder's (the spares' and the
    judge's differ), and no library the zygote imports reads it."""
    return {k: v for k, v in env.items() if k != "PWD"}


def _environment(python: str) -> str:
    """The folder an interpreter runs from, links in its path resolved but not the interpreter
    itself: each virtual environment's python is a link to the same base interpreter, so only
    its own bin/ tells two environments apart."""
    import shutil

    found = shutil.which(python) or python
    return os.path.realpath(os.path.dirname(os.path.abspath(found)))


class Zygote:
    """One zygote process of a grading worker (`start`), asked for kernels (`spawn`)."""

    def __init__(self, python: str = sys.executable, modules=()):
        self.python = python  # as given: a virtual environment's python is a symlink that must stay one
        self.modules = tuple(modules)
        self.process: subprocess.Popen | None = None
        self.lock = threading.Lock()
        self.why = ""  # why it could not start, when it could not
        self.env: dict = {}  # the environment it was started with (the kernels')
        self.answers = None  # the pipe it answers on (its stdout and stderr are the worker's, as a kernel's)

    def start(self, env: dict) -> bool:
        """Start the zygote (it imports in the background) with the kernels' environment (a
        library may read it when imported); False, with `why`, if it cannot."""
        if os.geteuid() != 0:
            self.why = "grading does not run as root"
            return False
        try:
            answers, self.answers_fd = os.pipe()
            try:
                self.process = subprocess.Popen([self.python, os.path.abspath(__file__), json.dumps(self.modules),
                                                 str(self.answers_fd)], stdin=subprocess.PIPE, cwd="/", env=env,
                                                close_fds=True, pass_fds=(self.answers_fd,), start_new_session=True)
            finally:
                os.close(self.answers_fd)
            self.answers = os.fdopen(answers, "rb")
        except OSError as exc:
            self.why = f"could not start: {exc}"
            return False
        self.env = dict(env)
        return True

    def fits(self, kernel_cmd: list[str], env: dict) -> bool:
        """Whether this zygote can become the kernel `kernel_cmd` would start with `env`
        (started with that environment on first use)."""
        if len(kernel_cmd) < 3 or tuple(kernel_cmd[1:3]) != LAUNCHER \
                or _environment(kernel_cmd[0]) != _environment(self.python):
            return False
        if self.process is None and not self.why:
            self.start(env)
        return self.alive() and _without_pwd(env) == _without_pwd(self.env)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def spawn(self, holder: tuple[int, int], cwd: str, argv: list[str], env: dict, uid: int | None, limits: dict,
              timeout: float = 60.0) -> int:
        """Fork a kernel into the sandbox whose holder process is `holder` (its pid and start
        time: `start_ticks`); returns once it has entered the sandbox and dropped its rights (the
        pid, outside, of the child that waits for it). Raises ForkRefused."""
        holder, started = holder
        request = json.dumps({"holder": holder, "holder_started": started, "cwd": cwd, "argv": argv, "env": env,
                              "uid": uid, "limits": limits}).encode() + b"\n"
        with self.lock:
            if not self.alive():
                raise ForkRefused("the zygote is not running")
            try:
                self.process.stdin.write(request)
                self.process.stdin.flush()
                ready, _, _ = select.select([self.answers], [], [], timeout)
                line = self.answers.readline() if ready else b""
            except (OSError, ValueError) as exc:
                raise ForkRefused(f"the zygote stopped answering ({exc})") from None
        if not line:
            self.close()
            raise ForkRefused("the zygote did not answer")
        reply = json.loads(line)
        if not reply.get("ok"):
            raise ForkRefused(reply.get("why") or "the zygote refused")
        return int(reply["pid"])

    def close(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        try:
            process.stdin.close()  # the zygote ends when its input does
            process.wait(5)
        except (OSError, ValueError, subprocess.TimeoutExpired):
            process.kill()
            process.wait()
        finally:
            self.answers.close()


# --- the zygote process -----------------------------------------------------------------------

def _libc():
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)

    def call(name, *args):
        if getattr(libc, name)(*args) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"{name}{args}: {os.strerror(errno)}")
    return call


def start_ticks(pid: int) -> int:
    """When process `pid` started (clock ticks since boot): with the pid, it names one process."""
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[19])


def _holder(pid: int, started: int) -> int:
    """A pidfd of the holder, checked to be the process the worker found (not another that was
    given its pid since): the pidfd's process is alive after its start time was read."""
    pidfd = os.pidfd_open(pid)
    try:
        same = start_ticks(pid) == started
        signal.pidfd_send_signal(pidfd, 0)
    except (OSError, ValueError):
        same = False
    if not same:
        os.close(pidfd)
        raise ForkRefused(f"the sandbox's placeholder (pid {pid}) is gone")
    return pidfd


def _namespaces(pid: int, pidfd: int) -> dict[str, int]:
    """The holder's namespaces, opened (from outside: /proc is the host's here); still its
    own once opened (it is alive, so the pid is still its)."""
    fds = {}
    for name in ("pid",) + tuple(n for n, _ in JOINED):
        mine, theirs = os.readlink(f"/proc/self/ns/{name}"), os.readlink(f"/proc/{pid}/ns/{name}")
        if mine == theirs:
            if name in MUST_DIFFER:
                raise ForkRefused(f"the holder shares our {name} namespace: it is not in a sandbox")
            continue
        fds[name] = os.open(f"/proc/{pid}/ns/{name}", os.O_RDONLY | os.O_CLOEXEC)
    try:
        signal.pidfd_send_signal(pidfd, 0)
    except OSError:
        for fd in fds.values():
            os.close(fd)
        raise ForkRefused(f"the sandbox's placeholder (pid {pid}) ended while it was entered") from None
    return fds


def _become_kernel(req: dict, fds: dict[str, int], status: int) -> None:
    """In the grandchild (in the holder's PID namespace already): enter the rest of the
    sandbox, drop every right, report, then run the kernel. Never returns."""
    import resource

    call = _libc()
    for name, flag in JOINED:
        if name in fds:
            call("setns", fds[name], flag)
    os.chdir(req["cwd"])
    os.setsid()
    os.dup2(req["stdin"], 0)  # a pipe nobody writes to, as jupyter_client gives a kernel it starts
    os.closerange(3, status)  # nothing of the zygote's or the worker's stays open (stdout and
    os.closerange(status + 1, os.sysconf("SC_OPEN_MAX"))  # stderr are the worker's, as a kernel's)
    for name, value in req["limits"].items():
        limit = getattr(resource, f"RLIMIT_{name.upper()}")
        resource.setrlimit(limit, (value, value))
    call("prctl", PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    with open("/proc/sys/kernel/cap_last_cap") as f:
        last = int(f.read())
    for cap in range(last + 1):
        call("prctl", PR_CAPBSET_DROP, cap, 0, 0, 0)
    uid = req["uid"]
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
    call("prctl", PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # after setuid, which clears it
    if os.getppid() != 0:  # the middle child (outside the PID namespace: 0 here) already ended
        raise ForkRefused("the process that waits for the kernel ended")
    with open("/proc/self/status") as f:
        caps = {k: int(v, 16)
                for k, v in (line.split(":\t") for line in f.read().splitlines() if line.startswith("Cap"))}
    if any(caps.values()) or os.getuid() != uid or os.geteuid() != uid:
        raise ForkRefused(f"rights left after dropping to uid {uid}: {caps}")
    os.environ.clear()
    os.environ.update(req["env"])
    for sig in (signal.SIGCHLD, signal.SIGPIPE, signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_DFL if sig != signal.SIGINT else signal.default_int_handler)
    os.write(status, b"ok")
    os.close(status)
    # what `python -m ipykernel_launcher ARGS` does (the launcher drops the script's folder)
    import ipykernel_launcher

    sys.argv = [ipykernel_launcher.__file__, *req["argv"]]
    if sys.path and os.path.realpath(sys.path[0]) == os.path.dirname(os.path.realpath(__file__)):
        del sys.path[0]
    from ipykernel import kernelapp

    kernelapp.launch_new_instance()
    import atexit  # a kernel that ends by itself runs what a booted one runs at exit

    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()


def _fork_kernel(req: dict) -> int:
    """Fork the middle child; returns its pid once the kernel reported (or raises ForkRefused)."""
    if not isinstance(req.get("uid"), int) or req["uid"] <= 0:
        raise ForkRefused("a kernel never keeps root's rights: give the sandbox's uid to drop to")
    holder = _holder(int(req["holder"]), int(req["holder_started"]))
    try:
        fds = _namespaces(int(req["holder"]), holder)
    except BaseException:
        os.close(holder)
        raise
    read_end, write_end = os.pipe()
    middle = os.fork()
    if middle == 0:  # the middle child: join the PID namespace, fork the kernel, wait for it
        code = 70
        try:
            os.close(read_end)
            _keep_only({write_end, holder, *fds.values()})  # nothing of the zygote's (its pipes) stays open
            pid_ns = fds.pop("pid")
            _libc()("setns", pid_ns, CLONE_NEWPID)
            os.close(pid_ns)
            req["stdin"], stdin = os.pipe()
            kernel = os.fork()
            if kernel == 0:
                code = 71
                try:
                    _become_kernel(req, fds, write_end)
                    code = 0
                except SystemExit as exc:
                    code = exc.code if isinstance(exc.code, int) else 1
                except BaseException as exc:  # reported, and the kernel never starts
                    try:
                        os.write(write_end, f"{type(exc).__name__}: {exc}".encode()[:500])
                    except OSError:  # reported ready already: the kernel itself failed
                        import traceback

                        traceback.print_exc()
                finally:
                    os._exit(code)
            os.close(write_end)
            os.close(req["stdin"])
            for fd in fds.values():
                os.close(fd)
            os.waitpid(kernel, 0)
            code = 0
        except BaseException:
            pass
        finally:
            # the kernel is gone: end its sandbox (and whatever the submission left running); by
            # pidfd, never a process that was given the holder's pid after it ended
            with contextlib.suppress(OSError):
                signal.pidfd_send_signal(holder, signal.SIGKILL)
            os._exit(code)
    os.close(write_end)
    os.close(holder)
    for fd in fds.values():
        os.close(fd)
    chunks = []
    while True:
        chunk = os.read(read_end, 4096)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(read_end)
    said = b"".join(chunks).decode(errors="replace")
    if said != "ok":
        raise ForkRefused(said or "the kernel ended before it was ready")
    return middle


def _keep_only(keep: set[int]) -> None:
    """Close every descriptor from 3 up but `keep`; /dev/null on 0 (the request pipe)."""
    null = os.open("/dev/null", os.O_RDWR)
    os.dup2(null, 0)
    os.close(null)
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd > 2 and fd not in keep:
            with contextlib.suppress(OSError):  # the listing's own
                os.close(fd)


def _serve(modules: list[str], answers_fd: int) -> None:
    while True:  # 0, 1 and 2 open, so that no pipe of ours can become a kernel's stdout
        fd = os.open("/dev/null", os.O_RDWR)
        if fd > 2:
            os.close(fd)
            break
    answers = os.fdopen(answers_fd, "wb", buffering=0)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # interrupts select: children are reaped below
    for module in modules:
        with contextlib.suppress(Exception):  # the kernel's own import of it fails the same way
            __import__(module)
    requests = sys.stdin.buffer
    while True:
        try:
            ready, _, _ = select.select([requests], [], [], 5.0)
        except InterruptedError:
            ready = []
        _reap()
        if not ready:
            continue
        line = requests.readline()
        if not line:
            return
        try:
            if threading.active_count() != 1 or len(os.listdir("/proc/self/task")) != 1:
                raise ForkRefused("the zygote has threads: forking it is unsafe")
            answer = {"ok": True, "pid": _fork_kernel(json.loads(line))}
        except Exception as exc:  # one refused kernel never ends the zygote
            answer = {"ok": False, "why": f"{type(exc).__name__}: {exc}"}
        answers.write(json.dumps(answer).encode() + b"\n")


def _reap() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


if __name__ == "__main__":
    _serve(json.loads(sys.argv[1]), int(sys.argv[2]))
