"""A student's feedback page, made by real nbgrader and read in a real browser (Debian's
Chromium, driven by Playwright, offline as in tests/journeys/test_browser.py) in a 1280 px
window: nothing scrolls sideways (a long message, a long URL in a message and in an output, a
long traceback all wrap), the contents name each graded cell by its check, the summary gives
the steps passed, the quiz, the points and the first thing to fix, and axe-core finds no
accessibility violation at all. Screenshots go to test-artifacts/feedback-page*.png.

The course's assignment was due two days ago; the student handed it in late (nbgrader's
"zero" rule) with step 1 and three quiz answers wrong, and another student's extension is
still open: the quiz's key is held back, on the page stock `nbgrader generate_feedback` makes
and on the one a grading worker makes (whose gradebook holds only the student it grades). Once
that extension has closed, the page made again gives the key.
"""
from __future__ import annotations

import datetime
import json
from pathlib import Path

import pytest
from nbformat.v4 import new_code_cell

from course_grade.course import open_gradebook
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, OFFLINE_ARGS
from tests.support.course import (
    ASSIGNMENT,
    ROOT,
    answers_file,
    autograde,
    make_course,
    nbgrader,
    quiz_key,
    solutions,
    student_notebook,
    submit,
)
from tests.support.submissions import STEP1

pytestmark = pytest.mark.slow

AXE = ROOT / "tests" / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = ROOT / "test-artifacts"
CONFIG = 'c.Execute.timeout = 20\nc.LateSubmissionPlugin.penalty_method = "zero"'
DUE = datetime.datetime.now(datetime.UTC).replace(tzinfo=None, microsecond=0) - datetime.timedelta(days=2)
LATE_BY = datetime.timedelta(hours=2, minutes=10)
STUDENT = "mixed"
LONG_URL = "sqlite+aiosqlite:///./" + "a_very_long_folder_name_" * 10 + "/test.db"
LONG_LINK = "https://docs.sqlalchemy.org/en/20/core/pooling.html?" + "x" * 300
LONG_ERROR = "a_long_error_without_spaces_" * 20
KEY = quiz_key()
WRONG = list(KEY)[:3]  # three questions answered wrong, the other seven right
ANSWERS = {qid: ("ABCD"[("ABCD".index(k["correct"]) + 1) % 4] if qid in WRONG else k["correct"])
           for qid, k in KEY.items()}
LATER = "The key will be shown after the due date."


def page_path(course, student=STUDENT):
    return course / "feedback" / student / ASSIGNMENT / f"{ASSIGNMENT}.html"


def feedback(course) -> str:
    made = nbgrader("generate_feedback", ASSIGNMENT, "--force", cwd=course)
    assert made.returncode == 0, f"nbgrader generate_feedback failed:\n{made.stdout[-3000:]}\n{made.stderr[-3000:]}"
    return page_path(course).read_text()


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    """The student's page while `extended`'s extension is open (stock nbgrader, and a grading
    worker), and once it has closed; and the course."""
    from course_grade.engine.bundles import AssignmentBundle, SubmissionBundle
    from course_grade.engine.task import grade

    course = make_course(tmp_path_factory.mktemp("feedback-page") / "course", CONFIG)
    with open_gradebook(course / "gradebook.db") as gb:
        gb.update_or_create_assignment(ASSIGNMENT, duedate=DUE)
        gb.update_or_create_student("extended")
        gb.update_or_create_submission(ASSIGNMENT, "extended", extension=datetime.timedelta(days=30))
    nb = student_notebook({**solutions(), STEP1: f'DATABASE_URL = "{LONG_URL}"'})
    nb.cells += [new_code_cell(f'print("see {LONG_LINK}")'), new_code_cell(f'raise RuntimeError("{LONG_ERROR}")')]
    submit(course, STUDENT, nb, answers_file(ANSWERS), {
        "timestamp.txt": (DUE + LATE_BY).strftime("%Y-%m-%d %H:%M:%S.%f UTC")})
    done, _ = autograde(course)
    assert done.returncode == 0, f"nbgrader autograde failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    held = feedback(course)

    bundle = AssignmentBundle.from_course(course, ASSIGNMENT)
    given = SubmissionBundle.from_folder(course / "submitted" / STUDENT / ASSIGNMENT, STUDENT, bundle.notebooks)
    on_worker = grade(bundle, given, 600, feedback=True)
    assert on_worker.feedback, f"the worker made no page: {on_worker.note}\n{on_worker.log[-3000:]}"

    with open_gradebook(course / "gradebook.db") as gb:
        gb.update_or_create_submission(ASSIGNMENT, "extended", extension=datetime.timedelta(hours=1))
        before = gb.find_submission(ASSIGNMENT, STUDENT).score
    shown = feedback(course)
    page_path(course).with_name("held.html").write_text(held)  # the page the browser reads
    return {"course": course, "held": held, "worker": on_worker.feedback[f"{ASSIGNMENT}.html"].decode(),
            "shown": shown, "score": before}


