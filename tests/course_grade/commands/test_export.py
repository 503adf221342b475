"""`course-grade export --lms canvas|moodle` (course_grade/commands/export.py): the files Canvas's and Moodle's
gradebook imports read, built from a small gradebook made directly with nbgrader's API (no
kernels, no autograde). Fast tier."""
import argparse
import csv
import os
import shutil
import stat
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from course_grade import safe_csv
from course_grade.commands import export
from course_grade.reports import lms
from tests.support.course import blank_gradebook
from tests.support.hostile_cells import HOSTILE, raw_formulas

REPO = Path(__file__).resolve().parents[3]
ASSIGNMENT = "ps1"
CANVAS_ROSTER = """\
nbgrader_id,name,canvas_id,sis_user_id,sis_login_id,section
alice,"Liddell, Alice",101,S-1,alice@uni.example,Section A
bob,Bob Builder,,S-2,bob@uni.example,Section B
carol,Carol,103,,,
frank,Frank (no submission),106,S-6,frank@uni.example,Section A
"""
MOODLE_ROSTER = """\
nbgrader_id,email
alice,alice@uni.example
bob,bob@uni.example
carol,carol@uni.example
frank,frank@uni.example
"""


def make_gradebook(course: Path) -> Path:
    """ps1: two notebooks, 10 + 13 points. alice 10 + 12.5; bob 7 + 0 with a 2-point late
    penalty; carol 3 with a 5-point late penalty (nbgrader export floors at 0); dave 1/3
    (graded, in no roster); frank and erin have no submission (erin is in no roster either)."""
    from nbgrader.api import Gradebook

    course.mkdir(parents=True, exist_ok=True)
    db = course / "gradebook.db"
    shutil.copy(blank_gradebook(), db)  # a new gradebook would run alembic (seconds of CPU)
    with Gradebook(f"sqlite:///{db}") as gb:
        gb.update_or_create_assignment(ASSIGNMENT)
        for nb, cell, points in (("part1", "c1", 10), ("part2", "c2", 13)):
            gb.update_or_create_notebook(nb, ASSIGNMENT)
            gb.update_or_create_grade_cell(cell, nb, ASSIGNMENT, max_score=points, cell_type="code")
        for student in ("alice", "bob", "carol", "dave", "erin", "frank"):
            gb.update_or_create_student(student)
        scores = {"alice": (10, 12.5), "bob": (7, 0), "carol": (3, 0), "dave": (1 / 3, 0)}
        for student, (s1, s2) in scores.items():
            gb.add_submission(ASSIGNMENT, student)
            for nb, cell, score in (("part1", "c1", s1), ("part2", "c2", s2)):
                grade = gb.find_grade(cell, nb, ASSIGNMENT, student)
                grade.auto_score = score
                grade.needs_manual_grade = False
        gb.find_submission_notebook("part1", ASSIGNMENT, "bob").late_submission_penalty = 2.0
        gb.find_submission_notebook("part2", ASSIGNMENT, "carol").late_submission_penalty = 5.0
        gb.db.commit()
    return db


@pytest.fixture(scope="module")
def gradebook_template(tmp_path_factory):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nbgrader's own SQLAlchemy autoflush warnings
        return make_gradebook(tmp_path_factory.mktemp("template"))


@pytest.fixture
def course(tmp_path, gradebook_template):
    root = tmp_path / "course"
    root.mkdir()
    shutil.copy(gradebook_template, root / "gradebook.db")
    return root


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def parser():
    return export.add_arguments(argparse.ArgumentParser(prog="course-grade export"))


def run(argv, capsys):
    code = export.main(parser().parse_args([str(a) for a in argv]))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def read_csv(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))


# ------------------------------------------------------------------------------- numbers

