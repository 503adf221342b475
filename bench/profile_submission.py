"""Where one submission's grading time goes, through `course_grade.engine.task.grade` (a Dask task's body).

Run on demand (not part of the test suite):
    .venv/bin/python -m bench.profile_submission [--runs 5] [--spare warm|none] [--no-preload] [--top 30]

Builds a scratch course (tests/support/course.py), submits the solution (tests/support/submissions.py), and
grades it `--runs` times through `task.grade`, each time with a warm spare kernel (booted and,
unless --no-preload, preloaded before the submission arrives: what a busy worker has) or with
none (`--spare none`: a kernel started per submission, as stock nbgrader). Prints:
  1. a breakdown table (phase, seconds, share of the whole `grade()` call; median over runs),
     phases nested as they run: scratch files, config load, NbGraderAPI, nbgrader's gradebook
     set-up, each sanitize and autograde preprocessor (FlagTampering, Execute and inside it the
     spare's take + sandbox admit, the kernel client's start + chdir, the cells, the kernel's
     shutdown, the next spare's start), writing the graded notebook, the gradebook rows;
     for the kernel side, the cell with the first `from autograder import checks` apart;
  2. cProfile's top cumulative entries of the grader process for one more graded submission.
The kernel's own work (imports, the audit hook) shows in the cells' time: the grader waits for it.
"""
from __future__ import annotations

import argparse
import asyncio
import collections
import cProfile
import functools
import io
import pstats
import statistics
import tempfile
import time
from pathlib import Path

from course_grade.engine import task
from course_grade.kernels import spares as kernel_pool
from course_grade.nbgrader_ext import pooled_execute
from tests.support.course import ASSIGNMENT, make_course, submit_as
from tests.support.submissions import CORRECT_VARIANTS


class Phases:
    """Inclusive wall time per labelled call, with the nesting seen while grading."""

    def __init__(self):
        self.seconds: dict[str, float] = collections.defaultdict(float)
        self.parent: dict[str, str | None] = {}
        self.order: list[str] = []
        self.stack: list[str] = []
        self.patches: list[tuple[object, str, object]] = []

    def _enter(self, label: str) -> None:
        if label not in self.parent:
            self.parent[label] = self.stack[-1] if self.stack else None
            self.order.append(label)
        self.stack.append(label)

    def _leave(self, label: str, start: float) -> None:
        self.seconds[label] += time.perf_counter() - start
        self.stack.pop()

    def wrap(self, owner, attr: str, label) -> None:
        """Time owner.attr; `label` is a string or a function of the call's arguments."""
        original = getattr(owner, attr)
        name = (lambda *a, **k: label) if isinstance(label, str) else label
        if asyncio.iscoroutinefunction(original):
            @functools.wraps(original)
            async def timed(*args, **kwargs):
                lab = name(*args, **kwargs)
                self._enter(lab)
                start = time.perf_counter()
                try:
                    return await original(*args, **kwargs)
                finally:
                    self._leave(lab, start)
        else:
            @functools.wraps(original)
            def timed(*args, **kwargs):
                lab = name(*args, **kwargs)
                if lab is None:
                    return original(*args, **kwargs)
                self._enter(lab)
                start = time.perf_counter()
                try:
                    return original(*args, **kwargs)
                finally:
                    self._leave(lab, start)
        self.patches.append((owner, attr, owner.__dict__.get(attr, original) if isinstance(owner, type) else original))
        setattr(owner, attr, timed)

    def reset(self) -> None:
        self.seconds.clear()
        self.stack.clear()

    def unpatch(self) -> None:
        for owner, attr, original in reversed(self.patches):
            setattr(owner, attr, original)
        self.patches.clear()


def instrument(phases: Phases) -> None:
    import nbclient.client
    from nbconvert.exporters import Exporter
    from nbconvert.preprocessors import ExecutePreprocessor, Preprocessor
    from nbgrader.apps.api import NbGraderAPI
    from nbgrader.converters.autograde import Autograde
    from nbgrader.converters.base import BaseConverter
    from traitlets.config.loader import PyFileConfigLoader

    from course_grade.kernels import sandbox

    seen_checks = {"done": False}

    def cell_label(client, cell, resources, index):
        if cell.cell_type != "code":
            return "kernel: markdown cells"
        if not seen_checks["done"] and "from autograder import checks" in cell.source:
            seen_checks["done"] = True
            return "kernel: the first `from autograder import checks` cell"
        return "kernel: the other code cells"

    def preprocessor_label(pp, nb, resources):
        if not getattr(pp, "enabled", True):
            return None
        return f"{'sanitize' if 'nbgrader: sanitize pass' in phases.stack else 'autograde'}: {pp.__class__.__name__}"

    def convert_label(conv, filename):
        return "nbgrader: sanitize pass" if conv._sanitizing else "nbgrader: autograde pass"

    phases.wrap(task, "write_files", "scratch: write the bundle's files")
    phases.wrap(sandbox, "status", "sandbox.status() (probe, cached)")
    phases.wrap(PyFileConfigLoader, "load_config", "config: load nbgrader_config.py")
    phases.wrap(pooled_execute, "use_spare_kernels", "config: use_spare_kernels")
    phases.wrap(NbGraderAPI, "__init__", "NbGraderAPI(...)")
    phases.wrap(NbGraderAPI, "autograde", "api.autograde (nbgrader)")
    phases.wrap(Autograde, "init_assignment", "nbgrader: gradebook set-up, source files (init_assignment)")
    phases.wrap(BaseConverter, "init_destination", "nbgrader: init_destination")
    phases.wrap(BaseConverter, "convert_single_notebook", convert_label)
    phases.wrap(Exporter, "from_filename", lambda *a, **k: "nbconvert: read notebook + run preprocessors"
                + (" (sanitize)" if "nbgrader: sanitize pass" in phases.stack else ""))
    phases.wrap(BaseConverter, "write_single_notebook", lambda *a, **k: "nbgrader: write notebook"
                + (" (sanitize)" if "nbgrader: sanitize pass" in phases.stack else ""))
    phases.wrap(Preprocessor, "__call__", preprocessor_label)
    phases.wrap(BaseConverter, "set_permissions", "nbgrader: set_permissions")
    phases.wrap(kernel_pool.Spare, "take", "spare: take (wait for preload, sandbox admit)")
    phases.wrap(kernel_pool.Spare, "start", "spare: start the next spare")
    phases.wrap(pooled_execute, "stop", "kernel: shut down (spares.stop)")
    # nbclient binds its sync wrappers to the coroutines at class creation: time the wrappers
    phases.wrap(nbclient.client.NotebookClient, "start_new_kernel", "kernel: start a fresh kernel (no spare)")
    phases.wrap(nbclient.client.NotebookClient, "start_new_kernel_client", "kernel client: connect, ready (, chdir)")
    phases.wrap(pooled_execute.PooledExecute, "start_new_kernel_client", "kernel client: connect, ready (, chdir)")
    phases.wrap(nbclient.client.NotebookClient, "_cleanup_kernel", "kernel: shut down (fresh kernel)")
    phases.wrap(ExecutePreprocessor, "preprocess_cell", cell_label)
    phases.wrap(task, "gradebook_rows", "after: gradebook_rows")
    phases.wrap(task, "read_files", "after: read the graded folder")
    phases.wrap(task, "flagged_cells", "after: flagged_cells")
    phases.seen_checks = seen_checks


