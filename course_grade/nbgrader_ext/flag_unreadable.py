"""nbgrader's pre-convert hook: a submitted notebook nbgrader cannot read is flagged, with why.

Stock `nbgrader autograde` records a submission before reading its notebook, so a corrupt or
blank notebook leaves the student in the gradebook with 0 and the reason only in the log.
`flag_unreadable`, set as `c.Autograde.pre_convert_hook` in `nbgrader_config.py`, runs before
nbgrader reads each student's notebooks: for one that cannot be graded (`task.notebook_problem`:
empty, not a readable .ipynb, no cells) it logs one sentence saying what to do and flags the
notebook in the gradebook, so the formgrader shows it. The grading command finds these before
nbgrader runs and reports them itself. nbgrader calls the hook with the submitted notebooks'
paths only: the gradebook is the one of the course they are in (`submitted/STUDENT/ASSIGNMENT/`).
"""
from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger("course_grade.nbgrader_ext.flag_unreadable")


def flag_unreadable(assignment: str, student: str, notebooks: list[str], **_) -> None:
    from course_grade.course import open_gradebook
    from course_grade.files import read_regular
    from course_grade.reasons import NOTES, notebook_problem

    for path in map(Path, notebooks):
        problem = notebook_problem(read_regular(path))
        if problem is None:
            continue
        assignment_id, student_id, root = path.parent.name, path.parent.parent.name, path.parents[3]
        log.warning("Flagged for review, %s of %s: %s", path.name, student_id, NOTES[problem])
        if not (root / "gradebook.db").is_file():
            continue
        with open_gradebook(root / "gradebook.db") as gb:
            gb.update_or_create_student(student_id)
            gb.update_or_create_submission(assignment_id, student_id)
            gb.find_submission_notebook(path.stem, assignment_id, student_id).flagged = True
            gb.db.commit()
