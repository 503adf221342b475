"""Grading on a real Dask cluster, and what a fault leaves behind.

A scheduler and two workers are started as separate processes on 127.0.0.1 (`dask scheduler`,
`dask worker`), each worker in a temporary folder of its own and with the course folder hidden
from it: the worker runs in a mount namespace (bwrap, as root, no user namespace) where an empty
folder lies over the course. Whatever a worker grades reaches it as bytes.

- the cluster's scores (and messages) equal sequential stock `nbgrader autograde`'s;
- a worker killed while it grades: its submissions are graded by the other one, and every
  student is graded exactly once in the gradebook;
- a scheduler lost partway: one line says so, the exit status is 3, every grade merged so far
  is kept whole, and `--resume` grades only the rest;
- Ctrl-C on the default LocalCluster: one line, exit status 3, merged grades kept, no process
  left behind.
"""
from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from course_grade.kernels.processes import kill_tree
from tests.support.course import ASSIGNMENT, BIN, make_course, results, submit_as, tool_env
from tests.support.submissions import HONEST, submit_honest

pytestmark = pytest.mark.slow

CONFIG = "c.Execute.timeout = 20"


@pytest.fixture(scope="module", autouse=True)
def workers_can_be_hidden_from_the_course(tmp_path_factory):
    """The workers' mount namespace needs bwrap as root (or user namespaces)."""
    folder = tmp_path_factory.mktemp("hide")
    try:
        done = subprocess.run(["bwrap", "--dev-bind", "/", "/", "--tmpfs", str(folder), "--", "true"],
                              capture_output=True, text=True, timeout=60)
        why = done.stderr.strip() if done.returncode else None
    except OSError as exc:
        why = f"bwrap cannot run ({exc}): install Debian's bubblewrap"
    if why:
        if os.environ.get("CI"):
            pytest.fail(f"the cluster test cannot hide the course folder from its workers under CI: {why}")
        pytest.skip(f"the cluster test needs bwrap as root or with user namespaces: {why}")


class Cluster:
    """`dask scheduler` and `dask worker` processes on 127.0.0.1; workers cannot see `hidden`."""

    def __init__(self, home: Path, hidden: Path):
        self.home, self.hidden = home, hidden
        self.procs: dict[str, subprocess.Popen] = {}
        self.address = ""

    def _spawn(self, name: str, argv: list[str], cwd: Path, hide: bool) -> subprocess.Popen:
        cwd.mkdir(parents=True, exist_ok=True)
        if hide:  # a private mount namespace: the course folder is an empty tmpfs there
            argv = ["bwrap", "--dev-bind", "/", "/", "--tmpfs", str(self.hidden), "--chdir", str(cwd),
                    "--die-with-parent", "--", *argv]
        with open(self.home / f"{name}.log", "w") as log:  # the process writes to its own copy
            proc = subprocess.Popen(argv, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, env=tool_env(),
                                    start_new_session=True)
        self.procs[name] = proc
        return proc

    def start_scheduler(self) -> str:
        file = self.home / "scheduler.json"
        file.unlink(missing_ok=True)
        self._spawn("scheduler", [str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", "0",
                                  "--no-dashboard", "--scheduler-file", str(file)], self.home / "scheduler", hide=True)
        deadline = time.monotonic() + 60
        while not file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        self.address = json.loads(file.read_text())["address"]
        return self.address

    def add_worker(self, name: str) -> None:
        folder = self.home / name
        self._spawn(name, [str(BIN / "dask"), "worker", self.address, "--name", name, "--nthreads", "1",
                           "--nworkers", "1", "--no-dashboard", "--local-directory", str(folder)], folder, hide=True)

    def client(self):
        from distributed import Client

        return Client(self.address, timeout="30s")

    def wait_for_workers(self, n: int) -> None:
        with self.client() as client:
            client.wait_for_workers(n, timeout=120)

    def kill(self, name: str) -> None:
        proc = self.procs.pop(name)
        kill_tree([psutil.Process(proc.pid)])
        proc.wait(timeout=20)

    def close(self) -> None:
        for name in list(self.procs):
            self.kill(name)