@pytest.mark.parametrize("value, text", [
    (23, "23"), (22.5, "22.5"), (0.1 + 0.2, "0.3"), (1 / 3, "0.3333"), (2 / 3, "0.6667"),
    (1e-05, "0"), (0.00015, "0.0002"), (1e16, "10000000000000000"), (-0.0, "0"), (0, "0"),
])
def test_numbers_use_a_decimal_point_and_never_an_exponent(value, text):
    assert lms.format_score(value) == text


def test_scores_are_nbgrader_exports_score(course):
    grades = lms.read_grades(course / "gradebook.db", ASSIGNMENT)
    assert grades.max_score == 23
    got = {s: (g.raw_score, g.late_penalty, g.score) for s, g in grades.by_student.items()}
    assert got == {"alice": (22.5, 0, 22.5), "bob": (7, 2, 5), "carol": (3, 5, 0),
                   "dave": (pytest.approx(1 / 3), 0, pytest.approx(1 / 3))}


# ------------------------------------------------------------------------------- Canvas

def test_canvas_file_has_canvas_columns_points_possible_and_one_row_per_roster_student(course, tmp_path, capsys):
    roster = write(tmp_path / "roster.csv", CANVAS_ROSTER)
    code, out, err = run([ASSIGNMENT, "--lms", "canvas", "--roster", roster, "--course", course], capsys)
    target = course / "exports" / "ps1-canvas.csv"
    assert err == ""
    # the exact bytes: RFC 4180 (CRLF, quotes only where needed), UTF-8, no BOM
    assert target.read_bytes().decode("utf-8") == (
        "Student,ID,SIS User ID,SIS Login ID,Section,ps1\r\n"
        "Points Possible,,,,,23\r\n"
        '"Liddell, Alice",101,S-1,alice@uni.example,Section A,22.5\r\n'
        "Bob Builder,,S-2,bob@uni.example,Section B,5\r\n"
        "Carol,103,,,,0\r\n"
        "Frank (no submission),106,S-6,frank@uni.example,Section A,\r\n"
    )
    rows = read_csv(target)
    # what Canvas's importer checks (gradebook_importer.rb: header?, update_column_count)
    header = rows[0]
    assert "Student" in header[0] and "ID" in header[1]
    assert header[2:4] == ["SIS User ID", "SIS Login ID"] and "Section" in header[4]
    assert "Points Possible" in rows[1][0]
    # a roster student without a submission, and the graded student missing from the roster
    assert code == 1
    lines = out.splitlines()
    assert "no submission: frank (roster line 5) gets an empty cell" in lines
    assert any(line.startswith("not in roster: dave (graded 0.3333/23) is NOT in the file") for line in lines)
    assert "dave" not in target.read_text()
    assert lines[-1] == (f"canvas: wrote {target} (4 students: 3 graded, 1 without a submission); "
                         "1 graded student not in the roster")


def test_canvas_column_names_an_assignment_by_id_or_title(course, tmp_path, capsys):
    roster = write(tmp_path / "roster.csv", CANVAS_ROSTER + "dave,Dave,104,,,\n")
    out = tmp_path / "canvas.csv"
    code, _, _ = run([ASSIGNMENT, "--lms", "canvas", "--roster", roster, "--course", course, "--out", out,
                      "--title", "Connection pooling", "--canvas-assignment-id", "4321"], capsys)
    assert code == 0  # everyone graded is in the roster
    assert read_csv(out)[0][-1] == "Connection pooling (4321)"
    code, _, err = run([ASSIGNMENT, "--lms", "canvas", "--roster", roster, "--course", course, "--out", out,
                        "--canvas-assignment-id", "12a"], capsys)
    assert code == 2 and "digits" in err


