"""How long nbgrader takes to autograde one submission: the solution and the blank release.

Run on demand (not part of the test suite):  .venv/bin/python -m bench.autograde_time [--runs 3]

Prints, side by side from one run: the whole-process wall time of `nbgrader autograde` for a
single submission (median of N), and the bare execution of the same notebook in a fresh
kernel (nbclient, no nbgrader) as the floor, with their ratio.
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from tests.support.course import (
    RELEASE_NB,
    answers_file,
    autograde,
    make_course,
    results,
    right_answers,
    solutions,
    student_notebook,
    submit,
)


def bare_execution(nb, folder: Path) -> float:
    nb = nbformat.from_dict(nb)
    # the lesson's Grade my notebook button would start a self-grading service in the
    # background, and its CPU would count against the floor: not in the bare kernel
    before = os.environ.get("COURSE_SELFGRADE_SERVICE")
    os.environ["COURSE_SELFGRADE_SERVICE"] = "off"
    try:
        start = time.perf_counter()
        NotebookClient(nb, timeout=60, allow_errors=True, resources={"metadata": {"path": str(folder)}}).execute()
        return time.perf_counter() - start
    finally:
        if before is None:
            os.environ.pop("COURSE_SELFGRADE_SERVICE", None)
        else:
            os.environ["COURSE_SELFGRADE_SERVICE"] = before


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    runs = parser.parse_args().runs

    submissions = {  # name: (notebook, quiz answers file)
        "solution": (student_notebook(solutions()), answers_file(right_answers())),
        "blank release": (nbformat.read(RELEASE_NB, as_version=4), None),
    }
    print(f"{'submission':<15} {'score':>7} {'autograde (median)':>19} {'runs':>24} {'bare run':>9} {'ratio':>6}")
    with tempfile.TemporaryDirectory() as tmp:
        course = make_course(Path(tmp) / "course")
        for i, (name, (nb, quiz)) in enumerate(submissions.items()):
            student = f"s{i}"
            submit(course, student, nb, quiz)
            times = []
            for _ in range(runs):
                done, seconds = autograde(course, f"--student={student}")
                if done.returncode:
                    raise SystemExit(done.stderr[-2000:])
                times.append(seconds)
            cells = results(course, student)
            score = f"{sum(c.score for c in cells.values()):g}/{sum(c.max_score for c in cells.values()):g}"
            floor_dir = Path(tmp) / f"bare-{i}"
            floor_dir.mkdir()
            if quiz:
                (floor_dir / "quiz_answers.json").write_text(quiz)
            floor = statistics.median(bare_execution(nb, floor_dir) for _ in range(runs))
            median = statistics.median(times)
            print(f"{name:<15} {score:>7} {median:>18.2f}s {', '.join(f'{t:.2f}' for t in times):>24} "
                  f"{floor:>8.2f}s {median / floor:>5.2f}x")


if __name__ == "__main__":
    main()
