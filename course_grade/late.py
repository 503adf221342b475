"""A submission's late penalty, as data: how late it came and what nbgrader took off, read once
from nbgrader's own gradebook, and the one sentence every output says about it (the grading
command's summary and grading-report.csv, the item analysis, the LMS export, the feedback page).

nbgrader's `AssignLatePenalties` sets each submitted notebook's `late_submission_penalty` when
grading (its plugin: `LateSubmissionPlugin` with `penalty_method` "none" or "zero", or the
course's own); `SubmittedAssignment.total_seconds_late` counts from the due date plus any
extension. The score after the penalty is what `nbgrader export` writes: max(0, score - penalty).
"""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path


@dataclasses.dataclass(frozen=True)
class Late:
    seconds: float  # after the due date (extension counted); 0 when on time or without a due date
    penalty: float  # the points nbgrader's late plugin took off (0: none)
    score: float  # before the penalty
    max_score: float
    method: str = ""  # "none", "zero", or the course's plugin class (penalty_method)

    @property
    def is_late(self) -> bool:
        return self.seconds > 0

    @property
    def after(self) -> float:
        """The score after the penalty, as `nbgrader export` and the LMS export give it."""
        return max(0.0, self.score - self.penalty)

    def sentence(self) -> str:
        """'late by 2 h 10 min: penalty 23 points (zero)'; '' when on time."""
        if not self.is_late:
            return ""
        cost = f"penalty {n_points(self.penalty)}" if self.penalty else "no penalty"
        return f"late by {late_by(self.seconds)}: {cost}" + (f" ({self.method})" if self.method else "")

    def for_student(self) -> str:
        """The feedback page's line: the score before and after the penalty, and why."""
        rule = f"the late rule ({self.method})" if self.method else "the late rule"
        return (f"Submitted {late_by(self.seconds)} after the due date, so {rule} took {n_points(self.penalty)} "
                f"off: {points(self.score)} / {points(self.max_score)} "
                f"before the penalty, {points(self.after)} / {points(self.max_score)} after it.")


def points(value: float) -> str:
    """A number of points as the outputs print it: at most 2 decimals, no trailing zeros."""
    return f"{round(value, 2):g}"


def n_points(value: float) -> str:
    return f"{points(value)} point{'' if value == 1 else 's'}"


def late_by(seconds: float) -> str:
    """'40 s', '5 min', '2 h 10 min', '3 d 4 h': the two largest units, rounded down."""
    s = int(math.floor(seconds))
    if s < 60:
        return f"{s} s"
    days, rest = divmod(s, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    parts = [(days, "d"), (hours, "h"), (minutes, "min")]
    while parts and parts[0][0] == 0:
        parts.pop(0)
    return " ".join(f"{n} {unit}" for n, unit in parts[:2] if n)


def late_of(submission, method: str = "", notebook=None) -> Late:
    """The Late of an nbgrader `SubmittedAssignment` (or, given `notebook`, of one of its
    `SubmittedNotebook`s, as that notebook's feedback page shows it)."""
    parts = [notebook] if notebook is not None else list(submission.notebooks)
    penalty = sum(float(nb.late_submission_penalty or 0.0) for nb in parts)
    score = sum(float(nb.score or 0.0) for nb in parts)
    maximum = sum(float(nb.max_score or 0.0) for nb in parts)
    return Late(float(submission.total_seconds_late or 0.0), penalty, score, maximum, method)


def penalty_method(config) -> str:
    """How a loaded nbgrader config takes points off a late submission: LateSubmissionPlugin's
    penalty_method ("none" or "zero"), or the name of the course's own plugin class."""
    chosen = config.AssignLatePenalties.get("plugin_class") if "AssignLatePenalties" in config else None
    if chosen is not None:
        name = chosen if isinstance(chosen, str) else chosen.__name__
        name = name.rsplit(".", 1)[-1]
        if name != "LateSubmissionPlugin":
            return name
    if "LateSubmissionPlugin" in config:
        return str(config.LateSubmissionPlugin.get("penalty_method", "none"))
    return "none"


def course_penalty_method(course_root: Path) -> str:
    """penalty_method of the course's nbgrader_config.py ('' when it cannot be read)."""
    from traitlets.config.loader import PyFileConfigLoader

    try:
        return penalty_method(PyFileConfigLoader("nbgrader_config.py", path=str(course_root)).load_config())
    except Exception:  # the figures stand without the rule's name
        return ""
