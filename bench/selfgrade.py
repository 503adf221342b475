"""How long a click on **Grade my notebook** takes, against a bare run of the same notebook.

Run on demand (not part of the test suite):  .venv/bin/python -m bench.selfgrade [--runs 3]

Prints, from one run, for the lesson's solution (with its quiz answers):
  1. a cold first click: `python -m course_grade selfgrade NOTEBOOK` with no service running
     and nothing cached (generate_assignment, service start, kernel start, grading);
  2. a cold click with the assignment cached (a new service, no generate_assignment);
  3. a warm click: the service up and its spare kernel booted (median of N);
  4. the same click without a service (COURSE_SELFGRADE_SERVICE=off: graded in the command's
     own process, the assignment cached);
  5. the floor: a bare nbclient run of the notebook nbgrader ran (hidden tests restored,
     outputs cleared) in a fresh kernel, no nbgrader (median of N),
and the ratio warm click / bare run (the target is 2x or less).
A private runtime folder and cache are used, so a service you run is not touched.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

from bench.autograde_time import bare_execution
from tests.support.course import ASSIGNMENT, answers_file, right_answers, solutions, student_notebook, tool_env

ROOT = Path(__file__).resolve().parents[1]


def click(notebook: Path, **env: str) -> float:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "course_grade", "selfgrade", str(notebook), "--course", str(ROOT)],
                          cwd=notebook.parent, env=tool_env(**env), capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode or "Score: 23/23" not in done.stdout:
        raise SystemExit(f"self-grading failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return seconds


def wait_for_spare(course: Path) -> dict:
    from course_grade.selfgrade import service

    for _ in range(600):
        found = service.status(course)
        if found and found.get("spare_ready"):  # booted, its imports preloaded
            return found
        time.sleep(0.1)
    raise SystemExit("the self-grading service did not come up")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    runs = parser.parse_args().runs

    with tempfile.TemporaryDirectory(prefix="cg-bench-") as tmp:
        tmp = Path(tmp)
        (tmp / "run").mkdir()
        (tmp / "cache").mkdir()
        os.environ.update(XDG_RUNTIME_DIR=str(tmp / "run"), XDG_CACHE_HOME=str(tmp / "cache"))
        learner = tmp / "learner"
        learner.mkdir()
        notebook = learner / f"{ASSIGNMENT}.ipynb"
        nbformat.write(student_notebook(solutions()), notebook)
        (learner / "quiz_answers.json").write_text(answers_file(right_answers()))

        from course_grade.selfgrade import client as selfgrade
        from course_grade.selfgrade import service

        try:
            cold = click(notebook)
            service.stop(ROOT)
            time.sleep(1)
            cold_cached = click(notebook)
            first = wait_for_spare(ROOT)
            warm = []
            for _ in range(runs):
                warm.append(click(notebook))
                wait_for_spare(ROOT)
            again = service.status(ROOT)
            graded, where = selfgrade.grade_notebook(notebook, ROOT)
            wait_for_spare(ROOT)
        finally:
            service.stop(ROOT)
        same = again["pid"] == first["pid"] and again["generated"] == 0 and where == "service"
        here = statistics.median(click(notebook, COURSE_SELFGRADE_SERVICE="off") for _ in range(max(1, runs // 2)))

        nb = nbformat.reads(graded.files[f"{ASSIGNMENT}.ipynb"].decode(), as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code":
                cell.outputs, cell.execution_count = [], None
        floor_dir = tmp / "bare"
        floor_dir.mkdir()
        (floor_dir / "quiz_answers.json").write_text(answers_file(right_answers()))
        bare = [bare_execution(nb, floor_dir) for _ in range(runs)]

    w, b = statistics.median(warm), statistics.median(bare)
    print(f"cold first click (no service, nothing cached): {cold:6.2f}s")
    print(f"cold click, assignment cached (new service):   {cold_cached:6.2f}s")
    print(f"warm click (service up, spare booted, median): {w:6.2f}s   runs: {', '.join(f'{t:.2f}' for t in warm)}")
    print(f"no service (graded in the command's process):  {here:6.2f}s")
    print(f"bare nbclient run of the graded notebook:      {b:6.2f}s   runs: {', '.join(f'{t:.2f}' for t in bare)}")
    print(f"warm click / bare run: {w / b:.2f}x (target: 2x or less); "
          f"service reused without generate_assignment: {same}")
    print(f"load average: {', '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
