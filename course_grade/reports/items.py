"""The item analysis's data: the report of one assignment, its items, steps and groups."""
from __future__ import annotations

import dataclasses
from pathlib import Path

from course_grade.course import UsageError
from course_grade.late import Late
from course_grade.reports.attention import Attention

LETTERS = "ABCD"


UNANSWERED = "unanswered"


TEACH_TOP = 5


QUIZ_STEP = "quiz"


class ReportError(UsageError):
    """Bad input (unknown assignment, no gradebook, nothing graded yet): one line saying what to do."""


@dataclasses.dataclass
class Group:
    """Students whose failure message in one cell names the same mistake."""
    key: str                 # "named:closed_connection", "message:<first sentence>", "pointer:...", "gate",
                             # "quiz:B", ...
    kind: str                # named | message | pointer | gate | quiz | absent | silent
    label: str               # what is wrong, short
    example: str             # one message as a student read it (the most common one)
    students: list[str] = dataclasses.field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.students)

    @property
    def is_mistake(self) -> bool:
        """A new mistake (not a pointer up, a gate, an answer not given, or a cell with nothing to say)."""
        return self.kind in ("named", "message", "quiz")


@dataclasses.dataclass
class Item:
    """One graded cell: a build check, or a graded quiz question."""
    grade_id: str
    step: int | str          # 1..4, or "quiz"
    title: str
    points: float
    n: int = 0
    passed: int = 0
    p: float | None = None               # pass rate = difficulty (proportion with full marks)
    r: float | None = None               # point-biserial discrimination against the rest score
    groups: list[Group] = dataclasses.field(default_factory=list)
    # quiz only
    qid: str = ""
    number: int = 0
    correct: str = ""
    options: dict[str, int] = dataclasses.field(default_factory=dict)   # A-D and "unanswered" -> students
    option_text: dict[str, str] = dataclasses.field(default_factory=dict)
    flags: list[str] = dataclasses.field(default_factory=list)

    @property
    def is_quiz(self) -> bool:
        return self.step == QUIZ_STEP

    @property
    def failed(self) -> int:
        return self.n - self.passed


@dataclasses.dataclass
class Step:
    step: int | str
    name: str
    heading: str             # the lesson's heading of this step ("" when not found)
    max_points: float
    scores: list[float] = dataclasses.field(default_factory=list)   # one per graded student

    @property
    def label(self) -> str:
        return "Quiz" if self.step == QUIZ_STEP else f"Step {self.step}"


@dataclasses.dataclass
class Submission:
    student: str
    score: float | None
    max_score: float | None
    seconds: float | None
    status: str
    note: str
    removed_cells: str
    sandbox: str
    flagged: bool
    left_out: str = ""
    late: Late | None = None  # how late it came and nbgrader's penalty, from the gradebook


@dataclasses.dataclass
class Teach:
    """One line of "what to teach again": a mistake, the points it cost the class (each student
    counted once, every cell it cost them, pointers and hidden checks waiting on it included),
    and who made it."""
    key: str                 # the mistake's id: "closed_connection", "quiz3:B", or "message:<sentence>"
    label: str               # what is wrong, as the students read it
    step: int | str
    heading: str
    example: str
    students: list[str]
    points_lost: float

    @property
    def count(self) -> int:
        return len(self.students)


@dataclasses.dataclass
class Analysis:
    assignment: str
    course_root: Path
    generated: str
    students: list[str]                    # graded students (the items' population)
    max_score: float
    items: list[Item]
    steps: list[Step]
    submissions: list[Submission]
    teach: list[Teach]
    lesson_notebook: Path | None           # the released lesson notebook (for links)
    has_grading_report: bool
    attention: list[Attention] = dataclasses.field(default_factory=list)
    names: dict[str, str] = dataclasses.field(default_factory=dict)   # student id -> name, from the roster
    emails: dict[str, str] = dataclasses.field(default_factory=dict)

    def name(self, student: str) -> str:
        """'Ada Lovelace (ada)', or the id when the gradebook has no name."""
        full = self.names.get(student, "")
        return f"{full} ({student})" if full else student

    @property
    def cells(self) -> list[Item]:
        return [i for i in self.items if not i.is_quiz]

    @property
    def quiz(self) -> list[Item]:
        return [i for i in self.items if i.is_quiz]

    @property
    def late(self) -> list[Submission]:
        return [s for s in self.submissions if s.late is not None and s.late.is_late]

    @property
    def to_look_at(self) -> dict[str, list[Attention]]:
        """student -> the reasons to look at their submission, in the attention list's order."""
        out: dict[str, list[Attention]] = {}
        for a in self.attention:
            out.setdefault(a.student, []).append(a)
        return out
