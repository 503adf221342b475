"""Grade every submission of an assignment on Dask, with stock nbgrader as the engine.

    course-grade grade connection-pooling [--jobs N] [--scheduler tcp://HOST:PORT]
                                          [--resume] [--submission-timeout S]

Each submission is a Dask task (course_grade/commands/cluster.py) that receives the submission and
what it needs of the assignment as bytes, and grades it with `nbgrader autograde` in a
scratch course folder of its own (course_grade/engine/task.py): a submission that hangs, crashes
its kernel or floods its output affects only its own row. By default the tasks run on a
LocalCluster started for the run (`--jobs` worker processes); `--scheduler` sends them to a
running cluster.

Only this process writes the course: each result is merged, as it arrives, into the course
gradebook, `autograded/` and `feedback/` (`merge`: the folders are swapped in whole, the
gradebook rows are replaced in one transaction, Ctrl-C waits for a merge to finish). A worker that dies has its
submissions graded elsewhere; a merge replaces a student's earlier rows, so every student is
graded exactly once. A lost scheduler or Ctrl-C stops the run with one line, keeping what was
merged; `--resume` then grades only what is missing or was submitted again since (as stock
`nbgrader autograde` decides). Every submission is on record in the gradebook: one that could
not be graded has its submission row with 0 points, flagged, and the report's reason column
and note say why, with the task's log kept in reports/logs/. Feedback (without hidden tests, see
nbgrader_config.py) is made by stock nbgrader's generate_feedback on the worker that graded the
submission, from the same grades (in this process for a student whose worker could not), and
the grades CSV by stock nbgrader's export. `submitted/` is only ever read.
"""
from __future__ import annotations

import argparse
import itertools
import os
import sys
import time
import traceback
from pathlib import Path

from course_grade.commands.merge import already_graded, extensions, merge
from course_grade.commands.nbgrader_steps import NbgraderSteps, after_grading
from course_grade.commands.progress import LISTED, Progress, class_summary, summary_line
from course_grade.course import (
    ASSIGNMENT,
    LOGS,
    REPORT_FILE,
    REPORTS_DIR,
    Course,
    UsageError,
    open_course,
    open_gradebook,
)
from course_grade.engine.bundles import Graded
from course_grade.late import late_by
from course_grade.reasons import ERROR, LATE, TO_DO
from course_grade.reports.grading_report import keep_log, write_report
from course_grade.reports.items import QUIZ_STEP

# Submissions read and sent ahead of the workers: enough to keep every worker busy, few
# enough that the instructor's process and the scheduler never hold a whole class at once.
IN_FLIGHT_PER_THREAD, MIN_IN_FLIGHT = 4, 8

# Student cells that reach for the grading machinery are found by the FlagTampering
# preprocessor (course_grade/nbgrader_ext/tamper_analysis.py, an analysis of each cell's syntax tree, configured in
# nbgrader_config.py so stock `nbgrader autograde` runs it too): it removes the offending
# statements before anything runs and flags the notebook; the command reports what it found.


HELP = "autograde everything in submitted/ for one assignment"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("assignment", help=f"the assignment's name, e.g. {ASSIGNMENT}")
    parser.add_argument("--course", type=Path, default=Path("."),
                        help="the course folder (where nbgrader_config.py is); default: here")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                        help="worker processes of the local Dask cluster, one submission each at a time "
                             "(default: one per core)")
    parser.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                        help="grade on a running Dask cluster instead of this machine "
                             "(default: $COURSE_GRADE_SCHEDULER, else a local cluster of --jobs workers)")
    parser.add_argument("--student", action="append", metavar="ID", dest="students",
                        help="grade only this student (repeat for several); everyone else's grades and feedback "
                             "stay as they are")
    parser.add_argument("--resume", action="store_true",
                        help="grade only the submissions not graded yet (after a stopped run); "
                             "default: grade everything")
    parser.add_argument("--submission-timeout", type=float, default=600,
                        help="seconds one submission may take before it is stopped (default: 600)")
    parser.add_argument("--verbose", action="store_true",
                        help="also print one line per student at the end (grading-report.csv has them either way)")
    parser.add_argument("--no-feedback", action="store_true", help="do not run nbgrader generate_feedback")
    parser.add_argument("--no-spare-kernels", action="store_true",
                        help="start each submission's kernel when it is needed, as nbgrader does (slower; "
                             "by default each worker keeps the next kernel booting while it grades)")


