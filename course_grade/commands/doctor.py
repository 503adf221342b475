"""`course-grade doctor`: what a course server needs before the first class, checked one by one.

Each check prints one line: `ok` with what it found, `FAIL` with what is wrong and how to fix
it, or `skip` where it does not apply here. The exit status is 1 when any check failed, else 0
(2 for bad arguments). It changes nothing. Each check asks the code that does the work:

- sandbox: `kernels.sandbox.unavailable()`, the probe every grading process makes;
- zygote: `kernels.spares.fork_check()`, a kernel forked into its sandbox as a grading worker's
  spare is (only as root: another user's kernels always boot);
- exchange: `setup.existing_exchange` and `setup.unreachable`, what `course-grade setup exchange`
  refuses, and the course's folders in it with the modes nbgrader's exchange gives them;
- course: the course id (`setup.settings`), not nbgrader's placeholder, and the same in the
  students' config that `course-grade setup students` writes;
- students: the students' kernels' python imports `autograder` and cannot import `course_grade`;
- pins: the installed versions against environment.yml, read by the course's `tools/pins.py`;
- scheduler: the Dask scheduler `course-grade grade` would use (`cluster.scheduler_address`)
  answers, its workers run one thread each and can start the sandbox.
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import importlib.util
import json
import os
import shutil
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from course_grade.commands import setup
from course_grade.course import UsageError
from course_grade.kernels import sandbox

HELP = "check this machine before the first class: sandbox, zygote, exchange, course id, students' python, pins, Dask"

OK, FAIL, SKIP = "ok", "FAIL", "skip"
KERNEL = "python3"  # the kernelspec the lesson's notebook names
PLACEHOLDER = "default_course"  # nbgrader's course id when none is set (its gradebook's default)
# The modes nbgrader's exchange gives the course's folder and those in it (release_assignment,
# release_feedback), without and with CourseDirectory.groupshared; nbgrader never changes them
# once made.
COURSE_FOLDERS = {".": (0o755, 0o2775), "outbound": (0o755, 0o2775), "inbound": (0o2733, 0o2773),
                  "feedback": (0o711, 0o2771)}
FORK_SAVES = "about 0.6 s of CPU per submission"  # what a forked kernel saves (kernels/zygote.py)

# What a python has: its version, pip, the installed version of each name given (argv[1], JSON),
# and with argv[2] == "1" whether it imports the kernel side as a notebook does and finds the
# instructor side; one JSON line.
PROBE = r"""
import importlib.util, json, sys
from importlib import metadata
found = {"prefix": sys.prefix, "python": "%d.%d" % sys.version_info[:2],
         "pip": importlib.util.find_spec("pip") is not None, "autograder": None, "markers": None}
if sys.argv[2] == "1":
    try:
        from autograder import checks
    except Exception as exc:
        found["autograder"] = f"{type(exc).__name__}: {exc}"
    spec = importlib.util.find_spec("course_grade")
    found["course_grade"] = (spec.origin or next(iter(spec.submodule_search_locations or []), "?")) if spec else None
try:
    from packaging.markers import default_environment
    found["markers"] = default_environment()
except ImportError:
    pass
versions = {}
for name in json.loads(sys.argv[1]):
    try:
        versions[name] = metadata.version(name)
    except metadata.PackageNotFoundError:
        versions[name] = None
