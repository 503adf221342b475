"""Class-scale grading: stock sequential `nbgrader autograde`, the previous grading command,
and the Dask engine (`course-grade grade`), side by side in one run, with identical scores.

Run on demand (not part of the test suite):
    .venv/bin/python -m bench.parallel_grading [--submissions 40] [--jobs 2] [--baseline REV]

From one run on the same N submissions (the gallery's honest kinds from tests/support/submissions.py,
repeated: correct variants, wrong ones, quiz cases):
  1. class wall time, grading only (best of `--rounds` alternating runs of sequential nbgrader
     and the Dask command, each round's figure printed too) (autograded notebooks, gradebook; the command runs with
     `--no-feedback`): stock sequential `nbgrader autograde`; the grading command as it was
     before Dask (its code taken from git revision REV, default the last one before the move,
     with its hand-written worker pool); `course-grade grade --jobs J` on its LocalCluster;
     with the speed-up of each over sequential, and whether all scores are identical
     (targets: Dask >= 3x sequential, and no slower than the previous command); then grading
     with feedback pages: `nbgrader autograde` followed by `nbgrader generate_feedback`,
     against the command's default (each worker makes its students' pages);
  2. per-submission cost on one worker (`--jobs 1`, wall / N, everything included: cluster
     start, bundles, merging) against a bare execution of the *same* notebooks (each
     submission's notebook as nbgrader ran it: hidden tests restored, outputs cleared) in a
     fresh kernel with nbclient, no nbgrader, one at a time;
  3. self-grading, from click to score, against a bare run (bench/selfgrade.py, run after);
  4. with `--sandbox`, the sandbox's cost: the command with and without it, alternating; with
     `--not-root`, the command as root and as a grader who is not root (the sandbox in a user
     namespace, no zygote), alternating, with identical scores;
  5. the judge's cost (course_grade/judge/, which stock nbgrader runs too): each way once more
     with `c.JudgeBuildSteps.enabled = False` (a bare run: the in-kernel checks alone), and the
     time the judge adds per submission.
With `--quick`, only sequential nbgrader and the Dask command, both ways (e.g. `--submissions 120 --quick`:
the command's fixed cost, cluster start and the final export, spread over more submissions).
"""
from __future__ import annotations

import argparse
import collections
import csv
import itertools
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat

from bench.autograde_time import bare_execution
from tests.support.course import ASSIGNMENT, BIN, autograde, graded_cells, make_course, results, submit_as, tool_env
from tests.support.submissions import CORRECT_VARIANTS, QUIZ_CASES, WRONG


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


def command(course: Path, jobs: int, *extra: str, feedback: bool = False, **env: str) -> float:
    """The grading command's wall time: grading only (as `nbgrader autograde`), or with feedback."""
    start = time.perf_counter()
    run = subprocess.run([str(BIN / "python"), "-m", "course_grade", "grade", ASSIGNMENT, "--jobs", str(jobs),
                          *([] if feedback else ["--no-feedback"]), *extra], cwd=course, env=tool_env(**env),
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return time.perf_counter() - start


ROOT = Path(__file__).resolve().parents[1]
BASELINE = "b16e982"  # the last revision before grading moved to Dask


def baseline_code(rev: str, into: Path) -> Path:
    """The grading command's package as it was at `rev` (run with PYTHONPATH pointing here)."""
    into.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "course_grade"], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into


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


@dataclass
class Graders:
    """The same class graded by root and by a grader who is not root (`not_root_side_by_side`)."""
    n: int
    jobs: int
    wall: dict[str, list[float]]  # way -> each round's wall time (everything included)
    per: dict[str, dict[str, list[float]]]  # way -> student -> each round's seconds (the report's)
    sandbox: dict[str, set[str]]  # way -> the report's sandbox column, over every row and round
    scores: dict[str, dict]  # way -> student -> graded cell -> score

    def identical(self) -> bool:
        return self.scores["root"] == self.scores["not root"]


