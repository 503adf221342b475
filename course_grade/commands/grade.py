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

import contextlib
import itertools
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import traceback
import warnings
from dataclasses import dataclass
from pathlib import Path

from course_grade import NBGRADER_LAUNCH, REPORT_FILE, safe_csv
from course_grade.engine.task import ERROR, LATE, Graded, write_files

# Submissions read and sent ahead of the workers: enough to keep every worker busy, few
# enough that the instructor's process and the scheduler never hold a whole class at once.
IN_FLIGHT_PER_THREAD, MIN_IN_FLIGHT = 4, 8
REPORT_COLUMNS = ["student", "status", "score", "max_score", "seconds", "note", "left_out", "removed_cells",
                  "sandbox", "worker", "reason", "log"]
LOGS = "reports/logs"  # the log of every task that failed: LOGS/ASSIGNMENT/STUDENT.log

# Student cells that reach for the grading machinery are found by the FlagTampering
# preprocessor (course_grade/nbgrader_ext/tamper_analysis.py, an analysis of each cell's syntax tree, configured in
# nbgrader_config.py so stock `nbgrader autograde` runs it too): it removes the offending
# statements before anything runs and flags the notebook; the command reports what it found.


class UsageError(Exception):
    """Bad arguments or course layout: one line for the instructor, nothing written."""


class Stopped(Exception):
    """The run stopped before every submission was graded (lost scheduler, Ctrl-C): why, and
    every outcome merged until then."""

    def __init__(self, why: str, outcomes: dict):
        super().__init__(why)
        self.why, self.outcomes = why, outcomes


def _nbgrader() -> list[str]:
    """The command line of `nbgrader` (followed by its arguments), started faster."""
    return [sys.executable, "-c", NBGRADER_LAUNCH]


def _env() -> dict:
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}


# ------------------------------------------------------------------------------ the course

@dataclass
class Course:
    root: Path
    assignment: str
    notebooks: list[str]  # notebook names of the assignment, from the gradebook
    students: list[str]

    @property
    def gradebook(self) -> Path:
        return self.root / "gradebook.db"

    def submitted(self, student: str) -> Path:
        return self.root / "submitted" / student / self.assignment