found["versions"] = versions
print(json.dumps(found))
"""

EPILOG = """\
checks (--check NAME to run some): sandbox, zygote, exchange, course, students, pins, scheduler.
Each prints `ok`, `FAIL` (what is wrong: how to fix it) or `skip` (does not apply here);
exit status 1 when any failed.
"""


@dataclasses.dataclass(frozen=True)
class Line:
    status: str  # OK, FAIL or SKIP
    check: str
    text: str

    def __str__(self) -> str:
        return f"{self.status:<6}{self.check}: {self.text}"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--course", type=Path, default=Path("."),
                        help="the course folder (where nbgrader_config.py is); default: here")
    parser.add_argument("--students-python", metavar="PATH",
                        help=f"the python the students' kernels run (default: kernelspec {KERNEL}'s, else this one)")
    parser.add_argument("--students-config", type=Path, metavar="PATH",
                        help=f"the students' nbgrader config to compare (default: {setup.EVERY_USER}, if there)")
    parser.add_argument("--pins", type=Path, metavar="FILE",
                        help="the pins to compare the installed packages with (default: the course's environment.yml)")
    parser.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                        help="the Dask scheduler `course-grade grade --scheduler` would use "
                             "(default: $COURSE_GRADE_SCHEDULER; none: a local cluster)")
    parser.add_argument("--timeout", type=float, default=10,
                        help="seconds the scheduler has to answer (default: 10)")
    parser.add_argument("--check", action="append", choices=tuple(CHECKS), metavar="NAME", dest="checks",
                        help="run only this check (repeat for several): " + ", ".join(CHECKS))


class Doctor:
    """The options and what several checks read (the course's config, each python's probe)."""

    def __init__(self, args: argparse.Namespace):
        from traitlets.config.loader import ConfigFileNotFound

        self.course = Path(args.course)
        self.config_file = self.course / "nbgrader_config.py"
        try:
            self.config = setup.load_config(self.config_file)
        except ConfigFileNotFound:
            raise UsageError(f"no nbgrader_config.py in {self.course}: run this in the course folder or pass "
                             f"--course") from None
        self.course_id, self.root = setup.settings(self.config)
        self.students_config: Path | None = args.students_config
        if self.students_config is None and setup.EVERY_USER.exists():
            self.students_config = setup.EVERY_USER
        if args.students_python:
            self.students_python, self.students_where = args.students_python, "--students-python"
        else:
            self.students_python, self.students_where = kernel_python(KERNEL)
        self.pins_file = args.pins or self.course / "environment.yml"
        self.scheduler = args.scheduler
        if args.timeout <= 0:
            raise UsageError(f"--timeout {args.timeout:g}: give a positive number of seconds, e.g. 10")
        self.timeout = args.timeout
        self._probed: dict[tuple[str, bool], dict | str] = {}

    @functools.cached_property
    def pins(self) -> tuple[list, str] | str:
        """The pinned requirements and python version, or why they cannot be read (a sentence)."""
        from packaging.requirements import Requirement

        reader = self.course / "tools" / "pins.py"
        if not reader.is_file():
            return f"{reader} is missing, which reads the pins: run this in the course's repository, or pass --course"
        spec = importlib.util.spec_from_file_location("course_pins", reader)
        pins = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(pins)
            lines, python = pins.read_pins(self.pins_file), pins.read_python(self.pins_file)
        except FileNotFoundError:
            return f"{self.pins_file} is missing: pass --pins with the course's environment.yml"
        except SystemExit as exc:  # the reader's own sentence
            return f"{exc}: run `make lock` to write the pins anew"
        return [Requirement(line) for line in lines], python

    def interpreter(self, python: str, kernel_side: bool = False) -> dict | str:
        """What `python` has (PROBE; with `kernel_side`, whether it imports `autograder` and finds
        `course_grade`), or why it cannot say (a sentence); asked once."""
        if (python, kernel_side) not in self._probed:
            names = [r.name for r in self.pins[0]] if isinstance(self.pins, tuple) else []
            self._probed[python, kernel_side] = _probe(python, names, kernel_side)
        return self._probed[python, kernel_side]


def _probe(python: str, names: list[str], kernel_side: bool) -> dict | str:
    try:
        done = subprocess.run([python, "-I", "-c", PROBE, json.dumps(names), "1" if kernel_side else "0"],
                              capture_output=True, text=True, timeout=120, cwd="/")
        return json.loads(done.stdout.strip().splitlines()[-1])
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{type(exc).__name__}: {exc}"
    except (ValueError, IndexError):
        return (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]


def kernel_python(kernel: str) -> tuple[str, str]:
    """The python kernelspec `kernel` runs, as Jupyter resolves it, and where that was found;
    this python when there is no such kernelspec."""
    from jupyter_client.kernelspec import NoSuchKernel
    from jupyter_client.manager import KernelManager

    try:
        km = KernelManager(kernel_name=kernel)
        python = km.format_kernel_cmd()[0]
    except NoSuchKernel:
        return sys.executable, f"this python: no kernelspec {kernel}"
    return shutil.which(python) or python, f"kernelspec {kernel} in {km.kernel_spec.resource_dir}"


# --- the checks -------------------------------------------------------------------------------

def check_sandbox(doctor: Doctor) -> Iterator[Line]:
    why = sandbox.unavailable()
    if why is not None:
        yield Line(FAIL, "sandbox", sandbox_fix(why, os.geteuid() == 0, userns_refusal()))
        return
    done = subprocess.run([shutil.which("bwrap"), "--version"], capture_output=True, text=True, timeout=30)
    version = done.stdout.strip().replace("bubblewrap", "bwrap") or "bwrap"
    how = "as root (each kernel then runs as a fresh unprivileged uid)" if os.geteuid() == 0 \
        else "user namespaces allowed"
    yield Line(OK, "sandbox", f"{version}, {how}")


def sandbox_fix(why: str, root: bool, refusal: str | None = None) -> str:
    """What is wrong and what to do, from the sandbox's reason (`sandbox.unavailable()`)."""
    if why == sandbox.SWITCHED_OFF:
        return f"{sandbox.SWITCHED_OFF} is set, so kernels would run unsandboxed: unset {sandbox.SWITCH}"
    if why == sandbox.NO_BWRAP:
        return "bwrap is not installed, so kernels would run unsandboxed: run `apt-get install bubblewrap` as root"
    if why == sandbox.NO_UTIL_LINUX:
        return ("prlimit or setpriv is not installed, so kernels would run unsandboxed: run `apt-get install "
                "util-linux` as root")
    if root:
        return (f"{why}, as root, so kernels would run unsandboxed: let root make namespaces here (a container "
                f"needs the SYS_ADMIN capability, or --privileged)")
    return (f"{why}, so kernels would run unsandboxed: "
            + (refusal or "allow unprivileged user namespaces (`sysctl -w kernel.unprivileged_userns_clone=1` on "
                          "Debian, and no AppArmor rule against them), or grade as root"))