def not_root_side_by_side(chosen: list, jobs: int, tmp: Path, rounds: int = 2) -> Graders:
    """`course-grade grade` on the same submissions as root (zygote, sandbox as root) and as an
    unprivileged grader (tests/support/unprivileged.py: make hub's instructor environment, the
    sandbox in a user namespace, kernels booted), alternating. Needs root."""
    from tests.support import unprivileged

    user, env = unprivileged.grader(), unprivileged.grader_env()
    public = unprivileged.public_folder("bench-not-root-")
    try:
        courses = {"root": make_course(tmp / "root"), "not root": make_course(public / "course")}
        for course in courses.values():
            for i, sub in enumerate(chosen):
                submit_as(course, type(sub)(**{**sub.__dict__, "name": f"s{i:03d}-{sub.name}"}))
        unprivileged.give(courses["not root"], user)
        students = sorted(p.name for p in (courses["root"] / "submitted").iterdir())
        ways = tuple(courses)
        wall: dict[str, list[float]] = {w: [] for w in ways}
        per: dict[str, dict[str, list[float]]] = {w: collections.defaultdict(list) for w in ways}
        marks: dict[str, set] = {w: set() for w in ways}
        for _ in range(rounds):
            wall["root"].append(command(courses["root"], jobs))
            start = time.perf_counter()
            done = unprivileged.grade_as(user, env, courses["not root"], ASSIGNMENT, "--jobs", str(jobs),
                                         "--no-feedback")
            wall["not root"].append(time.perf_counter() - start)
            assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
            for way in ways:
                for student, (seconds, status, mark) in report_seconds(courses[way]).items():
                    assert status == "graded", (way, student, status)
                    per[way][student].append(seconds)
                    marks[way].add(mark)
        return Graders(len(students), jobs, wall, {w: dict(v) for w, v in per.items()}, marks,
                       {w: scores(courses[w], students) for w in ways})
    finally:
        subprocess.run(["rm", "-rf", "--one-file-system", str(public)], check=False)


def print_graders(g: Graders) -> None:
    print(f"\nRoot and not root: {g.n} submissions, {g.jobs} jobs, {len(g.wall['root'])} alternating runs each; "
          f"report says sandbox={sorted(g.sandbox['root'])} / {sorted(g.sandbox['not root'])}; "
          f"scores identical: {g.identical()}")
    print(f"{'grading command':<52} {'root':>9} {'not root':>9} {'ratio':>7}")
    a = statistics.mean(statistics.median(v) for v in g.per["root"].values())
    b = statistics.mean(statistics.median(v) for v in g.per["not root"].values())
    print(f"{'mean per-submission time (report seconds)':<52} {a:8.2f}s {b:8.2f}s {b / a:6.2f}x")
    wa, wb = min(g.wall["root"]) / g.n, min(g.wall["not root"]) / g.n
    print(f"{'best wall time / N (everything included)':<52} {wa:8.2f}s {wb:8.2f}s {wb / wa:6.2f}x")


def with_feedback(wall: dict, n: int, jobs: int) -> None:
    """The same class graded and given feedback pages: stock nbgrader's two commands, one after
    the other, against the command's default (each worker makes its students' pages)."""
    print(f"\n{'grading and feedback pages':<52} {'total':>8} {'per sub.':>9} {'speed-up':>9}")
    for way, label in (("sequential feedback", "nbgrader autograde, then generate_feedback"),
                       ("dask feedback", f"course-grade grade --jobs {jobs} (with feedback)")):
        print(f"{label:<52} {wall[way]:7.1f}s {wall[way] / n:8.2f}s {wall['sequential feedback'] / wall[way]:8.2f}x")


