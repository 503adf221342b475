"""course_grade/nbgrader_ext/feedback_summary.py and its template (fast tier): the top of the
feedback page (steps passed, the quiz, the points, the first thing to fix; contents naming each
graded cell by its check) and the page nbconvert renders from the course's config.

The cells are the source notebook's graded cells with the scores GetGrades would give them, and
check records made as the checks make them. The slow test (test_feedback_page.py) makes the
page with real nbgrader and reads it in a browser.
"""
from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook, new_output

import autograder.checks  # noqa: F401 - declares every check
from autograder import quiz, registry
from autograder.records import CheckRecord
from course_grade.late import Late
from course_grade.nbgrader_ext.feedback_summary import (
    PAGE,
    TEMPLATE,
    first_to_fix,
    graded_cells,
    steps_passed,
    summary_lines,
    top,
)
from course_grade.nbgrader_ext.quiz_key_feedback import LATER
from tests.support.course import ROOT, SOURCE_NB

ON_TIME = Late(0, 0, 20, 23)


def source_notebook(lost: tuple[str, ...] = ()):
    """The source notebook with every graded cell scored as GetGrades scores it: full marks, but
    0 for the cells in `lost`."""
    nb = nbformat.read(SOURCE_NB, as_version=4)
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade"):
            meta["score"] = 0.0 if meta["grade_id"] in lost else float(meta["points"])
    return nb


def failed(check: str, message: str, **more) -> CheckRecord:
    c = registry.get(check)
    return CheckRecord(check, c.step, c.points, False, message=message, **more)


def test_each_graded_cell_is_named_by_its_declaration_and_none_is_a_test_cell():
    cells = graded_cells(source_notebook())
    checks = {c.name: c for c in registry.declared()}
    questions = {f"quiz{q.number:02d}_{q.id}": q for q in quiz.load("test")}
    assert [c.grade_id for c in cells] == [*checks, *questions], "every graded cell, in the notebook's order"
    for cell in cells:
        if cell.grade_id in checks:
            assert cell.name == checks[cell.grade_id].title and checks[cell.grade_id].description in cell.name
            assert not cell.quiz
        else:
            q = questions[cell.grade_id]
            assert cell.quiz and cell.name == f"Quiz question {q.number}: {q.prompt.replace('`', '')}"
    assert len({c.name for c in cells}) == len(cells) == 21


def test_a_step_passes_when_every_check_of_it_hidden_ones_too_has_full_marks():
    hidden = registry.for_step(4, hidden=True)[0].name
    assert steps_passed(graded_cells(source_notebook())) == [1, 2, 3, 4]
    assert steps_passed(graded_cells(source_notebook((hidden, "step1_database_url")))) == [2, 3]
    assert steps_passed(graded_cells(source_notebook(("quiz01_url_driver",)))) == [1, 2, 3, 4], "the quiz is apart"


def test_the_first_thing_to_fix_is_the_first_failing_checks_message_in_the_notebooks_order():
    lost = ("step3_engine_is_async", "step3_engine_connects", "step4_connections_returned")
    cells = graded_cells(source_notebook(lost))
    records = {
        "step4_connections_returned": failed("step4_connections_returned", "The route leaks connections."),
        "step3_engine_connects": failed("step3_engine_connects", "Same as above.", same_as="step3_engine_is_async"),
        "step3_engine_is_async": failed("step3_engine_is_async", "`engine` is not async: use create_async_engine."),
    }
    cell, message = first_to_fix(cells, records)
    assert (cell.grade_id, message) == ("step3_engine_is_async", "`engine` is not async: use create_async_engine.")
    # a check that lost points but left no failing record (stopped at the time limit): say where to look
    cell, message = first_to_fix(cells, {k: v for k, v in records.items() if k != "step3_engine_is_async"})
    assert cell.grade_id == "step3_engine_is_async" and "its cell below" in message
    quiz_wrong = graded_cells(source_notebook(("quiz01_url_driver",)))
    assert first_to_fix(quiz_wrong, {}) is None, "quiz answers are not checks"


def test_the_summary_gives_steps_quiz_points_and_the_first_fix_and_escapes_what_a_message_says():
    lost = ("step1_database_url", "quiz02_what_is_pooled", "quiz03_asgi_transport")
    cells = graded_cells(source_notebook(lost))
    message = "`DATABASE_URL` is '<script>alert(1)</script>': write \"sqlite+aiosqlite:///./test.db\"."
    lines = summary_lines(cells, {"step1_database_url": failed("step1_database_url", message)}, ON_TIME, LATER)
    assert lines[0] == "<b>Steps passed:</b> 3 of 4 (not yet: step 1, the database URL)."
    assert lines[1] == f"<b>Quiz:</b> 8 of 10 questions right. {LATER}"
    assert lines[2] == "<b>Points:</b> 20 / 23."
    title = registry.get("step1_database_url").title
    assert lines[3] == (f'<b>First thing to fix:</b> <a href="#step1_database_url">{title}</a>: '
                        "<code>DATABASE_URL</code> is '&lt;script&gt;alert(1)&lt;/script&gt;': write "
                        '"sqlite+aiosqlite:///./test.db".')
    assert "<script>" not in "".join(lines)


