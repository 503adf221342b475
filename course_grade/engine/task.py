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

import contextlib
import json
import os
import shutil
import socket
import tempfile
import threading
import time
import warnings
from pathlib import Path

from course_grade.course import open_gradebook
from course_grade.engine.bundles import AssignmentBundle, Graded, SubmissionBundle
from course_grade.engine.readout import flagged_cells, gradebook_rows, look_at, why_it_failed
from course_grade.files import file_modes, read_files, write_files
from course_grade.kernels.processes import kernels_started_here, kill_tree, wait_child
from course_grade.late import penalty_method
from course_grade.reasons import ERROR, NOTES, TAMPERING, TIMED_OUT, notebook_problem, timestamp_problem

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


def _make_feedback(api, assignment: str, student: str, folder: Path, out: Graded, deadline: float) -> bool:
    """nbgrader's generate_feedback for the student just graded, into `out.feedback` (left
    None if nbgrader could not make it: the instructor's process then tries). It runs in a
    child process forked for it, killed at `deadline` (time.monotonic()): rendering a page is
    pure Python that no timer can stop in a thread. Returns False when the deadline came first.
    The child sends back the templates it compiled, so this process's cache stays warm
    (course_grade/nbgrader_ext/cached_templates_html_exporter.py)."""

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
                compiled.write_text(json.dumps(feedback_exporter.compiled_templates()))
                code = 0
        except BaseException:  # the exit status says it failed
            pass
        finally:
            os._exit(code)
    status = wait_child(pid, left)
    if status is None:
        out.feedback = None
        return False
    if status == 0 and folder.is_dir():
        out.feedback, out.feedback_modes = read_files(folder), file_modes(folder)
        with contextlib.suppress(OSError, ValueError):
            feedback_exporter.add_compiled_templates(json.loads(compiled.read_text()))
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

        from course_grade.nbgrader_ext.cached_check_cell_metadata import use_cached_metadata_check
        from course_grade.nbgrader_ext.cached_templates_html_exporter import use_cached_feedback_templates
        from course_grade.nbgrader_ext.pooled_execute import use_spare_kernels
        from course_grade.nbgrader_ext.quiz_key_feedback import use_last_deadline

        os.chdir(scratch)
        config = PyFileConfigLoader("nbgrader_config.py", path=str(scratch)).load_config()
        if spare is not None:
            use_spare_kernels(config, spare)
        use_cached_metadata_check(config)
        if feedback:
            use_cached_feedback_templates(config)
            use_last_deadline(config, assignment.last_deadline)
        api = NbGraderAPI(coursedir=CourseDirectory(config=config), config=config)

        def expire():
            expired.set()
            kill_tree(kernels_started_here())

        timer = threading.Timer(max(deadline - time.monotonic(), 0), expire)
        timer.daemon = True
        timer.start()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # nbgrader's own SQLAlchemy autoflush warnings
            if submission.extension is not None:  # late penalties count it, as in the course
                with open_gradebook(scratch / "gradebook.db") as gb:
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
            out.rows = gradebook_rows(scratch / "gradebook.db", assignment.name, submission.student,
                                      penalty_method(config))
        except Exception:  # nbgrader wrote no grades: say why from its log
            out.add(*why_it_failed(out.log))
            out.rows = None
            return out
        out.score, out.max_score, out.late = out.rows["score"], out.rows["max_score"], out.rows["late"]
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
            look_at(out, nb, name, ename)
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
    except Exception as exc:  # a broken submission must never stop the others
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
