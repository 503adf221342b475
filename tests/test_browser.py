"""End to end in a real browser: JupyterLab serves a scratch copy of the course, headless
Chromium opens the lesson and the pool lab, and the test checks what a person sees there:
the progress panel moving as steps are filled in, the quiz widgets and their feedback, the
app's /items answer, and the lab's plots. Screenshots of each state go to
test-artifacts/browser/ (git-ignored); the folder is printed (`pytest -rA` shows it) and
named in every failure."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import nbformat
import pytest

from browser import CHROMIUM, CHROMIUM_ARGS, OFFLINE_ARGS, Lab, Notebook, wait_until
from course import ASSIGNMENT, ROOT, right_answers, solutions

pytestmark = pytest.mark.slow

SHOTS = ROOT / "test-artifacts" / "browser"
LESSON = f"workspace/{ASSIGNMENT}/{ASSIGNMENT}.ipynb"  # where `make lab` puts the working copy
POOL_LAB = "notebooks/pool-lab.ipynb"
RUN_ALL_TIMEOUT = 240  # seconds; the whole lesson takes well under a minute on an idle machine
WIDGET_JSON = "application/vnd.jupyter.widget-view+json"


@pytest.fixture(scope="module")
def shots():
    SHOTS.mkdir(parents=True, exist_ok=True)
    for old in SHOTS.glob("*.png"):
        old.unlink()
    print(f"screenshots: {SHOTS}")
    return SHOTS


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab on a scratch course: release/, notebooks/ and the nbgrader config, plus the
    lesson's working copy in workspace/ as `make lab` makes it."""
    home = tmp_path_factory.mktemp("browser")
    course = home / "course"
    course.mkdir()
    ignore = shutil.ignore_patterns("*.db", "*.db-journal", ".ipynb_checkpoints", "quiz_answers.json*")
    for folder in ("release", "notebooks"):
        shutil.copytree(ROOT / folder, course / folder, ignore=ignore)
    shutil.copy(ROOT / "nbgrader_config.py", course)
    (course / LESSON).parent.mkdir(parents=True)
    shutil.copy(course / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", course / LESSON)
    server = Lab(course, home)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser():
    assert Path(CHROMIUM).exists(), (
        f"{CHROMIUM} is missing: the browser test drives Debian's Chromium (Playwright's own "
        "download is not used). Install it with `apt-get install chromium`.")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS + OFFLINE_ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser, lab, shots):
    """A fresh page (the browser reaches 127.0.0.1 only); browser errors are kept for the
    failure messages."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(30_000)
    page = context.new_page()
    page.errors = []
    page.on("pageerror", lambda exc: page.errors.append(str(exc)))
    page.on("console", lambda msg: msg.type == "error" and page.errors.append(msg.text))
    try:
        yield page
    finally:
        if page.errors:
            print(f"browser console errors: {page.errors}")
        context.close()
        lab.shutdown_kernels()  # the next test starts with no kernel running


def notebook(page, lab, path) -> Notebook:
    cell_ids = [c.id for c in nbformat.read(lab.root / path, as_version=4).cells]
    return Notebook(page, lab, path, cell_ids, SHOTS).open()


def summary(nb: Notebook, cell_id: str) -> str:
    panel = nb.cell(cell_id).locator(".course-progress .course-progress-summary")
    return (panel.first.text_content(timeout=10_000) or "") if panel.count() else ""


def wait_summary(nb: Notebook, cell_id: str, expected: str, timeout: float = 30) -> str:
    return wait_until(lambda: expected in summary(nb, cell_id) and summary(nb, cell_id), timeout,
                      f"the progress panel in cell {cell_id} to say {expected!r}", details=nb.screenshot_hint)


def test_lesson_in_the_browser(page, lab):
    nb = notebook(page, lab, LESSON)
    where = f"(screenshots in {SHOTS})"
    assert nb.cell("progress_show").locator(".course-progress").count() == 0, "a fresh copy has no outputs"
    nb.screenshot("01-lesson-opened")

    # The blank release, run from the top: the panel appears and stops at 0/4; step 1's
    # placeholder raises, so Run All stops there.
    nb.run_all(RUN_ALL_TIMEOUT, expect_all=False)
    assert wait_summary(nb, "progress_show", "Progress: 0/4 steps done.") == \
        "Progress: 0/4 steps done. Next: step 1, the database URL.", where
    assert "NotImplementedError" in nb.outputs_text("step1_database_url_solution"), where
    nb.screenshot("02-progress-0-of-4", "progress_show")

    # Step 1, typed into its cell; running it and its check moves the panel to 1/4.
    answers = solutions()
    nb.type_into("step1_database_url_solution", answers["step1_database_url_solution"])
    nb.run_cell("step1_database_url_solution")
    nb.run_cell("step1_database_url")
    assert "Step 1 done." in nb.outputs_text("step1_database_url"), where
    assert wait_summary(nb, "progress_show", "1/4") == \
        "Progress: 1/4 steps done. Next: step 2, the pool size.", where
    nb.screenshot("03-step1-filled-progress-1-of-4", "progress_show")

    # The other three steps typed in too, then Run All Cells: all four steps pass, and the run
    # stops at the graded quiz's first check, since no answer is saved yet.
    for cell_id in ("step2_pool_size_solution", "step3_engine_solution", "step4_app_solution"):
        nb.type_into(cell_id, answers[cell_id])
    nb.run_all(RUN_ALL_TIMEOUT, expect_all=False)
    final = "Progress: 4/4 steps done. All four steps pass: on to the quizzes."
    assert wait_summary(nb, "progress_show", "4/4") == final, where
    nb.screenshot("04-progress-4-of-4", "progress_show")
    errors = nb.errors()
    assert list(errors) == ["quiz01_url_driver"] and "no quiz answers were saved" in errors["quiz01_url_driver"], \
        f"before the quiz is answered, only its first check should fail: {errors} {where}"

    items = nb.outputs_text("step4_call_items")
    assert "status: 200" in items and "Espresso cup" in items, f"/items output: {items!r} {where}"
    nb.screenshot("05-items-output", "step4_call_items")

    # The quizzes render as widgets: radio buttons, not "Loading widget..." or raw JSON.
    from autograder import quiz

    practice = nb.show("quiz_practice_show")
    radios = practice.locator(".widget-radio-box input[type=radio]")
    wait_until(lambda: radios.count() == 4 * len(quiz.load("practice")) and radios.first.is_visible(), 30,
               "the practice quiz's radio buttons", details=nb.screenshot_hint)
    assert_widgets_rendered(page, where)
    nb.screenshot("06-widgets-rendered", "quiz_practice_show")

    # Practice question 1: a wrong choice, then the right one, each checked.
    first = quiz.load("practice")[0]
    question = practice.locator(".widget-vbox:has(> .widget-radio)").first
    assert first.prompt.replace("`", "") in (question.text_content() or ""), f"practice question 1 not found {where}"
    wrong = next(letter for letter in quiz.LETTERS if letter != first.answer)
    feedback = question.locator(":scope > .widget-html").last
    for letter, verdict in ((wrong, "Not quite."), (first.answer, "Right.")):
        option(question, letter).locator("input").click()
        question.get_by_role("button", name="Check").click()
        wait_until(lambda: verdict in (feedback.text_content() or ""), 30, f"practice feedback {verdict!r} for {letter}",
                   details=nb.screenshot_hint)
    nb.show("quiz_practice_show")
    question.screenshot(path=str(SHOTS / "07-practice-feedback.png"))

    # The graded quiz: each click saves the choice beside the notebook and says so.
    graded = nb.show("quiz_test_show").locator(".widget-vbox:has(> .widget-radio)")
    questions = quiz.load("test")
    assert graded.count() == len(questions), f"{graded.count()} graded questions shown {where}"
    key = right_answers()
    for i, q in enumerate(questions):
        option(graded.nth(i), key[q.id]).locator("input").click()
        wait_until(lambda: f"answer saved ({key[q.id]})" in (graded.nth(i).text_content() or ""), 30,
                   f"graded question {i + 1} to say 'answer saved'", details=nb.screenshot_hint)
    saved = lab.root / Path(LESSON).parent / quiz.ANSWERS_FILE
    wait_until(lambda: saved.exists() and quiz.read_answers(str(saved)) == key, 10, f"{saved} to hold every choice")
    nb.screenshot("08-graded-answers-saved", "quiz_test_show")

    # Run All again: now every cell runs, nothing errs, both panels say 4/4, and the graded
    # quiz, drawn anew, shows the saved choices.
    nb.run_all(RUN_ALL_TIMEOUT)
    for panel in ("progress_show", "progress_show_again"):
        assert wait_summary(nb, panel, "4/4") == final, where
    assert not nb.errors(), f"error or stderr outputs in a correct run: {nb.errors()} {where}"
    assert "Espresso cup" in nb.outputs_text("step4_call_items"), where
    assert_widgets_rendered(page, where)
    graded = nb.show("quiz_test_show").locator(".widget-vbox:has(> .widget-radio)")
    wait_until(lambda: graded.count() == len(questions), 30, "the graded quiz to render again", details=nb.screenshot_hint)
    for i, q in enumerate(questions):
        assert option(graded.nth(i), key[q.id]).locator("input").is_checked(), f"question {i + 1} lost its answer {where}"
    nb.screenshot("09-rerun-answers-kept", "quiz_test_show")
    nb.screenshot("10-progress-4-of-4-at-the-end", "progress_show_again")
    assert not [e for e in page.errors if "widget" in e.lower()], f"widget errors in the browser: {page.errors}"
    # Last, as it concerns looks only: the options are readable at this window size.
    for cell_id in ("quiz_practice_show", "quiz_test_show"):
        assert_labels_fit(nb, cell_id, where)


def option(question, letter: str):
    """The radio button of one option, by its label "B. ..." (what a person clicks)."""
    return question.locator(".widget-radio-box label").filter(has_text=re.compile(rf"^\s*{letter}\. "))


def assert_labels_fit(nb: Notebook, cell_id: str, where: str) -> None:
    """Every option's text fits its line: a long label that wraps spills over the next option
    (ipywidgets gives each radio label a fixed height), and its radio button is pushed away."""
    spilled = nb.overflowing(cell_id, ".widget-radio-box label")
    if spilled:
        label = nb.cell(cell_id).locator(".widget-radio-box label", has_text=spilled[0]).first
        label.evaluate("e => e.scrollIntoView({block: 'center'})")
        nb.page.screenshot(path=str(SHOTS / f"quiz-options-overlap-{cell_id}.png"))
    assert not spilled, (f"quiz options in cell {cell_id} wrap and overlap the next option at a "
                         f"{nb.page.viewport_size['width']}px wide window (see quiz-options-overlap-{cell_id}.png): "
                         f"{spilled} {where}")


def assert_widgets_rendered(page, where: str) -> None:
    for text in ("Loading widget", "Error displaying widget", WIDGET_JSON, "model_id"):
        assert page.get_by_text(text).count() == 0, f"{text!r} is on the page: widgets did not render {where}"
    fallback = page.locator('.jp-OutputArea-output[data-mime-type="text/plain"]', has_text=re.compile(r"^(VBox|Button)\("))
    assert fallback.count() == 0, f"a widget shows as its text fallback {where}"


def test_pool_lab_plots_in_the_browser(page, lab):
    assert (lab.root / POOL_LAB).exists(), f"{POOL_LAB} is missing from the course"
    nb = notebook(page, lab, POOL_LAB)
    where = f"(screenshots in {SHOTS})"
    source = nbformat.read(lab.root / POOL_LAB, as_version=4)
    plot_cells = [c.id for c in source.cells if c.cell_type == "code" and "plt.show()" in c.source]
    assert plot_cells, f"{POOL_LAB} has no cell that shows a plot"
    nb.screenshot("11-pool-lab-opened")
    nb.run_all(RUN_ALL_TIMEOUT)
    for cell_id in plot_cells:
        images = nb.show(cell_id).locator(".jp-RenderedImage img")
        wait_until(lambda: images.count() >= 1 and images.first.evaluate("img => img.complete && img.naturalWidth > 0"),
                   30, f"the plot of cell {cell_id} to load", details=nb.screenshot_hint)
        widths = [img.evaluate("img => img.naturalWidth") for img in images.all()]
        assert all(w > 0 for w in widths), f"cell {cell_id}: image widths {widths} {where}"
        nb.screenshot(f"12-pool-lab-{cell_id}", cell_id)
    total = page.locator(".jp-RenderedImage img").count()
    assert total >= len(plot_cells), f"{total} images for {len(plot_cells)} plotting cells {where}"
    raised = {cell: text for cell, text in nb.errors().items() if "Traceback" in text or "Error:" in text[:200]}
    assert not raised, f"the pool lab raised: {raised} {where}"
