"""One submission, graded wherever it is sent: a Dask worker, or the self-grading service.

A task shares no filesystem with the instructor. It receives, as bytes:
- `AssignmentBundle`: what it needs of the assignment (the course's nbgrader_config.py, a copy
  of the gradebook holding the assignment but no student, the source folder's other files);
- `SubmissionBundle`: the student's notebooks and the few files grading reads (quiz answers,
  nbgrader's timestamp and feedback secret). Anything else the student put beside the
  notebook is left out and named in the report.

`grade()` lays them out as a one-student nbgrader course in a private scratch folder, runs
stock nbgrader's autograde there (our preprocessors included: nbgrader_config.py), and returns
a `Graded`: the autograded folder's files, the gradebook rows and the log. Only the
instructor's process writes the course gradebook (`course_grade.commands.grade.merge`).

One deadline bounds everything done for a submission (autograde, collecting its results, its
feedback page): past it, a kernel still running is killed and the submission is "timed out",
or, when only the feedback was left to make, the child process making it is killed and the
grades are kept (the instructor's process makes that page with nbgrader afterwards). One that
cannot be graded is "failed". Every outcome carries its `reasons` (codes below, as data) and a
`note` (one sentence each) and, when it failed, nbgrader's log and the traceback; neither
stops the worker.
"""
from __future__ import annotations

import datetime
import json
import os
import shutil
import socket
import stat
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

# Files read from a submission besides its notebooks: the quiz answers, and nbgrader's
# timestamp and feedback secret. Anything else is left out of grading and reported.
KEPT_FILES = ("quiz_answers.json", "timestamp.txt", "submission_secret.txt")
SOURCE_IGNORED = ("*.ipynb", ".ipynb_checkpoints", "*.db", "*.db-journal", "__pycache__")

# Why a submission needs a look, as data (`Graded.reasons`, the report's reason column).
CORRUPT = "corrupt"  # the notebook is not a readable .ipynb
BLANK = "blank"  # an empty file, or a notebook without cells
NO_NOTEBOOK = "no notebook"  # no file named as the assignment's notebook
BAD_TIMESTAMP = "bad timestamp"  # timestamp.txt holds no time nbgrader can read
TIMED_OUT = "timed out"  # past --submission-timeout (the whole task's deadline)
CELL_TIME_LIMIT = "cell time limit"  # a cell stopped at the per-cell limit (c.Execute.timeout)
KERNEL_DIED = "kernel died"
ERROR = "error"  # nbgrader or the course's configuration failed: the log has the traceback
LATE = "late"  # submitted after the due date (nbgrader's late penalty applies)
ANSWERS_MISSING = "answers missing"  # no quiz_answers.json: the quiz scored 0
ANSWERS_DAMAGED = "answers damaged"  # an unreadable quiz_answers.json: the quiz scored 0
TAMPERING = "tampering"  # the tampering analysis removed statements
# Reasons that flag the submitted notebook in the gradebook (the formgrader's flag, as
# tampering does). Late and the quiz's answers file are not flagged: nbgrader applies the late
# penalty itself, and the quiz cells' own message says the file is missing or damaged.
FLAGGED_REASONS = frozenset({CORRUPT, BLANK, NO_NOTEBOOK, BAD_TIMESTAMP, TIMED_OUT, CELL_TIME_LIMIT, KERNEL_DIED, ERROR, TAMPERING})


@dataclass(frozen=True)
class AssignmentBundle:
    name: str
    notebooks: tuple[str, ...]  # notebook names (without .ipynb), from the gradebook
    config: bytes  # the course's nbgrader_config.py
    gradebook: bytes  # the course gradebook with the assignment and no student
    files: dict[str, bytes] = field(default_factory=dict)  # source/<name>/ files nbgrader copies over a submission

    @classmethod
    def from_course(cls, root: Path, name: str) -> "AssignmentBundle":
        from nbgrader.api import Gradebook

        with tempfile.TemporaryDirectory(prefix="assignment-") as tmp:
            template = Path(tmp) / "gradebook.db"
            shutil.copy(root / "gradebook.db", template)
            with warnings.catch_warnings(), Gradebook(f"sqlite:///{template}") as gb:
                warnings.simplefilter("ignore")
                notebooks = tuple(nb.name for nb in gb.find_assignment(name).notebooks)
                for student in list(gb.students):
                    gb.remove_student(student.id)
            gradebook = template.read_bytes()
        source = root / "source" / name
        files = {}
        if source.is_dir():
            import fnmatch

            for path in sorted(source.rglob("*")):
                rel = path.relative_to(source)
                if path.is_file() and not any(fnmatch.fnmatch(part, pat) for part in rel.parts for pat in SOURCE_IGNORED):
                    files[rel.as_posix()] = path.read_bytes()
        return cls(name, notebooks, (root / "nbgrader_config.py").read_bytes(), gradebook, files)


