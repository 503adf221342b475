"""`course-grade export ASSIGNMENT --lms canvas|moodle --roster ROSTER.csv`: one assignment's grades
from the course gradebook, as a CSV file that Canvas's or Moodle's gradebook imports.

Scores
------
A student's grade is what stock `nbgrader export` writes in its `score` column (the default
CSV exporter, nbgrader/plugins/export.py, nbgrader 0.9.6): `max(0, submission.score -
submission.late_submission_penalty)`. `SubmittedAssignment.score` is the sum of the cell
grades (a manual grade replaces the automatic one) and does NOT include the late penalty,
which nbgrader keeps apart (`late_submission_penalty`, summed over the notebooks, set by
`AssignLatePenalties` when grading). Points possible is the assignment's `max_score`.
Where `nbgrader export` writes 0 for a student without a submission, this command writes an
empty cell ("no grade" to both LMSs) unless `--missing-as-zero` is given.

Numbers are written the way both importers read them: a '.' decimal point, never scientific
notation, at most 4 decimals, no trailing zeros (`21`, `20.5`, `0.3333`).

Canvas: the documentation followed
----------------------------------
- Canvas Instructor Guide, "How do I import grades in the Gradebook?",
  https://community.canvaslms.com/t5/Instructor-Guide/How-do-I-import-grades-in-the-Gradebook/ta-p/807
  (the guide could not be read here; what it says is summarised from memory and from the
  institutional guides that restate it, e.g. Ohio State's "Import a CSV file into Carmen
  grades", https://teaching.resources.osu.edu/toolsets/carmencanvas/guides/calculating-final-grades/import-csv-file-carmen-grades).
- Canvas's importer itself, which settles the details: instructure/canvas-lms,
  app/models/gradebook_importer.rb (a recent public version: `header?`,
  `update_column_count`, `process_pp`, `parse_assignments`, `process_student`).

What Canvas requires, and what this command writes:
- The first row is the header. Canvas accepts it only if its first column contains "Student"
  and its second "ID", followed by "SIS User ID" and "SIS Login ID" (optional, as a pair or
  "SIS Login ID" alone), then "Section"; every later column is an assignment (except
  read-only total columns). This command always writes the full Canvas export header:
  `Student,ID,SIS User ID,SIS Login ID,Section,<assignment>`.
- An assignment column is titled `Name (assignment id)`: with an id, Canvas updates that
  assignment; without one, it looks for an assignment of exactly that title, and if there
  is none it creates a new assignment of that name when the import is confirmed. The column
  title is `--title` (default: the nbgrader assignment name), with ` (ID)` appended when
  `--canvas-assignment-id ID` is given.
- A row whose first cell contains "Points Possible" is optional; when present it gives each
  assignment column its points possible (a new assignment gets them from it). This command
  always writes it, right after the header, with the nbgrader assignment's max score.
- Each student row is matched by ID (Canvas user id) first, then SIS User ID, then SIS Login
  ID, and only then by the student's name; a row matching nobody becomes an unknown
  student in the import preview. So the roster must give at least one of canvas_id,
  sis_user_id, sis_login_id for every student; the name and section are optional
  (Canvas does not use the Section cell to match).
- An empty cell (or "-") is "no score" to the importer. If Canvas already has a grade there,
  the import preview shows the change before anything is saved (this command never relies
  on it: a student without a submission is listed on the terminal).
- Files are UTF-8; ',' separated (Canvas also detects ';'); a number may use '.' or ','.

Moodle: the documentation followed
----------------------------------
- MoodleDocs, "Grade import" (CSV import), https://docs.moodle.org/en/Grade_import
  (stored copies of its 2.0 to 4.x pages): after uploading, the teacher maps the file's
  columns: under "Identify user by", "Map from" = the file's column and "Map to" = userid,
  useridnumber (ID number), useremail (Email address) or username; under "Grade item mappings", each
  grade column is mapped to an existing grade item or to "new grade item" (named after the
  column's header). The 2.x pages warn that email addresses are matched case-sensitively
  (MDL-29315): copy them exactly as Moodle has them.
- Moodle's importer, moodle/moodle grade/import/csv/classes/load_data.php: any header text
  is accepted (columns are mapped at import); a row whose user field is empty or matches
  nobody aborts the whole import; a grade cell that is empty or "-" imports "no grade"
  (into an existing grade item this REPLACES a grade already there with none); grades above
  100 need the site's "unlimitedgrades" setting.

What this command writes: a header `<identity column>,<assignment>` (the identity column is
named after the roster column: email, username or idnumber), then one row per roster
student. No points row (Moodle would read it as a student).

Rosters
-------
A CSV file (a header row, one row per student) mapping nbgrader student ids to LMS
identities, read as `course-grade roster import` reads it (course_grade/spreadsheet.py: ',', ';'
or TAB separated; UTF-8, UTF-16 with a byte-order mark, or Windows-1252). Header names are
case-insensitive; other columns are ignored.
- canvas: `nbgrader_id` and at least one of `canvas_id` (digits), `sis_user_id`,
  `sis_login_id`, each row giving at least one of them; optional `name`, `section`.
- moodle: `nbgrader_id` and one of `email`, `username`, `idnumber` (with several, choose
  with `--moodle-match`); every row must give it.
nbgrader ids and LMS identities must be unique. A roster that breaks any of this is refused
with one line saying what to fix (exit status 2) and nothing is written.

Everyone is accounted for: a roster student without a submission is listed and gets an
empty cell (0 with --missing-as-zero); a graded student missing from the roster cannot be
put in the file, so they are listed, the file is still written for the others, and the exit
status is 1. The file is written atomically (a temporary file in the same folder, renamed).
A cell that a spreadsheet would run as a formula (it starts with =, +, -, @, TAB or CR) is
written with a leading ' (course_grade/safe_csv.py); an LMS identity written so would not
match its user, so each one is listed.
"""
from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path

