"""Grade every submission of an assignment in parallel, with stock nbgrader as the engine.

    python -m course_grade grade connection-pooling [--jobs N] [--submission-timeout S]

Each submission is graded by its own `nbgrader autograde` process in a scratch course folder
(its own copy of the gradebook, holding the assignment but no other student), so a
submission that hangs, crashes its kernel or floods its output affects only its own row.
The scratch results are then merged, one by one, into the course gradebook and copied into
`autograded/`; feedback (without hidden tests, see nbgrader_config.py) and the grades CSV
are written with stock nbgrader. `submitted/` is only ever read.
"""
from __future__ import annotations

import concurrent.futures
import csv
import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

# Files copied from a submission besides its notebooks: the quiz answers, and nbgrader's
# timestamp and feedback secret. Anything else a student put beside the notebook (a module
# named like ours, a fake database) is left out of grading and reported.
KEPT_FILES = ("quiz_answers.json", "timestamp.txt", "submission_secret.txt")
REPORT_FILE = "grading-report.csv"

# Student cells that reach for the grading machinery are found by the FlagTampering
# preprocessor (course_grade/tamper.py, an analysis of each cell's syntax tree, configured in
# nbgrader_config.py so stock `nbgrader autograde` runs it too): it replaces such a cell with a
# comment before anything runs and flags the notebook; the command reports what it found.


class UsageError(Exception):
    """Bad arguments or course layout: one line for the instructor, nothing written."""


@dataclass
class Outcome:
    student: str
    status: str = "failed"  # graded | failed | timed out
    score: float | None = None
    max_score: float | None = None
    seconds: float = 0.0
    note: str = ""
    left_out: list[str] = field(default_factory=list)
    tampering: list[str] = field(default_factory=list)


def _nbgrader() -> str:
    found = Path(sys.executable).with_name("nbgrader")
    return str(found) if found.exists() else "nbgrader"


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


# ------------------------------------------------------------------------- scratch grading

def _template_gradebook(course: Course, into: Path) -> Path:
    """A copy of the course gradebook holding the assignments but no student."""
    from nbgrader.api import Gradebook

    path = into / "template-gradebook.db"
    shutil.copy(course.gradebook, path)
    with Gradebook(f"sqlite:///{path}") as gb:
        for student in list(gb.students):
            gb.remove_student(student.id)
    return path


def _prepare(course: Course, student: str, template: Path, scratch: Path) -> list[str]:
    """A one-student course folder; returns the submitted files left out."""
    scratch.mkdir(parents=True)
    shutil.copy(course.root / "nbgrader_config.py", scratch)
    shutil.copy(template, scratch / "gradebook.db")
    # nbgrader copies the source folder's non-notebook files over the submission
    source = course.root / "source" / course.assignment
    ignore = shutil.ignore_patterns("*.ipynb", ".ipynb_checkpoints", "*.db", "__pycache__")
    if source.is_dir():
        shutil.copytree(source, scratch / "source" / course.assignment, ignore=ignore)
    else:
        (scratch / "source" / course.assignment).mkdir(parents=True)
    given = course.root / "submitted" / student / course.assignment
    target = scratch / "submitted" / student / course.assignment
    target.mkdir(parents=True)
    kept = {f"{name}.ipynb" for name in course.notebooks} | set(KEPT_FILES)
    left_out = []
    for item in sorted(given.iterdir()):
        if item.name in kept and item.is_file():
            shutil.copy(item, target / item.name)
        else:
            left_out.append(item.name)
    return left_out


def flagged_cells(path: Path) -> list[str] | None:
    """What the tampering analysis flagged in a graded notebook (one line per removed cell),
    or None when the analysis did not run on it (FlagTampering missing from the config)."""
    from course_grade.tamper_preprocessor import SCANNED

    try:
        nb = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    if not nb.get("metadata", {}).get("course", {}).get(SCANNED):
        return None
    found = []
    for number, cell in enumerate(nb.get("cells", []), start=1):
        flags = cell.get("metadata", {}).get("course", {}).get("flagged")
        if flags:
            name = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") or "added by the student"
            found.append(f"cell {number} ({name}): " + "; ".join(flags))
    return found


def _kill_tree(pid: int) -> None:
    """Stop nbgrader and every process it started, kernels included (they run in sessions
    of their own, so killing the process group alone would leave them running)."""
    import psutil

    try:
        parent = psutil.Process(pid)
        family = parent.children(recursive=True) + [parent]
    except psutil.NoSuchProcess:
        return
    for proc in family:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(family, timeout=10)


def _why_it_failed(log: str) -> str:
    text = log.lower()
    if "deadkernelerror" in text or "kernel died" in text:
        return "the kernel died while running the notebook (os._exit, a crash, or out of memory)"
    if "notjsonerror" in text or "unreadable notebook" in text or "not appear to be json" in text:
        return "the notebook file is not a readable .ipynb (corrupt or not JSON)"
    if "no such file or directory" in text and ".ipynb" in text:
        return "the submission has no notebook named as the assignment's"
    errors = [line.strip() for line in log.splitlines() if "ERROR" in line or "Error" in line]
    return (errors[-1] if errors else "nbgrader autograde failed")[:300]


