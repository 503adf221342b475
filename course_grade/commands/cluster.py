"""Grading on Dask: an embedded `LocalCluster` by default, or an existing cluster.

    course-grade grade ASSIGNMENT [--jobs N]                      # LocalCluster, N worker processes
    course-grade grade ASSIGNMENT --scheduler tcp://HOST:PORT     # a running cluster
    COURSE_GRADE_SCHEDULER=tcp://HOST:PORT course-grade grade ASSIGNMENT

Every worker runs one submission at a time (one thread per worker process: nbgrader changes
the working folder) and needs this package installed (`pip install` the course repository, or
its wheel) with the pinned environment and, for the sandbox, Debian's `bubblewrap`. A worker
receives everything as bytes (course_grade/engine/task.py) and shares no folder with the instructor.

`SpareKernels` is a `WorkerPlugin`: each worker keeps one pre-started kernel booting while it
grades (course_grade/kernels/spares.py), registered by the grading command on every worker,
including workers that join later or are restarted.
"""
from __future__ import annotations

import contextlib
import logging
import os
import warnings

import dask
from distributed import Client, LocalCluster, get_worker
from distributed.diagnostics.plugin import WorkerPlugin

from course_grade.engine.bundles import AssignmentBundle, Graded, SubmissionBundle
from course_grade.engine.task import grade

SCHEDULER_VARIABLE = "COURSE_GRADE_SCHEDULER"
PLUGIN = "course-grade-spare-kernels"


class SpareKernels(WorkerPlugin):
    """Per-worker state: one spare kernel, started in the worker's task thread."""

    name = PLUGIN

    def __init__(self):
        self.spare = None

    def setup(self, worker) -> None:
        from course_grade.kernels.spares import Spare

        self.spare = Spare()
        # booted in the thread that runs the tasks (one per worker), before the first arrives;
        # then what grading imports, while the worker waits for its first submission anyway
        worker.executors["default"].submit(self.spare.start)
        worker.executors["default"].submit(_import_grading)

    def teardown(self, worker) -> None:
        if self.spare is not None:
            with contextlib.suppress(Exception):
                self.spare.close()
            self.spare = None


def _import_grading() -> None:
    """Import nbgrader's autograde machinery (what `task.grade` imports on first use)."""
    import nbgrader.apps.api
    import nbgrader.converters.autograde
    import nbgrader.preprocessors  # noqa: F401

    import course_grade.nbgrader_ext.flag_tampering
    import course_grade.nbgrader_ext.grade_quiz_answers  # noqa: F401


def grade_on_worker(assignment: AssignmentBundle, submission: SubmissionBundle, timeout: float,
                    feedback: bool = False) -> Graded:
    """The Dask task: grade one submission with this worker's spare kernel, if it has one (and,
    with `feedback`, make the student's feedback: task.grade)."""
    try:
        plugin = get_worker().plugins.get(PLUGIN)
    except ValueError:  # not on a worker (called directly)
        plugin = None
    return grade(assignment, submission, timeout, spare=getattr(plugin, "spare", None), feedback=feedback)


def scheduler_address(given: str | None) -> tuple[str | None, str]:
    """The scheduler to use (None: a local cluster) and where it was named, checked: a bad
    address is a ValueError whose message says what to give instead."""
    from distributed.comm.addressing import parse_address, parse_host_port

    source = "--scheduler" if given else SCHEDULER_VARIABLE
    address = given or os.environ.get(SCHEDULER_VARIABLE) or None
    if address:
        try:
            parse_host_port(parse_address(address, strict=True)[1])
        except ValueError:
            raise ValueError(f"{source} {address} is not a Dask scheduler's address: give it as tcp://HOST:PORT, "
                             f"e.g. tcp://10.0.0.5:8786") from None
    return address, source


@contextlib.contextmanager
def connect(scheduler: str | None, jobs: int, spare_kernels: bool = True, timeout: str = "20s"):
    """A Dask client: on `scheduler` if given (OSError when it does not answer within `timeout`),
    else on a LocalCluster of `jobs` workers that is closed with the client."""
    quiet = logging.ERROR
    # the command says in one line what went wrong; Dask's own tracebacks would bury it
    levels = {"distributed": quiet, "distributed.client": logging.CRITICAL, "distributed.batched": logging.CRITICAL}
    before = {name: logging.getLogger(name).level for name in levels}
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)
    try:
        with _client(scheduler, jobs, quiet, timeout) as client:
            if spare_kernels:
                client.register_plugin(SpareKernels(), name=PLUGIN)
            yield client
    finally:
        for name, level in before.items():
            logging.getLogger(name).setLevel(level)


@contextlib.contextmanager
def _client(scheduler: str | None, jobs: int, quiet: int, timeout: str):
    if scheduler:
        client = Client(scheduler, timeout=timeout)
        cluster = None
    else:
        with warnings.catch_warnings():
            # no dashboard; the scheduler's small HTTP server falls back to a free port when
            # another cluster holds 8787, and says so
            warnings.filterwarnings("ignore", message="Port .* is already in use")
            # Dask's statistical profiler samples every worker thread each 10 ms: a few percent
            # of a 2-core machine that grading needs, and nobody reads it (no dashboard)
            with dask.config.set({"distributed.worker.profile.enabled": False}):
                cluster = LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True, dashboard_address=None,
                                       silence_logs=quiet, worker_dashboard_address=None)
        client = Client(cluster)
    try:
        yield client
    finally:
        if cluster is None:  # a shared cluster's workers shut their spare kernels down
            with contextlib.suppress(Exception):
                client.unregister_worker_plugin(PLUGIN)
        with contextlib.suppress(Exception):
            client.close(timeout=10)
        if cluster is not None:
            with contextlib.suppress(Exception):
                cluster.close(timeout=20)
