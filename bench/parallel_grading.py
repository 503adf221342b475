"""Class-scale grading: stock sequential `nbgrader autograde` against `python -m course_grade grade`.

Run on demand (not part of the test suite):
    .venv/bin/python bench/parallel_grading.py [--submissions 40] [--jobs 2]

From one run on the same N submissions (honest ones from tests/submissions.py, repeated):
  1. wall time of stock sequential `nbgrader autograde`, of the grading command with `--jobs`
     workers, and of the command with kernels started on demand (`--no-spare-kernels`), with
     the speed-up of each over sequential, and whether all scores are identical;
  2. per-submission grading time against its floor: the command with one worker (wall / N,
     everything included: worker start, scratch folders, merging) against a bare execution of
     the *same* notebooks (each submission's notebook as nbgrader ran it: hidden tests
     restored, outputs cleared) in a fresh kernel with nbclient, no nbgrader, one at a time;
  3. the same at full parallelism: wall x jobs / N against the bare executions run `jobs` at
     a time, so grading overhead and two kernels contending for two cores can be told apart;
  4. the sandbox's cost (course_grade/sandbox.py): the grading command on the same submissions
     with the sandbox and with COURSE_SANDBOX=off, side by side (the two runs alternate, twice
     each), per-submission times from grading-report.csv and the ratio.
     `--sandbox-only` runs just this comparison.
"""
from __future__ import annotations

import argparse
import collections
import csv
import statistics
import itertools
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from autograde_time import bare_execution  # noqa: E402
from course import ASSIGNMENT, BIN, autograde, graded_cells, make_course, results, submit_as, tool_env  # noqa: E402
from submissions import CORRECT_VARIANTS, QUIZ_CASES, WRONG  # noqa: E402


def _bare_run(task: tuple[str, str]) -> float:
    """One bare execution (in a pool process when run in parallel)."""
    notebook, folder = task
    return bare_execution(nbformat.read(notebook, as_version=4), Path(folder))