from course_grade import safe_csv
from course_grade.course import UsageError, atomic_write
from course_grade.late import Late, course_penalty_method, late_of
from course_grade.spreadsheet import read_table

LMS_CHOICES = ("canvas", "moodle")
NBGRADER_ID = "nbgrader_id"
CANVAS_IDS = ("canvas_id", "sis_user_id", "sis_login_id")
MOODLE_IDS = ("email", "username", "idnumber")
CANVAS_HEADER = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")
POINTS_POSSIBLE = "Points Possible"

class RosterError(UsageError):
    """The roster cannot be used: the message says what to fix."""


@dataclass(frozen=True)
class RosterEntry:
    nbgrader_id: str
    line: int  # line number in the roster file (the header is line 1)
    fields: Mapping[str, str]  # lower-cased column name -> stripped value


@dataclass(frozen=True)
class Roster:
    lms: str
    path: str
    entries: tuple[RosterEntry, ...]
    match: str | None = None  # moodle: the identity column written to the file

    @property
    def ids(self) -> list[str]:
        return [e.nbgrader_id for e in self.entries]


@dataclass(frozen=True)
class Grade:
    """One submission's grade, as `nbgrader export` computes its `score`."""
    student: str
    score: float  # max(0, raw - late penalty)
    raw_score: float
    late_penalty: float
    needs_manual_grade: bool = False
    late: Late | None = None  # how late it came, and why the penalty (course_grade/late.py)


@dataclass
class Grades:
    assignment: str
    max_score: float
    by_student: dict[str, Grade] = field(default_factory=dict)


@dataclass
class Reconciled:
    unsubmitted: list[RosterEntry]  # in the roster, no submission
    unrostered: list[Grade]  # graded, not in the roster


# ------------------------------------------------------------------------------- numbers

