"""Who needs a human look after grading, and why: the attention list, as data.

`assess` gives one `Attention` per student and reason (a code of course_grade/reasons.py, what
was found with its real values, and what to do), from what grading left on disk, the same after
stock `nbgrader autograde` as after `course-grade grade`:
- the grading command's row of grading-report.csv, when there is one (a submission it could
  not grade, and why; the cells the tampering analysis removed; the sandbox);
- the gradebook (late penalty, the formgrader's flag);
- the graded notebook, or the submitted one when nothing was graded: its answer cells compared
  with the released notebook's, and what the plugins wrote in its metadata (cells stopped at the
  time limit, the judge's disagreements);
- the quiz answers as collected.
The item analysis puts the list on its page and in its CSV files, the grading command in its
summary and in grading-report.csv, and `flag` marks each listed submission in the gradebook
(the formgrader's flag).
"""
from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

from course_grade import reasons
from course_grade.files import read_regular
from course_grade.late import Late
from course_grade.nbgrader_ext.flag_cell_timeouts import TIMED_OUT
from course_grade.nbgrader_ext.judge_build_steps import DISAGREED

# what a released answer cell holds before the student writes in it
_PLACEHOLDER = re.compile(r"^\s*(#.*|raise NotImplementedError(\(\))?|pass)?\s*$")

NEARLY = 0.25  # a submission with at most this share of its answers given is nearly blank


@dataclasses.dataclass(frozen=True)
class Attention:
    student: str
    code: str     # course_grade.reasons
    found: str    # what was found, with its real values
    to_do: str    # what the instructor does

    @property
    def sentence(self) -> str:
        return f"{self.found}: {self.to_do}"


@dataclasses.dataclass(frozen=True)
class Answered:
    """How much of a notebook the student answered."""
    cells: int          # answer cells changed from the released notebook
    of_cells: int
    questions: int      # graded quiz questions answered in quiz_answers.json
    of_questions: int

    @property
    def nothing(self) -> bool:
        return self.cells == 0 and self.questions == 0

    @property
    def nearly_nothing(self) -> bool:
        total = self.of_cells + self.of_questions
        return bool(total) and self.cells + self.questions <= NEARLY * total

    def sentence(self) -> str:
        return (f"{self.cells} of {self.of_cells} answer cells and {self.questions} of {self.of_questions} quiz "
                "questions answered")


def _code(source) -> str:
    text = "".join(source) if isinstance(source, list) else str(source or "")
    return "\n".join(line.rstrip() for line in text.splitlines() if not _PLACEHOLDER.match(line))


def answer_cells(nb: dict) -> dict[str, str]:
    """grade_id -> the code of each answer cell (nbgrader's solution cells), placeholder lines
    (comments, `raise NotImplementedError()`, `pass`, blank lines) left out."""
    out = {}
    for cell in nb.get("cells", []) if isinstance(nb, dict) else []:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("solution") and cell.get("cell_type") == "code" and meta.get("grade_id"):
            out[meta["grade_id"]] = _code(cell.get("source", ""))
    return out


def answered(nb: dict | None, released: dict[str, str], answers: dict[str, str] | None,
             questions: list[str]) -> Answered:
    """How many of the released answer cells `nb` changes (an empty cell counts as not
    answered), and how many of the graded quiz `questions` `answers` answers."""
    mine = answer_cells(nb or {})
    cells = sum(1 for gid, code in released.items() if mine.get(gid, code) != code and mine.get(gid))
    given = sum(1 for q in questions if (answers or {}).get(q))
    return Answered(cells, len(released), given, len(questions))


def _notebook(data: bytes | None) -> dict | None:
    try:
        nb = json.loads(data) if data else None
    except (UnicodeDecodeError, ValueError):
        return None
    return nb if isinstance(nb, dict) else None


@dataclasses.dataclass
class Facts:
    """What is known of one student's submission after grading."""
    student: str
    row: dict[str, str]                 # grading-report.csv's row ({}: none)
    in_gradebook: bool                  # graded: the gradebook has scores
    flagged: bool                       # the formgrader's flag
    late: Late | None
    graded_nb: dict | None              # autograded/…/ASSIGNMENT.ipynb
    submitted: bytes | None             # submitted/…/ASSIGNMENT.ipynb, as submitted
    answers: dict[str, str] | None      # the quiz answers as collected
    answers_state: str                  # saved | missing | damaged