def timestamp_in(folder: Path):
    """The time in `folder`'s timestamp.txt (nbgrader's, UTC), or None when there is none or it
    cannot be read: what nbgrader's CourseDirectory.get_existing_timestamp reads."""
    from nbgrader.utils import parse_utc

    try:
        fd = os.open(folder / "timestamp.txt", os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        text = os.read(fd, 200).decode("utf-8", "replace").strip()
    except OSError:
        return None
    finally:
        os.close(fd)
    try:
        return parse_utc(text) if text else None
    except ValueError:
        return None


def open_course(root: Path, assignment: str) -> Course:
    """Check everything before anything is written; raise UsageError with one line."""
    from nbgrader.api import Gradebook, MissingEntry

    root = root.resolve()
    if not (root / "nbgrader_config.py").is_file():
        raise UsageError(f"no nbgrader_config.py in {root}: run this in the course folder or pass --course")
    if not (root / "gradebook.db").is_file():
        raise UsageError(f"no gradebook.db in {root}: create the assignment first with `nbgrader generate_assignment {assignment}`")
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        try:
            notebooks = [nb.name for nb in gb.find_assignment(assignment).notebooks]
        except MissingEntry:
            known = ", ".join(a.name for a in gb.assignments) or "none"
            raise UsageError(f"unknown assignment {assignment!r} (the gradebook has: {known})") from None
    folder = root / "submitted"
    students = sorted(p.parent.name for p in folder.glob(f"*/{assignment}") if p.is_dir()) if folder.is_dir() else []
    if not students:
        raise UsageError(f"no submissions in {folder}/*/{assignment}/: collect them first (nbgrader collect {assignment})")
    return Course(root, assignment, notebooks, students)


# ------------------------------------------------------------------------------- merging

@contextlib.contextmanager
def _no_interrupt():
    """Ctrl-C during a merge takes effect after it: nothing is half-written."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending = []
    old = signal.signal(signal.SIGINT, lambda *a: pending.append(a))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)
        if pending:
            raise KeyboardInterrupt


@contextlib.contextmanager
def course_gradebook(course: Course):
    """The course gradebook, open for all of a run's merges: one SQLAlchemy engine, so each of
    nbgrader's queries is compiled once per run rather than once per merge."""
    from nbgrader.api import Gradebook

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nbgrader's own SQLAlchemy warnings
        gradebook = Gradebook(f"sqlite:///{course.gradebook}")
    try:
        yield gradebook
    finally:
        gradebook.close()


def _set_rows(dst, course: Course, graded: Graded) -> None:
    """Give the student's fresh submission rows in the course gradebook the worker's values."""
    student, rows = graded.student, graded.rows
    for nb in rows["notebooks"]:
        target = dst.find_submission_notebook(nb["name"], course.assignment, student)
        target.flagged = nb["flagged"] or graded.flagged
        target.late_submission_penalty = nb["late_submission_penalty"]
        for grade in nb["grades"]:
            mine = dst.find_grade(grade["name"], nb["name"], course.assignment, student)
            for key in ("auto_score", "manual_score", "extra_credit", "needs_manual_grade"):
                setattr(mine, key, grade[key])
        for comment in nb["comments"]:
            mine = dst.find_comment(comment["name"], nb["name"], course.assignment, student)
            mine.auto_comment, mine.manual_comment = comment["auto_comment"], comment["manual_comment"]


def _record_without_grades(dst, course: Course, student: str) -> None:
    """The submission that could not be graded, as nbgrader records a missing notebook: every
    grade 0 (nothing was graded), no manual grading asked, and each notebook flagged."""
    for nb in dst.find_submission(course.assignment, student).notebooks:
        nb.flagged = True
        for grade in nb.grades:
            grade.auto_score, grade.needs_manual_grade = 0, False


def merge(course: Course, graded: Graded, gradebook=None) -> float:
    """Put one graded submission into the course, whole or not at all: its autograded folder
    (and its feedback folder, when the worker made it) is written beside the old one, its
    gradebook rows replace the student's earlier ones in one transaction, the folders are
    swapped in, then the transaction is committed. A submission without grades
    (`graded.merged` false: it could not be graded, or timed out before its grades were whole)
    is recorded all the same: its submission row with the submitted timestamp, 0 points,
    flagged (`_record_without_grades`), and the student's earlier autograded and feedback
    folders are removed, so nothing stale of an earlier submission stays. `gradebook`: the
    course gradebook already open (`course_gradebook`), else it is opened for this merge.
    Returns how many seconds after the due date the submission came (nbgrader's count)."""
    from nbgrader.api import MissingEntry

    rows, student = graded.rows, graded.student
    whole = graded.merged and rows is not None
    autograded = course.root / "autograded" / student / course.assignment
    feedback = course.root / "feedback" / student / course.assignment
    if whole:
        trees = [(autograded, graded.files, graded.modes)]
        if graded.feedback is not None:
            trees.append((feedback, graded.feedback, graded.feedback_modes))
    else:  # None: the folder is removed
        trees = [(autograded, None, None), (feedback, None, None)]
    places = [(out, out.with_name(f".{course.assignment}.partial-{os.getpid()}"),
               out.with_name(f".{course.assignment}.old-{os.getpid()}")) for out, _, _ in trees]
    swapped = []
    with _no_interrupt():
        try:
            for (_, files, modes), (_, partial, _) in zip(trees, places):
                shutil.rmtree(partial, ignore_errors=True)
                if files is not None:
                    partial.mkdir(parents=True)
                    write_files(partial, files, modes)
            with warnings.catch_warnings(), contextlib.ExitStack() as opened:
                warnings.simplefilter("ignore")  # nbgrader's own SQLAlchemy autoflush warnings
                dst = gradebook if gradebook is not None else opened.enter_context(course_gradebook(course))
                commit = dst.db.commit
                dst.db.commit = dst.db.flush  # nbgrader's calls commit each step: hold them in one transaction
                try:
                    dst.update_or_create_student(student)
                    extension = None  # the instructor's, kept: a worker's gradebook has no students
                    try:
                        extension = dst.find_submission(course.assignment, student).extension
                        dst.remove_submission(course.assignment, student)
                    except MissingEntry:
                        pass
                    if whole:
                        dst.add_submission(course.assignment, student, timestamp=rows["timestamp"],
                                           extension=extension if extension is not None else rows["extension"])
                        with dst.db.no_autoflush:  # the changes are flushed once below, not before each lookup
                            _set_rows(dst, course, graded)
                    else:
                        stamp = timestamp_in(course.submitted(student))
                        dst.add_submission(course.assignment, student, extension=extension,
                                           **({"timestamp": stamp} if stamp else {}))
                        _record_without_grades(dst, course, student)
                    dst.db.flush()
                    late = dst.find_submission(course.assignment, student).total_seconds_late
                    for out, partial, old in places:
                        if out.exists():
                            out.rename(old)
                        swapped.append((out, old))
                        if partial.exists():
                            partial.rename(out)
                    del dst.db.commit
                    commit()
                    return late
                except BaseException:
                    dst.db.__dict__.pop("commit", None)
                    dst.db.rollback()
                    for out, old in swapped:  # put the student's earlier folders (or none) back
                        shutil.rmtree(out, ignore_errors=True)
                        if old.exists():
                            old.rename(out)
                    raise
        finally:
            for _, partial, old in places:
                shutil.rmtree(partial, ignore_errors=True)
                shutil.rmtree(old, ignore_errors=True)


def already_graded(course: Course) -> set[str]:
    """Students with a graded submission in the gradebook and their autograded notebooks, not
    submitted again since. As stock `nbgrader autograde` (without --force) decides: a
    submission is graded again when the timestamp.txt in submitted/ is newer than the one of
    its autograded copy (here, else the gradebook's), as after `nbgrader collect --update`;
    without a timestamp on either side it is not, as in stock nbgrader (`--student` regrades
    it). A submission recorded without grades has no autograded notebook: graded again."""
    from nbgrader.api import Gradebook

    done = set()
    with warnings.catch_warnings(), Gradebook(f"sqlite:///{course.gradebook}") as gb:
        warnings.simplefilter("ignore")
        for sub in gb.find_assignment(course.assignment).submissions:
            folder = course.root / "autograded" / sub.student_id / course.assignment
            if not all((folder / f"{name}.ipynb").is_file() for name in course.notebooks):
                continue
            new, old = timestamp_in(course.submitted(sub.student_id)), timestamp_in(folder) or sub.timestamp
            if new is not None and old is not None and new > old:
                continue
            done.add(sub.student_id)
    return done


# ----------------------------------------------------------------------------- the command

def _line(o: Graded) -> str:
    score = f"{o.score:g}/{o.max_score:g}" if o.score is not None and o.merged else "-"
    note = o.note + (f" (left out: {', '.join(o.left_out)})" if o.left_out else "")
    note += f" REVIEW: removed {len(o.tampering)} cell(s) that reached for the grader" if o.tampering else ""
    note += f" (log: {o.log_file})" if o.log_file else ""
    return f"{o.student:<24} {o.status:<9} {score:>9} {o.seconds:7.1f}s  {note}".rstrip()


class Progress:
    """A progress bar on a terminal; one plain line per submission otherwise (logs, CI)."""

    def __init__(self, total: int, out):
        self.total, self.out, self.done, self.failed = total, out, 0, 0
        self.bar = hasattr(out, "isatty") and out.isatty()
        self.start = time.monotonic()

    def update(self, o: Graded) -> None:
        self.done += 1
        self.failed += o.status != "graded"
        if not self.bar:
            print(f"[{self.done}/{self.total}, {self.failed} failed] {_line(o)}", file=self.out, flush=True)
            return
        width = 30
        filled = int(width * self.done / self.total)
        rate = (time.monotonic() - self.start) / self.done
        left = rate * (self.total - self.done)
        line = f"\r[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} graded, {self.failed} failed, ~{left:.0f}s left"
        if o.status != "graded":
            line = f"\r\x1b[K{_line(o)}\n" + line
        print(line, end="" if self.done < self.total else "\n", file=self.out, flush=True)


def _read_report(course: Course) -> dict[str, list[str]]:
    """The rows of the last report, by student (kept for students this run does not grade)."""
    try:
        with open(course.root / REPORT_FILE, newline="", encoding="utf-8") as f:
            rows = list(safe_csv.reader(f))
    except OSError:
        return {}
    if not rows or rows[0][:len(REPORT_COLUMNS) - 2] != REPORT_COLUMNS[:len(REPORT_COLUMNS) - 2]:
        return {}
    return {row[0]: row + [""] * (len(REPORT_COLUMNS) - len(row)) for row in rows[1:] if row}


def _write_report(course: Course, outcomes: dict[str, Graded]) -> None:
    """grading-report.csv: this run's rows, and the last report's rows for everyone else."""
    rows = _read_report(course)
    for o in outcomes.values():
        rows[o.student] = [o.student, o.status, "" if o.score is None else o.score,
                           "" if o.max_score is None else o.max_score, f"{o.seconds:.1f}", o.note,
                           " ".join(o.left_out), "; ".join(o.tampering), o.sandbox, o.worker, "; ".join(o.reasons),
                           o.log_file]
    path = course.root / REPORT_FILE
    partial = path.with_name(f".{REPORT_FILE}.partial")
    with open(partial, "w", newline="", encoding="utf-8") as f:
        writer = safe_csv.Writer(f)
        writer.writerow(REPORT_COLUMNS)
        for student in sorted(rows):
            writer.writerow(rows[student])
    partial.replace(path)


def _extensions(course: Course) -> dict:
    """The extensions the instructor gave in the course gradebook: student -> timedelta."""
    from nbgrader.api import MissingEntry

    with warnings.catch_warnings(), course_gradebook(course) as gb:
        warnings.simplefilter("ignore")
        try:
            return {s.student_id: s.extension for s in gb.find_assignment(course.assignment).submissions
                    if s.extension is not None}
        except MissingEntry:
            return {}


def _keep_log(course: Course, o: Graded) -> str:
    """The log of a task that did not grade its submission (nbgrader's log and the traceback)
    in LOGS/ASSIGNMENT/STUDENT.log; returns its course-relative path. A student graded now has
    the log of an earlier failure removed."""
    path = course.root / LOGS / course.assignment / f"{o.student}.log"
    if o.status == "graded":
        path.unlink(missing_ok=True)
        return ""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{o.student}: {o.status}: {o.note}\n\n{o.log or '(no log: the task itself failed)'}\n",
                    encoding="utf-8")
    return str(path.relative_to(course.root))


