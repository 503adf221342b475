"""Count what a student reads and types in the course, and estimate the minutes it takes.

    python tools/lesson_words.py                   # the committed notebooks
    python tools/lesson_words.py path/to/lesson.ipynb

**What is counted.** A notebook's markdown is split in three parts: the main path (what every
student reads), the hints (`<details><summary><b>Hint</b>...`) and the "Go deeper" blocks
(`<details><summary><b>Go deeper:</b>...`), which are optional. In each, prose is counted in
words (a whitespace-separated token with a letter or digit in it, once HTML tags and code
blocks are removed) and code blocks in lines. Code cells a student reads (not the test cells,
which print what they find, nor the solution cells, which the student writes) are counted in
non-blank lines. The solution cells (in the source notebook, `autograder/solution.py`'s code
for each step) are counted in characters typed: comments, blank lines and indentation left
out, since Jupyter indents. The quizzes' text lives in autograder/quiz.toml: for a practice
question, its prompt and options and what its Check button shows for the right answer (worked
steps, final answer, quick check, mistakes; its hint counts with the hints); for a graded
question, its prompt and options.

**The model.** Minutes = prose words / reading rate + code lines / code-reading rate + typed
characters / typing rate + a fixed time per build step (running its cells, reading what they
print, fixing one slip) + per quiz question its words at the reading rate and a fixed time to
decide. Two readers, `KNOWS` (has written FastAPI routes and async code) and `NEW` (new to
`Depends`, `async`/`await` and SQLAlchemy), differ in every rate but typing:

- reading prose, 200 and 138 words/min: Carver's "learning" and "memorizing" rates (R. P.
  Carver, "Reading rate: theory, research, and practical implications", Journal of Reading
  36(2), 1992), below the 238 words/min adults average on non-fiction (M. Brysbaert, "How many
  words do we read per minute?", Journal of Memory and Language 109, 2019);
- reading code, 8 and 4 lines/min: about 500 lines/hour when preparing a review of
  application code (W. Humphrey, 1989, as cited in S. McConnell, Code Complete, 2nd ed.,
  ch. 21), and for a newcomer the geometric mean of that and the 125 lines/hour given there
  for unfamiliar system code;
- typing code, 130 characters/min for both: half of the 52 words/min (260 characters/min)
  people average copying English (V. Dhakal et al., "Observations on typing from 136 million
  keystrokes", CHI 2018), halved for code's symbols and looking back at the task (our
  assumption);
- per build step, 1 and 4 min: our assumption, not measured;
- deciding a quiz question, 0.5 and 0.75 min beyond reading it: a four-option question then
  takes about 40 and 60 s, around the 54 s mean (31 to 84 s) measured per four-option item in
  P. Higgins, "Candidate measured ability and use of time", Measurement Research Associates
  Test Insights, October 2009.

The times the course states (the lesson's intro, the start page, the pool lab, the PostgreSQL
notebook, README.md) come from `stated()` and `phrase()`; tests/notebooks/test_lesson_time.py
checks each.
"""
from __future__ import annotations

import copy
import math
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat

from autograder import quiz
from autograder.course import ASSIGNMENT

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
POOL_LAB = ROOT / "notebooks" / "pool-lab.ipynb"
POSTGRES = ROOT / "notebooks" / "postgres.ipynb"
DETAILS = re.compile(r"<details>\s*<summary>(?P<summary>.*?)</summary>(?P<body>.*?)</details>", re.S)
FENCE = re.compile(r"^```[^\n]*\n(?P<code>.*?)^```", re.S | re.M)
TAG = re.compile(r"<[^>]+>")
WORD = re.compile(r"[A-Za-z0-9]")  # a token with a letter or digit: not `|`, `---`, `-`, `#`
SOLUTION = re.compile(r"### BEGIN SOLUTION\n(?P<code>.*?)### END SOLUTION", re.S)
PARTS = ("main", "hint", "deeper")


