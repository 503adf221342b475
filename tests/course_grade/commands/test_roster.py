"""`course-grade roster import` (course_grade/commands/roster.py): rosters as spreadsheets save
them land in nbgrader's real student table, where the formgrader's API (NbGraderAPI.get_students)
reads them; a bad roster changes nothing. Fast tier (a copied blank gradebook, no alembic)."""
import codecs
import shutil
from pathlib import Path

import pytest

from course_grade.__main__ import main
from course_grade.commands import roster
from course_grade.course import open_gradebook
from tests.support.course import blank_gradebook

HEADER = ["nbgrader_id", "first_name", "last_name", "email", "lms_user_id"]
CLASS = [["zoe", "Zoë", "Müller", "zoe@uni.example", "4711"],
         ["rene", "René", "Lefèvre", "rene@uni.example", "4712"],
         ["ana", "Ana", "Núñez, Jr.", "", ""]]


@pytest.fixture
def course(tmp_path) -> Path:
    """A course folder: a config, a gradebook, and a collected submission of zoe's (whose name the
    formgrader shows as "None, None" while the gradebook does not know her)."""
    course = tmp_path / "course"
    (course / "submitted" / "zoe" / "ps1").mkdir(parents=True)
    (course / "nbgrader_config.py").write_text("c = get_config()\n")
    shutil.copy(blank_gradebook(), course / "gradebook.db")
    return course


def csv_bytes(rows, separator=",", encoding="utf-8", bom=b""):
    def cell(text):
        return f'"{text}"' if separator in text else text
    return bom + "".join(separator.join(cell(c) for c in row) + "\r\n" for row in rows).encode(encoding)


def table(course: Path) -> dict[str, tuple]:
    with open_gradebook(course / "gradebook.db") as gb:
        return {s.id: (s.first_name, s.last_name, s.email, s.lms_user_id) for s in gb.students}


def formgrader_names(course: Path) -> dict[str, str]:
    """What the formgrader's student list shows: "last, first" per student (its API's dicts)."""
    from nbgrader.apps.api import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory

    api = NbGraderAPI(coursedir=CourseDirectory(root=str(course)))
    return {s["id"]: f"{s['last_name']}, {s['first_name']}" for s in api.get_students()}


def run(course, path, capsys):
    code = main(["roster", "import", str(path), "--course", str(course)])
    out, err = capsys.readouterr()
    return code, out, err


SAVED = [
    pytest.param({}, "utf-8, ','", id="comma"),
    pytest.param({"separator": ";"}, "utf-8, ';'", id="semicolon"),
    pytest.param({"separator": "\t"}, "utf-8, TAB", id="tab"),
    pytest.param({"bom": codecs.BOM_UTF8}, "utf-8-sig, ','", id="utf8-bom"),
    pytest.param({"separator": ";", "encoding": "cp1252"}, "cp1252, ';'", id="cp1252"),
    pytest.param({"separator": "\t", "encoding": "utf-16-le", "bom": codecs.BOM_UTF16_LE}, "utf-16, TAB",
                 id="utf16"),
]


@pytest.mark.parametrize("how, read_as", SAVED)
def test_a_roster_as_saved_lands_in_the_gradebook_with_names(course, tmp_path, capsys, how, read_as):
    assert formgrader_names(course) == {"zoe": "None, None"}, "the finding: before, a submitter has no name"
    path = tmp_path / "roster.csv"
    path.write_bytes(csv_bytes([HEADER, *CLASS], **how))
    code, out, err = run(course, path, capsys)
    assert (code, err) == (0, ""), err
    assert out == (f"roster {path} ({read_as}-separated): 3 students into {course / 'gradebook.db'}: 3 new, "
                   f"0 updated; fields: first_name, last_name, email, lms_user_id\n")
    assert table(course) == {"zoe": ("Zoë", "Müller", "zoe@uni.example", "4711"),
                             "rene": ("René", "Lefèvre", "rene@uni.example", "4712"),
                             "ana": ("Ana", "Núñez, Jr.", None, None)}
    assert formgrader_names(course) == {"zoe": "Müller, Zoë", "rene": "Lefèvre, René", "ana": "Núñez, Jr., Ana"}