def _seconds(n: float) -> str:
    return f"{n:.0f} s" if n < 120 else f"{n / 60:.0f} min" if n < 7200 else f"{round(n / 3600, 1):g} h"


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
    from course_grade.engine.task import AssignmentBundle, SubmissionBundle

    assignment = AssignmentBundle.from_course(course.root, course.assignment)
    extensions = _extensions(course)
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
                                                          student, assignment.notebooks, extensions.get(student))
                    future = client.submit(grade_on_worker, shared, bundle, timeout, feedback, pure=False, retries=0,
                                           key=f"grade-{student}-{time.time_ns()}")
                    owner[future.key] = student
                    running.add(future)

            def room() -> int:  # a few submissions queued per worker thread, as workers come and go
                return max(IN_FLIGHT_PER_THREAD * sum(client.nthreads().values()), MIN_IN_FLIGHT) - running.count()

            send(room())
            with course_gradebook(course) as gradebook:  # closed before nbgrader's steps read it
                for future in running:
                    student = owner.pop(future.key)
                    try:
                        o = future.result()
                    except (CancelledError, Exception) as exc:  # noqa: BLE001
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
                    except Exception as exc:  # noqa: BLE001
                        o.status, o.grades_kept = "failed", False
                        o.add(ERROR, f"could not record the grades: {type(exc).__name__}: {exc}"[:300])
                        o.log += "\n" + traceback.format_exc()
                    else:
                        if late > 0:
                            o.add(LATE, f"submitted {_seconds(late)} after the due date: nbgrader's late penalty applies")
                    o.log_file = _keep_log(course, o)
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


