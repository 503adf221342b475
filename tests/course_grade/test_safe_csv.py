"""course_grade/safe_csv.py: no cell a spreadsheet would run as a formula, every value read back
as written; and SafeCsvExportPlugin: the real `nbgrader export` writes grades.csv through it."""
from __future__ import annotations

import datetime
import io
import shutil
import warnings
from pathlib import Path

import pytest

from course_grade import safe_csv
from course_grade.nbgrader_ext.safe_csv_export_plugin import COLUMNS
from tests.support.course import ROOT, nbgrader, tool_env
from tests.support.hostile_cells import HOSTILE, cells, raw_formulas

# ------------------------------------------------------------------------------- the rule

@pytest.mark.parametrize("text", ["=1+1", "+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1", "-", "=", "-inf", "+1.5"])
def test_a_text_cell_starting_like_a_formula_gets_a_leading_quote(text):
    assert safe_csv.neutralise(text) == "'" + text
    assert safe_csv.restore("'" + text) == text


@pytest.mark.parametrize("text", ["O'Brien", "Anne-Marie", "alice", "a,b", 'say "hi"', "two\nlines", " =1", "", "'",
                                  "'quoted", "1-2", "s001", "x@uni.example", "-1.5", "-2", "-0.125", "-1e-05", "42"])
def test_honest_text_and_plain_numbers_are_written_as_they_are(text):
    assert safe_csv.neutralise(text) == text
    assert safe_csv.restore(text) == text


@pytest.mark.parametrize("value", [-1.5, -2, 0, 22.5, float("-inf"), None])
def test_numbers_we_write_stay_numbers(value):
    assert safe_csv.neutralise(value) is value


def test_a_quote_already_before_a_formula_gets_one_more_so_restore_is_exact():
    assert safe_csv.neutralise("'=1+1") == "''=1+1"
    assert safe_csv.restore("''=1+1") == "'=1+1"
    assert safe_csv.neutralise("''-2+3") == "'''-2+3"
    for text in ("'=1+1", "''-2+3", "'-1.5", "'"):
        assert safe_csv.restore(safe_csv.neutralise(text)) == text


def test_other_values_are_written_as_their_text():
    when = datetime.datetime(2026, 11, 1, 9, 30)
    assert safe_csv.neutralise(when) == "2026-11-01 09:30:00"
    assert safe_csv.neutralise(Path("-x")) == "'-x"


@pytest.mark.parametrize("text", HOSTILE)
def test_every_hostile_value_round_trips_through_a_file_and_runs_as_nothing(text, tmp_path):
    path = tmp_path / "x.csv"
    with open(path, "w", newline="", encoding="utf-8") as f:
        safe_csv.Writer(f).writerows([["student", "score"], [text, -1.5], [f"{text} again", 2]])
    assert raw_formulas(path) == []
    assert cells(path)[1][1] == "-1.5"  # a negative number stays a number
    with open(path, newline="", encoding="utf-8") as f:
        assert list(safe_csv.reader(f)) == [["student", "score"], [text, "-1.5"], [f"{text} again", "2"]]


def test_a_line_end_without_cr_is_refused():
    """With '\n' line ends the csv module leaves a cell holding a CR unquoted: its row would split."""
    with pytest.raises(ValueError, match="both CR and LF"):
        safe_csv.Writer(io.StringIO(), lineterminator="\n")
    with pytest.raises(ValueError, match="both CR and LF"):
        safe_csv.DictWriter(io.StringIO(), ["a"], dialect="unix")


def test_the_dict_writer_neutralises_every_cell_and_the_header():
    out = io.StringIO()
    writer = safe_csv.DictWriter(out, fieldnames=["=name", "score"], restval="")
    writer.writeheader()
    writer.writerows([{"=name": "@SUM(A1)", "score": -3}, {"=name": "a,b"}])
    assert out.getvalue() == "'=name,score\r\n'@SUM(A1),-3\r\n\"a,b\",\r\n"
    assert list(safe_csv.reader(io.StringIO(out.getvalue()))) == [["=name", "score"], ["@SUM(A1)", "-3"], ["a,b", ""]]


# ------------------------------------------------------------------------------- nbgrader export

