"""Student ids and names that a spreadsheet would run as formulas, or that break a naive CSV
row, and the check that a written CSV file holds none of them raw (tests of course_grade/safe_csv.py)."""
from __future__ import annotations

import csv
import re
from pathlib import Path

# Each could be a JupyterHub user name, a roster's name or a student id typed into nbgrader.
HOSTILE = (
    '=HYPERLINK("http://x","y")',
    "+1+1",
    "@SUM(A1)",
    "-2+3",
    "\t=1+1",
    "\r=1+1",
    "a,b",
    'say "hi"',
    "two\nlines",
    "'=already quoted",
)

# What a spreadsheet reads as the start of a formula (OWASP, "CSV Injection").
FORMULA_FIRST = ("=", "+", "-", "@", "\t", "\r")


def raw_formulas(path: Path) -> list[str]:
    """Every cell of the CSV file `path` that a spreadsheet would run as a formula (a negative
    number such as -0.25 is a number: it is not counted)."""
    with open(path, newline="", encoding="utf-8") as f:
        cells = [cell for row in csv.reader(f) for cell in row]
    return [c for c in cells if c.startswith(FORMULA_FIRST) and not re.fullmatch(r"-[0-9]+(\.[0-9]+)?", c)]


def cells(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f))
