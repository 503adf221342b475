"""`course-grade roster import ROSTER.csv`: the class's roster into nbgrader's student table
(gradebook.db), through nbgrader's own Gradebook API, so the formgrader, `nbgrader export` and
`course-grade export --lms` name the same students. All rows or none."""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from course_grade.course import UsageError, one_transaction, open_gradebook
from course_grade.reports.lms import NBGRADER_ID
from course_grade.spreadsheet import Table, read_table

HELP = "import the class's roster (names, emails, LMS ids) into nbgrader's student table"

# nbgrader's Student fields, and the roster columns that fill them (the first one present)
FIELDS = {"first_name": ("first_name",), "last_name": ("last_name",), "email": ("email",),
          "lms_user_id": ("lms_user_id", "canvas_id")}
EXAMPLE = "nbgrader_id,first_name,last_name,email,lms_user_id"

EPILOG = f"""\
roster: a CSV file with a header row, as a spreadsheet saves it (',', ';' or TAB separated;
UTF-8, UTF-16 with a byte-order mark, or Windows-1252), one row per student, e.g.
  {EXAMPLE}
  zoe,Zoë,Müller,zoe@uni.example,4711
nbgrader_id is required (the student's user name: their folder in submitted/); the other
columns are optional (lms_user_id may be named canvas_id), other columns are ignored, and an
empty cell clears that field. The same file serves `course-grade export --lms`. Students
already in the gradebook are updated, never removed. A bad roster is refused with one line
saying what to fix, and nothing is imported (exit 2).
"""


@dataclass(frozen=True)
class Student:
    id: str
    line: int
    fields: dict[str, str | None]  # nbgrader field -> value (None: empty cell)


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    imports = actions.add_parser("import", help=HELP, epilog=EPILOG,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    imports.add_argument("roster", type=Path, metavar="ROSTER.csv")
    imports.add_argument("--course", type=Path, default=Path("."),
                         help="the course folder (where nbgrader_config.py is); default: here")
    return parser


def students(table: Table) -> tuple[list[Student], list[str]]:
    """The roster's students and the nbgrader fields it gives; UsageError for a bad roster."""
    name = f"roster {table.path}"
    if NBGRADER_ID not in table.header:
        raise UsageError(f"{name} needs a column nbgrader_id (the student's user name): add it; a roster's "
                         f"header is like {EXAMPLE}")
    columns = {field: next((c for c in names if c in table.header), None) for field, names in FIELDS.items()}
    given = [field for field, column in columns.items() if column]
    found: list[Student] = []
    first_line: dict[str, int] = {}
    for row in table.rows:
        student = row.values[NBGRADER_ID]
        if not student:
            raise UsageError(f"{name} line {row.line} has no nbgrader_id: fill it in or delete the row")
        if "/" in student or "\\" in student or student in (".", ".."):
            raise UsageError(f"{name} line {row.line}: nbgrader_id {student!r} cannot name a folder: "
                             f"use the student's user name")
        if student in first_line:
            raise UsageError(f"{name}: nbgrader_id {student!r} is on lines {first_line[student]} and {row.line}: "
                             f"each student once")
        first_line[student] = row.line
        found.append(Student(student, row.line, {f: row.values[columns[f]] or None for f in given}))
    if not found:
        raise UsageError(f"{name} has a header but no students: add one row per student")
    return found, given


def import_roster(gradebook_path: Path, roster: list[Student]) -> tuple[int, int, list[str]]:
    """Create or update every roster student in one transaction. Returns (new, updated, the
    gradebook's students not in the roster)."""
    with open_gradebook(gradebook_path) as gb:
        known = {s.id for s in gb.students}
        with one_transaction(gb):
            for student in roster:
                gb.update_or_create_student(student.id, **student.fields)
        listed = {s.id for s in roster}
        new = sum(s.id not in known for s in roster)
        return new, len(roster) - new, sorted(known - listed)


def main(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = sys.stdout if out is None else out
    course = args.course
    if not (course / "nbgrader_config.py").is_file():
        raise UsageError(f"no nbgrader_config.py in {course}: run this in the course folder or pass --course")
    table = read_table(args.roster, "roster", EXAMPLE)
    roster, given = students(table)
    gradebook = course / "gradebook.db"
    made = not gradebook.exists()
    new, updated, unlisted = import_roster(gradebook, roster)
    fields = ", ".join(given) if given else "ids only (no first_name, last_name, email or lms_user_id column)"
    print(f"roster {table.path} ({table.read_as()}): {len(roster)} students into "
          f"{gradebook}{' (new)' if made else ''}: {new} new, {updated} updated; fields: {fields}", file=out)
    if unlisted:
        print(f"in the gradebook but not in this roster (kept): {', '.join(unlisted)}", file=out)
    return 0