def judge_cost(wall: dict, n: int, jobs: int) -> None:
    """The judge's added time per submission, against a bare run of the same way (judge off)."""
    print(f"\n{'the judge (bare: c.JudgeBuildSteps.enabled = False)':<52} {'bare':>8} {'judged':>9} {'added':>9}")
    for way, label in (("sequential", "sequential nbgrader autograde, per submission"),
                       ("dask", f"course-grade grade --jobs {jobs}, per submission")):
        bare, judged = wall[f"{way} without the judge"] / n, wall[way] / n
        print(f"{label:<52} {bare:7.2f}s {judged:8.2f}s {judged - bare:8.2f}s")
    print(f"{'speed-up over sequential, both without the judge':<52} {'':>8} {'':>9} "
          f"{wall['sequential without the judge'] / wall['dask without the judge']:8.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submissions", type=int, default=40)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--baseline", default=BASELINE, help="git revision of the previous grading command")
    parser.add_argument("--sandbox", action="store_true", help="also compare with and without the sandbox")
    parser.add_argument("--sandbox-only", action="store_true", help="only the sandbox / no-sandbox comparison")
    parser.add_argument("--not-root", action="store_true",
                        help="also compare root with a grader who is not root (needs root)")
    parser.add_argument("--not-root-only", action="store_true", help="only the root / not-root comparison")
    parser.add_argument("--rounds", type=int, default=2,
                        help="alternating runs of sequential nbgrader and the Dask command (best of each is shown)")
    parser.add_argument("--quick", action="store_true",
                        help="only sequential nbgrader and the Dask command "
                             "(e.g. with more submissions: fixed costs amortised)")
    args = parser.parse_args()
    pool = CORRECT_VARIANTS + WRONG + QUIZ_CASES
    chosen = list(itertools.islice(itertools.cycle(pool), args.submissions))
    if args.sandbox_only:
        with tempfile.TemporaryDirectory() as tmp:
            sandbox_side_by_side(chosen, args.jobs, Path(tmp))
        return
    if args.not_root_only:
        with tempfile.TemporaryDirectory() as tmp:
            print_graders(not_root_side_by_side(chosen, args.jobs, Path(tmp), args.rounds))
        return
    ways = ("sequential", "dask", "dask feedback") if args.quick else \
        ("sequential", "previous", "dask", "dask one worker", "dask feedback")
    bare_ways = ("sequential without the judge", "dask without the judge")

    with tempfile.TemporaryDirectory() as tmp:
        previous = baseline_code(args.baseline, Path(tmp) / "baseline")
        courses = {}
        for way in ways:
            course = courses[way] = make_course(Path(tmp) / way.replace(" ", "-"))
            for i, sub in enumerate(chosen):
                submit_as(course, type(sub)(**{**sub.__dict__, "name": f"s{i:03d}-{sub.name}"}))
        for way in bare_ways:
            course = courses[way] = make_course(Path(tmp) / way.replace(" ", "-"),
                                                extra_config="c.JudgeBuildSteps.enabled = False\n")
            for i, sub in enumerate(chosen):
                submit_as(course, type(sub)(**{**sub.__dict__, "name": f"s{i:03d}-{sub.name}"}))
        students = sorted(p.name for p in (courses["sequential"] / "submitted").iterdir())
        n = len(students)

        wall = {}
        # the two headline runs alternate, `--rounds` times (the same regrading each time): this
        # machine's speed drifts by 10% from minute to minute, and each figure is its best round
        rounds: dict[str, list[float]] = {"sequential": [], "dask": []}
        for _ in range(args.rounds):
            done, seconds = autograde(courses["sequential"])
            assert done.returncode == 0, done.stderr[-2000:]
            rounds["sequential"].append(seconds)
            rounds["dask"].append(command(courses["dask"], args.jobs))
        wall["sequential"], wall["dask"] = min(rounds["sequential"]), min(rounds["dask"])
        start = time.perf_counter()
        done = subprocess.run([str(BIN / "nbgrader"), "generate_feedback", ASSIGNMENT, "--force"],
                              cwd=courses["sequential"], env=tool_env(), capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-2000:]
        wall["sequential feedback"] = rounds["sequential"][-1] + time.perf_counter() - start
        if not args.quick:
            wall["previous"] = command(courses["previous"], args.jobs, PYTHONPATH=str(previous))
        wall["dask feedback"] = command(courses["dask feedback"], args.jobs, feedback=True)
        if not args.quick:
            wall["dask one worker"] = command(courses["dask one worker"], 1)
        done, wall["sequential without the judge"] = autograde(courses["sequential without the judge"])
        assert done.returncode == 0, done.stderr[-2000:]
        wall["dask without the judge"] = command(courses["dask without the judge"], args.jobs)
        reference = scores(courses["sequential"], students)
        identical = all(scores(courses[w], students) == reference for w in ways[1:])
        spread = "; ".join(f"{way}: " + ", ".join(f"{t:.1f}s" for t in times) for way, times in rounds.items())
        if args.quick:
            print(f"{n} submissions, {args.jobs} jobs, {os.cpu_count()} cores; scores identical: {identical}")
            print(f"rounds ({spread}); best of each below")
            for way, label in (("sequential", "sequential nbgrader autograde"),
                               ("dask", f"course-grade grade --jobs {args.jobs} (LocalCluster)")):
                print(f"{label:<52} {wall[way]:7.1f}s {wall[way] / n:8.2f}s {wall['sequential'] / wall[way]:8.2f}x")
            with_feedback(wall, n, args.jobs)
            judge_cost(wall, n, args.jobs)
            return

        # the floor: each distinct submission's own notebook, bare, weighted by how often it occurs
        kinds = collections.Counter(s.split("-", 1)[1] for s in students)
        first = {kind: next(s for s in students if s.endswith("-" + kind)) for kind in kinds}
        tasks = {kind: graded_notebook(courses["sequential"], first[kind], Path(tmp) / "bare") for kind in kinds}
        alone = {kind: _bare_run(task) for kind, task in tasks.items()}
        floor = sum(alone[k] * c for k, c in kinds.items()) / n

    print(f"{n} submissions ({len(kinds)} different notebooks), {args.jobs} jobs, {os.cpu_count()} cores, "
          f"{len(graded_cells())} graded cells each; scores identical in all runs: {identical}")
    print(f"alternating rounds ({spread}); best of each below")
    print(f"\n{'class wall time':<52} {'total':>8} {'per sub.':>9} {'speed-up':>9}")
    for way, label in (("sequential", "sequential nbgrader autograde"),
                       ("previous", f"previous command ({args.baseline}) --jobs {args.jobs}"),
                       ("dask", f"course-grade grade --jobs {args.jobs} (LocalCluster)")):
        print(f"{label:<52} {wall[way]:7.1f}s {wall[way] / n:8.2f}s {wall['sequential'] / wall[way]:8.2f}x")
    print(f"{'Dask against the previous command':<52} {'':>8} {'':>9} {wall['previous'] / wall['dask']:8.2f}x"
          "   (target >= 1.0x)")
    print(f"{'Dask against sequential nbgrader':<52} {'':>8} {'':>9} {wall['sequential'] / wall['dask']:8.2f}x"
          "   (target >= 3.0x)")
    with_feedback(wall, n, args.jobs)
    judge_cost(wall, n, args.jobs)
    one = wall["dask one worker"] / n
    print(f"\n{'per-submission cost':<52} {'cost':>8} {'floor':>9} {'ratio':>9}")
    label = "one worker (wall / N) vs bare nbclient, one at a time"
    print(f"{label:<52} {one:7.2f}s {floor:8.2f}s {one / floor:8.2f}x")
    sys.stdout.flush()
    print("\nSelf-grading (bench/selfgrade.py):", flush=True)
    subprocess.run([sys.executable, "-m", "bench.selfgrade"], cwd=ROOT, check=False)
    if args.sandbox:
        with tempfile.TemporaryDirectory() as tmp:
            sandbox_side_by_side(chosen, args.jobs, Path(tmp))
    if args.not_root:
        with tempfile.TemporaryDirectory() as tmp:
            print_graders(not_root_side_by_side(chosen, args.jobs, Path(tmp), args.rounds))


if __name__ == "__main__":
    main()
