"""`course-grade doctor` (course_grade/commands/doctor.py): each prerequisite broken for real, one at
a time, and the doctor names it with its fix and exits 1; then a course server set up as the
README says, where every check passes and it exits 0.

A students' python is a real virtual environment: the kernel side reaches it through a `.pth`
line (a folder holding only `autograder`), the libraries through another (this environment's
site-packages, whose own `.pth` files, the editable install of `course_grade` among them, are
then not run); the slow test installs the kernel-side wheel itself."""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

import pytest

from course_grade.__main__ import main
from course_grade.kernels import sandbox
from tests.support.course import BIN, ROOT, tool_env

COURSE_ID = "fastapi-connection-pooling"
KERNEL_SIDE = "`pip install --no-deps tools/kernel-package` there, after the pins"


@pytest.fixture(autouse=True)
def fresh_sandbox_probe():
    """The sandbox is probed once per process: each test probes it again, as a new command would."""
    sandbox._probe.cache_clear()
    yield
    sandbox._probe.cache_clear()


@pytest.fixture
def public():
    """A folder every user may enter (tmp_path's parents are closed to others)."""
    folder = Path(tempfile.mkdtemp(prefix="doctor-test-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def course(public, monkeypatch) -> Path:
    """A course folder: the course's config, its pins and their reader; the exchange in `public`."""
    course = public / "course"
    (course / "tools").mkdir(parents=True)
    shutil.copy(ROOT / "nbgrader_config.py", course)
    shutil.copy(ROOT / "environment.yml", course)
    shutil.copy(ROOT / "tools" / "pins.py", course / "tools")
    monkeypatch.setenv("NBGRADER_EXCHANGE", str(public / "srv" / "exchange"))
    monkeypatch.delenv("COURSE_GRADE_SCHEDULER", raising=False)
    monkeypatch.delenv(sandbox.SWITCH, raising=False)
    return course


@pytest.fixture
def exchange(course, public, capsys) -> Path:
    """The exchange, made by `course-grade setup exchange`."""
    assert main(["setup", "exchange", "--course", str(course)]) == 0
    capsys.readouterr()
    return public / "srv" / "exchange"


def students_python(folder: Path, kernel_side: bool = True) -> str:
    """A virtual environment's python that reaches this environment's libraries and, with
    `kernel_side`, the `autograder` package, but not `course_grade`."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True, timeout=120)
    lines = [sysconfig.get_paths()["purelib"]]
    if kernel_side:
        (folder / "kernel-side").mkdir()
        (folder / "kernel-side" / "autograder").symlink_to(ROOT / "autograder")
        lines.insert(0, str(folder / "kernel-side"))
    (site,) = folder.glob("lib/python3*/site-packages")
    (site / "course-libraries.pth").write_text("\n".join(lines) + "\n")
    return str(folder / "bin" / "python")


def doctor(capsys, *args) -> tuple[int, list[str]]:
    code = main(["doctor", *map(str, args)])
    out, err = capsys.readouterr()
    assert err == "", err
    return code, out.splitlines()


# ------------------------------------------------------------------------------- sandbox and zygote

def test_a_sandbox_switched_off_is_named_and_the_zygote_skipped(course, capsys, monkeypatch):
    monkeypatch.setenv(sandbox.SWITCH, "off")
    code, lines = doctor(capsys, "--course", course, "--check", "sandbox", "--check", "zygote")
    assert code == 1
    assert lines[0] == ("FAIL  sandbox: COURSE_SANDBOX=off is set, so kernels would run unsandboxed: unset "
                        "COURSE_SANDBOX")
    assert lines[1].startswith("skip  zygote: "), lines
    assert len(lines) == 2, lines


def test_no_bwrap_is_named_with_the_package_to_install(course, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing on it
    code, lines = doctor(capsys, "--course", course, "--check", "sandbox")
    assert (code, lines) == (1, ["FAIL  sandbox: bwrap is not installed, so kernels would run unsandboxed: run "
                                 "`apt-get install bubblewrap` as root"])


def test_a_bwrap_that_cannot_make_its_sandbox_is_named_with_what_refused(course, capsys, monkeypatch, tmp_path):
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "bwrap").write_text("#!/bin/sh\necho 'bwrap: No permissions to creating new namespace' >&2\nexit 1\n")
    (fake / "bwrap").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}{os.pathsep}{os.environ['PATH']}")
    code, lines = doctor(capsys, "--course", course, "--check", "sandbox")
    assert code == 1 and len(lines) == 1, lines
    assert lines[0].startswith("FAIL  sandbox: bwrap could not start a sandbox (bwrap: No permissions to creating "
                               "new namespace)"), lines
    if os.geteuid() == 0:
        assert lines[0].endswith("so kernels would run unsandboxed: let root make namespaces here (a container "
                                 "needs the SYS_ADMIN capability, or --privileged)"), lines
    else:
        assert "user namespaces" in lines[0] and "or grade as root" in lines[0], lines


@pytest.mark.slow
def test_a_kernelspec_the_zygote_cannot_fork_is_named(course, capsys, monkeypatch, tmp_path, bwrap_works):
    """Kernels fork from the zygote only when their kernelspec runs the grader's python: one that
    runs another (here a script in front of this python) boots every kernel, and says so."""
    if os.geteuid() != 0:  # CI runs as root: there this is a failure, never a skip
        (pytest.fail if os.environ.get("CI") else pytest.skip)("kernels fork from a zygote only as root")
    wrapper = tmp_path / "python"
    wrapper.write_text(f"#!/bin/sh\nexec {sys.executable} \"$@\"\n")
    wrapper.chmod(0o755)
    spec = tmp_path / "jupyter" / "kernels" / "python3"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({"argv": [str(wrapper), "-m", "ipykernel_launcher", "-f",
                                                           "{connection_file}"],
                                                  "display_name": "Python 3", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    code, lines = doctor(capsys, "--course", course, "--check", "zygote")
    assert code == 1 and len(lines) == 1, lines
    assert lines[0].startswith(f"FAIL  zygote: kernels cannot be forked from a zygote (kernelspec python3 ({spec}) "
                               f"runs {wrapper}, not the grader's python "), lines
    assert lines[0].endswith(f"so each boots the usual way, about 0.6 s of CPU per submission more: make "
                             f"kernelspec python3 run {sys.executable}, the grader's python"), lines


@pytest.mark.parametrize("setting, value, says", [
    ("kernel/unprivileged_userns_clone", "0", "run `sysctl -w kernel.unprivileged_userns_clone=1` as root"),
    ("user/max_user_namespaces", "0", "run `sysctl -w user.max_user_namespaces=15000` as root"),
    ("kernel/apparmor_restrict_unprivileged_userns", "1", "AppArmor restricts user namespaces: give bwrap an "
                                                          "AppArmor profile that allows them"),
])
def test_as_another_user_what_refuses_user_namespaces_is_named(tmp_path, setting, value, says):
    """Read from /proc/sys (here a copy of its layout): the fix for this machine, not a list of guesses."""
    from course_grade.commands.doctor import sandbox_fix, userns_refusal

    for name, allowed in (("kernel/unprivileged_userns_clone", "1"), ("user/max_user_namespaces", "63556"),
                          ("kernel/apparmor_restrict_unprivileged_userns", "0")):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(allowed + "\n")
    assert userns_refusal(tmp_path) is None
    (tmp_path / setting).write_text(value + "\n")
    refusal = userns_refusal(tmp_path)
    assert refusal is not None and refusal.startswith(says) and refusal.endswith("or grade as root"), refusal
    why = "bwrap could not start a sandbox (bwrap: setting up uid map: Permission denied)"
    assert sandbox_fix(why, root=False, refusal=refusal) == f"{why}, so kernels would run unsandboxed: {refusal}"


# ------------------------------------------------------------------------------- exchange

def test_a_missing_exchange_is_named_with_the_command_that_makes_it(course, public, capsys):
    code, lines = doctor(capsys, "--course", course, "--check", "exchange")
    assert (code, lines) == (1, [f"FAIL  exchange: {public / 'srv' / 'exchange'} is missing: run "
                                 f"`course-grade setup exchange` as root"])


def test_an_exchange_with_the_wrong_mode_is_named_with_the_chmod(course, exchange, capsys):
    exchange.chmod(0o755)
    code, lines = doctor(capsys, "--course", course, "--check", "exchange")
    assert (code, lines) == (1, [f"FAIL  exchange: the exchange {exchange} exists with mode 755, not 1777: if it is "
                                 f"the exchange, run `chmod 1777 {exchange}`; nothing was changed"])


def test_an_exchange_students_cannot_reach_is_named(course, exchange, capsys):
    exchange.parent.chmod(0o700)
    code, lines = doctor(capsys, "--course", course, "--check", "exchange")
    assert code == 1 and lines == [f"FAIL  exchange: students could not reach the exchange {exchange}: "
                                   f"{exchange.parent} has mode 700, closed to other users; run `chmod o+x "
                                   f"{exchange.parent}`, or choose another exchange"], lines


def test_the_courses_folders_need_nbgraders_modes(course, exchange, capsys):
    folder = exchange / COURSE_ID
    for path, mode in ((folder, 0o755), (folder / "outbound", 0o755), (folder / "inbound", 0o2733)):
        path.mkdir()
        path.chmod(mode)  # as nbgrader release_assignment makes them
    code, lines = doctor(capsys, "--course", course, "--check", "exchange")
    assert (code, lines) == (0, [f"ok    exchange: {exchange} with mode 1777, {COURSE_ID}/ with nbgrader's modes "
                                 f"(outbound 755, inbound 2733, feedback not made yet)"])
    (folder / "inbound").chmod(0o777)  # students could read each other's submissions
    code, lines = doctor(capsys, "--course", course, "--check", "exchange")
    assert (code, lines) == (1, [f"FAIL  exchange: {folder / 'inbound'} has mode 777, not 2733 as nbgrader makes it: "
                                 f"run `chmod 2733 {folder / 'inbound'}`"])


# ------------------------------------------------------------------------------- course id

def test_nbgraders_placeholder_course_id_is_refused(course, capsys):
    with open(course / "nbgrader_config.py", "a") as f:
        f.write("\nc.CourseDirectory.course_id = 'default_course'\n")
    code, lines = doctor(capsys, "--course", course, "--check", "course")
    assert (code, lines) == (1, ["FAIL  course: the course id is nbgrader's placeholder 'default_course': set "
                                 f"c.CourseDirectory.course_id in {course / 'nbgrader_config.py'} to your course's "
                                 "own id"])


def test_no_course_id_is_refused(course, capsys):
    with open(course / "nbgrader_config.py", "a") as f:
        f.write("\nc.CourseDirectory.course_id = ''\n")
    code, lines = doctor(capsys, "--course", course, "--check", "course")
    assert (code, lines) == (1, [f"FAIL  course: {course / 'nbgrader_config.py'} sets no c.CourseDirectory.course_id: "
                                 f"set it to your course's own id"])


def test_the_students_config_must_say_the_courses_id(course, public, capsys):
    students = public / "etc" / "nbgrader_config.py"
    code, lines = doctor(capsys, "--course", course, "--check", "course", "--students-config", students)
    assert (code, lines) == (1, [f"FAIL  course: the students' config {students} is missing: run `sudo course-grade "
                                 f"setup students --write {students}`"])
    assert main(["setup", "students", "--course", str(course), "--write", str(students)]) == 0
    capsys.readouterr()
    code, lines = doctor(capsys, "--course", course, "--check", "course", "--students-config", students)
    assert (code, lines) == (0, [f"ok    course: course id {COURSE_ID!r}, the same (and the same exchange) in the "
                                 f"students' config {students}"])
    with open(course / "nbgrader_config.py", "a") as f:  # the course renamed after the students' config was written
        f.write("\nc.CourseDirectory.course_id = 'pooling-2025'\n")
    code, lines = doctor(capsys, "--course", course, "--check", "course", "--students-config", students)
    assert (code, lines) == (1, [f"FAIL  course: the students' config {students} says course id {COURSE_ID!r}, the "
                                 f"course 'pooling-2025': run `sudo course-grade setup students --write {students} "
                                 f"--force`"])


def test_the_students_config_must_name_the_courses_exchange(course, public, capsys, monkeypatch):
    students = public / "etc" / "nbgrader_config.py"
    assert main(["setup", "students", "--course", str(course), "--write", str(students)]) == 0
    capsys.readouterr()
    monkeypatch.setenv("NBGRADER_EXCHANGE", str(public / "moved"))
    code, lines = doctor(capsys, "--course", course, "--check", "course", "--students-config", students)
    assert code == 1 and lines == [f"FAIL  course: the students' config {students} names the exchange "
                                   f"{public / 'srv' / 'exchange'}, the course {public / 'moved'}: run `sudo "
                                   f"course-grade setup students --write {students} --force`"], lines


# ------------------------------------------------------------------------------- students' python

@pytest.mark.slow  # starts Python processes that import the packages
def test_a_students_python_that_imports_the_grader_is_refused(course, capsys):
    """The grader's own environment (this one: both packages installed) as the students'."""
    code, lines = doctor(capsys, "--course", course, "--check", "students", "--students-python", sys.executable)
    assert code == 1 and len(lines) == 1, lines
    assert lines == [f"FAIL  students: the students' python {sys.executable} (--students-python) is the grader's "
                     f"own environment, which can import course_grade: give the students' kernels an environment "
                     f"with the kernel side only ({KERNEL_SIDE}), or pass --students-python"], lines


@pytest.mark.slow  # makes a virtual environment
def test_a_students_python_that_finds_the_graders_package_is_refused(course, capsys, tmp_path):
    """Another environment, where course_grade is importable too (the whole repository on its path)."""
    python = students_python(tmp_path / "students")
    (Path(python).parents[1] / "kernel-side" / "course_grade").symlink_to(ROOT / "course_grade")
    code, lines = doctor(capsys, "--course", course, "--check", "students", "--students-python", python)
    found = tmp_path / "students" / "kernel-side" / "course_grade" / "__init__.py"
    assert (code, lines) == (1, [f"FAIL  students: the students' python {python} (--students-python) can import "
                                 f"course_grade ({found}), the grader's code: give the students' kernels an "
                                 f"environment with the kernel side only ({KERNEL_SIDE}), or pass --students-python"])


def test_a_students_python_without_the_kernel_side_is_refused(course, capsys, tmp_path):
    python = students_python(tmp_path / "students", kernel_side=False)
    code, lines = doctor(capsys, "--course", course, "--check", "students", "--students-python", python)
    assert (code, lines) == (1, [f"FAIL  students: the students' python {python} (--students-python) cannot import "
                                 f"autograder (ModuleNotFoundError: No module named 'autograder'): install the kernel "
                                 f"side with {KERNEL_SIDE}"])


def test_a_students_python_that_does_not_exist_is_named(course, capsys, tmp_path):
    python = tmp_path / "nowhere" / "python"
    code, lines = doctor(capsys, "--course", course, "--check", "students", "--students-python", python)
    assert code == 1 and len(lines) == 1, lines
    assert lines[0].startswith(f"FAIL  students: the students' python {python} (--students-python) cannot run "
                               f"(FileNotFoundError: "), lines
    assert lines[0].endswith("give the python of their kernels with --students-python PATH"), lines


@pytest.mark.slow  # starts Python processes that import the packages
def test_the_kernel_side_alone_passes(course, capsys, tmp_path):
    python = students_python(tmp_path / "students")
    code, lines = doctor(capsys, "--course", course, "--check", "students", "--students-python", python)
    assert (code, lines) == (0, [f"ok    students: {python} (--students-python) imports autograder and not "
                                 f"course_grade"])


# ------------------------------------------------------------------------------- pins

def test_a_package_off_its_pin_is_named_with_the_install_line(course, capsys, tmp_path):
    pins = tmp_path / "environment.yml"
    text = (ROOT / "environment.yml").read_text()
    assert "      - fastapi==0.165.0\n" in text, "the test changes fastapi's pin: update it with the pins"
    pins.write_text(text.replace("      - fastapi==0.165.0\n", "      - fastapi==0.164.0\n"))
    code, lines = doctor(capsys, "--course", course, "--check", "pins", "--pins", pins,
                         "--students-python", sys.executable)
    assert (code, lines) == (1, [f"FAIL  pins: the grader's python {sys.executable} has 1 package(s) off "
                                 f"environment.yml's pins, fastapi 0.165.0 (pinned 0.164.0): install the pins: "
                                 f"`python3 tools/pins.py requirements > pins.txt && uv pip install --python "
                                 f"{sys.executable} -r pins.txt`"])


def test_another_python_version_is_named(course, capsys, tmp_path):
    pins = tmp_path / "environment.yml"
    pins.write_text((ROOT / "environment.yml").read_text().replace("  - python=3.11\n", "  - python=3.12\n"))
    code, lines = doctor(capsys, "--course", course, "--check", "pins", "--pins", pins,
                         "--students-python", sys.executable)
    assert (code, lines) == (1, [f"FAIL  pins: the grader's python {sys.executable} is python 3.11, environment.yml "
                                 f"pins 3.12: make its environment with python 3.12"])


@pytest.mark.slow  # makes a virtual environment
def test_the_students_python_is_held_to_the_pins_too(course, capsys, tmp_path):
    python = students_python(tmp_path / "students")
    code, lines = doctor(capsys, "--course", course, "--check", "pins", "--students-python", python)
    assert code == 0 and len(lines) == 2, lines
    assert lines[0].startswith(f"ok    pins: the grader's python {sys.executable}: ") and lines[0].endswith(
        " packages at environment.yml's pins, python 3.11"), lines
    assert lines[1].startswith(f"ok    pins: the students' python {python}: "), lines
    pins = tmp_path / "environment.yml"
    pins.write_text((ROOT / "environment.yml").read_text().replace("      - httpx==0.28.1\n",
                                                                  "      - httpx==0.27.0\n"))
    code, lines = doctor(capsys, "--course", course, "--check", "pins", "--students-python", python, "--pins", pins)
    assert code == 1 and lines[1] == (f"FAIL  pins: the students' python {python} has 1 package(s) off "
                                      f"environment.yml's pins, httpx 0.28.1 (pinned 0.27.0): install the pins: "
                                      f"`python3 tools/pins.py requirements > pins.txt && uv pip install --python "
                                      f"{python} -r pins.txt`"), lines


# ------------------------------------------------------------------------------- scheduler

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_scheduler_is_named_with_what_to_do(course, capsys, monkeypatch):
    address = f"tcp://127.0.0.1:{free_port()}"
    code, lines = doctor(capsys, "--course", course, "--check", "scheduler", "--scheduler", address, "--timeout", 1)
    assert code == 1 and len(lines) == 1, lines
    assert lines[0].startswith(f"FAIL  scheduler: cannot reach the Dask scheduler at {address} ("), lines
    assert lines[0].endswith("): start it, or leave out --scheduler to grade on this machine"), lines
    monkeypatch.setenv("COURSE_GRADE_SCHEDULER", address)  # where `course-grade grade` would find it too
    code, lines = doctor(capsys, "--course", course, "--check", "scheduler", "--timeout", 1)
    assert code == 1 and lines[0].endswith("): start it, or unset COURSE_GRADE_SCHEDULER to grade on this machine")


def test_a_scheduler_address_that_is_not_one_is_named(course, capsys):
    code, lines = doctor(capsys, "--course", course, "--check", "scheduler", "--scheduler", "localhost")
    assert (code, lines) == (1, ["FAIL  scheduler: --scheduler localhost is not a Dask scheduler's address: give it "
                                 "as tcp://HOST:PORT, e.g. tcp://10.0.0.5:8786"])


def test_no_scheduler_means_a_local_cluster(course, capsys):
    code, lines = doctor(capsys, "--course", course, "--check", "scheduler")
    assert (code, lines) == (0, ["ok    scheduler: none set (--scheduler, COURSE_GRADE_SCHEDULER): `course-grade "
                                 "grade` starts a local cluster on this machine"])


@pytest.mark.filterwarnings("ignore:Port .* is already in use")  # the dashboard's: not used
def test_a_scheduler_answers_and_its_workers_must_run_one_thread(course, capsys):
    """A real scheduler and worker (in this process): two threads per worker are refused, one passes."""
    from distributed import LocalCluster

    for threads in (2, 1):
        with LocalCluster(n_workers=1, threads_per_worker=threads, processes=False, protocol="tcp",
                          host="127.0.0.1", dashboard_address=None) as cluster:
            address = cluster.scheduler_address
            code, lines = doctor(capsys, "--course", course, "--check", "scheduler", "--scheduler", address)
        if threads == 2:
            assert code == 1 and len(lines) == 1 and lines[0].startswith(
                "FAIL  scheduler: 1 of 1 worker(s) run several threads (e.g. tcp://127.0.0.1:"), lines
            assert lines[0].endswith(f"start workers with `dask worker {address} --nthreads 1` on each worker host")
        elif sandbox.unavailable() is None:
            assert (code, lines) == (0, [f"ok    scheduler: {address} answers: 1 worker(s), one thread each, the "
                                         f"sandbox starts on every one"])
        else:
            assert code == 1 and lines[0].startswith("FAIL  scheduler: on 1 of 1 worker(s), e.g. "), lines


# ------------------------------------------------------------------------------- the whole server

def test_a_folder_without_the_courses_config_is_a_usage_error(public, capsys):
    assert main(["doctor", "--course", str(public)]) == 2
    _, err = capsys.readouterr()
    assert err == f"error: no nbgrader_config.py in {public}: run this in the course folder or pass --course\n"


@pytest.mark.slow
def test_a_server_set_up_as_the_readme_says_passes_every_check(course, exchange, public, capsys, tmp_path,
                                                                bwrap_works):
    """The exchange and the students' config from `course-grade setup`, the course's folders in the
    exchange from a real `nbgrader release_assignment`, a students' environment with the kernel-side
    wheel installed (the README's `pip install --no-deps tools/kernel-package`, here with uv)."""
    shutil.copytree(ROOT / "release", course / "release")
    released = subprocess.run([str(BIN / "nbgrader"), "release_assignment", "connection-pooling"], cwd=course,
                              env=tool_env(), capture_output=True, text=True, timeout=300)
    assert released.returncode == 0, released.stdout + released.stderr
    students_config = public / "etc" / "nbgrader_config.py"
    assert main(["setup", "students", "--course", str(course), "--write", str(students_config)]) == 0
    capsys.readouterr()
    python = students_python(tmp_path / "students", kernel_side=False)
    uv = shutil.which("uv") or shutil.which("uv", path=str(ROOT / ".tools" / "bin"))
    assert uv, "uv is installed by the Makefile"
    project = ROOT / "tools" / "kernel-package"
    try:
        installed = subprocess.run([uv, "pip", "install", "--quiet", "--no-deps", "--python", python, str(project)],
                                   capture_output=True, text=True, timeout=300)
    finally:  # setuptools leaves its work folders beside the project
        shutil.rmtree(project / "build", ignore_errors=True)
        for info in project.glob("*.egg-info"):
            shutil.rmtree(info, ignore_errors=True)
    assert installed.returncode == 0, installed.stderr
    code, lines = doctor(capsys, "--course", course, "--students-python", python, "--students-config",
                         students_config)
    assert code == 0, "\n".join(lines)
    assert [line.split(":")[0] for line in lines] == [
        "ok    sandbox", ("ok    zygote" if os.geteuid() == 0 else "skip  zygote"), "ok    exchange", "ok    course",
        "ok    students", "ok    pins", "ok    pins", "ok    scheduler"], "\n".join(lines)
    assert lines[2] == (f"ok    exchange: {exchange} with mode 1777, {COURSE_ID}/ with nbgrader's modes (outbound "
                        f"755, inbound 2733, feedback not made yet)"), lines
