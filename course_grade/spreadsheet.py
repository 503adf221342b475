"""CSV files as spreadsheets save them, read one way everywhere (rosters: `course-grade roster
import` and `course-grade export --lms`).

What is accepted, in this order:
- encoding: UTF-16 with a byte-order mark (Excel's "Unicode Text"); UTF-8, with or without a
  byte-order mark (Excel's "CSV UTF-8"); else Windows-1252 (Excel's "CSV" on Windows in western
  locales), which reads every printable character of Latin-1 the same way, so Latin-1 needs
  no step of its own. Anything else (NUL bytes, control characters, a workbook) is refused
  with one sentence saying how to save the file.
- separator: ',', ';' (Excel where ',' is the decimal mark) or TAB, whichever splits the header
  row into the most columns (',' on a tie); Excel's `sep=;` first line is obeyed.
- header names: case, surrounding spaces, and spaces or hyphens inside do not matter
  (" First Name " is first_name); a row of empty cells is skipped; line numbers are the file's.
"""
from __future__ import annotations

import codecs
import csv
import io
import os
import re
from dataclasses import dataclass
from pathlib import Path

from autograder.course import UsageError

MAX_BYTES = 10 * 1024 * 1024  # a class's roster is kilobytes
SEPARATORS = {",": "','", ";": "';'", "\t": "TAB"}
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_WORKBOOK = (b"PK\x03\x04", b"\xd0\xcf\x11\xe0")  # .xlsx/.ods (zip), .xls (OLE)
ENCODING_NAMES = {"utf-16": "UTF-16", "utf-8-sig": "UTF-8", "utf-8": "UTF-8", "cp1252": "Windows-1252"}
SAVE_AS = "in the spreadsheet, save it with File > Save As > CSV UTF-8"


@dataclass(frozen=True)
class Row:
    line: int  # the file's line number (the header is line 1, or 2 after a `sep=` line)
    values: dict[str, str]  # header name -> stripped cell ("" for a missing cell)


@dataclass(frozen=True)
class Table:
    path: str
    encoding: str
    separator: str
    header: list[str]  # normalised names, in the file's order ("" for an unnamed column)
    rows: list[Row]

    def read_as(self) -> str:
        """How the file was read, for a report line: e.g. "cp1252, ';'-separated"."""
        return f"{self.encoding}, {SEPARATORS[self.separator]}-separated"


def column_name(text: str) -> str:
    return re.sub(r"[\s-]+", "_", text.strip().lower())


def decode(data: bytes, name: str) -> tuple[str, str]:
    """The text of a spreadsheet's CSV file and the encoding it was read with."""
    if data.startswith(_WORKBOOK):
        raise UsageError(f"{name} is a spreadsheet workbook, not a CSV file: {SAVE_AS}")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        tried = ["utf-16"]
    elif data.startswith(codecs.BOM_UTF8):
        tried = ["utf-8-sig"]
    elif b"\x00" in data:
        odd_nuls = data[1::2].count(0) > len(data) // 4 or data[0::2].count(0) > len(data) // 4
        what = "UTF-16 text without a byte-order mark" if odd_nuls else "not a text file (it holds NUL bytes)"
        raise UsageError(f"{name} is {what}: {SAVE_AS}")
    else:
        tried = ["utf-8", "cp1252"]
    for encoding in tried:
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        control = _CONTROL.search(text)
        if control:
            raise UsageError(f"{name} is not a text file (it holds the control character "
                             f"U+{ord(control.group()):04X}): {SAVE_AS}")
        return text, encoding
    names = " or ".join(ENCODING_NAMES[encoding] for encoding in tried)
    raise UsageError(f"{name} is not {names} text: {SAVE_AS}")


def _separator(text: str) -> tuple[str, str]:
    """The separator, and the text from the header on (Excel's `sep=X` line taken off)."""
    first, _, rest = text.partition("\n")
    hint = first.rstrip("\r").strip('"')
    if hint.lower().startswith("sep=") and hint[4:] in SEPARATORS:
        return hint[4:], rest
    header = next((line for line in text.splitlines() if line.strip()), "")
    widths = {sep: len(next(csv.reader([header], delimiter=sep), [])) for sep in SEPARATORS}
    return max(SEPARATORS, key=lambda sep: widths[sep]), text  # max keeps the first on a tie: ','


def parse(text: str, name: str, example: str) -> tuple[str, list[str], list[Row]]:
    """Separator, normalised header and rows of a CSV text; one-line UsageError when unusable."""
    if not text.strip():
        raise UsageError(f"{name} is empty: it needs a header row ({example}) and one row per student")
    separator, body = _separator(text)
    offset = 1 if body is not text else 0
    reader = csv.reader(io.StringIO(body, newline=""), delimiter=separator)
    try:
        records = [(reader.line_num + offset, row) for row in reader]
    except csv.Error as exc:
        raise UsageError(f"{name} is not a readable CSV file (line {reader.line_num + offset}): {exc}") from None
    records = [(line, row) for line, row in records if any(cell.strip() for cell in row)]
    if not records:
        raise UsageError(f"{name} is empty: it needs a header row ({example}) and one row per student")
    header = [column_name(h) for h in records[0][1]]
    seen: set[str] = set()
    for h in header:
        if h and h in seen:
            raise UsageError(f"{name} has two columns named {h!r}: keep one")
        seen.add(h)
    rows = []
    for line, row in records[1:]:
        if any(cell.strip() for cell in row[len(header):]):
            raise UsageError(f"{name} line {line} has {len(row)} fields but the header has {len(header)}: "
                             f"quote values that contain {SEPARATORS[separator]}")
        rows.append(Row(line, {h: (row[i].strip() if i < len(row) else "") for i, h in enumerate(header) if h}))
    return separator, header, rows


def read_table(path: str | os.PathLike, what: str, example: str) -> Table:
    """Read a spreadsheet's CSV file whole. `what` names it in messages ("roster"), `example`
    is a header row to show when it is empty. Raises UsageError with one line saying what to fix."""
    path = Path(path)
    name = f"{what} {path}"
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise UsageError(f"{name} does not exist: give the path of your {what} CSV file") from None
    except IsADirectoryError:
        raise UsageError(f"{name} is a folder, not a CSV file") from None
    except OSError as exc:
        raise UsageError(f"cannot read {name}: {exc.strerror or exc}") from None
    if len(data) > MAX_BYTES:
        raise UsageError(f"{name} is larger than {MAX_BYTES // 2**20} MB: a {what} is a small CSV file, "
                         f"one row per student")
    text, encoding = decode(data, name)
    separator, header, rows = parse(text, name, example)
    return Table(str(path), encoding, separator, header, rows)