def userns_refusal(proc: Path = Path("/proc/sys")) -> str | None:
    """What refuses unprivileged user namespaces on this machine and how to allow them, if known."""
    def value(name: str) -> str | None:
        try:
            return (proc / name).read_text().strip()
        except OSError:
            return None

    if value("kernel/unprivileged_userns_clone") == "0":
        return "run `sysctl -w kernel.unprivileged_userns_clone=1` as root to allow user namespaces, or grade as root"
    if value("user/max_user_namespaces") == "0":
        return "run `sysctl -w user.max_user_namespaces=15000` as root to allow user namespaces, or grade as root"
    if value("kernel/apparmor_restrict_unprivileged_userns") == "1":
        return ("AppArmor restricts user namespaces: give bwrap an AppArmor profile that allows them (or run "
                "`sysctl -w kernel.apparmor_restrict_unprivileged_userns=0` as root), or grade as root")
    return None


def check_zygote(doctor: Doctor) -> Iterator[Line]:
    from course_grade.kernels.spares import fork_check

    if os.geteuid() != 0:
        yield Line(SKIP, "zygote", "grading does not run as root, so kernels boot in their sandbox the usual way "
                                   "(only root forks them from a zygote)")
        return
    if sandbox.unavailable() is not None:
        yield Line(SKIP, "zygote", "a zygote forks kernels only into a sandbox, which cannot start here (sandbox)")
        return
    start = time.monotonic()
    why = fork_check(KERNEL)
    if why is None:
        yield Line(OK, "zygote", f"a kernel forked from a zygote into its sandbox answered in "
                                 f"{time.monotonic() - start:.1f} s")
        return
    python, where = kernel_python(KERNEL)
    if os.path.realpath(python) != os.path.realpath(sys.executable):
        fix = f"make kernelspec {KERNEL} run {sys.executable}, the grader's python"
    else:
        fix = "let root enter namespaces here (setns), or grade with --no-spare-kernels"
    yield Line(FAIL, "zygote", f"kernels cannot be forked from a zygote ({why}), so each boots the usual way, "
                               f"{FORK_SAVES} more: {fix}")


def check_exchange(doctor: Doctor) -> Iterator[Line]:
    if not os.path.isabs(doctor.root):
        yield Line(FAIL, "exchange", f"the exchange folder {doctor.root!r} is relative: set c.Exchange.root (or "
                                     f"NBGRADER_EXCHANGE) to an absolute path")
        return
    root = Path(doctor.root)
    try:
        there = setup.existing_exchange(root)
    except UsageError as exc:
        yield Line(FAIL, "exchange", str(exc))
        return
    if not there:
        yield Line(FAIL, "exchange", f"{root} is missing: run `course-grade setup exchange` as root")
        return
    closed = setup.unreachable(root)
    if closed:
        yield Line(FAIL, "exchange", closed)
        return
    problems, seen = course_folder_problems(root, doctor)
    if problems:
        yield Line(FAIL, "exchange", "; ".join(problems))
    else:
        yield Line(OK, "exchange", f"{root} with mode {setup.EXCHANGE_MODE:o}, {seen}")


