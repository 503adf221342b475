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
A CSV file (UTF-8, a header row, one row per student) mapping nbgrader student ids to LMS
identities. Header names are case-insensitive; other columns are ignored.
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

import argparse
import csv
import math
import os
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import TextIO

from course_grade import safe_csv
from course_grade.course import UsageError, atomic_write

LMS_CHOICES = ("canvas", "moodle")
NBGRADER_ID = "nbgrader_id"
CANVAS_IDS = ("canvas_id", "sis_user_id", "sis_login_id")
MOODLE_IDS = ("email", "username", "idnumber")
CANVAS_HEADER = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")
POINTS_POSSIBLE = "Points Possible"

HELP = "write one assignment's grades as a Canvas or Moodle gradebook import file"
DESCRIPTION = """\
Write the grades of ASSIGNMENT from the course gradebook (the `score` column of `nbgrader
export`: late penalties subtracted) as a CSV file that Canvas's gradebook import (--lms
canvas) or Moodle's CSV grade import (--lms moodle) reads. The roster maps nbgrader student
ids to the LMS's identities.
"""
EPILOG = """\
roster (CSV, UTF-8, header row; column names case-insensitive, other columns ignored):
  canvas  nbgrader_id + at least one of canvas_id (Canvas user id, digits), sis_user_id,
          sis_login_id, given on every row; optional: name, section
          e.g.  nbgrader_id,name,canvas_id,sis_user_id,sis_login_id,section
  moodle  nbgrader_id + one of email, username, idnumber, given on every row
          e.g.  nbgrader_id,email
  ids must be unique. A bad roster (empty, missing columns, duplicates) is refused with one
  line saying what to fix; nothing is written (exit 2).

files:
  canvas  Student,ID,SIS User ID,SIS Login ID,Section,TITLE[ (ID)] + a "Points Possible" row
          (max score). Import: Gradebook > Import. A TITLE with no Canvas assignment of that name
          becomes a new assignment; --canvas-assignment-id updates that assignment.
  moodle  EMAIL|USERNAME|IDNUMBER,TITLE. Import: Grades > Import > CSV file; map "Identify
          user by" to the same field, and TITLE to the grade item (or "new grade item").

everyone is accounted for:
  - a roster student with no submission is listed and gets an EMPTY cell ("no grade" for
    the LMS; note that Moodle then clears a grade already in that grade item), or 0 with
    --missing-as-zero;
  - a graded student missing from the roster cannot be in the file: they are listed, the
    file is still written for everyone else, and the exit status is 1. Add them to the
    roster and run again.
exit status: 0 written, everyone accounted for; 1 written, but graded students are missing
from the roster; 2 bad arguments, roster or gradebook (one line, nothing written).
"""


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
    path = Path(path)
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise RosterError(f"roster {name} does not exist: pass --roster with the path of your roster CSV") from None
    except IsADirectoryError:
        raise RosterError(f"roster {name} is a folder, not a CSV file") from None
    except UnicodeDecodeError:
        raise RosterError(f"roster {name} is not UTF-8 text: save it as CSV UTF-8") from None
    except OSError as exc:
        raise RosterError(f"cannot read roster {name}: {exc.strerror or exc}") from None
    example = ("nbgrader_id,name,canvas_id,sis_user_id,sis_login_id,section" if lms == "canvas"
               else "nbgrader_id,email")
    if not text.strip():
        raise RosterError(f"roster {name} is empty: it needs a header row ({example}) and one row per student")
    try:
        rows = list(csv.reader(text.splitlines()))
    except csv.Error as exc:
        raise RosterError(f"roster {name} is not a readable CSV file: {exc}") from None

    header = [h.strip().lower() for h in rows[0]]
    seen: set[str] = set()
    for h in header:
        if h and h in seen:
            raise RosterError(f"roster {name} has two columns named {h!r}: keep one")
        seen.add(h)

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
    for line, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue  # a blank line or a spreadsheet's empty row: no student on it
        if len(row) > len(header):
            raise RosterError(f"roster {name} line {line} has {len(row)} fields but the header has {len(header)}: "
                              f"quote values that contain commas")
        values = {h: (row[i].strip() if i < len(row) else "") for i, h in enumerate(header) if h}
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
            raw = float(sub.score or 0.0)
            penalty = float(sub.late_submission_penalty or 0.0)
            grades.by_student[sub.student_id] = Grade(sub.student_id, max(0.0, raw - penalty), raw, penalty,
                                                      bool(sub.needs_manual_grade))
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


# ------------------------------------------------------------------------------- command line