@dataclass(frozen=True)
class SubmissionBundle:
    student: str
    files: dict[str, bytes]
    left_out: tuple[str, ...] = ()
    extension: datetime.timedelta | None = None  # the instructor's extension in the course gradebook

    @classmethod
    def from_folder(cls, folder: Path, student: str, notebooks: tuple[str, ...],
                    extension: datetime.timedelta | None = None) -> "SubmissionBundle":
        kept = {f"{name}.ipynb" for name in notebooks} | set(KEPT_FILES)
        files, left_out = {}, []
        for item in sorted(folder.iterdir()):
            data = read_regular(item) if item.name in kept else None
            if data is not None:
                files[item.name] = data
            else:
                left_out.append(item.name)
        return cls(student, files, tuple(left_out), extension)


@dataclass
class Graded:
    student: str
    status: str = "failed"  # graded | failed | timed out
    score: float | None = None
    max_score: float | None = None
    seconds: float = 0.0
    note: str = ""
    left_out: tuple[str, ...] = ()
    tampering: list[str] = field(default_factory=list)
    log: str = ""
    files: dict[str, bytes] = field(default_factory=dict)  # the autograded folder: relative path -> bytes
    modes: dict[str, int] = field(default_factory=dict)  # their permission bits, as nbgrader set them (444)
    # the feedback folder nbgrader's generate_feedback made from them (None: not made here, the
    # instructor's process makes it), and its files' permission bits (644)
    feedback: dict[str, bytes] | None = None
    feedback_modes: dict[str, int] = field(default_factory=dict)
    rows: dict | None = None  # the gradebook rows of the submission (see gradebook_rows)
    sandbox: str = ""  # "on", or why the kernels ran without it on that worker
    worker: str = ""  # where it was graded (host and process)
    reasons: list[str] = field(default_factory=list)  # why it needs a look: the codes above
    grades_kept: bool = False  # timed out after autograde finished: its grades are merged
    log_file: str = ""  # where the instructor's process kept the log of a failed task (course-relative)

    @property
    def flagged(self) -> bool:
        """Whether the gradebook flags the submitted notebook for the instructor's review."""
        return bool(self.tampering) or any(r in FLAGGED_REASONS for r in self.reasons)

    @property
    def merged(self) -> bool:
        """Whether its grades go into the course gradebook (else its submission is recorded with
        0 points, flagged: course_grade.commands.grade.merge)."""
        return self.status == "graded" or self.grades_kept

    def add(self, reason: str, note: str) -> None:
        """Record a reason (a code above) and its sentence."""
        if reason not in self.reasons:
            self.reasons.append(reason)
        self.note = f"{self.note}; {note}" if self.note else note


def _safe(rel: str) -> PurePosixPath:
    path = PurePosixPath(rel)
    if path.is_absolute() or ".." in path.parts or not path.parts:
        raise ValueError(f"refusing a file name that leaves its folder: {rel!r}")
    return path


