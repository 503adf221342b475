"""nbgrader preprocessor: the top of a student's feedback page, read at a glance: a summary
(the steps passed, of 4, and the quiz questions right; the points; the first thing to fix)
and a table of contents that names each graded cell by its check.

Stock nbgrader's page lists every graded cell as "Test cell" and shows each message on one
line, cut at the window's edge. This preprocessor runs in `nbgrader generate_feedback` after
`GetGrades` (the cells' scores) and `QuizKeyFeedback` (whether the quiz's key is held back)
(c.GenerateFeedback.preprocessors, nbgrader_config.py) and puts the top's HTML in
`resources[PAGE]`; the page's template, `TEMPLATE` (feedback_summary.html.j2 beside this file,
c.GenerateFeedback.HTMLExporter.template_file), puts it above the notebook and wraps every
message, traceback, code line and URL at the window's width.

Every fact comes from where it is declared: a check's name from `autograder.registry` (its
title), a quiz question's from `autograder.quiz`, the steps passed from the cells' scores (a
step passes when every check of it, hidden ones too, has full marks, as the grading command's
summary counts it), the first thing to fix from the check records (`autograder.records`: the
first failing check's message, in the notebook's order), the points from course_grade/late.py
(after any late penalty, the figures of LatePenaltyNote's sentence).
"""
from __future__ import annotations

import html
import re
from dataclasses import dataclass
from pathlib import Path

from nbgrader import utils
from nbgrader.preprocessors import NbGraderPreprocessor

from autograder import quiz, registry
from autograder.records import CheckRecord, by_cell
from course_grade.late import Late, points
from course_grade.nbgrader_ext.grade_quiz_answers import quiz_question
from course_grade.nbgrader_ext.late_penalty_note import late_of_page
from course_grade.nbgrader_ext.quiz_key_feedback import DECIDED

TEMPLATE = str(Path(__file__).with_name("feedback_summary.html.j2"))
PAGE = "course_feedback"  # resources key the template reads: {"top": the HTML above the notebook}


@dataclass(frozen=True)
class Graded:
    """A graded cell as the page lists it."""
    grade_id: str
    name: str
    score: float
    points: float
    quiz: bool  # a graded quiz question (else a check, or a cell the course does not declare)

    @property
    def full(self) -> bool:
        return self.score >= self.points - 1e-9


def name_of(cell) -> str:
    """A graded cell's name: its check's title, its quiz question's, or its grade_id."""
    gid = cell.metadata.nbgrader["grade_id"]
    check = registry.get(gid)
    if check is not None:
        return check.title
    qid = quiz_question(cell)
    if qid is not None:
        try:
            return quiz.question("test", qid).title
        except KeyError:
            pass
    return f"Graded cell {gid}"


def graded_cells(nb) -> list[Graded]:
    """The notebook's graded cells (not the students' answers), in order, with the scores
    GetGrades put in their metadata."""
    found = []
    for cell in nb.cells:
        if utils.is_grade(cell) and not utils.is_solution(cell):
            meta = cell.metadata.nbgrader
            found.append(Graded(meta["grade_id"], name_of(cell), float(meta.get("score") or 0.0),
                                float(meta.get("points") or 0.0), quiz_question(cell) is not None))
    return found


def steps_passed(cells: list[Graded]) -> list[int]:
    """The build steps every check of which (hidden ones too) has full marks."""
    full = {c.grade_id for c in cells if c.full}
    return [n for n in registry.STEPS if (names := {c.name for c in registry.for_step(n)}) and names <= full]


def first_to_fix(cells: list[Graded], records: dict[str, CheckRecord]) -> tuple[Graded, str] | None:
    """The first check, in the notebook's order, that failed or lost points, and what to say of it:
    its record's message, or where to look when it left no failing record."""
    for cell in cells:
        if registry.get(cell.grade_id) is None:
            continue
        record = records.get(cell.grade_id)
        if record is not None and not record.passed and record.message:
            return cell, record.message
        if not cell.full:
            return cell, "it lost points without a result of its own: its cell below shows what happened."
    return None


def _inline(text: str) -> str:
    """Escape for HTML, showing `code` as code."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text, quote=False))


def _link(cell: Graded) -> str:
    return f'<a href="#{html.escape(cell.grade_id)}">{_inline(cell.name)}</a>'


def summary_lines(cells: list[Graded], records: dict[str, CheckRecord], late: Late, key_note: str = "") -> list[str]:
    """The summary's lines, as HTML: steps passed, the quiz, the points, the first thing to fix."""
    passed = steps_passed(cells)
    missing = [n for n in registry.STEPS if n not in passed]
    line = f"<b>Steps passed:</b> {len(passed)} of {len(registry.STEPS)}"
    if missing:
        line += " (not yet: " + "; ".join(f"step {n}, {html.escape(registry.STEPS[n])}" for n in missing) + ")"
    lines = [line + "."]
    questions = [c for c in cells if c.quiz]
    if questions:
        right = sum(c.full for c in questions)
        line = f"<b>Quiz:</b> {right} of {len(questions)} question{'s' if len(questions) != 1 else ''} right."
        if key_note and right < len(questions):
            line += f" {html.escape(key_note)}"
        lines.append(line)
    line = f"<b>Points:</b> {points(late.after)} / {points(late.max_score)}"
    if late.is_late:
        line += f" after the late penalty ({points(late.score)} / {points(late.max_score)} before it)"
    lines.append(line + ".")
    fix = first_to_fix(cells, records)
    if fix is None:
        lines.append("<b>First thing to fix:</b> nothing in the steps: every check passes.")
    else:
        lines.append(f"<b>First thing to fix:</b> {_link(fix[0])}: {_inline(fix[1])}")
    return lines


def top(title: str, cells: list[Graded], lines: list[str], comments: list[str]) -> str:
    """The HTML above the notebook: its title, the summary and the contents."""
    items = [f"<li>{_link(c)} (score: {points(c.score)} / {points(c.points)})</li>" for c in cells]
    items += [f'<li><a href="#comment-{html.escape(gid)}">Grader\'s comment on {html.escape(gid)}</a></li>'
              for gid in comments]
    return (f'<h1 class="course-title">{html.escape(title)}</h1>\n'
            '<section class="course-summary" aria-labelledby="course-summary">\n'
            '<h2 id="course-summary">Summary</h2>\n<ul>\n'
            + "".join(f"<li>{line}</li>\n" for line in lines) + "</ul>\n</section>\n"
            '<nav class="course-contents" aria-labelledby="course-contents">\n'
            '<h2 id="course-contents">Contents</h2>\n<ol>\n' + "\n".join(items) + "\n</ol>\n</nav>\n")


class FeedbackSummary(NbGraderPreprocessor):
    """Put the feedback page's top (title, summary, contents) in resources[PAGE]."""

    def preprocess(self, nb, resources):
        import autograder.checks  # noqa: F401 - declares every check (the registry's names)

        cells = graded_cells(nb)
        late = late_of_page(self.config, resources)
        note = resources.get(DECIDED, {}).get("note", "")
        comments = [c.metadata.nbgrader["grade_id"] for c in nb.cells
                    if c.metadata.get("nbgrader", {}).get("comment")]
        title = f"{resources['nbgrader']['notebook']}: {points(late.after)} / {points(late.max_score)} points"
        resources[PAGE] = {"top": top(title, cells, summary_lines(cells, by_cell(nb), late, note), comments)}
        return nb, resources