def test_importing_again_updates_keeps_others_and_leaves_absent_columns_alone(course, tmp_path, capsys):
    path = tmp_path / "roster.csv"
    path.write_bytes(csv_bytes([HEADER, *CLASS]))
    run(course, path, capsys)
    with open_gradebook(course / "gradebook.db") as gb:
        gb.update_or_create_student("dave", first_name="Dave")
    path.write_bytes(csv_bytes([["NBGRADER ID", "Email", "Canvas_ID"], ["zoe", "zoe@new.example", "99"],
                                ["bob", "", "7"]]))
    code, out, _ = run(course, path, capsys)
    assert code == 0
    assert "2 students into" in out and ": 1 new, 1 updated; fields: email, lms_user_id\n" in out
    assert out.endswith("in the gradebook but not in this roster (kept): ana, dave, rene\n"), out
    got = table(course)
    assert got["zoe"] == ("Zoë", "Müller", "zoe@new.example", "99")  # names kept: no name columns
    assert got["bob"] == (None, None, None, "7") and got["dave"] == ("Dave", None, None, None)


BAD = [
    pytest.param(b"student,first_name\r\nzoe,Zo\r\n", "needs a column nbgrader_id (the student's user name): add it",
                 id="no-id-column"),
    pytest.param(b"", "is empty: it needs a header row (nbgrader_id,first_name,", id="empty"),
    pytest.param(b"nbgrader_id,email\r\n", "has a header but no students", id="header-only"),
    pytest.param(bytes(range(256)) * 8, "is not a text file (it holds NUL bytes): in the spreadsheet, save it "
                 "with File > Save As > CSV UTF-8", id="binary"),
    pytest.param(b"nbgrader_id,email\r\nzoe,a\r\nrene,b\r\nzoe,c\r\n", "nbgrader_id 'zoe' is on lines 2 and 4",
                 id="duplicate"),
    pytest.param(b"nbgrader_id,email\r\nzoe,a\r\n,b\r\n", "line 3 has no nbgrader_id", id="missing-id"),
    pytest.param(b"nbgrader_id,email\r\nzoe,a\r\n../x,b\r\n", "line 3: nbgrader_id '../x' cannot name a folder",
                 id="path-id"),
]


@pytest.mark.parametrize("data, message", BAD)
def test_a_bad_roster_is_one_line_exit_2_and_changes_nothing(course, tmp_path, capsys, data, message):
    before = (course / "gradebook.db").read_bytes()
    path = tmp_path / "roster.csv"
    path.write_bytes(data)
    code, out, err = run(course, path, capsys)
    assert (code, out) == (2, ""), out
    assert err.startswith(f"error: roster {path}") and message in err and err.count("\n") == 1, err
    assert (course / "gradebook.db").read_bytes() == before


def test_a_failure_partway_imports_nobody(course, tmp_path, capsys, monkeypatch):
    from nbgrader.api import Gradebook, InvalidEntry

    real = Gradebook.update_or_create_student

    def third_fails(self, student_id, **fields):
        if student_id == "ana":
            raise InvalidEntry("the database refused ana")
        return real(self, student_id, **fields)

    monkeypatch.setattr(Gradebook, "update_or_create_student", third_fails)
    path = tmp_path / "roster.csv"
    path.write_bytes(csv_bytes([HEADER, *CLASS]))
    with pytest.raises(InvalidEntry):
        roster.import_roster(course / "gradebook.db", roster.students(roster.read_table(path, "roster", "x"))[0])
    assert table(course) == {}


def test_no_course_folder_is_refused(tmp_path, capsys):
    path = tmp_path / "roster.csv"
    path.write_bytes(csv_bytes([HEADER, *CLASS]))
    code, _, err = run(tmp_path / "nowhere", path, capsys)
    assert code == 2 and "no nbgrader_config.py in" in err