def make_gradebook(course: Path, students: dict[str, tuple[str, str, str]]) -> None:
    """Assignment a1 (due 2026-11-01, 10 points in one cell); `students`: id -> (last name,
    first name, email); each student but the last submits: score 7.5 with a 2-point penalty."""
    from nbgrader.api import Gradebook

    with warnings.catch_warnings(), Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        warnings.simplefilter("ignore")  # nbgrader's own SQLAlchemy warnings
        gb.update_or_create_assignment("a1", duedate=datetime.datetime(2026, 11, 1, 23, 59))
        gb.update_or_create_notebook("nb", "a1")
        gb.update_or_create_grade_cell("c1", "nb", "a1", max_score=10, cell_type="code")
        for sid, (last, first, email) in students.items():
            gb.update_or_create_student(sid, last_name=last, first_name=first, email=email)
        for sid in list(students)[:-1]:
            gb.add_submission("a1", sid, timestamp=datetime.datetime(2026, 11, 2, 8, 0, 0, 123456))
            gb.find_grade("c1", "nb", "a1", sid).auto_score = 7.5
            gb.find_submission_notebook("nb", "a1", sid).late_submission_penalty = 2.0
        gb.db.commit()


def export(course: Path, *args: str) -> None:
    done = nbgrader("export", *args, cwd=course, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.fixture
def course(tmp_path):
    """A course folder with the course's nbgrader_config.py (which sets the plugin)."""
    root = tmp_path / "course"
    root.mkdir()
    shutil.copy(ROOT / "nbgrader_config.py", root)
    return root


@pytest.mark.slow
def test_nbgrader_export_quotes_and_neutralises_ids_and_names(course, monkeypatch):
    monkeypatch.setenv("PATH", tool_env()["PATH"])  # a new gradebook runs alembic
    hostile = {text: (f"{text} last", text, f"{text}@uni.example") for text in HOSTILE}
    honest = {"alice": ("O'Brien", "Anne-Marie", "alice@uni.example")}
    make_gradebook(course, {**honest, **hostile, "=late": ("=", "-", "@")})
    export(course)
    rows = cells(course / "grades.csv")
    assert rows[0] == COLUMNS  # stock's columns, in stock's order
    assert raw_formulas(course / "grades.csv") == []
    assert len(rows) == 1 + len(honest) + len(hostile) + 1  # every student once: no row split by a comma
    with open(course / "grades.csv", newline="", encoding="utf-8") as f:
        restored = list(safe_csv.reader(f))
    by_id = {row[3]: dict(zip(COLUMNS, row, strict=True)) for row in restored[1:]}
    for sid, (last, first, email) in {**honest, **hostile}.items():
        row = by_id[sid]
        assert (row["last_name"], row["first_name"], row["email"]) == (last, first, email)
        assert (row["raw_score"], row["late_submission_penalty"], row["score"], row["max_score"]) == \
            ("7.5", "2.0", "5.5", "10.0")
        assert (row["duedate"], row["timestamp"]) == ("2026-11-01 23:59:00", "2026-11-02 08:00:00.123456")
    late = by_id["=late"]
    assert (late["last_name"], late["first_name"], late["email"], late["timestamp"], late["score"]) == \
        ("=", "-", "@", "", "0.0")


@pytest.mark.slow
def test_nbgrader_export_of_plain_names_is_stocks_file_byte_for_byte(course, monkeypatch):
    """Ids and names that need neither quotes nor a leading ': the same text as nbgrader's own
    CsvExportPlugin, line ends aside (CRLF), for the whole class and for --student / --assignment."""
    monkeypatch.setenv("PATH", tool_env()["PATH"])
    make_gradebook(course, {"alice": ("O'Brien", "Anne-Marie", "alice@uni.example"), "bob": ("", "", ""),
                            "carol": ("Smith", "Carol", "")})
    stock = "--ExportApp.plugin_class=nbgrader.plugins.export.CsvExportPlugin"
    for args in ((), ("--student=alice", "--student=carol", "--assignment=a1")):
        export(course, "--to", "ours.csv", *args)
        export(course, "--to", "stock.csv", stock, *args)
        assert (course / "ours.csv").read_bytes() == (course / "stock.csv").read_bytes().replace(b"\n", b"\r\n"), args
    assert [row[3] for row in cells(course / "ours.csv")[1:]] == ["alice", "carol"]  # the last run's filter
