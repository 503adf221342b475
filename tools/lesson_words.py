"""Count the words a student reads in the lesson, to check its time budget.

    python tools/lesson_words.py                   # the committed source notebook
    python tools/lesson_words.py path/to/lesson.ipynb

Counts the prose of the lesson's markdown cells in three parts: the main path (what every
student reads), the hints (`<details><summary><b>Hint</b>...`), and the "Go deeper" blocks
(`<details><summary><b>Go deeper:</b>...`), which are optional. The quizzes' text lives in
autograder/quiz.toml: the practice quiz (every text a question shows: prompt, options, hint
and all of its feedback) and the graded quiz (prompt, options). Code cells are listed by line
count only. A word is a whitespace-separated token with a letter or digit in it, after HTML tags are
removed (so table rules and list bullets do not count).
"""
from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

import nbformat

from autograder.course import ASSIGNMENT

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
QUIZ = ROOT / "autograder" / "quiz.toml"
DETAILS = re.compile(r"<details>\s*<summary>(?P<summary>.*?)</summary>(?P<body>.*?)</details>", re.S)
TAG = re.compile(r"<[^>]+>")
WORD = re.compile(r"[A-Za-z0-9]")  # a token with a letter or digit: not `|`, `---`, `-`, `#`
WPM = 150  # a beginner's reading speed for technical prose with code


def words(text: str) -> int:
    return sum(1 for token in TAG.sub(" ", text).split() if WORD.search(token))


def split_markdown(text: str) -> dict[str, int]:
    """Words of one markdown cell: main path, hints and Go deeper blocks."""
    counts = {"main": 0, "hint": 0, "deeper": 0}
    for block in DETAILS.finditer(text):
        kind = "deeper" if "Go deeper" in block["summary"] else "hint"
        counts[kind] += words(block["summary"] + " " + block["body"])
    counts["main"] = words(DETAILS.sub(" ", text))
    return counts


def _texts(question: dict) -> list[str]:
    """Every text a practice question shows: prompt, options, hint and all its feedback."""
    out = []
    for key, value in question.items():
        if key in ("id", "difficulty", "answer"):
            continue
        out += [value] if isinstance(value, str) else [v for v in value if isinstance(v, str)]
    return out


def count(notebook: Path = NOTEBOOK, quiz: Path = QUIZ) -> dict[str, int]:
    nb = nbformat.read(notebook, as_version=4)
    totals = {"main": 0, "hint": 0, "deeper": 0, "code_lines": 0}
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for kind, n in split_markdown(cell.source).items():
                totals[kind] += n
        elif not cell.metadata.get("nbgrader", {}).get("grade"):  # test cells are not read
            totals["code_lines"] += len([line for line in cell.source.splitlines() if line.strip()])
    questions = tomllib.loads(quiz.read_text())
    totals["practice"] = sum(words(" ".join(_texts(q))) for q in questions["practice"])
    totals["graded"] = sum(words(" ".join([q["prompt"], *q["options"]])) for q in questions["test"])
    return totals


def main(argv: list[str]) -> None:
    totals = count(Path(argv[0])) if argv else count()
    for kind, label in [("main", "lesson, main path"), ("hint", "hints (optional)"),
                        ("deeper", "Go deeper (optional)"), ("practice", "practice quiz"),
                        ("graded", "graded quiz")]:
        print(f"{label:<22} {totals[kind]:>6} words  ~{totals[kind] / WPM:4.1f} min at {WPM} wpm")
    print(f"{'code cells read':<22} {totals['code_lines']:>6} lines")


if __name__ == "__main__":
    main(sys.argv[1:])