def test_canvas_rows_is_a_pure_function(tmp_path):
    roster = lms.read_roster(write(tmp_path / "r.csv", "NBGRADER_ID,Canvas_ID\nx,7\ny,8\n"), "canvas")
    rows = lms.canvas_rows(roster, {"x": 2.5}, title="Lab", max_score=10, missing_as_zero=True)
    assert rows == [["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "Lab"],
                    ["Points Possible", "", "", "", "", "10"],
                    ["", "7", "", "", "", "2.5"],
                    ["", "8", "", "", "", "0"]]


# ------------------------------------------------------------------------------- Moodle

def test_moodle_file_has_an_identity_column_and_a_grade_column(course, tmp_path, capsys):
    roster = write(tmp_path / "roster.csv", MOODLE_ROSTER)
    code, out, _ = run([ASSIGNMENT, "--lms", "moodle", "--roster", roster, "--course", course], capsys)
    target = course / "exports" / "ps1-moodle.csv"
    assert target.read_bytes().decode("utf-8") == (
        "email,ps1\r\n"
        "alice@uni.example,22.5\r\n"
        "bob@uni.example,5\r\n"
        "carol@uni.example,0\r\n"
        "frank@uni.example,\r\n"
    )
    assert code == 1
    assert "no submission: frank (roster line 5) gets an empty cell" in out
    assert "not in roster: dave" in out


def test_moodle_identity_column_is_chosen_when_the_roster_has_several(tmp_path):
    path = write(tmp_path / "r.csv", "nbgrader_id,email,idnumber\nx,x@e.org,ID7\n")
    with pytest.raises(lms.RosterError, match="--moodle-match"):
        lms.read_roster(path, "moodle")
    roster = lms.read_roster(path, "moodle", match="idnumber")
    assert lms.moodle_rows(roster, {"x": 3}, title="Lab") == [["idnumber", "Lab"], ["ID7", "3"]]
    assert lms.moodle_rows(roster, {}, title="Lab", missing_as_zero=True) == [["idnumber", "Lab"], ["ID7", "0"]]


# ------------------------------------------------------------------------------- everyone accounted for

def test_missing_as_zero_fills_only_students_without_a_submission(course, tmp_path, capsys):
    roster = write(tmp_path / "roster.csv", MOODLE_ROSTER)
    out = tmp_path / "m.csv"
    code, text, _ = run([ASSIGNMENT, "--lms", "moodle", "--roster", roster, "--course", course, "--out", out,
                         "--missing-as-zero"], capsys)
    assert read_csv(out)[1:] == [["alice@uni.example", "22.5"], ["bob@uni.example", "5"],
                                 ["carol@uni.example", "0"], ["frank@uni.example", "0"]]
    assert "no submission: frank (roster line 5) gets 0 (--missing-as-zero)" in text
    assert code == 1  # dave is still missing from the roster


def test_exit_status_0_when_every_graded_student_is_in_the_roster(course, tmp_path, capsys):
    roster = write(tmp_path / "roster.csv", MOODLE_ROSTER + "dave,dave@uni.example\n")
    code, out, err = run([ASSIGNMENT, "--lms", "moodle", "--roster", roster, "--course", course], capsys)
    assert (code, err) == (0, "")
    assert "not in roster" not in out
    assert out.splitlines()[-1].endswith("(5 students: 4 graded, 1 without a submission); "
                                         "0 graded students not in the roster")


def test_a_submission_needing_manual_grading_is_noted(course, tmp_path, capsys):
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        gb.find_grade("c2", "part2", ASSIGNMENT, "alice").needs_manual_grade = True
        gb.db.commit()
    roster = write(tmp_path / "roster.csv", MOODLE_ROSTER + "dave,dave@uni.example\n")
    code, out, _ = run([ASSIGNMENT, "--lms", "moodle", "--roster", roster, "--course", course], capsys)
    assert code == 0
    assert "needs manual grading: alice: its score may change after manual grading" in out
    assert out.splitlines()[-1].endswith("; 1 needing manual grading")


# ------------------------------------------------------------------------------- roster validation

BAD_ROSTERS = [
    ("canvas", "", "is empty"),
    ("canvas", "\n  \n", "is empty"),
    ("canvas", "nbgrader_id,canvas_id\n", "no students"),
    ("canvas", "student,canvas_id\nx,1\n", "needs a column nbgrader_id: add it"),
    ("canvas", "nbgrader_id,name,section\nx,X,A\n", "needs a column canvas_id, sis_user_id or sis_login_id: add it"),
    ("moodle", "nbgrader_id,name\nx,X\n", "needs a column email, username or idnumber: add it"),
    ("moodle", "id,mail\nx,X\n", "needs a column nbgrader_id and a column email, username or idnumber"),
    ("canvas", "nbgrader_id,canvas_id\nx,1\ny,2\nx,3\n", "nbgrader_id 'x' is on lines 2 and 4"),
    ("canvas", "nbgrader_id,canvas_id\nx,1\ny,1\n", "canvas_id '1' is on lines 2 and 3"),
    ("moodle", "nbgrader_id,email\nx,a@e.org\ny,a@e.org\n", "email 'a@e.org' is on lines 2 and 3"),
    ("canvas", "nbgrader_id,canvas_id\nx,abc\n", "not a Canvas user id"),
    ("canvas", "nbgrader_id,canvas_id,sis_user_id\nx,,\n", "line 2 (x) has none of canvas_id, sis_user_id"),
    ("moodle", "nbgrader_id,email\nx,\n", "line 2 (x) has no email"),
    ("canvas", "nbgrader_id,canvas_id\n,1\n", "line 2 has no nbgrader_id"),
    ("canvas", "nbgrader_id,canvas_id\nx,1,extra\n", "line 2 has 3 fields but the header has 2"),
    ("canvas", "nbgrader_id,canvas_id,Canvas_ID\nx,1,1\n", "two columns named 'canvas_id'"),
    ("moodle", "nbgrader_id,email,username\nx,a@e.org,a\n", "choose the one to write with --moodle-match"),
]


@pytest.mark.parametrize("lms_name, text, message", BAD_ROSTERS)
def test_a_bad_roster_is_refused_in_one_line_and_nothing_is_written(course, tmp_path, capsys, lms_name, text, message):
    path = write(tmp_path / "roster.csv", text)
    with pytest.raises(lms.RosterError) as caught:
        lms.read_roster(path, lms_name)
    assert message in str(caught.value) and "\n" not in str(caught.value)
    code, out, err = run([ASSIGNMENT, "--lms", lms_name, "--roster", path, "--course", course], capsys)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("error: roster ") and message in err
    assert not (course / "exports").exists()


def test_roster_tolerates_excel_bom_header_case_spaces_and_blank_rows(tmp_path):
    path = tmp_path / "r.csv"
    path.write_bytes("\ufeff NBGRADER_ID , SIS_Login_ID ,notes\r\n alice , a@e.org ,hi\r\n,,\r\n\r\nbob,b@e.org,\r\n"
                     .encode("utf-8"))
    roster = lms.read_roster(path, "canvas")
    assert roster.ids == ["alice", "bob"]
    assert roster.entries[0].fields["sis_login_id"] == "a@e.org"
    assert roster.entries[1].line == 5


def test_a_roster_that_is_not_there_or_not_text_is_refused(tmp_path):
    with pytest.raises(lms.RosterError, match="does not exist"):
        lms.read_roster(tmp_path / "nope.csv", "canvas")
    (tmp_path / "binary.csv").write_bytes(b"nbgrader_id,email\n\x00\x01\x02\x03x,y\n")
    with pytest.raises(lms.RosterError, match="not a text file"):
        lms.read_roster(tmp_path / "binary.csv", "moodle")


def test_a_roster_as_excel_saves_it_in_a_semicolon_locale_is_read(tmp_path):
    """Excel's "CSV" where ',' is the decimal mark: ';' separated, Windows-1252."""
    (tmp_path / "r.csv").write_bytes("nbgrader_id;email;name\r\nzoë;zoé@e.org;Müller, Zoë\r\n".encode("cp1252"))
    roster = lms.read_roster(tmp_path / "r.csv", "moodle")
    assert roster.ids == ["zoë"] and roster.entries[0].fields == {
        "nbgrader_id": "zoë", "email": "zoé@e.org", "name": "Müller, Zoë"}, roster


def test_bad_course_or_assignment_is_refused_and_nothing_is_written(course, tmp_path, capsys):
    roster = write(tmp_path / "roster.csv", MOODLE_ROSTER)
    code, _, err = run(["nope", "--lms", "moodle", "--roster", roster, "--course", course], capsys)
    assert code == 2 and err == "error: unknown assignment 'nope' (the gradebook has: ps1)\n"
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = run([ASSIGNMENT, "--lms", "moodle", "--roster", roster, "--course", empty], capsys)
    assert code == 2 and "no gradebook" in err and not (empty / "gradebook.db").exists()
    code, _, err = run([ASSIGNMENT, "--lms", "canvas", "--roster", roster, "--course", course, "--moodle-match",
                        "email"], capsys)
    assert code == 2 and "--moodle-match works only with --lms moodle: drop it" in err
    assert not (course / "exports").exists()


# ------------------------------------------------------------------------------- no formula

def roster_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    """A roster as a spreadsheet saves it: every value quoted where it needs to be."""
    with open(path, "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([header, *rows])
    return path


def test_canvas_file_writes_hostile_names_and_ids_as_text_that_reads_back(course, tmp_path, capsys):
    rows = [["alice", HOSTILE[0], "101", "S-1", "alice@uni.example", "@SUM(A1)"]]
    rows += [[f"x{k}", text, str(200 + k), "", f"{text}{k}", text] for k, text in enumerate(HOSTILE)]
    path = roster_csv(tmp_path / "roster.csv", ["nbgrader_id", "name", "canvas_id", "sis_user_id", "sis_login_id",
                                                "section"], rows)
    roster = lms.read_roster(path, "canvas")
    code, out, err = run([ASSIGNMENT, "--lms", "canvas", "--roster", path, "--course", course], capsys)
    target = course / "exports" / "ps1-canvas.csv"
    assert err == "" and code == 1  # bob, carol and dave are not in this roster
    assert raw_formulas(target) == []
    with open(target, newline="", encoding="utf-8") as fh:
        back = list(safe_csv.reader(fh))
    assert len(back) == 2 + len(roster.entries)  # no row split by a comma, a quote or a newline
    written = [[e.fields.get(c, "") for c in ("name", "canvas_id", "sis_user_id", "sis_login_id", "section")]
               for e in roster.entries]
    assert [row[:5] for row in back[2:]] == written
    assert back[2][5] == "22.5" and all(row[5] == "" for row in back[3:])
    # an identity written with a leading ' will not match in Canvas: each is named
    quoted = [e for e in roster.entries if e.fields["sis_login_id"].startswith(("=", "+", "-", "@"))]
    assert len(quoted) >= 5
    for e in quoted:
        assert (f"written with a leading ': {e.nbgrader_id}'s sis_login_id {e.fields['sis_login_id']!r} starts like "
                f"a spreadsheet formula; canvas will not match it until that ' is removed") in out.splitlines()
    assert "alice's" not in out


def test_moodle_file_writes_a_hostile_identity_as_text_that_reads_back(course, tmp_path, capsys):
    rows = [["alice", "-alice"], ["bob", "bob"], ["carol", "@carol"], ["dave", "a,b"]]
    path = roster_csv(tmp_path / "roster.csv", ["nbgrader_id", "username"], rows)
    code, out, err = run([ASSIGNMENT, "--lms", "moodle", "--roster", path, "--course", course, "--title", "=1+1"],
                         capsys)
    target = course / "exports" / "ps1-moodle.csv"
    assert (code, err) == (0, "")
    assert raw_formulas(target) == []
    assert target.read_text(encoding="utf-8").splitlines() == ["username,'=1+1", "'-alice,22.5", "bob,5",
                                                                "'@carol,0", '"a,b",0.3333']
    with open(target, newline="", encoding="utf-8") as fh:
        assert list(safe_csv.reader(fh)) == [["username", "=1+1"], ["-alice", "22.5"], ["bob", "5"], ["@carol", "0"],
                                             ["a,b", "0.3333"]]
    assert [line.split(":")[1] for line in out.splitlines() if line.startswith("written with")] == \
        [" alice's username '-alice' starts like a spreadsheet formula; "
         "moodle will not match it until that ' is removed",
         " carol's username '@carol' starts like a spreadsheet formula; "
         "moodle will not match it until that ' is removed"]


# ------------------------------------------------------------------------------- atomic write

class Boom(OSError):
    pass


def failing_writer(after: int):
    real = csv.writer

    def make(fh, *args, **kwargs):
        inner = real(fh, *args, **kwargs)

        class Writer:
            n = 0

            def writerow(self, row):
                if self.n == after:
                    fh.flush()  # the partial file really is on disk when the failure comes
                    raise Boom(28, "No space left on device")
                self.n += 1
                return inner.writerow(row)
        return Writer()
    return make


def test_a_failed_write_leaves_no_partial_file_and_keeps_the_old_one(course, tmp_path, capsys, monkeypatch):
    roster = write(tmp_path / "roster.csv", CANVAS_ROSTER)
    target = course / "exports" / "ps1-canvas.csv"
    target.parent.mkdir()
    target.write_text("the previous export\n")
    monkeypatch.setattr(csv, "writer", failing_writer(after=3))
    code, out, err = run([ASSIGNMENT, "--lms", "canvas", "--roster", roster, "--course", course], capsys)
    assert code == 2 and out == ""
    assert err == f"error: cannot write {target}: No space left on device\n"
    assert target.read_text() == "the previous export\n"
    assert sorted(p.name for p in target.parent.iterdir()) == ["ps1-canvas.csv"]  # no temporary file left
    # and with no previous file, no file at all
    target.unlink()
    with pytest.raises(Boom):
        lms.write_csv_atomic(target, [["a"], ["b"], ["c"], ["d"]])
    assert list(target.parent.iterdir()) == []


def test_written_file_has_a_normal_mode(tmp_path):
    out = tmp_path / "deep" / "er" / "x.csv"
    old = os.umask(0o027)
    try:
        lms.write_csv_atomic(out, [["a", "1"]])
    finally:
        os.umask(old)
    assert out.read_bytes() == b"a,1\r\n"
    # the mode the umask gives a new file (mkstemp alone would make it 0600)
    assert stat.S_IMODE(out.stat().st_mode) == 0o640


# ------------------------------------------------------------------------------- the real command

@pytest.mark.slow  # a Python process that imports nbgrader
def test_the_command_runs_as_a_program(course, tmp_path):
    roster = write(tmp_path / "roster.csv", CANVAS_ROSTER)
    done = subprocess.run([sys.executable, "-m", "course_grade.commands.export", ASSIGNMENT, "--lms", "canvas",
                           "--roster", str(roster)], cwd=course, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr
    assert done.stderr == ""
    assert "not in roster: dave" in done.stdout and "no submission: frank" in done.stdout
    rows = read_csv(course / "exports" / "ps1-canvas.csv")
    assert [r[-1] for r in rows] == ["ps1", "23", "22.5", "5", "0", ""]


def test_help_says_what_the_roster_needs_and_what_happens_to_everyone():
    help_text = parser().format_help()
    for needed in ("nbgrader_id", "canvas_id", "sis_user_id", "sis_login_id", "email", "username", "idnumber",
                   "--missing-as-zero", "exit status", "EMPTY cell", "Points Possible"):
        assert needed in help_text, needed