def assess(facts: Facts, released: dict[str, str], questions: list[str]) -> list[Attention]:
    """The reasons `facts`' submission needs a look, in reasons.ORDER; [] when it needs none."""
    found: dict[str, str] = {}
    row = facts.row
    status = row.get("status", "")
    failed = bool(status) and status != "graded"
    if failed:  # the grading command could not grade it: its codes, and its note says why
        codes = [c for c in (c.strip() for c in row.get("reason", "").split(";")) if c in reasons.TO_DO]
        fallback = status if status in reasons.TO_DO else reasons.ERROR
        for code in [c for c in codes if c != reasons.LATE] or [fallback]:
            found[code] = f"{status}: {row.get('note', '')}".rstrip(": ")
    elif not facts.in_gradebook:
        problem = reasons.notebook_problem(facts.submitted)
        found[problem or reasons.NOT_GRADED] = (reasons.NOTES[problem].split(": ")[0] if problem
                                                else "submitted, with no grades in the gradebook")
    nb = facts.graded_nb
    if facts.in_gradebook and not failed:
        if nb is None:
            nb = _notebook(facts.submitted)
        how_much = answered(nb, released, facts.answers, questions)
        if how_much.nothing:
            found[reasons.BLANK] = f"nothing answered ({how_much.sentence()})"
        elif how_much.nearly_nothing:
            found[reasons.NEARLY_BLANK] = how_much.sentence()
        course = (nb or {}).get("metadata", {}).get("course", {}) if isinstance(nb, dict) else {}
        stopped = course.get(TIMED_OUT) or []
        if stopped:
            found[reasons.CELL_TIME_LIMIT] = (f"{', '.join(stopped)} stopped at the per-cell time limit "
                                              "(c.Execute.timeout) and scored 0")
        if course.get(DISAGREED):
            found[reasons.JUDGE_DISAGREED] = "the judge outside the kernel overruled: " + "; ".join(course[DISAGREED])
        if not how_much.nearly_nothing:  # a (nearly) blank one says it all
            if facts.answers_state == "missing":
                found[reasons.ANSWERS_MISSING] = "no quiz_answers.json was submitted, so the quiz scored 0"
            elif facts.answers_state == "damaged":
                found[reasons.ANSWERS_DAMAGED] = "quiz_answers.json could not be read, so the quiz scored 0"
            elif how_much.questions < how_much.of_questions:
                found[reasons.ANSWERS_PARTIAL] = (f"quiz_answers.json answers {how_much.questions} of the "
                                                  f"{how_much.of_questions} graded questions")
        if row.get("removed_cells"):
            n = len([c for c in row["removed_cells"].split("; ") if c])
            found[reasons.TAMPERING] = f"the tampering analysis removed {n} cell(s): {row['removed_cells']}"
    sandbox = row.get("sandbox", "")
    if sandbox and sandbox != "on":
        found[reasons.NO_SANDBOX] = f"graded without the sandbox ({sandbox})"
    if facts.late is not None and facts.late.is_late:
        found[reasons.LATE] = facts.late.sentence()
    if facts.flagged and not found:  # a flag no reason above explains (they set it too): set by hand
        found[reasons.FLAGGED] = "flagged in the gradebook"
    return [Attention(facts.student, code, found[code], reasons.TO_DO[code]) for code in reasons.ORDER if code in found]


def read_facts(course_root: Path, assignment: str, student: str, row: dict[str, str], grades: dict | None,
               answers: tuple[dict[str, str] | None, str]) -> Facts:
    """A student's Facts from the course folder; `grades`: the gradebook's entry (None: none)."""
    name = f"{assignment}.ipynb"
    # what a submission left is read without following a link, a pipe or a device (this runs as root)
    submitted = read_regular(course_root / "submitted" / student / assignment / name)
    in_gradebook = grades is not None and any(v is not None for v in grades["grades"].values())
    return Facts(student, row, in_gradebook, bool(grades and grades["flagged"]), (grades or {}).get("late"),
                 _notebook(read_regular(course_root / "autograded" / student / assignment / name)), submitted,
                 *answers)


def flag(gradebook: Path, assignment: str, students: set[str]) -> list[str]:
    """Flag each of `students`' submitted notebooks in the gradebook (the formgrader's flag);
    returns those newly flagged. A flag is never cleared here: the instructor may have set it."""
    from nbgrader.api import MissingEntry

    from course_grade.course import open_gradebook

    newly = []
    with open_gradebook(gradebook) as gb:
        try:
            submissions = gb.find_assignment(assignment).submissions
        except MissingEntry:
            return []
        for sub in submissions:
            if sub.student_id in students:
                for nb in sub.notebooks:
                    if not nb.flagged:
                        nb.flagged = True
                        newly.append(sub.student_id)
        gb.db.commit()
    return sorted(set(newly))
