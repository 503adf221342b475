"""The times the course states come from tools/lesson_words.py's reading-and-typing model, and the
lesson keeps its 30 minutes for a reader who knows FastAPI."""
from __future__ import annotations

import nbformat
import pytest

from autograder import solution
from tests.support.course import RELEASE_NB, ROOT, SOURCE_NB
from tools import lesson_words as lw

COURSE = lw.course()


def _markdown(path) -> str:
    return "\n".join(c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "markdown")


def test_the_lesson_takes_thirty_minutes_for_a_reader_who_knows_fastapi():
    knows, new = COURSE["lesson"]
    assert lw.stated(knows) == 30, f"the lesson now takes {knows:.1f} min: shorten it, or move text to Go deeper"
    assert new > knows


@pytest.mark.parametrize("path", [SOURCE_NB, RELEASE_NB], ids=["source", "release"])
def test_the_lesson_states_the_models_time(path):
    intro = nbformat.read(path, as_version=4).cells[0].source
    assert f"**Time:** {lw.phrase(*COURSE['lesson'])}:\nfour build steps" in intro, intro


@pytest.mark.parametrize("name, notebook, words", [
    ("pool lab", "pool-lab.ipynb", "Time: {}."),
    ("postgres", "postgres.ipynb", "**Time:** {}."),
])
def test_each_optional_notebook_states_its_models_time(name, notebook, words):
    assert words.format(lw.phrase(*COURSE[name])) in _markdown(ROOT / "notebooks" / notebook)


def test_the_start_page_and_the_readme_state_the_models_times():
    start = _markdown(ROOT / "notebooks" / "start.ipynb")
    readme = (ROOT / "README.md").read_text()
    whole = [sum(times[i] for times in COURSE.values()) for i in range(2)]
    assert f"the lesson with its quizzes takes {lw.phrase(*COURSE['lesson'])};" in start
    assert f"PostgreSQL notebook included, {lw.phrase(*whole)}." in start
    for name, times in COURSE.items():
        row = " | ".join(f"{lw.stated(m)} min" for m in times)
        assert any(line.endswith(f"| {row} |") for line in start.splitlines() if name.split()[-1] in line.lower()), name
    assert f"The lesson takes {lw.phrase(*COURSE['lesson'])}" in readme
    assert f"in all {lw.phrase(*whole)}." in readme


def test_the_model_types_the_solution_and_reads_the_rest():
    """The four solution cells are typed (autograder/solution.py's code, without comments or
    indentation), test cells are not read, Go deeper and hints are apart from the main path."""
    parts = lw.lesson()
    assert parts["steps"].steps == 4
    assert parts["steps"].typed_chars == sum(lw.typed_chars(solution.step_code(n)) for n in range(1, 5))
    assert lw.typed_chars("if x:  # why\n    # a note\n    y = 1\n") == len("if x:") + len("y = 1")
    cell = lw.split_markdown("Two words.\n\n```python\na = 1\n\nb = 2\n```\n\n"
                             "<details><summary><b>Go deeper:</b> more</summary>\n\nthree more words\n\n</details>\n"
                             "<details><summary><b>Hint</b></summary>\n\none\n\n</details>")
    assert (cell["main"].words, cell["main"].code_lines) == (2, 2)
    assert (cell["deeper"].words, cell["hint"].words) == (6, 2)  # "Go deeper: more three more words", "Hint one"
    assert parts["graded"].questions == 10 and parts["practice"].questions == 5


def test_rates_and_rounding():
    text = lw.Text(words=200, code_lines=8, typed_chars=130, steps=1, questions=2)
    assert text.minutes(lw.KNOWS) == pytest.approx(1 + 1 + 1 + 1 + 2 * 0.5)
    assert [lw.stated(m) for m in (0.5, 27.4, 27.6, 32.4, 32.6)] == [5, 25, 30, 30, 35]
    assert lw.phrase(31, 58) == "about 30 minutes if you know FastAPI, about 60 if you are new to it"
    assert lw.phrase(29, 31) == "about 30 minutes"