def course_folder_problems(root: Path, doctor: Doctor) -> tuple[list[str], str]:
    """What is wrong with the course's folders in the exchange (each a sentence), and what is there."""
    from nbgrader.coursedir import CourseDirectory

    if not doctor.course_id:
        return [], "no course id to look for its folder (course)"
    course = root / doctor.course_id
    groupshared = CourseDirectory(config=doctor.config).groupshared
    problems, seen = [], []
    for name, modes in COURSE_FOLDERS.items():
        path = course / name if name != "." else course
        want = modes[groupshared]
        try:
            st = path.lstat()
        except FileNotFoundError:
            if name == ".":
                return [], f"the course's folder {course} comes with the first release"
            seen.append(f"{name} not made yet")
            continue
        if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
            problems.append(f"{path} is not a folder: remove it, and nbgrader makes the folder at the next release")
        elif stat.S_IMODE(st.st_mode) != want:
            problems.append(f"{path} has mode {stat.S_IMODE(st.st_mode):o}, not {want:o} as nbgrader makes it: run "
                            f"`chmod {want:o} {path}`")
        elif name != ".":
            seen.append(f"{name} {want:o}")
    return problems, f"{doctor.course_id}/ with nbgrader's modes ({', '.join(seen)})"


def check_course(doctor: Doctor) -> Iterator[Line]:
    from traitlets.config.loader import ConfigFileNotFound

    course_id = doctor.course_id
    if not course_id:
        yield Line(FAIL, "course", f"{doctor.config_file} sets no c.CourseDirectory.course_id: set it to your "
                                   f"course's own id")
        return
    if course_id == PLACEHOLDER:
        yield Line(FAIL, "course", f"the course id is nbgrader's placeholder {PLACEHOLDER!r}: set "
                                   f"c.CourseDirectory.course_id in {doctor.config_file} to your course's own id")
        return
    path = doctor.students_config
    if path is None:
        yield Line(OK, "course", f"course id {course_id!r} (no students' config at {setup.EVERY_USER} to compare "
                                 f"with: pass --students-config PATH to check one)")
        return
    rewrite = f"run `sudo course-grade setup students --write {path} --force`"
    try:
        theirs, their_root = setup.settings(setup.load_config(path))
    except ConfigFileNotFound:
        yield Line(FAIL, "course", f"the students' config {path} is missing: run `sudo course-grade setup students "
                                   f"--write {path}`")
        return
    except Exception as exc:  # a file nbgrader could not load either
        yield Line(FAIL, "course", f"the students' config {path} cannot be read ({type(exc).__name__}: {exc}): "
                                   f"{rewrite}")
        return
    if theirs != course_id:
        yield Line(FAIL, "course", f"the students' config {path} says course id {theirs!r}, the course "
                                   f"{course_id!r}: {rewrite}")
    elif their_root != doctor.root:
        yield Line(FAIL, "course", f"the students' config {path} names the exchange {their_root}, the course "
                                   f"{doctor.root}: {rewrite}")
    else:
        yield Line(OK, "course", f"course id {course_id!r}, the same (and the same exchange) in the students' "
                                 f"config {path}")


def check_students(doctor: Doctor) -> Iterator[Line]:
    python, where = doctor.students_python, doctor.students_where
    found = doctor.interpreter(python, kernel_side=True)
    named = f"the students' python {python} ({where})"
    if isinstance(found, str):
        yield Line(FAIL, "students", f"{named} cannot run ({found}): give the python of their kernels with "
                                     f"--students-python PATH")
        return
    kernel_side = "`pip install --no-deps tools/kernel-package` there, after the pins"
    if found["autograder"]:
        yield Line(FAIL, "students", f"{named} cannot import autograder ({found['autograder']}): install the "
                                     f"kernel side with {kernel_side}")
    elif found["course_grade"]:
        if os.path.realpath(found["prefix"]) == os.path.realpath(sys.prefix):
            what = "is the grader's own environment, which can import course_grade"
        else:
            what = f"can import course_grade ({found['course_grade']}), the grader's code"
        yield Line(FAIL, "students", f"{named} {what}: give the students' kernels an environment with the kernel "
                                     f"side only ({kernel_side}), or pass --students-python")
    else:
        yield Line(OK, "students", f"{python} ({where}) imports autograder and not course_grade")


def check_pins(doctor: Doctor) -> Iterator[Line]:
    if isinstance(doctor.pins, str):
        yield Line(FAIL, "pins", doctor.pins)
        return
    yield pins_line(doctor, sys.executable, "the grader's python")
    students = doctor.interpreter(doctor.students_python)
    if isinstance(students, dict) and os.path.realpath(students["prefix"]) != os.path.realpath(sys.prefix):
        yield pins_line(doctor, doctor.students_python, "the students' python")