def grade(course: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([str(BIN / "python"), "-m", "course_grade", "grade", ASSIGNMENT, "--no-feedback", *args],
                            cwd=course, env=tool_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_line(proc: subprocess.Popen, start: str, seen: list[str]) -> None:
    for line in proc.stdout:
        seen.append(line)
        if line.startswith(start):
            return
    raise AssertionError("the command ended before printing " + repr(start) + ":\n" + "".join(seen))


def finish(proc: subprocess.Popen, seen: list[str], timeout: int = 900) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, "".join(seen) + out, err


def submissions_per_student(course: Path) -> dict[str, int]:
    from nbgrader.api import Gradebook

    counts: dict[str, int] = {}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        for sub in gb.find_assignment(ASSIGNMENT).submissions:
            counts[sub.student_id] = counts.get(sub.student_id, 0) + 1
    return counts


def scores(course: Path, students) -> dict[str, dict]:
    return {s: {g: c.score for g, c in results(course, s).items()} for s in students}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    base = tmp_path_factory.mktemp("dask")
    courses = base / "courses"
    courses.mkdir()
    c = Cluster(base, courses)
    c.start_scheduler()
    for name in ("worker-a", "worker-b"):
        c.add_worker(name)
    c.wait_for_workers(2)
    yield c, courses
    c.close()


def test_workers_share_no_folder_with_the_course(cluster):
    c, courses = cluster
    course = make_course(courses / "visible", CONFIG)
    with c.client() as client:
        seen = client.run(lambda path: (os.listdir(path), os.getcwd()), str(course.parent))
    assert len(seen) == 2
    for listing, cwd in seen.values():
        assert listing == [], "a worker must not see the course folder"
        assert not cwd.startswith(str(courses))
    assert sorted(Path(cwd).name for _, cwd in seen.values()) == ["worker-a", "worker-b"]


def test_cluster_scores_equal_sequential_stock_nbgrader(cluster, stock_graded):
    c, courses = cluster
    course = make_course(courses / "gallery", CONFIG)
    submit_honest(course)
    proc = grade(course, "--scheduler", c.address)
    status, out, err = finish(proc, [])
    assert status == 0, out + err
    assert err == ""
    assert f"on the Dask cluster at {c.address}" in out
    _, stock = stock_graded
    for name, cells in stock.items():
        mine = results(course, name)
        assert {g: x.score for g, x in mine.items()} == {g: x.score for g, x in cells.items()}, name
        assert {g: x.message for g, x in mine.items()} == {g: x.message for g, x in cells.items()}, name
    with open(course / "grading-report.csv", newline="") as f:
        workers = {row["worker"] for row in csv.DictReader(f)}
    assert len(workers) == 2 and "" not in workers, f"both workers graded: {workers}"


def test_a_worker_killed_mid_run_loses_nothing_and_grades_everyone_once(cluster, stock_graded):
    c, courses = cluster
    course = make_course(courses / "fault", CONFIG)
    chosen = HONEST[:6]  # enough that the other worker still has work when one is killed
    for sub in chosen:
        submit_as(course, sub)
    students = sorted(s.name for s in chosen)
    proc = grade(course, "--scheduler", c.address)
    seen: list[str] = []
    wait_for_line(proc, "[1/", seen)
    with c.client() as client:  # the worker killed is in the middle of a submission
        busy = {addr: keys for addr, keys in client.processing().items() if keys}
        names = {addr: info["name"] for addr, info in client.scheduler_info()["workers"].items()}
    victim_addr, keys = next(iter(busy.items()))
    in_flight = [k for k in keys if k.startswith("grade-")]
    assert in_flight, busy
    c.kill(names[victim_addr])
    status, out, err = finish(proc, seen)
    assert status == 0, out + err
    assert submissions_per_student(course) == {s: 1 for s in students}
    _, stock = stock_graded
    assert scores(course, students) == {s: {g: x.score for g, x in stock[s].items()} for s in students}
    c.add_worker("worker-c")  # the cluster has two workers again for any later test
    c.wait_for_workers(2)


def test_a_lost_scheduler_keeps_what_was_merged_and_resume_grades_the_rest(tmp_path_factory, stock_graded):
    base = tmp_path_factory.mktemp("lost")
    c = Cluster(base, base / "courses")
    course = make_course(base / "courses" / "course", CONFIG)
    chosen = HONEST[:6]
    for sub in chosen:
        submit_as(course, sub)
    students = sorted(s.name for s in chosen)
    try:
        c.start_scheduler()
        for name in ("worker-a", "worker-b"):
            c.add_worker(name)
        c.wait_for_workers(2)
        proc = grade(course, "--scheduler", c.address)
        seen: list[str] = []
        wait_for_line(proc, "[1/", seen)
        c.kill("scheduler")
        status, out, err = finish(proc, seen)
    finally:
        c.close()
    assert status == 3, out + err
    assert f"Stopped: lost the connection to the Dask scheduler at {c.address}" in out
    assert "--resume" in out and "Traceback" not in out + err
    merged = submissions_per_student(course)
    assert merged and set(merged) < set(students) and set(merged.values()) == {1}
    for student in merged:  # each merge is whole: its autograded notebook and its grades
        assert (course / "autograded" / student / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").is_file()
    assert not list((course / "autograded").glob(f"*/.{ASSIGNMENT}.*")), "no partial folder is left"
    before = {s: (course / "autograded" / s / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").stat().st_mtime_ns for s in merged}

    resumed = subprocess.run([str(BIN / "python"), "-m", "course_grade", "grade", ASSIGNMENT, "--no-feedback",
                              "--resume", "--jobs", "2"], cwd=course, env=tool_env(), capture_output=True, text=True,
                             timeout=900)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert f"Resuming: {len(merged)} already graded, {len(students) - len(merged)} to grade." in resumed.stdout
    assert submissions_per_student(course) == {s: 1 for s in students}
    after = {s: (course / "autograded" / s / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").stat().st_mtime_ns for s in merged}
    assert after == before, "--resume must not regrade what was already graded"
    _, stock = stock_graded
    assert scores(course, students) == {s: {g: x.score for g, x in stock[s].items()} for s in students}
    report = (course / "grading-report.csv").read_text()
    assert report.count("\n") == len(students) + 1 and "not graded" not in report


def test_ctrl_c_stops_cleanly_and_keeps_what_was_merged(tmp_path, stock_graded):
    course = make_course(tmp_path / "course", CONFIG)
    chosen = HONEST[:5]
    for sub in chosen:
        submit_as(course, sub)
    proc = grade(course, "--jobs", "2")
    seen: list[str] = []
    wait_for_line(proc, "[1/", seen)
    family = psutil.Process(proc.pid).children(recursive=True)  # the local cluster's processes and kernels
    assert any("ipykernel" in " ".join(p.cmdline()) for p in family if p.is_running())
    proc.send_signal(signal.SIGINT)
    status, out, err = finish(proc, seen, timeout=120)
    assert status == 3, out + err
    assert "Stopped: Ctrl-C" in out and "--resume" in out
    assert "Traceback" not in out + err, out + err
    merged = submissions_per_student(course)
    assert merged and set(merged.values()) == {1}
    _, stock = stock_graded
    assert scores(course, merged) == {s: {g: x.score for g, x in stock[s].items()} for s in merged}
    _, alive = psutil.wait_procs(family, timeout=30)
    assert not alive, f"processes outlived the command: {[p.cmdline() for p in alive]}"