def write_files(folder: Path, files: dict[str, bytes], modes: dict[str, int] | None = None) -> None:
    """Write `files` (relative path -> bytes) under `folder`, each with its permission bits in
    `modes` if given there (a file nbgrader made read-only stays so)."""
    for rel, data in files.items():
        target = folder.joinpath(*_safe(rel).parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        if modes and rel in modes:
            os.chmod(target, modes[rel] & 0o777)


def read_regular(path: Path) -> bytes | None:
    """The bytes of `path` if it is a regular file with no other name; None for a link (never
    followed), a pipe, a device, a folder or a hard link."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1:
            return None
        with os.fdopen(fd, "rb", closefd=False) as f:
            return f.read()
    finally:
        os.close(fd)


def _regular_files(folder: Path) -> list[Path]:
    """The regular files below `folder`, found without following a link."""
    found = []
    for top, dirs, files in os.walk(folder):
        found += [Path(top, name) for name in files if stat.S_ISREG(os.lstat(os.path.join(top, name)).st_mode)]
    return sorted(found)


def read_files(folder: Path) -> dict[str, bytes]:
    """Every regular file below `folder` (relative path -> bytes); links and special files are
    never followed or read."""
    out = {}
    for path in _regular_files(folder):
        data = read_regular(path)
        if data is not None:
            out[path.relative_to(folder).as_posix()] = data
    return out


def file_modes(folder: Path) -> dict[str, int]:
    """The permission bits of every file under `folder` (as read_files names them)."""
    return {p.relative_to(folder).as_posix(): stat.S_IMODE(os.lstat(p).st_mode) for p in _regular_files(folder)}


def gradebook_rows(gradebook: Path, assignment: str, student: str) -> dict:
    """Everything the course gradebook needs of one graded submission, as plain data."""
    from nbgrader.api import Gradebook

    with warnings.catch_warnings(), Gradebook(f"sqlite:///{gradebook}") as gb:
        warnings.simplefilter("ignore")
        sub = gb.find_submission(assignment, student)
        return {
            "timestamp": sub.timestamp, "extension": sub.extension,
            "score": sub.score, "max_score": sub.max_score, "seconds_late": sub.total_seconds_late,
            "notebooks": [{
                "name": nb.name, "flagged": nb.flagged, "late_submission_penalty": nb.late_submission_penalty,
                "grades": [{"name": g.name, "auto_score": g.auto_score, "manual_score": g.manual_score,
                            "extra_credit": g.extra_credit, "needs_manual_grade": g.needs_manual_grade}
                           for g in nb.grades],
                "comments": [{"name": c.name, "auto_comment": c.auto_comment, "manual_comment": c.manual_comment}
                             for c in nb.comments],
            } for nb in sub.notebooks],
        }


def flagged_cells(nb: dict) -> list[str] | None:
    """What the tampering analysis flagged in a graded notebook (one line per changed cell),
    or None when the analysis did not run on it (FlagTampering missing from the config)."""
    from course_grade.nbgrader_ext.flag_tampering import SCANNED

    from course_grade.nbgrader_ext.sweep_working_folder import SWEPT

    course = nb.get("metadata", {}).get("course", {})
    if not course.get(SCANNED):
        return None
    found = [f"left in the folder: {line}" for line in course.get(SWEPT, [])]
    for number, cell in enumerate(nb.get("cells", []), start=1):
        flags = cell.get("metadata", {}).get("course", {}).get("flagged")
        if flags:
            name = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") or "added by the student"
            found.append(f"cell {number} ({name}): " + "; ".join(flags))
    return found


def why_it_failed(log: str) -> tuple[str, str]:
    """(reason code, one sentence) for an autograde that failed, from nbgrader's log: the only
    account nbgrader's API gives of an error it caught."""
    text = log.lower()
    if "deadkernelerror" in text or "kernel died" in text:
        return KERNEL_DIED, "the kernel died while running the notebook (os._exit, a crash, or out of memory)"
    if "notjsonerror" in text or "unreadable notebook" in text or "not appear to be json" in text:
        return CORRUPT, NOTES[CORRUPT]
    if "no such file or directory" in text and ".ipynb" in text:
        return NO_NOTEBOOK, NOTES[NO_NOTEBOOK]
    errors = [line.strip() for line in log.splitlines() if "ERROR" in line or "Error" in line]
    return ERROR, (errors[-1] if errors else "nbgrader autograde failed")[:300]


NOTES = {
    CORRUPT: "the notebook file is not a readable .ipynb (corrupt or not JSON): ask the student to submit it again",
    BLANK: "the notebook is empty (no cells): ask the student to submit their work again",
    NO_NOTEBOOK: "the submission has no notebook named as the assignment's: ask the student to submit it again",
    BAD_TIMESTAMP: "timestamp.txt holds no time nbgrader can read (nbgrader submit writes one): collect the "
                   "submission again",
}
TIMESTAMP_BYTES = 200  # nbgrader writes ~30; its date parser is quadratic in a run of digits


def timestamp_problem(data: bytes | None) -> str | None:
    """BAD_TIMESTAMP when a timestamp.txt is there but holds no time (read before nbgrader,
    whose parse of a long run of digits takes minutes), else None."""
    if data is None:
        return None
    from nbgrader.utils import parse_utc

    try:
        if len(data) > TIMESTAMP_BYTES:
            raise ValueError("too long")
        text = data.decode("utf-8").strip()
        if text:
            parse_utc(text)
    except (ValueError, OverflowError, UnicodeDecodeError):
        return BAD_TIMESTAMP
    return None


def notebook_problem(data: bytes | None) -> str | None:
    """Why a submitted notebook cannot be graded at all, before nbgrader reads it (a reason
    code), or None: missing, an empty file, not a readable notebook, or no cells."""
    import nbformat

    if data is None:
        return NO_NOTEBOOK
    if not data.strip():
        return BLANK
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            nb = nbformat.reads(data.decode("utf-8"), as_version=4)
    except Exception:  # noqa: BLE001 - whatever nbformat cannot read, nbgrader cannot grade
        return CORRUPT
    return BLANK if not nb.get("cells") else None


def _look_at(out: "Graded", nb: dict, name: str, ename: str) -> None:
    """The reasons a graded notebook needs a look: cells stopped at the per-cell limit, the
    quiz's answers file missing or damaged (as CollectQuizAnswers recorded it)."""
    from course_grade.nbgrader_ext.flag_cell_timeouts import timed_out_cells
    from course_grade.nbgrader_ext.collect_quiz_answers import METADATA_KEY

    cells = timed_out_cells(nb, ename)
    if cells:
        out.add(CELL_TIME_LIMIT, f"{', '.join(cells)} stopped at the per-cell time limit (c.Execute.timeout) and "
                                 f"lost its points: look at the notebook, or raise the limit and regrade")
    state = nb.get("metadata", {}).get(METADATA_KEY, {}).get("state")
    if state == "missing":
        out.add(ANSWERS_MISSING, f"{name}.ipynb came without quiz_answers.json, so the quiz scored 0")
    elif state == "damaged":
        out.add(ANSWERS_DAMAGED, f"{name}.ipynb came with an unreadable quiz_answers.json, so the quiz scored 0")


def _kernels() -> list:
    """The kernels (and their sandboxes) this process started."""
    import psutil

    found = []
    for proc in psutil.Process().children(recursive=False):
        try:
            cmd = " ".join(proc.cmdline())
        except psutil.Error:
            continue
        if "ipykernel" in cmd or "bwrap" in cmd or "prlimit" in cmd:
            found.append(proc)
    return found


def kill_tree(procs) -> None:
    """Kill each process and everything it started."""
    import psutil

    family = []
    for proc in procs:
        try:
            family += proc.children(recursive=True) + [proc]
        except psutil.Error:
            pass
    for proc in family:
        try:
            proc.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(family, timeout=10)


SCRATCH_VARIABLE = "COURSE_GRADE_SCRATCH"


def _scratch() -> Path:
    """A private scratch folder: in memory (/dev/shm) where it can be, since nbgrader commits
    the scratch gradebook dozens of times per submission (~0.7 s saved on disk); elsewhere,
    or if it is full, the usual temporary folder. COURSE_GRADE_SCRATCH=DIR chooses."""
    for place in (os.environ.get(SCRATCH_VARIABLE), "/dev/shm", None):
        if place is not None and not os.path.isdir(place):
            continue
        try:
            return Path(tempfile.mkdtemp(prefix="grade-", dir=place))
        except OSError:
            continue
    raise OSError("no writable temporary folder for grading")


def _wait(pid: int, seconds: float) -> int | None:
    """The exit status of child `pid` once it ends, or None if it is still running after
    `seconds` (it is then killed and reaped)."""
    import select
    import signal

    try:
        fd = os.pidfd_open(pid)
    except (AttributeError, OSError):  # no pidfd (old kernel): poll
        fd = None
    try:
        end = time.monotonic() + seconds
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return os.waitstatus_to_exitcode(status)
            left = end - time.monotonic()
            if left <= 0:
                break
            if fd is not None:
                select.select([fd], [], [], left)
            else:
                time.sleep(min(left, 0.02))
    finally:
        if fd is not None:
            os.close(fd)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return None


def _make_feedback(api, assignment: str, student: str, folder: Path, out: Graded, deadline: float) -> bool:
    """nbgrader's generate_feedback for the student just graded, into `out.feedback` (left
    None if nbgrader could not make it: the instructor's process then tries). It runs in a
    child process forked for it, killed at `deadline` (time.monotonic()): rendering a page is
    pure Python that no timer can stop in a thread. Returns False when the deadline came first.
    The child sends back the templates it compiled, so this process's cache stays warm
    (course_grade/nbgrader_ext/cached_templates_html_exporter.py)."""
    import base64

    from course_grade.nbgrader_ext import cached_templates_html_exporter as feedback_exporter

    left = deadline - time.monotonic()
    if left <= 0:
        return False
    compiled = folder.parents[2] / ".compiled-templates.json"  # in the scratch course, beside feedback/
    pid = os.fork()
    if pid == 0:  # the child: make the page, send the compiled templates, never return
        code = 1
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                made = api.generate_feedback(assignment, student)
            if made.get("success"):
                store = {k: base64.b64encode(v).decode() for k, v in feedback_exporter._CACHE.store.items()}
                compiled.write_text(json.dumps(store))
                code = 0
        except BaseException:  # noqa: BLE001 - the exit status says it failed
            pass
        finally:
            os._exit(code)
    status = _wait(pid, left)
    if status is None:
        out.feedback = None
        return False
    if status == 0 and folder.is_dir():
        out.feedback, out.feedback_modes = read_files(folder), file_modes(folder)
        try:
            store = json.loads(compiled.read_text())
            with feedback_exporter._CACHE.lock:
                feedback_exporter._CACHE.store.update({k: base64.b64decode(v) for k, v in store.items()})
        except (OSError, ValueError):
            pass
    return True


def grade(assignment: AssignmentBundle, submission: SubmissionBundle, timeout: float = 600,
          spare=None, feedback: bool = False) -> Graded:
    """Autograde one submission with stock nbgrader in a private scratch course folder.

    `spare` (a course_grade.kernels.spares.Spare) runs the notebook in a kernel that was started
    before the submission arrived. With `feedback`, nbgrader's generate_feedback then makes the
    student's feedback there too, from the same gradebook rows the course will hold (so the
    class's feedback is made in parallel, not one student after another at the end); if it
    fails, `feedback` stays None and the instructor's process makes it. `timeout` bounds all
    of it from the moment the task starts: past it during autograde, the kernel is killed and
    the submission is "timed out" with no grades; past it later, it is "timed out" with its
    grades kept (`grades_kept`) and no feedback here. Never raises for a bad submission: the
    result says why (`reasons`, `note`, and nbgrader's `log` with the traceback)."""
    from course_grade.kernels.sandbox import status as sandbox_status

    out = Graded(submission.student, left_out=submission.left_out, sandbox=sandbox_status(),
                 worker=f"{socket.gethostname()}:{os.getpid()}")
    start = time.perf_counter()
    deadline = time.monotonic() + timeout
    scratch = _scratch()
    timer = None
    expired = threading.Event()
    cwd = os.getcwd()
    late_note = f"grading took longer than the {timeout:g} s limit and was stopped: look at the notebook, " \
                f"or give --submission-timeout more seconds"
    try:
        for name in assignment.notebooks:
            problem = notebook_problem(submission.files.get(f"{name}.ipynb"))
            if problem is not None:
                out.add(problem, NOTES[problem])
        problem = timestamp_problem(submission.files.get("timestamp.txt"))
        if problem is not None:
            out.add(problem, NOTES[problem])
        if out.reasons:
            return out

        (scratch / "nbgrader_config.py").write_bytes(assignment.config)
        (scratch / "gradebook.db").write_bytes(assignment.gradebook)
        (scratch / "source" / assignment.name).mkdir(parents=True)
        write_files(scratch / "source" / assignment.name, assignment.files)
        given = scratch / "submitted" / submission.student / assignment.name
        given.mkdir(parents=True)
        write_files(given, submission.files)

        from nbgrader.apps.api import NbGraderAPI
        from nbgrader.coursedir import CourseDirectory
        from traitlets.config.loader import PyFileConfigLoader

        from course_grade.nbgrader_ext.pooled_execute import use_spare_kernels
        from course_grade.nbgrader_ext.cached_templates_html_exporter import use_cached_feedback_templates
        from course_grade.nbgrader_ext.cached_check_cell_metadata import use_cached_metadata_check

        os.chdir(scratch)
        config = PyFileConfigLoader("nbgrader_config.py", path=str(scratch)).load_config()
        if spare is not None:
            use_spare_kernels(config, spare)
        use_cached_metadata_check(config)
        if feedback:
            use_cached_feedback_templates(config)
        api = NbGraderAPI(coursedir=CourseDirectory(config=config), config=config)

        def expire():
            expired.set()
            kill_tree(_kernels())

        timer = threading.Timer(max(deadline - time.monotonic(), 0), expire)
        timer.daemon = True
        timer.start()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # nbgrader's own SQLAlchemy autoflush warnings
            if submission.extension is not None:  # late penalties count it, as in the course
                from nbgrader.api import Gradebook

                with Gradebook(f"sqlite:///{scratch / 'gradebook.db'}") as gb:
                    gb.update_or_create_student(submission.student)
                    gb.update_or_create_submission(assignment.name, submission.student, extension=submission.extension)
            result = api.autograde(assignment.name, submission.student, force=True, create=True)
        timer.cancel()
        out.log = (result.get("log") or "") + (result.get("error") or "")
        if expired.is_set():
            out.status = "timed out"
            out.add(TIMED_OUT, late_note)
            return out
        graded = scratch / "autograded" / submission.student / assignment.name
        if not result.get("success") or not graded.is_dir():
            out.add(*why_it_failed(out.log))
            return out
        try:
            out.rows = gradebook_rows(scratch / "gradebook.db", assignment.name, submission.student)
        except Exception:  # noqa: BLE001 - nbgrader wrote no grades: say why from its log
            out.add(*why_it_failed(out.log))
            out.rows = None
            return out
        out.score, out.max_score = out.rows["score"], out.rows["max_score"]
        out.files, out.modes = read_files(graded), file_modes(graded)
        from course_grade.nbgrader_ext.flag_cell_timeouts import timeout_ename

        ename = timeout_ename(config)
        for name in assignment.notebooks:
            try:
                nb = json.loads(out.files.get(f"{name}.ipynb", b"{}"))
            except ValueError:
                nb = {}
            found = flagged_cells(nb)
            if found is None:
                out.note = "; ".join(filter(None, [out.note, "REVIEW: not checked for tampering "
                                                   "(FlagTampering is not in nbgrader_config.py)"]))
            out.tampering += found or []
            _look_at(out, nb, name, ename)
        if out.tampering and TAMPERING not in out.reasons:
            out.reasons.append(TAMPERING)
        out.status = "graded"
        if feedback and not _make_feedback(api, assignment.name, submission.student,
                                           scratch / "feedback" / submission.student / assignment.name, out, deadline):
            expired.set()
        if expired.is_set() or time.monotonic() > deadline:  # the grades are whole: keep them
            out.status, out.grades_kept = "timed out", True
            out.add(TIMED_OUT, f"grading took longer than the {timeout:g} s limit: its grades are kept, and nbgrader "
                               f"makes its feedback in the course afterwards")
        return out
    except Exception as exc:  # noqa: BLE001 - a broken submission must never stop the others
        import traceback

        out.status, out.grades_kept, out.rows = "failed", False, None
        out.add(ERROR, f"could not grade: {type(exc).__name__}: {exc}"[:300])
        out.log += "\n" + traceback.format_exc()
        return out
    finally:
        if timer is not None:
            timer.cancel()
        os.chdir(cwd)
        shutil.rmtree(scratch, ignore_errors=True)
        out.seconds = time.perf_counter() - start
