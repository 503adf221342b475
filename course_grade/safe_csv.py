"""CSV rows that a spreadsheet opens as data, never as formulas (OWASP, "CSV Injection").

The rule: a text cell starting with =, +, -, @, TAB or CR is written with a leading ', unless
the whole cell is a plain decimal number (-1.5, -2, -1e-05); ints and floats are written as
they are. A text cell that already has ' before such a character gets one more, so `restore`
gives back exactly the text written. Rows go through the csv module (RFC 4180 quoting), so
commas, quotes and newlines round-trip too.

Every CSV file the course writes uses this module: grading-report.csv (reports/grading_report.py), the item
analysis's reports/ASSIGNMENT.csv (reports/item_report.py), the Canvas and Moodle files (reports/lms.py) and
grades.csv (`nbgrader export`, through safe_csv_export_plugin.py). Whatever reads one of them
back calls `restore` (or reads with `reader`).
"""
from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

# What a spreadsheet reads as the start of a formula (OWASP's list: 0x09 is TAB, 0x0D is CR).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
QUOTE = "'"

# A cell a spreadsheet reads as a number and nothing more: it computes nothing.
_PLAIN_NUMBER = re.compile(r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")


def _formula(text: str) -> bool:
    return text.startswith(FORMULA_STARTS) and not _PLAIN_NUMBER.fullmatch(text)


def _needs_quote(text: str) -> bool:
    # quotes already in front count too: then `restore` never takes one that was not added
    return _formula(text.lstrip(QUOTE))


def neutralise(value: Any) -> Any:
    """The cell to write for `value`: numbers and None as they are, any other value as text,
    with a leading ' when a spreadsheet would read that text as a formula."""
    if value is None or isinstance(value, (int, float)):
        return value
    text = value if isinstance(value, str) else str(value)
    return QUOTE + text if _needs_quote(text) else text


def restore(text: str) -> str:
    """The text `neutralise` was given, from the cell it returned (the inverse, for readers)."""
    if text.startswith(QUOTE) and _needs_quote(text[1:]):
        return text[1:]
    return text


def _check_line_end(dialect: str | csv.Dialect, fmtparams: Mapping[str, Any]) -> None:
    # the csv module quotes a cell holding CR or LF only when the line end holds it too
    named = csv.get_dialect(dialect) if isinstance(dialect, str) else dialect
    if not {"\r", "\n"} <= set(fmtparams.get("lineterminator", named.lineterminator)):
        raise ValueError("a safe CSV writer needs a line end with both CR and LF, "
                         "or a cell holding one would split its row")


class Writer:
    """`csv.writer`, every cell neutralised; same arguments, same `writerow`/`writerows`."""

    def __init__(self, f, dialect: str | csv.Dialect = "excel", **fmtparams):
        _check_line_end(dialect, fmtparams)
        self._writer = csv.writer(f, dialect, **fmtparams)

    def writerow(self, row: Iterable[Any]):
        return self._writer.writerow([neutralise(cell) for cell in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


class DictWriter(csv.DictWriter):
    """`csv.DictWriter`, every cell (the header's too) neutralised."""

    def __init__(self, f, fieldnames, restval="", extrasaction="raise", dialect: str | csv.Dialect = "excel",
                 **fmtparams):
        _check_line_end(dialect, fmtparams)
        super().__init__(f, fieldnames, restval, extrasaction, dialect, **fmtparams)

    def writerow(self, rowdict: Mapping[str, Any]):
        return super().writerow({key: neutralise(value) for key, value in rowdict.items()})

    def writerows(self, rowdicts: Iterable[Mapping[str, Any]]) -> None:
        for rowdict in rowdicts:
            self.writerow(rowdict)


def reader(f, dialect: str | csv.Dialect = "excel", **fmtparams) -> Iterator[list[str]]:
    """`csv.reader` giving back the text each cell held before it was neutralised."""
    for row in csv.reader(f, dialect, **fmtparams):
        yield [restore(cell) for cell in row]