def main(args: argparse.Namespace) -> int:
    if args.jobs < 1:
        raise UsageError(f"--jobs {args.jobs}: give at least 1 worker process")
    if args.submission_timeout <= 0:
        raise UsageError(f"--submission-timeout {args.submission_timeout:g}: give a positive number of seconds, "
                         f"e.g. 600")
    return run(args.course, args.assignment, args.jobs, args.submission_timeout, feedback=not args.no_feedback,
               spare_kernels=not args.no_spare_kernels, scheduler=args.scheduler, resume=args.resume,
               only=args.students, verbose=args.verbose)


class Stopped(Exception):
    """The run stopped before every submission was graded (lost scheduler, Ctrl-C): why, and
    every outcome merged until then."""

    def __init__(self, why: str, outcomes: dict):
        super().__init__(why)
        self.why, self.outcomes = why, outcomes


def _scheduler_lost(client, error: BaseException) -> bool:
    from concurrent.futures import CancelledError

    from distributed.comm.core import CommClosedError

    return isinstance(error, (CommClosedError, CancelledError, OSError)) \
        or client.status not in ("running", "connecting", "newly-created")


def grade_all(course: Course, students: list[str], jobs: int, timeout: float, out, scheduler: str | None,
              spare_kernels: bool, named_by: str = "--scheduler", all_merged=None,
              feedback: bool = False) -> dict[str, Graded]:
    """Grade `students` on Dask (with `feedback`, each worker also makes the student's feedback
    page), merging each result as it arrives; returns every outcome
    merged or failed, after calling `all_merged(outcomes)` once the last is merged (before the
    cluster closes: what comes next overlaps with that). Raises Stopped (with the outcomes so
    far merged) on a lost scheduler or Ctrl-C."""
    from concurrent.futures import CancelledError

    from distributed import as_completed

    from course_grade.commands.cluster import connect, grade_on_worker
    from course_grade.engine.bundles import AssignmentBundle, SubmissionBundle

    assignment = AssignmentBundle.from_course(course.root, course.assignment)
    extended = extensions(course)
    outcomes: dict[str, Graded] = {}
    progress = Progress(len(students), out)
    lost = f"lost the connection to the Dask scheduler{f' at {scheduler}' if scheduler else ''}"
    try:
        with connect(scheduler, jobs, spare_kernels) as client:
            shared = client.scatter(assignment, broadcast=True, hash=False)
            waiting = iter(students)
            running = as_completed()
            owner: dict[str, str] = {}

            def send(n: int) -> None:
                """Read and send the next n submissions: a class of 75,000 is never all in memory."""
                for student in itertools.islice(waiting, n):
                    bundle = SubmissionBundle.from_folder(course.root / "submitted" / student / course.assignment,
                                                          student, assignment.notebooks, extended.get(student))
                    future = client.submit(grade_on_worker, shared, bundle, timeout, feedback, pure=False, retries=0,
                                           key=f"grade-{student}-{time.time_ns()}")
                    owner[future.key] = student
                    running.add(future)

            def room() -> int:  # a few submissions queued per worker thread, as workers come and go
                return max(IN_FLIGHT_PER_THREAD * sum(client.nthreads().values()), MIN_IN_FLIGHT) - running.count()

            send(room())
            with open_gradebook(course.gradebook) as gradebook:  # closed before nbgrader's steps read it
                for future in running:
                    student = owner.pop(future.key)
                    try:
                        o = future.result()
                    except (CancelledError, Exception) as exc:
                        if _scheduler_lost(client, exc):
                            raise Stopped(lost, outcomes) from None
                        o = Graded(student)
                        o.add(ERROR, f"could not grade: {type(exc).__name__}: {exc}"[:300])
                        o.log = "".join(traceback.format_exception(exc))
                    future.release()
                    try:
                        late = merge(course, o, gradebook)  # without grades, the submission is recorded
                    except KeyboardInterrupt:
                        outcomes[student] = o
                        raise
                    except Exception as exc:
                        o.status, o.grades_kept = "failed", False
                        o.add(ERROR, f"could not record the grades: {type(exc).__name__}: {exc}"[:300])
                        o.log += "\n" + traceback.format_exc()
                    else:
                        if o.late is not None and o.late.is_late:
                            o.add(LATE, o.late.sentence())
                        elif late > 0:  # recorded without grades: no penalty to take
                            o.add(LATE, f"late by {late_by(late)}")
                    o.log_file = keep_log(course, o)
                    made = o.feedback is not None
                    o.files, o.modes, o.rows, o.log = {}, {}, None, ""  # merged: keep only what the report shows
                    o.feedback, o.feedback_modes = ({} if made else None), {}
                    outcomes[student] = o
                    progress.update(o)
                    send(room())
            if all_merged is not None:
                all_merged(outcomes)
    except KeyboardInterrupt:
        raise Stopped("Ctrl-C", outcomes) from None
    except OSError as exc:  # no scheduler at that address
        if not outcomes and scheduler:
            undo = "leave out --scheduler" if named_by == "--scheduler" else f"unset {named_by}"
            raise UsageError(f"cannot reach the Dask scheduler at {scheduler} ({exc}): start it, or {undo} "
                             f"to grade on this machine") from None
        raise Stopped(lost, outcomes) from None
    return outcomes


