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