@dataclass(frozen=True)
class Reader:
    label: str
    words_per_min: float
    code_lines_per_min: float
    chars_per_min: float
    min_per_step: float
    min_per_question: float  # deciding, beyond reading the question


KNOWS = Reader("if you know FastAPI", 200, 8, 130, 1, 0.5)
NEW = Reader("if you are new to it", 138, 4, 130, 4, 0.75)
READERS = (KNOWS, NEW)


@dataclass
class Text:
    """What one part of a notebook asks of its reader."""
    words: int = 0
    code_lines: int = 0
    typed_chars: int = 0
    steps: int = 0
    questions: int = 0

    def __iadd__(self, other: Text) -> Text:
        for name in vars(self):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        return self

    def minutes(self, reader: Reader) -> float:
        return (self.words / reader.words_per_min + self.code_lines / reader.code_lines_per_min
                + self.typed_chars / reader.chars_per_min + self.steps * reader.min_per_step
                + self.questions * reader.min_per_question)


def words(text: str) -> int:
    return sum(1 for token in TAG.sub(" ", text).split() if WORD.search(token))


def code_lines(code: str) -> int:
    return sum(1 for line in code.splitlines() if line.strip())


def typed_chars(code: str) -> int:
    """Characters a student types for this code: no comments, blank lines or indentation."""
    lines = (re.sub(r"\s+#.*$", "", line).strip() for line in code.splitlines())
    return sum(len(line) for line in lines if line and not line.startswith("#"))


def _markdown(text: str) -> Text:
    return Text(words=words(FENCE.sub(" ", text)), code_lines=sum(code_lines(m["code"]) for m in FENCE.finditer(text)))


def split_markdown(text: str) -> dict[str, Text]:
    """One markdown cell: its main path, hints and Go deeper blocks."""
    parts = {part: Text() for part in PARTS}
    for block in DETAILS.finditer(text):
        part = "deeper" if "Go deeper" in block["summary"] else "hint"
        parts[part] += _markdown(block["summary"] + "\n" + block["body"])
    parts["main"] += _markdown(DETAILS.sub(" ", text))
    return parts


def notebook_parts(nb) -> dict[str, Text]:
    """A notebook's main path, hints and Go deeper blocks. A solution cell is a build step:
    its code is typed; a test cell is run, not read; every other code cell is read."""
    parts = {part: Text() for part in PARTS}
    for cell in nb.cells:
        nbgrader = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "markdown":
            for part, text in split_markdown(cell.source).items():
                parts[part] += text
        elif nbgrader.get("solution"):
            (solution,) = SOLUTION.finditer(cell.source)
            parts["main"] += Text(typed_chars=typed_chars(solution["code"]), steps=1)
        elif not nbgrader.get("grade"):
            parts["main"] += Text(code_lines=code_lines(cell.source))
    return parts


def quiz_parts(kind: str) -> dict[str, Text]:
    """A quiz's questions ("practice", "test" or "server") and, for instant-feedback ones,
    their hints apart."""
    asked, hints = Text(), Text()
    for q in quiz.load(kind):
        shown = [q.prompt, *q.options] + ([quiz.practice_feedback(q, q.answer)] if q.answer else [])
        asked += Text(words=words(" ".join(shown)), questions=1)
        hints += Text(words=words(q.hint))
    return {"questions": asked, "hints": hints}


def read(path: Path):
    return nbformat.read(path, as_version=4)


def lesson(nb=None) -> dict[str, Text]:
    """The lesson's parts: `steps` (its main path), `practice`, `graded` (the quizzes), and the
    optional `hints` (the lesson's and the practice quiz's) and `deeper`."""
    parts = notebook_parts(nb if nb is not None else read(NOTEBOOK))
    practice = quiz_parts("practice")
    hints = parts["hint"]
    hints += practice["hints"]
    return {"steps": parts["main"], "practice": practice["questions"], "graded": quiz_parts("test")["questions"],
            "hints": hints, "deeper": parts["deeper"]}


