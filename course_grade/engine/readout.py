"""What a graded scratch course says about one submission, read back as data: its gradebook
rows, what the tampering analysis flagged, why nbgrader failed, and the reasons it needs a look."""
from __future__ import annotations

from pathlib import Path

from course_grade.course import open_gradebook
from course_grade.engine.bundles import Graded
from course_grade.late import late_of
from course_grade.reasons import (
    ANSWERS_DAMAGED,
    ANSWERS_MISSING,
    CELL_TIME_LIMIT,
    CORRUPT,
    ERROR,
    JUDGE_DISAGREED,
    KERNEL_DIED,
    NO_NOTEBOOK,
    NOTES,
)


def gradebook_rows(gradebook: Path, assignment: str, student: str, method: str = "") -> dict:
    """Everything the course gradebook needs of one graded submission, as plain data, and its
    late penalty (`late`: a course_grade.late.Late, `method` naming nbgrader's late rule)."""
    with open_gradebook(gradebook) as gb:
        sub = gb.find_submission(assignment, student)
        return {
            "timestamp": sub.timestamp, "extension": sub.extension, "late": late_of(sub, method),
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


def look_at(out: Graded, nb: dict, name: str, ename: str) -> None:
    """The reasons a graded notebook needs a look: cells stopped at the per-cell limit, the
    judge overruling an in-kernel check, the quiz's answers file missing or damaged (as
    CollectQuizAnswers recorded it)."""
    from course_grade.nbgrader_ext.collect_quiz_answers import METADATA_KEY
    from course_grade.nbgrader_ext.flag_cell_timeouts import timed_out_cells
    from course_grade.nbgrader_ext.judge_build_steps import DISAGREED

    cells = timed_out_cells(nb, ename)
    if cells:
        out.add(CELL_TIME_LIMIT, f"{', '.join(cells)} stopped at the per-cell time limit (c.Execute.timeout) and "
                                 f"lost its points: look at the notebook, or raise the limit and regrade")
    disagreed = nb.get("metadata", {}).get("course", {}).get(DISAGREED)
    if disagreed:
        out.add(JUDGE_DISAGREED, f"{name}.ipynb: the judge outside the kernel decided where the in-kernel checks "
                                 "said otherwise (tampering, or a bug in one of them): " + "; ".join(disagreed))
    state = nb.get("metadata", {}).get(METADATA_KEY, {}).get("state")
    if state == "missing":
        out.add(ANSWERS_MISSING, f"{name}.ipynb came without quiz_answers.json, so the quiz scored 0")
    elif state == "damaged":
        out.add(ANSWERS_DAMAGED, f"{name}.ipynb came with an unreadable quiz_answers.json, so the quiz scored 0")