def test_the_key_is_held_back_while_an_extension_is_open_and_given_once_every_deadline_has_passed(pages):
    for name in ("held", "worker"):
        page = pages[name]
        assert page.count(LATER) == len(WRONG) + 1, f"{name}: each wrong answer and the summary say when"
        assert "The answer is" not in page, f"{name}: the key is on the page while a student can still submit"
        for qid in WRONG:
            assert KEY[qid]["explanation"] not in page and KEY[qid]["why"][ANSWERS[qid]] not in page, (name, qid)
    for qid in WRONG:
        assert f"The answer is {KEY[qid]['correct']}" in pages["shown"], qid
    assert LATER not in pages["shown"]


def test_a_late_page_keeps_its_note_and_the_summary_gives_the_same_points(pages):
    from course_grade.late import points

    before = points(pages["score"])
    note = (f"Submitted 2 h 10 min after the due date, so the late rule (zero) took {before} points off: "
            f"{before} / 23 before the penalty, 0 / 23 after it.")
    for name in ("held", "worker", "shown"):
        assert note in pages[name], name
        assert f"<b>Points:</b> 0 / 23 after the late penalty ({before} / 23 before it)." in pages[name], name


def test_the_page_reads_at_1280_px_and_is_accessible(pages):
    from playwright.sync_api import sync_playwright

    import autograder.checks  # noqa: F401 - declares every check
    from autograder import quiz, registry

    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: install it with `apt-get install chromium`"
    names = [c.title for c in registry.declared()] + [q.title for q in quiz.load("test")]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS + OFFLINE_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            errors = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(page_path(pages["course"]).with_name("held.html").as_uri())

            width = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
            assert width[0] <= width[1], f"the page scrolls sideways: {width[0]} px of content in {width[1]} px"
            wide = page.eval_on_selector_all("main *", """els => els
                .filter(e => e.scrollWidth > e.clientWidth + 1)
                .map(e => e.tagName + '.' + e.className + ' ' + e.textContent.slice(0, 80))""")
            assert not wide, f"boxes whose text is wider than they are (it spills, or scrolls): {wide[:5]}"
            for words in (LONG_URL, LONG_LINK, LONG_ERROR):
                boxes = page.eval_on_selector_all("main pre", """(els, words) => els
                    .filter(e => e.textContent.replace(/\\s/g, '').includes(words))
                    .map(e => { const r = e.getBoundingClientRect();
                                return [r.right, r.height, parseFloat(getComputedStyle(e).lineHeight)]; })""",
                                                  words[-60:])
                assert boxes, f"no output shows {words[-60:]!r}"
                for right, height, line in boxes:
                    assert right <= 1280 and height > 2.5 * line, f"{words[:40]}… does not wrap: {right, height, line}"
            fix = page.locator("section.course-summary li", has_text="First thing to fix")
            assert LONG_URL in fix.inner_text().replace("\n", "")
            box = fix.bounding_box()
            assert box["x"] + box["width"] <= 1280 and box["height"] > 40, f"the summary's message wraps: {box}"

            shown = page.eval_on_selector_all("nav.course-contents li > a", "els => els.map(e => e.textContent)")
            assert shown == names, "the contents name each graded cell by its declaration, in order"
            summary = page.eval_on_selector_all("section.course-summary li", "els => els.map(e => e.innerText)")
            assert summary[:3] == ["Steps passed: 3 of 4 (not yet: step 1, the database URL).",
                                   f"Quiz: 7 of 10 questions right. {LATER}",
                                   f"Points: 0 / 23 after the late penalty ({pages['score']:g} / 23 before it)."]
            assert summary[3].startswith(f"First thing to fix: {registry.get('step1_database_url').title}: "
                                         "DATABASE_URL points at the wrong file"), summary[3]
            target = page.locator("section.course-summary a").first.get_attribute("href")
            assert target == "#step1_database_url" and page.locator(f"a[name='{target[1:]}']").count() == 1

            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "feedback-page.png"))
            page.screenshot(path=str(ARTIFACTS / "feedback-page-full.png"), full_page=True)
            assert AXE.exists(), f"{AXE} is missing: run `npm ci --prefix tests` (make test does)"
            page.add_script_tag(path=str(AXE))
            result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
            (ARTIFACTS / "feedback-page-axe.json").write_text(json.dumps(result["violations"], indent=1))
            bad = [f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
                   for v in result["violations"]]
            assert not bad, "axe-core finds violations:\n" + "\n".join(bad)
            assert not errors, errors
        finally:
            browser.close()