def _summary(analysis, rows: list[Graded], graded: int) -> list[str]:
    """The class's summary (commands/progress.class_summary): from the item analysis when it was
    written (everyone graded in the course, each step, the attention list), else from this
    run's rows (the late ones only)."""
    from course_grade.reports.attention import Attention

    if analysis is not None:
        late = {s.student: s.late for s in analysis.submissions if s.late is not None}
        after, steps = {}, []
        for k, student in enumerate(analysis.students):
            total = sum(st.scores[k] for st in analysis.steps)
            after[student] = max(0.0, total - late[student].penalty) if student in late else total
        for st in analysis.steps:
            label = f"{st.label} ({st.name})" if st.step != QUIZ_STEP else st.label
            steps.append((label, st.max_points, st.scores))
        page = analysis.course_root / REPORTS_DIR / f"{analysis.assignment}.html"
        return class_summary(after, analysis.max_score, steps, analysis.attention, (graded, len(rows)),
                             str(page.relative_to(analysis.course_root)))
    merged = [o for o in rows if o.merged and o.score is not None]
    max_score = max((o.max_score or 0 for o in merged), default=0)
    late = [Attention(o.student, LATE, o.late.sentence(), TO_DO[LATE]) for o in merged
            if o.late is not None and o.late.is_late]
    return class_summary({o.student: o.score_after_penalty for o in merged}, max_score, [], late, (graded, len(rows)))