def table(phases: Phases, runs: list[dict[str, float]], total_label: str) -> str:
    totals = [r[total_label] for r in runs]
    total = statistics.median(totals)
    lines = [f"{'phase':<72} {'seconds':>8} {'share':>7}"]

    def depth(label):
        d, p = 0, phases.parent.get(label)
        while p is not None:
            d, p = d + 1, phases.parent.get(p)
        return d

    def emit(label):
        vals = [r.get(label, 0.0) for r in runs]
        med = statistics.median(vals)
        lines.append(f"{'  ' * depth(label) + label:<72} {med:8.3f} {med / total:7.1%}")
        children = [c for c in phases.order if phases.parent.get(c) == label]
        for child in children:
            emit(child)
        if children:
            rest = [r.get(label, 0.0) - sum(r.get(c, 0.0) for c in children) for r in runs]
            lines.append(f"{'  ' * (depth(label) + 1) + '(the rest of ' + label.split(' (')[0][:40] + ')':<72} "
                         f"{statistics.median(rest):8.3f} {statistics.median(rest) / total:7.1%}")

    emit(total_label)
    lines.append(f"(median of {len(runs)} runs; each run's total: {', '.join(f'{t:.2f}' for t in totals)})")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--spare", choices=("warm", "none"), default="warm")
    parser.add_argument("--no-preload", action="store_true", help="spare kernels without the preload (the 'before')")
    parser.add_argument("--top", type=int, default=30, help="cProfile entries to print")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="profile-submission-") as tmp:
        course = make_course(Path(tmp) / "course")
        submit_as(course, CORRECT_VARIANTS[0])
        student = CORRECT_VARIANTS[0].name
        bundle = task.AssignmentBundle.from_course(course, ASSIGNMENT)
        folder = course / "submitted" / student / ASSIGNMENT
        submission = task.SubmissionBundle.from_folder(folder, student, bundle.notebooks)
        spare = None
        if args.spare == "warm":
            spare = kernel_pool.Spare(preload=() if args.no_preload else kernel_pool.PRELOAD)
            spare.start()

        def warm() -> None:
            if spare is not None:
                spare.ready(kernel_pool.PRELOAD_TIMEOUT)
                time.sleep(1.0)  # the kernel idle, as one that booted during the last submission

        try:
            warm()
            first = task.grade(bundle, submission, spare=spare)  # imports, caches: not measured
            assert first.status == "graded" and first.score == first.max_score, (first.status, first.note)

            phases = Phases()
            total_label = "task.grade()"
            phases.wrap(task, "grade", total_label)
            instrument(phases)
            runs = []
            preloads = []
            for _ in range(args.runs):
                warm()
                phases.reset()
                phases.seen_checks["done"] = False
                graded = task.grade(bundle, submission, spare=spare)
                assert graded.status == "graded" and graded.score == graded.max_score, (graded.status, graded.note)
                runs.append(dict(phases.seconds))
                if spare is not None and spare.last_preload is not None:
                    preloads.append(spare.last_preload.seconds)
            phases.unpatch()

            mode = "no spare (kernel started per submission)" if spare is None else \
                f"warm spare kernel, {'no preload' if args.no_preload else 'preloaded'}"
            print(f"\n== one correct submission through course_grade.engine.task.grade: {mode}")
            print(table(phases, runs, total_label))
            if preloads:
                print(f"(the spare's boot + preload, in the background: median {statistics.median(preloads):.2f} s)")

            warm()
            profiler = cProfile.Profile()
            profiler.enable()
            graded = task.grade(bundle, submission, spare=spare)
            profiler.disable()
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(args.top)
            print(f"\n== cProfile of the grader process, one more submission ({graded.seconds:.2f} s), "
                  f"top {args.top} cumulative")
            print("\n".join(line for line in out.getvalue().splitlines() if line.strip())[:20000])
        finally:
            if spare is not None:
                spare.close()


if __name__ == "__main__":
    main()