def _nbgrader_steps(course: Course, rows: list[Graded], feedback: bool) -> list[list[str]]:
    """The nbgrader commands that follow grading: feedback for the students graded here whose
    worker could not make it (each worker makes its students' feedback: task.grade), then
    grades.csv. Students not graded in this run keep their feedback as it was."""
    steps = []
    if feedback:
        steps += [["generate_feedback", course.assignment, "--force", f"--student={o.student}"]
                  for o in rows if o.merged and o.feedback is None]
    steps.append(["export", "--to", str(course.root / "grades.csv")])
    return steps


class _Steps:
    """nbgrader commands run one after another in the background; `wait()` gives a message per
    command that failed."""

    def __init__(self, course: Course):
        self.course, self.thread, self.failed = course, None, []

    @property
    def started(self) -> bool:
        return self.thread is not None

    def start(self, steps: list[list[str]]) -> None:
        self.thread = threading.Thread(target=self._run, args=(steps,), name="nbgrader-steps", daemon=True)
        self.thread.start()

    def _run(self, steps) -> None:
        for step in steps:
            done = subprocess.run([*_nbgrader(), *step], cwd=self.course.root, env=_env(), capture_output=True, text=True)
            if done.returncode:
                self.failed.append(f"nbgrader {step[0]} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")

    def wait(self) -> list[str]:
        if self.thread is not None:
            self.thread.join()
        return self.failed