def pins_line(doctor: Doctor, python: str, whose: str) -> Line:
    from packaging.markers import default_environment

    requirements, pinned_python = doctor.pins
    found = doctor.interpreter(python)
    if isinstance(found, str):
        return Line(FAIL, "pins", f"{whose} {python} cannot run ({found}): give the right one with --students-python")
    install = f"{python} -m pip install" if found["pip"] else f"uv pip install --python {python}"
    fix = f"install the pins: `python3 tools/pins.py requirements > pins.txt && {install} -r pins.txt`"
    if found["python"] != pinned_python:
        return Line(FAIL, "pins", f"{whose} {python} is python {found['python']}, {doctor.pins_file.name} pins "
                                  f"{pinned_python}: make its environment with python {pinned_python}")
    markers = found["markers"] or default_environment()
    wrong, count = [], 0
    for requirement in requirements:
        if requirement.marker is not None and not requirement.marker.evaluate(markers):
            continue
        count += 1
        want = next(iter(requirement.specifier)).version
        have = found["versions"].get(requirement.name)
        if have != want:
            wrong.append(f"{requirement.name} {have or 'missing'} (pinned {want})")
    if wrong:
        listed = ", ".join(wrong[:5]) + (f" and {len(wrong) - 5} more" if len(wrong) > 5 else "")
        return Line(FAIL, "pins", f"{whose} {python} has {len(wrong)} package(s) off {doctor.pins_file.name}'s "
                                  f"pins, {listed}: {fix}")
    return Line(OK, "pins", f"{whose} {python}: {count} packages at {doctor.pins_file.name}'s pins, python "
                            f"{pinned_python}")


def check_scheduler(doctor: Doctor) -> Iterator[Line]:
    from course_grade.commands import cluster

    try:
        address, source = cluster.scheduler_address(doctor.scheduler)
    except ValueError as exc:
        yield Line(FAIL, "scheduler", str(exc))
        return
    if not address:
        yield Line(OK, "scheduler", f"none set (--scheduler, {cluster.SCHEDULER_VARIABLE}): `course-grade grade` "
                                    f"starts a local cluster on this machine")
        return
    undo = "leave out --scheduler" if source == "--scheduler" else f"unset {source}"
    try:
        with cluster.connect(address, 1, spare_kernels=False, timeout=f"{doctor.timeout:g}s") as client:
            yield workers_line(client, address)
    except OSError as exc:
        yield Line(FAIL, "scheduler", f"cannot reach the Dask scheduler at {address} ({exc}): start it, or {undo} to "
                                      f"grade on this machine")


def workers_line(client, address: str) -> Line:
    workers = client.scheduler_info()["workers"]
    start = f"start workers with `dask worker {address} --nthreads 1` on each worker host"
    if not workers:
        return Line(FAIL, "scheduler", f"the Dask scheduler at {address} answers but has no workers: {start}")
    threaded = sorted(a for a, info in workers.items() if info.get("nthreads") != 1)
    if threaded:
        return Line(FAIL, "scheduler", f"{len(threaded)} of {len(workers)} worker(s) run several threads (e.g. "
                                       f"{threaded[0]}), and nbgrader changes the working folder: {start}")
    try:
        off = {a: why for a, why in client.run(sandbox.unavailable).items() if why}
        roots = client.run(os.geteuid) if off else {}
    except Exception as exc:  # a worker without this package
        return Line(FAIL, "scheduler", f"the workers cannot run the course's code ({type(exc).__name__}: {exc}): "
                                       f"install this repository on each worker host (`pip install --no-deps .` "
                                       f"into the pinned environment)")
    if off:
        first = sorted(off)[0]
        return Line(FAIL, "scheduler", f"on {len(off)} of {len(workers)} worker(s), e.g. {first}: "
                                       + sandbox_fix(off[first], roots.get(first) == 0))
    return Line(OK, "scheduler", f"{address} answers: {len(workers)} worker(s), one thread each, the sandbox "
                                 f"starts on every one")


CHECKS = {"sandbox": check_sandbox, "zygote": check_zygote, "exchange": check_exchange, "course": check_course,
          "students": check_students, "pins": check_pins, "scheduler": check_scheduler}


def main(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = sys.stdout if out is None else out
    doctor = Doctor(args)
    failed = False
    for name in CHECKS:
        if args.checks and name not in args.checks:
            continue
        for line in CHECKS[name](doctor):
            failed |= line.status == FAIL
            print(line, file=out, flush=True)
    return 1 if failed else 0