def graded_notebook(course: Path, student: str, into: Path) -> tuple[str, str]:
    """The notebook nbgrader ran for `student`, outputs cleared, in a folder with its files."""
    graded = course / "autograded" / student / ASSIGNMENT
    folder = into / student
    folder.mkdir(parents=True)
    for item in (course / "submitted" / student / ASSIGNMENT).iterdir():
        if item.suffix != ".ipynb":
            (folder / item.name).write_bytes(item.read_bytes())
    nb = nbformat.read(graded / f"{ASSIGNMENT}.ipynb", as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    path = into / f"{student}.ipynb"
    nbformat.write(nb, path)
    return str(path), str(folder)


def command(course: Path, jobs: int, *extra: str, **env: str) -> float:
    start = time.perf_counter()
    run = subprocess.run([str(BIN / "python"), "-m", "course_grade", "grade", ASSIGNMENT, "--jobs", str(jobs),
                          "--no-feedback", *extra], cwd=course, env=tool_env(**env), capture_output=True, text=True)
    assert run.returncode == 0, run.stdout[-3000:]
    return time.perf_counter() - start


def scores(course: Path, students: list[str]) -> dict:
    return {s: {g: c.score for g, c in results(course, s).items()} for s in students}


def report_seconds(course: Path) -> dict[str, tuple[float, str, str]]:
    """student -> (seconds, status, sandbox) from the command's grading-report.csv."""
    with open(course / "grading-report.csv") as f:
        return {r["student"]: (float(r["seconds"]), r["status"], r.get("sandbox", "")) for r in csv.DictReader(f)}


def sandbox_side_by_side(chosen: list, jobs: int, tmp: Path, rounds: int = 2) -> None:
    """The grading command with and without the sandbox on the same submissions, alternating."""
    courses = {}
    for way in ("sandbox", "no-sandbox"):
        course = courses[way] = make_course(tmp / f"side-{way}")
        for i, sub in enumerate(chosen):
            submit_as(course, type(sub)(**{**sub.__dict__, "name": f"s{i:03d}-{sub.name}"}))
    students = sorted(p.name for p in (courses["sandbox"] / "submitted").iterdir())
    n = len(students)
    wall: dict[str, list[float]] = {"sandbox": [], "no-sandbox": []}
    per: dict[str, dict[str, list[float]]] = {w: collections.defaultdict(list) for w in wall}
    marks: dict[str, set] = {w: set() for w in wall}
    for _ in range(rounds):
        for way in ("sandbox", "no-sandbox"):
            env = {"COURSE_SANDBOX": "off"} if way == "no-sandbox" else {}
            wall[way].append(command(courses[way], jobs, **env))
            for student, (seconds, status, mark) in report_seconds(courses[way]).items():
                assert status == "graded", (way, student, status)
                per[way][student].append(seconds)
                marks[way].add(mark)
    identical = scores(courses["sandbox"], students) == scores(courses["no-sandbox"], students)
    print(f"\nSandbox cost: {n} submissions, {jobs} jobs, {rounds} alternating runs each; "
          f"report says sandbox={sorted(marks['sandbox'])[0][:3]!r} / {sorted(marks['no-sandbox'])[0][:3]!r}; "
          f"scores identical: {identical}")
    print(f"{'submission':<52} {'sandbox':>9} {'no sandbox':>11} {'ratio':>7}")
    for s in students:
        a, b = statistics.median(per["sandbox"][s]), statistics.median(per["no-sandbox"][s])
        print(f"{s:<52} {a:8.2f}s {b:10.2f}s {a / b:6.2f}x")
    a = statistics.mean(statistics.median(v) for v in per["sandbox"].values())
    b = statistics.mean(statistics.median(v) for v in per["no-sandbox"].values())
    print(f"{'mean per-submission time (report seconds)':<52} {a:8.2f}s {b:10.2f}s {a / b:6.2f}x")
    wa, wb = min(wall["sandbox"]) / n, min(wall["no-sandbox"]) / n
    print(f"{'best wall time / N (everything included)':<52} {wa:8.2f}s {wb:10.2f}s {wa / wb:6.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submissions", type=int, default=40)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--sandbox-only", action="store_true", help="only the sandbox / no-sandbox comparison")
    args = parser.parse_args()
    pool = CORRECT_VARIANTS + WRONG + QUIZ_CASES
    chosen = list(itertools.islice(itertools.cycle(pool), args.submissions))
    if args.sandbox_only:
        with tempfile.TemporaryDirectory() as tmp:
            sandbox_side_by_side(chosen, args.jobs, Path(tmp))
        return
    ways = ("sequential", "command", "on-demand kernels", "one worker")

    with tempfile.TemporaryDirectory() as tmp:
        courses = {}
        for way in ways:
            course = courses[way] = make_course(Path(tmp) / way.replace(" ", "-"))
            for i, sub in enumerate(chosen):
                submit_as(course, type(sub)(**{**sub.__dict__, "name": f"s{i:03d}-{sub.name}"}))
        students = sorted(p.name for p in (courses["sequential"] / "submitted").iterdir())
        n = len(students)

        wall = {}
        done, wall["sequential"] = autograde(courses["sequential"])
        assert done.returncode == 0, done.stderr[-2000:]
        wall["command"] = command(courses["command"], args.jobs)
        wall["on-demand kernels"] = command(courses["on-demand kernels"], args.jobs, "--no-spare-kernels")
        wall["one worker"] = command(courses["one worker"], 1)
        reference = scores(courses["sequential"], students)
        identical = all(scores(courses[w], students) == reference for w in ways[1:])

        # the floor: each distinct submission's own notebook, bare, weighted by how often it occurs
        kinds = collections.Counter(s.split("-", 1)[1] for s in students)
        first = {kind: next(s for s in students if s.endswith("-" + kind)) for kind in kinds}
        tasks = {kind: graded_notebook(courses["sequential"], first[kind], Path(tmp) / "bare") for kind in kinds}
        alone = {kind: _bare_run(task) for kind, task in tasks.items()}
        floor = sum(alone[k] * c for k, c in kinds.items()) / n
        with multiprocessing.get_context("spawn").Pool(args.jobs) as workers:
            workers.map(_bare_run, list(tasks.values())[:args.jobs])  # start the pool's processes
            order = [tasks[s.split("-", 1)[1]] for s in students]
            start = time.perf_counter()
            workers.map(_bare_run, order, chunksize=1)
            floor_parallel = (time.perf_counter() - start) * args.jobs / n

    print(f"{n} submissions ({len(kinds)} different notebooks), {args.jobs} jobs, {os.cpu_count()} cores, "
          f"{len(graded_cells())} graded cells each; scores identical in all four runs: {identical}")
    print(f"\n{'class wall time':<44} {'total':>8} {'per sub.':>9} {'speed-up':>9}")
    for way, label in (("sequential", "sequential nbgrader autograde"),
                       ("command", f"python -m course_grade grade --jobs {args.jobs}"),
                       ("on-demand kernels", "  same, --no-spare-kernels")):
        print(f"{label:<44} {wall[way]:7.1f}s {wall[way] / n:8.2f}s {wall['sequential'] / wall[way]:8.2f}x")
    print("(target: >= 1.8x faster than sequential on 2 cores)")
    one = wall["one worker"] / n
    per = wall["command"] * args.jobs / n
    print(f"\n{'per-submission grading time':<44} {'cost':>8} {'floor':>9} {'ratio':>9}")
    print(f"{'one worker (wall / N) vs bare, one at a time':<44} {one:7.2f}s {floor:8.2f}s {one / floor:8.2f}x"
          "   (target <= 1.3x)")
    print(f"{f'{args.jobs} workers (wall x jobs / N) vs bare, {args.jobs} at a time':<44} {per:7.2f}s "
          f"{floor_parallel:8.2f}s {per / floor_parallel:8.2f}x")
    print(f"{f'{args.jobs} workers vs bare, one at a time':<44} {per:7.2f}s {floor:8.2f}s {per / floor:8.2f}x"
          "   (includes two kernels contending for two cores)")
    with tempfile.TemporaryDirectory() as tmp:
        sandbox_side_by_side(chosen, args.jobs, Path(tmp))


if __name__ == "__main__":
    main()