def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add `export`'s arguments (and its description and help epilog) to a (sub)parser."""
    parser.description = parser.description or DESCRIPTION
    parser.epilog = parser.epilog or EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("assignment", help="the assignment's name in the gradebook, e.g. connection-pooling")
    parser.add_argument("--lms", required=True, choices=LMS_CHOICES,
                        help="canvas: Canvas's gradebook import CSV; moodle: Moodle's CSV grade import")
    parser.add_argument("--roster", required=True, type=Path, metavar="ROSTER.csv",
                        help="CSV mapping nbgrader ids to LMS identities (columns: see below)")
    parser.add_argument("--out", type=Path, metavar="FILE",
                        help="where to write (default: exports/ASSIGNMENT-LMS.csv in the course folder); "
                             "written atomically, replacing an existing file")
    parser.add_argument("--course", type=Path, default=Path("."),
                        help="the course folder (where gradebook.db is); default: here")
    parser.add_argument("--missing-as-zero", action="store_true",
                        help="give roster students without a submission 0 instead of an empty cell "
                             "(they are listed either way)")
    parser.add_argument("--title", metavar="TITLE",
                        help="the grade column's title: the LMS assignment or grade item (default: ASSIGNMENT)")
    parser.add_argument("--canvas-assignment-id", metavar="ID",
                        help="canvas: the Canvas assignment's id (in its URL, .../assignments/ID): the column "
                             "becomes 'TITLE (ID)' and updates that assignment; without it Canvas matches TITLE "
                             "or creates a new assignment")
    parser.add_argument("--moodle-match", choices=MOODLE_IDS,
                        help="moodle: the roster column that identifies users, when the roster has several "
                             "(map 'Identify user by' to the same field when importing)")
    return parser


def main(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Run `export` with parsed arguments; report on `out` (default: stdout), errors on stderr.

    Returns the exit status: 0 written, everyone accounted for; 1 written, but graded students
    are missing from the roster; 2 bad arguments, roster or gradebook (nothing written)."""
    out = sys.stdout if out is None else out
    try:
        return _run(args, out)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace, out: TextIO) -> int:
    lms = args.lms
    if args.canvas_assignment_id not in (None, ""):
        if lms != "canvas":
            raise UsageError("--canvas-assignment-id works only with --lms canvas: drop it, or use --lms canvas")
        if not str(args.canvas_assignment_id).isdigit():
            raise UsageError(f"--canvas-assignment-id {args.canvas_assignment_id!r}: a Canvas assignment id is digits")
    if args.moodle_match and lms != "moodle":
        raise UsageError("--moodle-match works only with --lms moodle: drop it, or use --lms moodle")
    title = args.title if args.title is not None else args.assignment
    if not title.strip():
        raise UsageError("--title is empty: give the LMS column's title, "
                         "or leave --title out to use the assignment name")
    course = Path(args.course).resolve()
    if not course.is_dir():
        raise UsageError(f"course folder {course} does not exist: "
                         "pass --course with the folder that holds gradebook.db")

    roster = read_roster(args.roster, lms, args.moodle_match)
    grades = read_grades(course / "gradebook.db", args.assignment)
    found = reconcile(roster, grades.by_student)
    if lms == "canvas":
        rows = canvas_rows(roster, grades.by_student, title=title, max_score=grades.max_score,
                           canvas_assignment_id=args.canvas_assignment_id, missing_as_zero=args.missing_as_zero)
    else:
        rows = moodle_rows(roster, grades.by_student, title=title, missing_as_zero=args.missing_as_zero)

    target = Path(args.out) if args.out else course / "exports" / f"{args.assignment}-{lms}.csv"
    if target.is_dir():
        raise UsageError(f"--out {target} is a folder: name a file")
    try:
        write_csv_atomic(target, rows)
    except OSError as exc:
        raise UsageError(f"cannot write {target}: {exc.strerror or exc}") from None

    empty = "0 (--missing-as-zero)" if args.missing_as_zero else "an empty cell"
    for e in found.unsubmitted:
        print(f"no submission: {e.nbgrader_id} (roster line {e.line}) gets {empty}", file=out)
    for g in found.unrostered:
        print(f"not in roster: {g.student} (graded {format_score(g.score)}/{format_score(grades.max_score)}) "
              f"is NOT in the file: add them to {roster.path} and run again", file=out)
    for e in roster.entries:
        for column in (CANVAS_IDS if lms == "canvas" else (roster.match,)):
            value = e.fields.get(column, "")
            if safe_csv.neutralise(value) != value:
                print(f"written with a leading ': {e.nbgrader_id}'s {column} {value!r} starts like a spreadsheet "
                      f"formula; {lms} will not match it until that ' is removed", file=out)
    manual = [g for s, g in sorted(grades.by_student.items()) if g.needs_manual_grade]
    for g in manual:
        print(f"needs manual grading: {g.student}: its score may change after manual grading", file=out)
    written = len(roster.entries)
    summary = (f"{lms}: wrote {target} ({written} students: {written - len(found.unsubmitted)} graded, "
               f"{len(found.unsubmitted)} without a submission); {len(found.unrostered)} graded student"
               f"{'' if len(found.unrostered) == 1 else 's'} not in the roster")
    if manual:
        summary += f"; {len(manual)} needing manual grading"
    print(summary, file=out)
    return 1 if found.unrostered else 0


if __name__ == "__main__":
    _parser = add_arguments(argparse.ArgumentParser(prog="course-grade export", description=DESCRIPTION))
    sys.exit(main(_parser.parse_args()))