class Worker:
    """A long-lived `python -m course_grade._worker` process (nbgrader imported once)."""

    def __init__(self, log_path: Path, spare_kernels: bool = True):
        from course_grade._worker import MARK

        self.mark = MARK
        self.log = open(log_path, "a")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "course_grade._worker"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=self.log, text=True, start_new_session=True,
            env={**_env(), "AUTOGRADER_SPARE_KERNELS": "1" if spare_kernels else "0"},
        )
        self.answers: queue.Queue = queue.Queue()
        self.ready = False
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            if line.startswith(self.mark):
                self.answers.put(json.loads(line[len(self.mark):]))
        self.answers.put(None)  # the worker exited

    def grade(self, scratch: Path, assignment: str, student: str, timeout: float) -> dict | None:
        """The worker's answer, or None when it did not answer in time (then it is killed)."""
        deadline = time.monotonic() + timeout
        exited = {"success": False, "log": "the grading worker exited"}
        try:
            if not self.ready:  # the first request waits for nbgrader to be imported
                if self.answers.get(timeout=timeout) is None:
                    return exited
                self.ready = True
            self.proc.stdin.write(json.dumps({"scratch": str(scratch), "assignment": assignment, "student": student}) + "\n")
            self.proc.stdin.flush()
            answer = self.answers.get(timeout=max(0.1, deadline - time.monotonic()))
            return answer if answer is not None else exited
        except queue.Empty:
            self.close()
            return None
        except (BrokenPipeError, OSError) as exc:
            self.close()
            return {"success": False, "log": f"the grading worker exited ({exc})"}

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def close(self) -> None:
        if self.proc.stdin and not self.proc.stdin.closed:
            try:
                self.proc.stdin.close()  # a worker at rest ends when its input does
                self.proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                pass
        _kill_tree(self.proc.pid)
        if not self.log.closed:
            self.log.close()


class WorkerPool:
    """Idle workers for the grading threads; a killed or dead worker is replaced."""

    def __init__(self, workdir: Path, spare_kernels: bool = True):
        self.workdir, self.idle, self.count = workdir, queue.SimpleQueue(), 0
        self.spare_kernels = spare_kernels
        self.lock = threading.Lock()

    def take(self) -> Worker:
        try:
            return self.idle.get_nowait()
        except queue.Empty:
            with self.lock:
                self.count += 1
                n = self.count
            return Worker(self.workdir / f"worker-{n}.log", self.spare_kernels)

    def give_back(self, worker: Worker) -> None:
        if worker.alive:
            self.idle.put(worker)
        else:
            worker.close()

    def close(self) -> None:
        while True:
            try:
                self.idle.get_nowait().close()
            except queue.Empty:
                return


def grade_one(course: Course, student: str, template: Path, workdir: Path, timeout: float,
              workers: WorkerPool) -> Outcome:
    """Autograde one student with stock nbgrader, in a scratch course folder, in a worker."""
    from nbgrader.api import Gradebook, MissingEntry

    outcome = Outcome(student)
    scratch = workdir / student
    start = time.perf_counter()
    try:
        outcome.left_out = _prepare(course, student, template, scratch)
        worker = workers.take()
        try:
            answer = worker.grade(scratch, course.assignment, student, timeout)
        finally:
            workers.give_back(worker)
        if answer is None:
            outcome.status, outcome.note = "timed out", f"grading took longer than {timeout:g} s and was stopped"
            return outcome
        log = answer["log"]
        (scratch / "autograde.log").write_text(log)
        try:
            with Gradebook(f"sqlite:///{scratch / 'gradebook.db'}") as gb:
                submission = gb.find_submission(course.assignment, student)
                outcome.score, outcome.max_score = submission.score, submission.max_score
        except MissingEntry:
            outcome.note = _why_it_failed(log)
            return outcome
        if not answer["success"] or not (scratch / "autograded" / student / course.assignment).is_dir():
            outcome.note = _why_it_failed(log)
            return outcome
        for name in course.notebooks:
            found = flagged_cells(scratch / "autograded" / student / course.assignment / f"{name}.ipynb")
            if found is None:
                outcome.note = "REVIEW: not checked for tampering (FlagTampering is not in nbgrader_config.py)"
            outcome.tampering += found or []
        outcome.status = "graded"
        return outcome
    except Exception as exc:  # a broken submission must never stop the others
        outcome.note = f"could not grade: {type(exc).__name__}: {exc}"[:300]
        return outcome
    finally:
        outcome.seconds = time.perf_counter() - start


# ------------------------------------------------------------------------------- merging

