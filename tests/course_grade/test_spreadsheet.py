"""course_grade/spreadsheet.py: the one reader of CSV files a spreadsheet saves (rosters). Fast tier."""
import codecs

import pytest

from course_grade.course import UsageError
from course_grade.spreadsheet import read_table

NAMES = [["nbgrader_id", "first_name", "last_name", "email"],
         ["zoe", "Zoë", "Müller, Jr.", "zoe@uni.example"],
         ["rene", "René", "Lefèvre", "rene@uni.example"]]


def saved(path, rows, separator=",", encoding="utf-8", bom=b"", end="\r\n"):
    def cell(text):
        return f'"{text}"' if separator in text or '"' in text else text
    text = end.join(separator.join(cell(c) for c in row) for row in rows) + end
    path.write_bytes(bom + text.encode(encoding))
    return path


AS_SAVED = [  # how spreadsheets save a CSV file
    pytest.param({}, "utf-8", ",", id="comma-utf8"),
    pytest.param({"separator": ";"}, "utf-8", ";", id="semicolon"),
    pytest.param({"separator": "\t"}, "utf-8", "\t", id="tab"),
    pytest.param({"bom": codecs.BOM_UTF8}, "utf-8-sig", ",", id="excel-csv-utf8-bom"),
    pytest.param({"separator": ";", "encoding": "cp1252"}, "cp1252", ";", id="excel-csv-windows-1252"),
    pytest.param({"encoding": "latin-1", "end": "\n"}, "cp1252", ",", id="latin-1"),
    pytest.param({"separator": "\t", "encoding": "utf-16-le", "bom": codecs.BOM_UTF16_LE}, "utf-16", "\t",
                 id="excel-unicode-text-utf16le"),
    pytest.param({"encoding": "utf-16-be", "bom": codecs.BOM_UTF16_BE}, "utf-16", ",", id="utf16be"),
]


@pytest.mark.parametrize("how, encoding, separator", AS_SAVED)
def test_every_way_a_spreadsheet_saves_reads_the_same(tmp_path, how, encoding, separator):
    table = read_table(saved(tmp_path / "r.csv", NAMES, **how), "roster", "nbgrader_id,email")
    assert (table.encoding, table.separator) == (encoding, separator), table
    assert table.header == NAMES[0]
    assert [list(r.values.values()) for r in table.rows] == NAMES[1:], table.rows
    assert [r.line for r in table.rows] == [2, 3]


def test_excels_sep_line_header_spelling_blank_rows_and_multiline_cells(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text('sep=;\n First Name ;NBGRADER-ID;Last  name\n\n;;\nZoë;zoe;"Müller;\nJr."\nRené;rene;X\n')
    table = read_table(path, "roster", "x")
    assert table.header == ["first_name", "nbgrader_id", "last_name"]
    assert [(r.line, r.values["last_name"]) for r in table.rows] == [(6, "Müller;\nJr."), (7, "X")]


def test_a_comma_inside_names_does_not_make_a_semicolon_file_comma_separated(tmp_path):
    table = read_table(saved(tmp_path / "r.csv", [["nbgrader_id", "name"], ["a", "Doe, Jane"]], ";"), "roster", "x")
    assert table.separator == ";" and table.rows[0].values == {"nbgrader_id": "a", "name": "Doe, Jane"}


def test_one_column_and_trailing_empty_cells_are_fine(tmp_path):
    assert read_table(saved(tmp_path / "a.csv", [["nbgrader_id"], ["a"]]), "roster", "x").rows[0].values == {
        "nbgrader_id": "a"}
    table = read_table(saved(tmp_path / "b.csv", [["nbgrader_id", "email", ""], ["a", "a@e", ""], ["b", "", ""]]),
                       "roster", "x")
    assert [r.values for r in table.rows] == [{"nbgrader_id": "a", "email": "a@e"}, {"nbgrader_id": "b", "email": ""}]


UNREADABLE = [
    pytest.param(b"", "is empty: it needs a header row (nbgrader_id,email)", id="empty"),
    pytest.param(b"\r\n ;; \r\n", "is empty", id="blank"),
    pytest.param(bytes(range(256)) * 4, "not a text file (it holds NUL bytes)", id="binary"),
    pytest.param(b"\x89PNG\r\n\x1a\nabc", "not a text file (it holds the control character U+001A)", id="png"),
    pytest.param(b"PK\x03\x04\x14\x00\x06\x00", "is a spreadsheet workbook, not a CSV file", id="xlsx"),
    pytest.param(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "is a spreadsheet workbook", id="xls"),
    pytest.param("nbgrader_id,email\r\na,b\r\n".encode("utf-16-le"), "UTF-16 text without a byte-order mark",
                 id="utf16-no-bom"),
    pytest.param(b"nbgrader_id,email\na\x81,b\n", "is not UTF-8 or Windows-1252 text", id="undefined-cp1252"),
    pytest.param(codecs.BOM_UTF16_LE + b"a\x00\x00\xdc", "is not UTF-16 text", id="broken-utf16"),
    pytest.param(b"nbgrader_id,x,X\na,1,2\n", "has two columns named 'x': keep one", id="two-columns"),
    pytest.param(b"nbgrader_id;email\na;b;c\n", "line 2 has 3 fields but the header has 2: quote values that "
                 "contain ';'", id="extra-field"),
]


@pytest.mark.parametrize("data, message", UNREADABLE)
def test_an_unreadable_file_is_one_sentence_saying_how_to_save_it(tmp_path, data, message):
    path = tmp_path / "r.csv"
    path.write_bytes(data)
    with pytest.raises(UsageError) as caught:
        read_table(path, "roster", "nbgrader_id,email")
    said = str(caught.value)
    assert said.startswith(f"roster {path} ") and message in said and "\n" not in said, said


def test_a_missing_file_or_a_folder_is_named(tmp_path):
    with pytest.raises(UsageError, match="does not exist: give the path of your roster CSV file"):
        read_table(tmp_path / "nope.csv", "roster", "x")
    with pytest.raises(UsageError, match="is a folder, not a CSV file"):
        read_table(tmp_path, "roster", "x")