def format_score(value: float) -> str:
    """A number as both LMSs read it: '.' decimal, no exponent, at most 4 decimals, no trailing zeros."""
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"not a finite score: {value!r}")
    text = format(Decimal(repr(value)).quantize(Decimal("0.0001"), rounding=ROUND_HALF_EVEN), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


# ------------------------------------------------------------------------------- roster

def read_roster(path: str | os.PathLike, lms: str, match: str | None = None) -> Roster:
    """Read and check a roster; raise RosterError with one line saying what to fix."""
    if lms not in LMS_CHOICES:
        raise RosterError(f"unknown LMS {lms!r}: choose one of {', '.join(LMS_CHOICES)}")
    example = ("nbgrader_id,name,canvas_id,sis_user_id,sis_login_id,section" if lms == "canvas"
               else "nbgrader_id,email")
    try:
        table = read_table(path, "roster", example)
    except UsageError as exc:
        raise RosterError(str(exc)) from None
    name, header = table.path, table.header

    need_one = CANVAS_IDS if lms == "canvas" else MOODLE_IDS
    missing = [NBGRADER_ID] if NBGRADER_ID not in header else []
    present_ids = [c for c in need_one if c in header]
    if not present_ids:
        missing.append(", ".join(need_one[:-1]) + " or " + need_one[-1])
    if missing:
        raise RosterError(f"roster {name} needs a column {' and a column '.join(missing)}: add it; "
                          f"a {lms} roster's header is like {example}")
    if lms == "moodle":
        if match is not None:
            if match not in MOODLE_IDS:
                raise RosterError(f"--moodle-match {match!r}: choose one of {', '.join(MOODLE_IDS)}")
            if match not in header:
                raise RosterError(f"roster {name} has no column {match!r}, which --moodle-match asks for: add it, or "
                                  f"choose a column the roster has")
        elif len(present_ids) > 1:
            raise RosterError(f"roster {name} has several Moodle identity columns ({', '.join(present_ids)}): "
                              f"choose the one to write with --moodle-match")
        else:
            match = present_ids[0]
        id_columns: tuple[str, ...] = (match,)
    else:
        match = None
        id_columns = tuple(present_ids)

    entries: list[RosterEntry] = []
    first_line: dict[tuple[str, str], int] = {}
    for row in table.rows:
        line, values = row.line, row.values
        nb_id = values.get(NBGRADER_ID, "")
        if not nb_id:
            raise RosterError(f"roster {name} line {line} has no nbgrader_id: fill it in or delete the row")
        given = [c for c in id_columns if values.get(c)]
        if lms == "canvas":
            if not given:
                raise RosterError(f"roster {name} line {line} ({nb_id}) has none of {', '.join(id_columns)}: "
                                  f"Canvas needs one to find the student")
            canvas_id = values.get("canvas_id", "")
            if canvas_id and not canvas_id.isdigit():
                raise RosterError(f"roster {name} line {line} ({nb_id}): canvas_id {canvas_id!r} is not a Canvas "
                                  f"user id (digits only)")
        elif not given:
            raise RosterError(f"roster {name} line {line} ({nb_id}) has no {match}: Moodle needs it to find the "
                              f"student (an empty one aborts the whole Moodle import)")
        for column in (NBGRADER_ID, *given):
            key = (column, values[column])
            if key in first_line:
                raise RosterError(f"roster {name}: {column} {values[column]!r} is on lines {first_line[key]} and "
                                  f"{line}: each student once, each id unique")
            first_line[key] = line
        entries.append(RosterEntry(nb_id, line, values))
    if not entries:
        raise RosterError(f"roster {name} has a header but no students: add one row per student")
    return Roster(lms, name, tuple(entries), match)


# ------------------------------------------------------------------------------- gradebook

def read_grades(db: str | os.PathLike, assignment: str) -> Grades:
    """Every submission's score for ASSIGNMENT, as `nbgrader export` computes it."""
    from nbgrader.api import MissingEntry

    from course_grade.course import open_gradebook

    db = Path(db)
    if not db.is_file():
        raise UsageError(f"no gradebook at {db}: run this in the course folder or pass --course")
    with open_gradebook(db) as gb:
        try:
            found = gb.find_assignment(assignment)
        except MissingEntry:
            known = ", ".join(a.name for a in gb.assignments) or "none"
            raise UsageError(f"unknown assignment {assignment!r} (the gradebook has: {known})") from None
        grades = Grades(assignment, float(found.max_score or 0.0))
        for sub in found.submissions:
            late = late_of(sub)
            grades.by_student[sub.student_id] = Grade(sub.student_id, late.after, late.score, late.penalty,
                                                      bool(sub.needs_manual_grade), late)
    if any(g.late.is_late for g in grades.by_student.values()):  # the late rule's name, from the course config
        method = course_penalty_method(db.parent)
        for s, g in grades.by_student.items():
            grades.by_student[s] = dataclasses.replace(g, late=dataclasses.replace(g.late, method=method))
    return grades


def reconcile(roster: Roster, scores: Mapping[str, object]) -> Reconciled:
    rostered = set(roster.ids)
    return Reconciled(
        unsubmitted=[e for e in roster.entries if e.nbgrader_id not in scores],
        unrostered=[scores[s] for s in sorted(scores) if s not in rostered],
    )


# ------------------------------------------------------------------------------- the files

def _score(scores: Mapping[str, object], student: str) -> float | None:
    value = scores.get(student)
    if value is None:
        return None
    return float(value.score if isinstance(value, Grade) else value)


def _cell(score: float | None, missing_as_zero: bool) -> str:
    if score is None:
        return "0" if missing_as_zero else ""
    return format_score(score)


def canvas_rows(roster: Roster, scores: Mapping[str, object], *, title: str, max_score: float,
                canvas_assignment_id: str | int | None = None, missing_as_zero: bool = False) -> list[list[str]]:
    """Canvas's gradebook import: header, "Points Possible" row, one row per roster student (roster order).

    `scores` maps nbgrader ids to a score (a number, or a Grade); a student absent from it
    gets an empty cell (0 with missing_as_zero). Students not in the roster are not written.
    """
    column = f"{title} ({canvas_assignment_id})" if canvas_assignment_id not in (None, "") else title
    rows = [[*CANVAS_HEADER, column], [POINTS_POSSIBLE, "", "", "", "", format_score(max_score)]]
    for e in roster.entries:
        f = e.fields
        rows.append([f.get("name", ""), f.get("canvas_id", ""), f.get("sis_user_id", ""), f.get("sis_login_id", ""),
                     f.get("section", ""), _cell(_score(scores, e.nbgrader_id), missing_as_zero)])
    return rows


def moodle_rows(roster: Roster, scores: Mapping[str, object], *, title: str,
                missing_as_zero: bool = False) -> list[list[str]]:
    """Moodle's CSV grade import: header (identity column, grade column), one row per roster student."""
    match = roster.match
    if match is None:
        raise ValueError("moodle_rows needs a Moodle roster: read_roster(path, 'moodle')")
    rows = [[match, title]]
    for e in roster.entries:
        rows.append([e.fields[match], _cell(_score(scores, e.nbgrader_id), missing_as_zero)])
    return rows


def write_csv_atomic(path: str | os.PathLike, rows: Iterable[Iterable[str]]) -> None:
    """Write rows to a temporary file beside `path`, then rename it over `path`: never a partial file.
    A cell a spreadsheet would run as a formula is written with a leading ' (course_grade/safe_csv.py)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, newline="") as fh:
        writer = safe_csv.Writer(fh)  # RFC 4180: ',' separated, quotes only where needed, CRLF
        for row in rows:
            writer.writerow(row)