def merge(course: Course, student: str, scratch: Path, tampering: list[str] = ()) -> None:
    """Put one scratch result into the course gradebook and autograded/ (replacing any old one)."""
    from nbgrader.api import Gradebook, MissingEntry

    with warnings.catch_warnings(), Gradebook(f"sqlite:///{scratch / 'gradebook.db'}") as src, \
            Gradebook(f"sqlite:///{course.gradebook}") as dst:
        warnings.simplefilter("ignore")  # nbgrader's own SQLAlchemy autoflush warnings
        graded = src.find_submission(course.assignment, student)
        dst.update_or_create_student(student)
        try:
            dst.remove_submission(course.assignment, student)
        except MissingEntry:
            pass
        dst.add_submission(course.assignment, student, timestamp=graded.timestamp, extension=graded.extension)
        for nb in graded.notebooks:
            target = dst.find_submission_notebook(nb.name, course.assignment, student)
            target.flagged = nb.flagged or bool(tampering)
            target.late_submission_penalty = nb.late_submission_penalty
            for grade in nb.grades:
                mine = dst.find_grade(grade.name, nb.name, course.assignment, student)
                mine.auto_score, mine.manual_score = grade.auto_score, grade.manual_score
                mine.extra_credit, mine.needs_manual_grade = grade.extra_credit, grade.needs_manual_grade
            for comment in nb.comments:
                mine = dst.find_comment(comment.name, nb.name, course.assignment, student)
                mine.auto_comment, mine.manual_comment = comment.auto_comment, comment.manual_comment
        dst.db.commit()
    out = course.root / "autograded" / student / course.assignment
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(scratch / "autograded" / student / course.assignment, out)


# ----------------------------------------------------------------------------- the command

def _line(o: Outcome) -> str:
    score = f"{o.score:g}/{o.max_score:g}" if o.score is not None and o.status == "graded" else "-"
    note = o.note + (f" (left out: {', '.join(o.left_out)})" if o.left_out else "")
    note += f" REVIEW: removed {len(o.tampering)} cell(s) that reached for the grader" if o.tampering else ""
    return f"{o.student:<24} {o.status:<9} {score:>9} {o.seconds:7.1f}s  {note}".rstrip()


def run(course_dir: Path, assignment: str, jobs: int, submission_timeout: float,
        feedback: bool = True, out=sys.stdout, spare_kernels: bool = True) -> int:
    """Grade everything; returns the exit status (0 all graded, 1 some failed)."""
    course = open_course(course_dir, assignment)
    total = len(course.students)
    print(f"Grading {total} submission(s) of {assignment} with {jobs} worker(s)...", file=out, flush=True)
    from course_grade.sandbox import status as sandbox_status

    sandbox = sandbox_status()  # "on", or one line saying why it is off and which protections are missing
    if sandbox != "on":
        print(f"WARNING: sandbox {sandbox}", file=out, flush=True)
    outcomes: dict[str, Outcome] = {}
    failures = 0
    with tempfile.TemporaryDirectory(prefix="grading-") as tmp:
        workdir = Path(tmp)
        template = _template_gradebook(course, workdir)
        workers = WorkerPool(workdir, spare_kernels)
        with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
            futures = [pool.submit(grade_one, course, s, template, workdir / "runs", submission_timeout, workers)
                       for s in course.students]
            for future in concurrent.futures.as_completed(futures):
                o = future.result()
                if o.status == "graded":
                    try:
                        merge(course, o.student, workdir / "runs" / o.student, o.tampering)
                    except Exception as exc:
                        o.status, o.note = "failed", f"could not record the grades: {type(exc).__name__}: {exc}"[:300]
                failures += o.status != "graded"
                outcomes[o.student] = o
                print(f"[{len(outcomes)}/{total}, {failures} failed] {_line(o)}", file=out, flush=True)
        workers.close()

    rows = [outcomes[s] for s in course.students]
    with open(course.root / REPORT_FILE, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["student", "status", "score", "max_score", "seconds", "note", "left_out", "removed_cells", "sandbox"])
        for o in rows:
            writer.writerow([o.student, o.status, "" if o.score is None else o.score,
                             "" if o.max_score is None else o.max_score, f"{o.seconds:.1f}", o.note, " ".join(o.left_out),
                             "; ".join(o.tampering), sandbox])
    steps = []
    if feedback and any(o.status == "graded" for o in rows):
        steps.append(["generate_feedback", assignment, "--force"])
    steps.append(["export", "--to", str(course.root / "grades.csv")])
    for step in steps:
        done = subprocess.run([_nbgrader(), *step], cwd=course.root, env=_env(), capture_output=True, text=True)
        if done.returncode:
            print(f"nbgrader {step[0]} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}", file=out)
            failures += 1

    print("\nSummary", file=out)
    print(f"{'student':<24} {'status':<9} {'score':>9} {'time':>8}  note", file=out)
    for o in rows:
        print(_line(o), file=out)
    graded = sum(o.status == "graded" for o in rows)
    print(f"\n{graded}/{total} graded; grades: grades.csv; per-student status: {REPORT_FILE}"
          + ("; feedback: feedback/" if feedback else ""), file=out)
    return 0 if failures == 0 else 1
