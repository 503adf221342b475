"""`course-grade export ASSIGNMENT --lms canvas|moodle --roster ROSTER.csv`: one assignment's
grades as the CSV file Canvas's or Moodle's gradebook imports (the formats, and how the
roster is matched: course_grade/reports/lms.py)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TextIO

from course_grade import safe_csv
from course_grade.course import UsageError
from course_grade.reports.lms import (
    CANVAS_IDS,
    LMS_CHOICES,
    MOODLE_IDS,
    canvas_rows,
    format_score,
    moodle_rows,
    read_grades,
    read_roster,
    reconcile,
    write_csv_atomic,
)

HELP = "write one assignment's grades as a Canvas or Moodle gradebook import file"


DESCRIPTION = """\
Write the grades of ASSIGNMENT from the course gradebook (the `score` column of `nbgrader
export`: late penalties subtracted) as a CSV file that Canvas's gradebook import (--lms
canvas) or Moodle's CSV grade import (--lms moodle) reads. The roster maps nbgrader student
ids to the LMS's identities.
"""


EPILOG = """\
roster (CSV with a header row, as a spreadsheet saves it: ',', ';' or TAB separated; UTF-8,
UTF-16 with a byte-order mark, or Windows-1252; column names case-insensitive, other columns
ignored):
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
    for g in (g for _, g in sorted(grades.by_student.items()) if g.late is not None and g.late.is_late):
        print(f"late: {g.student}: {g.late.sentence()}: {format_score(g.raw_score)}/{format_score(grades.max_score)} "
              f"before the penalty, {format_score(g.score)} in the file", file=out)
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