def test_all_right_says_so_and_a_held_back_key_is_mentioned_only_with_a_wrong_answer():
    lines = summary_lines(graded_cells(source_notebook()), {}, ON_TIME, LATER)
    assert lines[0] == "<b>Steps passed:</b> 4 of 4."
    assert lines[1] == "<b>Quiz:</b> 10 of 10 questions right."
    assert lines[3] == "<b>First thing to fix:</b> nothing in the steps: every check passes."


def test_a_late_pages_points_are_those_of_the_late_note():
    late = Late(7800, 23, 19, 23, "zero")
    (points,) = [line for line in summary_lines(graded_cells(source_notebook()), {}, late) if "Points" in line]
    assert points == "<b>Points:</b> 0 / 23 after the late penalty (19 / 23 before it)."
    assert "19 / 23 before the penalty, 0 / 23 after it." in late.for_student(), "the same figures as the note"


def test_the_top_links_every_graded_cell_by_name_with_its_score():
    cells = graded_cells(source_notebook(("step2_pool_size",)))
    html = top("connection-pooling: 22 / 23 points", cells, ["<b>Points:</b> 22 / 23."],
               ["step1_database_url_solution"])
    links = re.findall(r'<li><a href="#([^"]+)">([^<]*(?:<code>[^<]*</code>[^<]*)*)</a> \(score: ([^)]*)\)</li>', html)
    assert [gid for gid, _, _ in links] == [c.grade_id for c in cells]
    assert dict((gid, score) for gid, _, score in links)["step2_pool_size"] == "0 / 1"
    assert "Test cell" not in html and '<a href="#comment-step1_database_url_solution">' in html
    assert html.count("<h1") == 1 and html.index("Summary") < html.index("Contents")


# ---------------------------------------------------------------- the page nbconvert renders

def course_exporter():
    """The exporter `nbgrader generate_feedback` makes from the course's nbgrader_config.py."""
    from nbgrader.converters import GenerateFeedback
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader("nbgrader_config.py", path=str(ROOT)).load_config()
    converter = GenerateFeedback(config=config)
    return converter.exporter_class(parent=converter, config=converter.config), config


def page_notebook():
    long = "CheckFailed: " + "a_long_message_without_a_space_" * 40
    return new_notebook(cells=[new_code_cell("print(1)", outputs=[
        new_output("error", ename="CheckFailed", evalue=long, traceback=[long])])],
        metadata={"language_info": {"name": "python"}})


def resources(**more):
    return {"nbgrader": {"notebook": "connection-pooling", "score": 1, "max_score": 2, "late_penalty": 0}, **more}


def test_the_course_page_has_one_language_one_body_one_main_the_top_and_wrapping_text():
    exporter, _ = course_exporter()
    html, _ = exporter.from_notebook_node(page_notebook(), resources=resources(**{PAGE: {"top": "<h1>THE TOP</h1>"}}))
    assert '<html lang="en">' in html
    assert html.count("<body") == 1 and html.count("<main") == 1, "nbconvert's classic page opens a second of each"
    main = html[html.index("<main"):html.index("</main>")]
    assert "<h1>THE TOP</h1>" in main and "a_long_message_without_a_space_" in main
    assert main.index("THE TOP") < main.index("a_long_message"), "the top comes first"
    wrap = r"div#notebook-container pre, \.course-top pre \{\s*white-space: pre-wrap; overflow-wrap: anywhere"
    assert re.search(wrap, html), "text wraps at the window's width"
    assert 'id="toc"' not in html, "nbgrader's own contents (every entry 'Test cell') are left out"


def test_without_the_summary_the_page_is_nbgraders_own_and_other_exporters_keep_theirs():
    exporter, config = course_exporter()
    html, _ = exporter.from_notebook_node(page_notebook(), resources=resources())
    assert 'id="toc"' in html and html.count("<body") == 1
    from nbconvert.exporters import HTMLExporter

    assert HTMLExporter(config=config).template_file == "index.html.j2", \
        "the formgrader's pages (an HTMLExporter of its own) keep nbgrader's templates"
    assert exporter.template_file == Path(TEMPLATE).name


@pytest.mark.parametrize("name", ["QuizKeyFeedback", "FeedbackSummary"])
def test_the_course_config_runs_it_after_the_grades_and_the_late_note_before_hidden_tests_are_cleared(name):
    from nbgrader.converters import GenerateFeedback
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader("nbgrader_config.py", path=str(ROOT)).load_config()
    order = [p.__name__ for p in GenerateFeedback(config=config).preprocessors]
    assert order.index("LatePenaltyNote") < order.index(name) < order.index("ClearHiddenTests"), order
    assert order.index("QuizKeyFeedback") < order.index("FeedbackSummary"), "the summary says what the key one decided"
