"""Class-scale grading: stock sequential `nbgrader autograde` against `python -m autograder grade`.

Run on demand (not part of the test suite):
    .venv/bin/python bench/parallel_grading.py [--submissions 40] [--jobs 2]

Prints, from one run on the same N submissions (honest ones from tests/submissions.py,
repeated): the wall time of each way and their ratio, whether the scores are identical, and
the parallel command's cost per submission (wall time x jobs / N) against the floor: a bare
execution, in a fresh kernel (nbclient, no nbgrader), of the notebook nbgrader ran for the
solution submission (hidden tests restored, outputs cleared), median of 3 -- and the same
bare execution run `jobs` at a time, so that grading overhead and the machine's contention
between parallel kernels can be told apart.
"""
from __future__ import annotations

import argparse
import itertools
import os
import shutil
import statistics
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
    """One bare execution in a pool process (nbclient already imported there)."""
    notebook, folder = task
    return bare_execution(nbformat.read(notebook, as_version=4), Path(folder))


def bare_in_parallel(notebook: Path, folder: Path, jobs: int, runs: int, tmp: Path) -> float:
    """Per-notebook cost of `runs` bare executions, `jobs` at a time: wall x jobs / runs."""
    import multiprocessing

    tasks = []
    for i in range(runs + jobs):
        shutil.copytree(folder, tmp / f"bare-par-{i}")
        tasks.append((str(notebook), str(tmp / f"bare-par-{i}")))
    with multiprocessing.get_context("spawn").Pool(jobs) as pool:
        pool.map(_bare_run, tasks[:jobs])  # warm up: start the pool's processes
        start = time.perf_counter()
        pool.map(_bare_run, tasks[jobs:], chunksize=1)
        return (time.perf_counter() - start) * jobs / runs


def scores(course: Path, students: list[str]) -> dict:
    return {s: {g: c.score for g, c in results(course, s).items()} for s in students}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submissions", type=int, default=40)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    pool = CORRECT_VARIANTS + WRONG + QUIZ_CASES
    chosen = list(itertools.islice(itertools.cycle(pool), args.submissions))

    with tempfile.TemporaryDirectory() as tmp:
        courses = {}
        for way in ("sequential", "parallel"):
            course = courses[way] = make_course(Path(tmp) / way)
            for i, sub in enumerate(chosen):
                sub_copy = type(sub)(**{**sub.__dict__, "name": f"s{i:03d}-{sub.name}"})
                submit_as(course, sub_copy)
        students = sorted(p.name for p in (courses["sequential"] / "submitted").iterdir())

        done, sequential = autograde(courses["sequential"])
        assert done.returncode == 0, done.stderr[-2000:]
        start = time.perf_counter()
        run = subprocess.run([str(BIN / "python"), "-m", "autograder", "grade", ASSIGNMENT, "--jobs", str(args.jobs),
                              "--no-feedback"], cwd=courses["parallel"], env=tool_env(), capture_output=True, text=True)
        parallel = time.perf_counter() - start
        assert run.returncode == 0, run.stdout[-3000:]
        identical = scores(courses["sequential"], students) == scores(courses["parallel"], students)

        # the floor runs the very notebook nbgrader ran (hidden tests restored), outputs cleared
        solution = next(s for s in students if s.endswith("-solution"))
        graded_dir = courses["parallel"] / "autograded" / solution / ASSIGNMENT
        nb = nbformat.read(graded_dir / f"{ASSIGNMENT}.ipynb", as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code":
                cell.outputs, cell.execution_count = [], None
        floor_dir = Path(tmp) / "bare"
        shutil.copytree(courses["parallel"] / "submitted" / solution / ASSIGNMENT, floor_dir)
        floor = statistics.median(bare_execution(nb, floor_dir) for _ in range(3))
        cleared = Path(tmp) / "cleared.ipynb"
        nbformat.write(nb, cleared)
        floor_parallel = bare_in_parallel(cleared, floor_dir, args.jobs, 8, Path(tmp))

    n, per = len(students), parallel * args.jobs / len(students)
    print(f"{n} submissions, {args.jobs} jobs, {os.cpu_count()} cores, {len(graded_cells())} graded cells each")
    print(f"{'sequential nbgrader autograde':<34} {sequential:8.1f} s  ({sequential / n:5.2f} s per submission)")
    print(f"{'python -m autograder grade':<34} {parallel:8.1f} s  ({parallel / n:5.2f} s per submission)")
    print(f"{'speed-up':<34} {sequential / parallel:8.2f} x   (target >= 1.8 x on 2 cores)")
    print(f"{'scores identical':<34} {identical}")
    print(f"{'per-submission cost (wall x jobs / N)':<34} {per:8.2f} s")
    print(f"{'bare execution in a fresh kernel':<34} {floor:8.2f} s  (median of 3)")
    print(f"{'cost / floor':<34} {per / floor:8.2f} x   (target <= 1.3 x)")
    print(f"{'bare execution, ' + str(args.jobs) + ' at a time':<34} {floor_parallel:8.2f} s  (wall x jobs / 8 runs)")
    print(f"{'cost / floor at equal parallelism':<34} {per / floor_parallel:8.2f} x")


if __name__ == "__main__":
    main()
