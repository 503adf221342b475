"""Merging one graded submission into the course, whole or not at all (only the command's
process writes the course), and which submissions are graded already (`--resume`)."""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import threading

from course_grade.course import Course, open_gradebook, timestamp_in
from course_grade.engine.bundles import Graded
from course_grade.files import write_files


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
    course gradebook already open (`open_gradebook`), else it is opened for this merge.
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
            for (_, files, modes), (_, partial, _) in zip(trees, places, strict=False):
                shutil.rmtree(partial, ignore_errors=True)
                if files is not None:
                    partial.mkdir(parents=True)
                    write_files(partial, files, modes)
            with contextlib.ExitStack() as opened:
                dst = gradebook if gradebook is not None else opened.enter_context(open_gradebook(course.gradebook))
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
    done = set()
    with open_gradebook(course.gradebook) as gb:
        for sub in gb.find_assignment(course.assignment).submissions:
            folder = course.root / "autograded" / sub.student_id / course.assignment
            if not all((folder / f"{name}.ipynb").is_file() for name in course.notebooks):
                continue
            new, old = timestamp_in(course.submitted(sub.student_id)), timestamp_in(folder) or sub.timestamp
            if new is not None and old is not None and new > old:
                continue
            done.add(sub.student_id)
    return done


def extensions(course: Course) -> dict:
    """The extensions the instructor gave in the course gradebook: student -> timedelta."""
    from nbgrader.api import MissingEntry

    with open_gradebook(course.gradebook) as gb:
        try:
            return {s.student_id: s.extension for s in gb.find_assignment(course.assignment).submissions
                    if s.extension is not None}
        except MissingEntry:
            return {}
