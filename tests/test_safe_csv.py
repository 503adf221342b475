"""course_grade/safe_csv.py: no cell a spreadsheet would run as a formula, every value read back
as written."""
from __future__ import annotations

import datetime
import io
from pathlib import Path

import pytest

from course_grade import safe_csv
from hostile_cells import HOSTILE, cells, raw_formulas


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