def lesson_minutes(reader: Reader, nb=None) -> float:
    """The lesson as every student does it: the four steps, the practice quiz, the graded quiz."""
    parts = lesson(nb)
    return sum(parts[name].minutes(reader) for name in ("steps", "practice", "graded"))


def notebook_minutes(reader: Reader, nb, quiz_kind: str | None = None) -> float:
    """A notebook read from top to bottom (its Go deeper blocks too, if any), with the quiz it shows."""
    parts = notebook_parts(nb)
    total = parts["main"].minutes(reader) + parts["deeper"].minutes(reader)
    return total + (quiz_parts(quiz_kind)["questions"].minutes(reader) if quiz_kind else 0)


def stated(minutes: float) -> int:
    """The figure the course states: the nearest multiple of 5 minutes, at least 5."""
    return max(5, 5 * math.floor(minutes / 5 + 0.5))  # halves round up, not to even


def phrase(knows: float, new: float) -> str:
    """"about 30 minutes if you know FastAPI, about 55 if you are new to it" (or one figure
    when both round alike)."""
    k, n = stated(knows), stated(new)
    if k == n:
        return f"about {k} minutes"
    return f"about {k} minutes {KNOWS.label}, about {n} {NEW.label}"


def fill_time(cells: list, mark: str, minutes) -> list:
    """`cells` with `mark` replaced by the `phrase()` of the notebook they make, measured by
    `minutes(reader, nb)`. The phrase's own words are read too, so it is measured again until
    it no longer changes."""
    said = ""
    for _ in range(5):
        filled = copy.deepcopy(cells)
        for cell in filled:
            cell.source = cell.source.replace(mark, said)
        now = phrase(*(minutes(reader, nbformat.v4.new_notebook(cells=filled)) for reader in READERS))
        if now == said:
            return filled
        said = now
    raise RuntimeError(f"the time stated for {mark} does not settle: last {said!r}")


def minutes_by_reader(measure) -> tuple[float, float]:
    """`measure(reader)` for KNOWS and NEW."""
    return measure(KNOWS), measure(NEW)


def course() -> dict[str, tuple[float, float]]:
    """Each notebook of the course, in minutes for (KNOWS, NEW), from the committed notebooks."""
    lesson_nb = read(NOTEBOOK)
    return {
        "lesson": minutes_by_reader(lambda r: lesson_minutes(r, lesson_nb)),
        "pool lab": minutes_by_reader(lambda r: notebook_minutes(r, read(POOL_LAB))),
        "postgres": minutes_by_reader(lambda r: notebook_minutes(r, read(POSTGRES), "server")),
    }


def main(argv: list[str]) -> None:
    nb = read(Path(argv[0])) if argv else read(NOTEBOOK)
    parts = lesson(nb)
    print(f"{'':<22} {'words':>6} {'code':>5} {'typed':>6} {'steps':>5} {'quest.':>6}   "
          + "   ".join(f"min {r.label}" for r in READERS))
    for name, label in [("steps", "lesson, main path"), ("practice", "practice quiz"), ("graded", "graded quiz"),
                        ("hints", "hints (optional)"), ("deeper", "Go deeper (optional)")]:
        t = parts[name]
        print(f"{label:<22} {t.words:>6} {t.code_lines:>5} {t.typed_chars:>6} {t.steps:>5} {t.questions:>6}   "
              + "   ".join(f"{t.minutes(r):>{len('min ' + r.label)}.1f}" for r in READERS))
    total = [lesson_minutes(r, nb) for r in READERS]
    print(f"{'lesson (steps+quizzes)':<22} {'':>33}   "
          + "   ".join(f"{m:>{len('min ' + r.label)}.1f}" for m, r in zip(total, READERS, strict=True)))
    print(f"stated: {phrase(*total)}")
    if not argv:
        for name, (knows, new) in course().items():
            if name != "lesson":
                print(f"{name + ' (optional)':<22} {knows:5.1f} / {new:5.1f} min: {phrase(knows, new)}")


if __name__ == "__main__":
    main(sys.argv[1:])