def run(course_dir: Path, assignment: str, jobs: int, submission_timeout: float, feedback: bool = True,
        out=sys.stdout, spare_kernels: bool = True, scheduler: str | None = None, resume: bool = False,
        only: list[str] | None = None) -> int:
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
        print(f"Resuming: {len(done & set(course.students))} already graded, {len(students)} to grade.", file=out, flush=True)
    where = f"the Dask cluster at {scheduler}" if scheduler else f"{jobs} local worker(s)"
    print(f"Grading {len(students)} submission(s) of {assignment} on {where}...", file=out, flush=True)
    if not scheduler:
        from course_grade.kernels.sandbox import status as sandbox_status

        sandbox = sandbox_status()  # "on", or one line saying why it is off and which protections are missing
        if sandbox != "on":
            print(f"WARNING: sandbox {sandbox}", file=out, flush=True)
    stopped = None
    outcomes: dict[str, Graded] = {}
    finishing = _Steps(course)

    def all_merged(merged: dict[str, Graded]) -> None:  # nbgrader's feedback and export start while the cluster closes
        finishing.start(_nbgrader_steps(course, [merged[s] for s in students], feedback))

    if students:
        try:
            outcomes = grade_all(course, students, jobs, submission_timeout, out, scheduler, spare_kernels, named_by,
                                 all_merged=all_merged, feedback=feedback)
        except Stopped as exc:
            stopped, outcomes = exc.why, exc.outcomes
    for student in students:
        if student not in outcomes:
            outcomes[student] = Graded(student, status="not graded", note=f"the run stopped before this submission was graded ({stopped})")
    if scheduler and any(o.sandbox not in ("", "on") for o in outcomes.values()):
        print("WARNING: some workers graded without the sandbox: see the sandbox column of " + REPORT_FILE, file=out)
    _write_report(course, outcomes)
    rows = [outcomes[s] for s in students]
    failures = sum(o.status != "graded" for o in rows)

    if not finishing.started:  # stopped (merged students have their workers' pages; no fallback feedback), or nobody to grade
        finishing.start(_nbgrader_steps(course, rows, feedback and stopped is None))

    analysis = None
    if any(o.status == "graded" for o in outcomes.values()) or (course.root / "autograded").is_dir():
        from course_grade.reports.item_report import report_after_grading

        analysis = report_after_grading(course.root, assignment, out=out)
    for message in finishing.wait():
        print(message, file=out)
        failures += 1

    print("\nSummary", file=out)
    print(f"{'student':<24} {'status':<9} {'score':>9} {'time':>8}  note", file=out)
    for o in rows:
        print(_line(o), file=out)
    graded = sum(o.status == "graded" for o in rows)
    if stopped is not None:
        print(f"\nStopped: {stopped}. {graded}/{len(rows)} graded and kept in the gradebook; run the same command "
              f"with --resume to grade the rest.", file=out)
        return 3
    logs = sum(bool(o.log_file) for o in rows)
    print(f"\n{graded}/{len(rows)} graded; grades: grades.csv; per-student status: {REPORT_FILE}"
          + (f"; logs of the {logs} submission(s) not graded: {LOGS}/{assignment}/" if logs else "")
          + ("; feedback: feedback/" if feedback else "")
          + (f"; item analysis: {analysis.relative_to(course.root)}" if analysis else ""), file=out)
    return 0 if failures == 0 else 1
