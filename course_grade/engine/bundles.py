"""What a grading task receives and returns, as plain data that travels to any worker."""
from __future__ import annotations

import datetime
import fnmatch
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from course_grade.course import LEFTOVERS, SUBMISSION_FILES, open_gradebook
from course_grade.files import read_regular
from course_grade.late import Late
from course_grade.reasons import FLAGGED_REASONS

# Files read from a submission besides its notebooks: the quiz answers, and nbgrader's
# timestamp and feedback secret. Anything else is left out of grading and reported.
KEPT_FILES = SUBMISSION_FILES


SOURCE_IGNORED = ("*.ipynb", *LEFTOVERS)


@dataclass(frozen=True)
class AssignmentBundle:
    name: str
    notebooks: tuple[str, ...]  # notebook names (without .ipynb), from the gradebook
    config: bytes  # the course's nbgrader_config.py
    gradebook: bytes  # the course gradebook with the assignment and no student
    files: dict[str, bytes] = field(default_factory=dict)  # source/<name>/ files nbgrader copies over a submission
    # the due date, or the latest deadline a student's extension gives (ISO, naive UTC; '' without a
    # due date): the gradebook above has no students, and a feedback page shows the quiz's key only
    # after it (course_grade/nbgrader_ext/quiz_key_feedback.py)
    last_deadline: str = ""

    @classmethod
    def from_course(cls, root: Path, name: str) -> AssignmentBundle:
        from course_grade.nbgrader_ext.quiz_key_feedback import last_deadline

        with tempfile.TemporaryDirectory(prefix="assignment-") as tmp:
            template = Path(tmp) / "gradebook.db"
            shutil.copy(root / "gradebook.db", template)
            with open_gradebook(template) as gb:
                notebooks = tuple(nb.name for nb in gb.find_assignment(name).notebooks)
                deadline = last_deadline(gb, name)
                for student in list(gb.students):
                    gb.remove_student(student.id)
            gradebook = template.read_bytes()
        source = root / "source" / name
        files = {}
        if source.is_dir():
            for path in sorted(source.rglob("*")):
                rel = path.relative_to(source)
                if path.is_file() and not any(fnmatch.fnmatch(part, pat)
                                              for part in rel.parts for pat in SOURCE_IGNORED):
                    files[rel.as_posix()] = path.read_bytes()
        return cls(name, notebooks, (root / "nbgrader_config.py").read_bytes(), gradebook, files,
                   deadline.isoformat() if deadline is not None else "")


@dataclass(frozen=True)
class SubmissionBundle:
    student: str
    files: dict[str, bytes]
    left_out: tuple[str, ...] = ()
    extension: datetime.timedelta | None = None  # the instructor's extension in the course gradebook

    @classmethod
    def from_folder(cls, folder: Path, student: str, notebooks: tuple[str, ...],
                    extension: datetime.timedelta | None = None) -> SubmissionBundle:
        kept = {f"{name}.ipynb" for name in notebooks} | set(KEPT_FILES)
        files, left_out = {}, []
        for item in sorted(folder.iterdir()):
            data = read_regular(item) if item.name in kept else None
            if data is not None:
                files[item.name] = data
            else:
                left_out.append(item.name)
        return cls(student, files, tuple(left_out), extension)


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
    reasons: list[str] = field(default_factory=list)  # why it needs a look: the codes above
    grades_kept: bool = False  # timed out after autograde finished: its grades are merged
    log_file: str = ""  # where the instructor's process kept the log of a failed task (course-relative)
    late: Late | None = None  # how late it came and nbgrader's penalty (course_grade/late.py), when graded

    @property
    def score_after_penalty(self) -> float | None:
        """The score the gradebook export and the LMS give: nbgrader's late penalty taken off."""
        if self.score is None:
            return None
        return self.late.after if self.late is not None else self.score

    @property
    def flagged(self) -> bool:
        """Whether the gradebook flags the submitted notebook for the instructor's review."""
        return bool(self.tampering) or any(r in FLAGGED_REASONS for r in self.reasons)

    @property
    def merged(self) -> bool:
        """Whether its grades go into the course gradebook (else its submission is recorded with
        0 points, flagged: course_grade.commands.grade.merge)."""
        return self.status == "graded" or self.grades_kept

    def add(self, reason: str, note: str) -> None:
        """Record a reason (a code above) and its sentence."""
        if reason not in self.reasons:
            self.reasons.append(reason)
        self.note = f"{self.note}; {note}" if self.note else note
