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
instructor's process writes the course gradebook (`course_grade.grading.merge`).

A submission that takes longer than its time limit has its kernel killed (the notebook ends
with a dead kernel) and is reported "timed out"; one that cannot be graded is "failed" with a
one-line reason. Neither stops the worker.
"""
from __future__ import annotations

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

    @classmethod
    def from_folder(cls, folder: Path, student: str, notebooks: tuple[str, ...]) -> "SubmissionBundle":
        kept = {f"{name}.ipynb" for name in notebooks} | set(KEPT_FILES)
        files, left_out = {}, []
        for item in sorted(folder.iterdir()):
            data = read_regular(item) if item.name in kept else None
            if data is not None:
                files[item.name] = data
            else:
                left_out.append(item.name)
        return cls(student, files, tuple(left_out))


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
            "score": sub.score, "max_score": sub.max_score,
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
    from course_grade.tamper_preprocessor import SCANNED

    from course_grade.sweep_folder import SWEPT

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


def why_it_failed(log: str) -> str:
    text = log.lower()
    if "deadkernelerror" in text or "kernel died" in text:
        return "the kernel died while running the notebook (os._exit, a crash, or out of memory)"
    if "notjsonerror" in text or "unreadable notebook" in text or "not appear to be json" in text:
        return "the notebook file is not a readable .ipynb (corrupt or not JSON)"
    if "no such file or directory" in text and ".ipynb" in text:
        return "the submission has no notebook named as the assignment's"
    errors = [line.strip() for line in log.splitlines() if "ERROR" in line or "Error" in line]
    return (errors[-1] if errors else "nbgrader autograde failed")[:300]


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


def _make_feedback(api, assignment: str, student: str, folder: Path, out: Graded) -> None:
    """nbgrader's generate_feedback for the student just graded, into `out.feedback` (left
    None if nbgrader could not make it: the instructor's process then tries)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            made = api.generate_feedback(assignment, student)
        if made.get("success") and folder.is_dir():
            out.feedback, out.feedback_modes = read_files(folder), file_modes(folder)
    except Exception:  # noqa: BLE001 - feedback is made again where the grades are merged
        out.feedback = None


def grade(assignment: AssignmentBundle, submission: SubmissionBundle, timeout: float = 600,
          spare=None, feedback: bool = False) -> Graded:
    """Autograde one submission with stock nbgrader in a private scratch course folder.

    `spare` (a course_grade.kernel_pool.Spare) runs the notebook in a kernel that was started
    before the submission arrived. With `feedback`, nbgrader's generate_feedback then makes the
    student's feedback there too, from the same gradebook rows the course will hold (so the
    class's feedback is made in parallel, not one student after another at the end); if it
    fails, `feedback` stays None and the instructor's process makes it. Never raises for a bad
    submission: the result says why."""
    from course_grade.sandbox import status as sandbox_status

    out = Graded(submission.student, left_out=submission.left_out, sandbox=sandbox_status(),
                 worker=f"{socket.gethostname()}:{os.getpid()}")
    start = time.perf_counter()
    scratch = _scratch()
    timer = None
    expired = threading.Event()
    cwd = os.getcwd()
    try:
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

        from course_grade.pooled_execute import use_spare_kernels
        from course_grade.feedback_exporter import use_cached_feedback_templates
        from course_grade.metadata_check import use_cached_metadata_check

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

        timer = threading.Timer(timeout, expire)
        timer.daemon = True
        timer.start()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # nbgrader's own SQLAlchemy autoflush warnings
            result = api.autograde(assignment.name, submission.student, force=True, create=True)
        timer.cancel()
        out.log = (result.get("log") or "") + (result.get("error") or "")
        if expired.is_set():
            out.status, out.note = "timed out", f"grading took longer than {timeout:g} s and was stopped"
            return out
        graded = scratch / "autograded" / submission.student / assignment.name
        if not result.get("success") or not graded.is_dir():
            out.note = why_it_failed(out.log)
            return out
        try:
            out.rows = gradebook_rows(scratch / "gradebook.db", assignment.name, submission.student)
        except Exception:  # noqa: BLE001 - nbgrader wrote no grades: say why from its log
            out.note = why_it_failed(out.log)
            return out
        out.score, out.max_score = out.rows["score"], out.rows["max_score"]
        out.files, out.modes = read_files(graded), file_modes(graded)
        for name in assignment.notebooks:
            try:
                nb = json.loads(out.files.get(f"{name}.ipynb", b"{}"))
            except ValueError:
                nb = {}
            found = flagged_cells(nb)
            if found is None:
                out.note = "REVIEW: not checked for tampering (FlagTampering is not in nbgrader_config.py)"
            out.tampering += found or []
        out.status = "graded"
        if feedback:
            _make_feedback(api, assignment.name, submission.student, scratch / "feedback" / submission.student
                           / assignment.name, out)
        return out
    except Exception as exc:  # noqa: BLE001 - a broken submission must never stop the others
        out.note = f"could not grade: {type(exc).__name__}: {exc}"[:300]
        return out
    finally:
        if timer is not None:
            timer.cancel()
        os.chdir(cwd)
        shutil.rmtree(scratch, ignore_errors=True)
        out.seconds = time.perf_counter() - start