def run(course_dir: Path, assignment: str, jobs: int, submission_timeout: float, feedback: bool = True,
        out=sys.stdout, spare_kernels: bool = True, scheduler: str | None = None, resume: bool = False,
        only: list[str] | None = None, verbose: bool = False) -> int:
    """Grade everything (or only the students in `only`; with `resume`, only what is not graded
    yet); returns the exit status: 0 all graded, 1 some failed, 3 stopped before the end (what
    was merged is kept). Everyone else's grades, feedback and report rows stay as they were."""
    from course_grade.commands.cluster import scheduler_address

    course = open_course(course_dir, assignment)
    try:
        scheduler, named_by = scheduler_address(scheduler)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    students = course.students
    if only:
        unknown = sorted(set(only) - set(students))
        if unknown:
            raise UsageError(f"no submission in submitted/*/{assignment}/ for --student {', '.join(unknown)}: "
                             f"check the ids (the folder names in submitted/)")
        students = [s for s in students if s in set(only)]
    if resume:
        done = already_graded(course)
        students = [s for s in students if s not in done]
        print(f"Resuming: {len(done & set(course.students))} already graded, {len(students)} to grade.",
              file=out, flush=True)
    where = f"the Dask cluster at {scheduler}" if scheduler else f"{jobs} local worker(s)"
    print(f"Grading {len(students)} submission(s) of {assignment} on {where}...", file=out, flush=True)
    if not scheduler:
        from course_grade.kernels.sandbox import status as sandbox_status

        sandbox = sandbox_status()  # "on", or one line saying why it is off and which protections are missing
        if sandbox != "on":
            print(f"WARNING: sandbox {sandbox}", file=out, flush=True)
    stopped = None
    outcomes: dict[str, Graded] = {}
    finishing = NbgraderSteps(course)

    def all_merged(merged: dict[str, Graded]) -> None:  # nbgrader's feedback and export start while the cluster closes
        finishing.start(after_grading(course, [merged[s] for s in students], feedback))

    if students:
        try:
            outcomes = grade_all(course, students, jobs, submission_timeout, out, scheduler, spare_kernels, named_by,
                                 all_merged=all_merged, feedback=feedback)
        except Stopped as exc:
            stopped, outcomes = exc.why, exc.outcomes
    for student in students:
        if student not in outcomes:
            outcomes[student] = Graded(student, status="not graded",
                                       note=f"the run stopped before this submission was graded ({stopped})")
    if scheduler and any(o.sandbox not in ("", "on") for o in outcomes.values()):
        print("WARNING: some workers graded without the sandbox: see the sandbox column of " + REPORT_FILE, file=out)
    write_report(course, outcomes)
    rows = [outcomes[s] for s in students]
    failures = sum(o.status != "graded" for o in rows)

    # stopped (merged students have their workers' pages; no fallback feedback), or nobody to grade
    if not finishing.started:
        finishing.start(after_grading(course, rows, feedback and stopped is None))

    written = None
    if any(o.status == "graded" for o in outcomes.values()) or (course.root / "autograded").is_dir():
        from course_grade.reports.item_report import analysis_after_grading

        written = analysis_after_grading(course.root, assignment, out=out)
    analysis = written[0] if written else None
    for message in finishing.wait():
        print(message, file=out)
        failures += 1

    graded = sum(o.status == "graded" for o in rows)
    if verbose:
        print(f"\n{'student':<24} {'status':<9} {'score':>9} {'time':>8}  note", file=out)
        for o in rows:
            print(summary_line(o), file=out)
    print("\nSummary", file=out)
    for line in _summary(written[1] if written else None, rows, graded):
        print(line, file=out)
    unfinished = [o.student for o in rows if o.status != "graded"]
    if unfinished:
        print(f"Not graded ({len(unfinished)}): {', '.join(unfinished[:LISTED])}"
              + (f" and {len(unfinished) - LISTED} more" if len(unfinished) > LISTED else "")
              + f": see the note and reason columns of {REPORT_FILE}", file=out)
    if stopped is not None:
        print(f"\nStopped: {stopped}. {graded}/{len(rows)} graded and kept in the gradebook; run the same command "
              f"with --resume to grade the rest.", file=out)
        return 3
    logs = sum(bool(o.log_file) for o in rows)
    print(f"\n{graded}/{len(rows)} graded; grades: grades.csv; per-student status: {REPORT_FILE}"
          + (f"; logs of the {logs} submission(s) not graded: {LOGS}/{assignment}/" if logs else "")
          + ("; feedback: feedback/" if feedback else "")
          + (f"; item analysis: {analysis.relative_to(course.root)}, each student's reasons and mistakes: "
             f"{analysis.with_name(f'{assignment}-students.csv').relative_to(course.root)}" if analysis else ""),
          file=out)
    return 0 if failures == 0 else 1
