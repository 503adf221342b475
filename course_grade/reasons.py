"""Why a submission needs a look, as data: the codes of `Graded.reasons` and the report's
reason column, the sentence each one says, and the checks made before nbgrader reads a file."""
from __future__ import annotations

import warnings

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


JUDGE_DISAGREED = "judge disagreed"  # the judge outside the kernel overruled an in-kernel check


# Found after grading, by the item analysis (course_grade/reports/attention.py).
NEARLY_BLANK = "nearly blank"  # at most a quarter of the answer cells and quiz questions answered


ANSWERS_PARTIAL = "answers partial"  # quiz_answers.json answers only some of the graded questions


NO_SANDBOX = "no sandbox"  # the kernels ran without the sandbox


FLAGGED = "flagged"  # flagged in the gradebook for no reason above (by hand in the formgrader)


NOT_GRADED = "not graded"  # submitted, with no grades in the gradebook yet


# Reasons that flag the submitted notebook in the gradebook (the formgrader's flag, as
# tampering does). Late and the quiz's answers file are not flagged: nbgrader applies the late
# penalty itself, and the quiz cells' own message says the file is missing or damaged.
FLAGGED_REASONS = frozenset({CORRUPT, BLANK, NO_NOTEBOOK, BAD_TIMESTAMP, TIMED_OUT, CELL_TIME_LIMIT, KERNEL_DIED, ERROR,
                             TAMPERING, JUDGE_DISAGREED})


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
    except Exception:  # whatever nbformat cannot read, nbgrader cannot grade
        return CORRUPT
    return BLANK if not nb.get("cells") else None


# What the instructor does about each reason, and the order the attention list gives them in
# (the submissions that have no grade first, then what changes a grade, then what explains one).
TO_DO = {
    CORRUPT: "ask the student to submit the notebook again, then grade it with --student",
    NO_NOTEBOOK: "ask the student to submit the notebook under the assignment's name, then grade it with --student",
    BAD_TIMESTAMP: "collect the submission again (nbgrader submit writes timestamp.txt), then grade it with --student",
    TIMED_OUT: "read its log in logs/, then grade it again with --student and a longer --submission-timeout",
    KERNEL_DIED: "read its log in logs/ (os._exit, a crash or out of memory), then grade it again with --student",
    ERROR: "read its log in logs/, fix what it names, then grade it again with --student",
    NOT_GRADED: "grade it: course-grade grade ASSIGNMENT --student ID (or nbgrader autograde)",
    BLANK: "ask the student whether they submitted the right file: nothing in it is answered",
    NEARLY_BLANK: "ask the student whether they submitted their latest work: almost nothing in it is answered",
    TAMPERING: "read the removed cells in the formgrader and set the grade by hand",
    JUDGE_DISAGREED: "compare the judge's verdict with the notebook in the formgrader: the judge's grade stands "
                     "unless you change it",
    CELL_TIME_LIMIT: "open the cell in the formgrader: if it was slow rather than stuck, raise c.Execute.timeout and "
                     "grade it again with --student",
    ANSWERS_MISSING: "ask the student for quiz_answers.json (the quiz cells save it beside the notebook) and grade "
                     "again, or leave the quiz at 0",
    ANSWERS_DAMAGED: "ask the student for a fresh quiz_answers.json (run the quiz cells again) and grade again, "
                     "or leave the quiz at 0",
    ANSWERS_PARTIAL: "nothing, unless the student says they answered every question: then ask for the file again",
    NO_SANDBOX: "grade it again with the sandbox on (the README's bubblewrap section)",
    FLAGGED: "look at it in the formgrader, where it was flagged",
    LATE: "nothing, unless you agreed an extension: add it in the formgrader and grade again",
}


ORDER = [CORRUPT, NO_NOTEBOOK, BAD_TIMESTAMP, TIMED_OUT, KERNEL_DIED, ERROR, NOT_GRADED, BLANK, NEARLY_BLANK,
         TAMPERING, JUDGE_DISAGREED, CELL_TIME_LIMIT, ANSWERS_MISSING, ANSWERS_DAMAGED, ANSWERS_PARTIAL, NO_SANDBOX,
         FLAGGED, LATE]
