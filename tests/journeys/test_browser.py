"""End to end in a real browser: JupyterLab serves a scratch copy of the course, headless
Chromium opens the lesson and the pool lab, and the test checks what a person sees there:
the progress panel moving as steps are filled in, the quiz widgets and their feedback, the
app's /items answer, and the lab's plots; and that the lesson is accessible: axe-core finds
no serious or critical violation in its content, and the quiz works by keyboard alone, with
labelled radio groups and announced feedback. Screenshots of each state, and axe's full
result (axe.json), go to test-artifacts/browser/ (git-ignored); the folder is printed
(`pytest -rA` shows it) and named in every failure."""
from __future__ import annotations

import json
import re
import shutil
from collections import Counter
from pathlib import Path

import nbformat
import pytest

from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, OFFLINE_ARGS, Lab, Notebook, wait_until
from tests.support.course import ASSIGNMENT, ROOT, right_answers, solutions

pytestmark = pytest.mark.slow

SHOTS = ROOT / "test-artifacts" / "browser"
LESSON = f"workspace/{ASSIGNMENT}/{ASSIGNMENT}.ipynb"  # where `make lab` puts the working copy
POOL_LAB = "notebooks/pool-lab.ipynb"
A11Y_LESSON = f"workspace/a11y/{ASSIGNMENT}.ipynb"  # a second copy, its four steps filled in
# axe-core, pinned in tests/package-lock.json; `make test` installs it (npm ci --prefix tests)
AXE = ROOT / "tests" / "node_modules" / "axe-core" / "axe.min.js"
RUN_ALL_TIMEOUT = 240  # seconds; the whole lesson takes well under a minute on an idle machine
WIDGET_JSON = "application/vnd.jupyter.widget-view+json"


@pytest.fixture(scope="module")
def shots():
    SHOTS.mkdir(parents=True, exist_ok=True)
    for old in [*SHOTS.glob("*.png"), *SHOTS.glob("axe*.json")]:
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
    assert wait_summary(nb, "progress_show", "Progress: 0/4") == \
        "Progress: 0/4 steps pass their visible checks. Next: step 1, the database URL.", where
    assert "NotImplementedError" in nb.outputs_text("step1_database_url_solution"), where
    nb.screenshot("02-progress-0-of-4", "progress_show")

    # Step 1, typed into its cell; running it and its check moves the panel to 1/4.
    answers = solutions()
    nb.type_into("step1_database_url_solution", answers["step1_database_url_solution"])
    nb.run_cell("step1_database_url_solution")
    nb.run_cell("step1_database_url")
    assert "Step 1 passes its checks." in nb.outputs_text("step1_database_url"), where
    assert wait_summary(nb, "progress_show", "1/4") == \
        "Progress: 1/4 steps pass their visible checks. Next: step 2, the pool size.", where
    nb.screenshot("03-step1-filled-progress-1-of-4", "progress_show")

    # The other three steps typed in too, then Run All Cells: all four steps pass, and the run
    # goes on to the end although no quiz answer is saved yet: each graded quiz cell says so
    # (on stdout, not as an error), and the closing panel and self-grade button are reached.
    for cell_id in ("step2_pool_size_solution", "step3_engine_solution", "step4_app_solution"):
        nb.type_into(cell_id, answers[cell_id])
    nb.run_all(RUN_ALL_TIMEOUT)
    final = ("Progress: 4/4 steps pass their visible checks; hidden checks run only when your notebook is graded "
             "(press Grade my notebook at the end).")  # what it knows: the hidden checks have not run yet
    assert wait_summary(nb, "progress_show", "4/4") == final, where
    nb.screenshot("04-progress-4-of-4", "progress_show")
    assert not nb.errors(), f"error or stderr outputs before the quiz is answered: {nb.errors()} {where}"
    quiz_cells = [c for c in nb.cell_ids if re.fullmatch(r"quiz\d\d_\w+", c)]
    assert len(quiz_cells) == 10, quiz_cells
    for n, cell_id in enumerate(quiz_cells, start=1):
        said = nb.outputs_text(cell_id)
        assert f"Question {n} is not answered yet: choose an answer above; each click saves it." in said, \
            f"{cell_id} shows {said!r} {where}"
    assert wait_summary(nb, "progress_show_again", "4/4") == final, where
    grade_button = nb.cell("self_grade_button").locator(".jp-OutputArea").get_by_role("button",
                                                                                      name="Grade my notebook")
    assert grade_button.count() == 1, f"Run All did not reach the self-grade button {where}"

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
    worked = ["Step 1:", "Step 2:", f"Final answer: {first.answer}. ", "Quick check:", "Common mistakes:",
              first.mistakes[0]]
    for letter, verdict in ((wrong, "Not quite."), (first.answer, "Right.")):
        option(question, letter).locator("input").click()
        question.get_by_role("button", name="Check").click()
        wait_until(lambda verdict=verdict: verdict in (feedback.text_content() or ""), 30,
                   f"practice feedback {verdict!r} for {letter}",
                   details=nb.screenshot_hint)
        shown = feedback.text_content() or ""
        assert all(part in shown for part in worked), f"the worked solution is incomplete: {shown!r} {where}"
        assert ("Why not" in shown) == (letter != first.answer), f"{letter}: {shown!r} {where}"
    nb.show("quiz_practice_show")
    question.screenshot(path=str(SHOTS / "07-practice-feedback.png"))

    # The graded quiz: each click saves the choice beside the notebook and says so.
    graded = nb.show("quiz_test_show").locator(".widget-vbox:has(> .widget-radio)")
    questions = quiz.load("test")
    assert graded.count() == len(questions), f"{graded.count()} graded questions shown {where}"
    key = right_answers()
    for i, q in enumerate(questions):
        option(graded.nth(i), key[q.id]).locator("input").click()
        wait_until(lambda i=i, q=q: f"answer saved ({key[q.id]})" in (graded.nth(i).text_content() or ""), 30,
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
    wait_until(lambda: graded.count() == len(questions), 30, "the graded quiz to render again",
               details=nb.screenshot_hint)
    for i, q in enumerate(questions):
        assert option(graded.nth(i), key[q.id]).locator("input").is_checked(), (
            f"question {i + 1} lost its answer {where}")
    nb.screenshot("09-rerun-answers-kept", "quiz_test_show")
    nb.screenshot("10-progress-4-of-4-at-the-end", "progress_show_again")
    assert not [e for e in page.errors if "widget" in e.lower()], f"widget errors in the browser: {page.errors}"

    # Saved, then graded with the button: the panels now show that grading (hidden checks
    # included), and no longer only what the visible checks said.
    nb.show("self_grade_button").locator(".jp-InputArea-prompt").click()  # the notebook has the keyboard
    page.keyboard.press("ControlOrMeta+s")
    wait_until(lambda: saved_source(lab.root / LESSON, "step4_app_solution") == answers["step4_app_solution"], 30,
               "the notebook to be saved", details=nb.screenshot_hint)
    nb.show("self_grade_button").get_by_role("button", name="Grade my notebook").click()
    full_marks = "23/23 points. Every check passes, hidden ones included."
    for panel in ("progress_show_again", "progress_show"):
        shown = wait_summary(nb, panel, full_marks, timeout=300)
        assert shown.startswith("Graded at ") and shown.endswith("(your saved notebook): " + full_marks), where
    report = nb.cell("self_grade_button").locator(".jp-OutputArea").first.text_content() or ""
    assert "Score: 23/23" in report, f"{report[-500:]!r} {where}"
    nb.screenshot("10b-progress-after-grading", "progress_show_again")
    # Last, as it concerns looks only: the options are readable at this window size.
    for cell_id in ("quiz_practice_show", "quiz_test_show"):
        assert_labels_fit(nb, cell_id, where)


def saved_source(path: Path, cell_id: str) -> str | None:
    """A cell's code in the notebook file as saved (None while it cannot be read)."""
    try:
        return next((c.source for c in nbformat.read(path, as_version=4).cells if c.id == cell_id), None)
    except Exception:  # being written
        return None


def test_lesson_accessibility_in_the_browser(page, lab):
    """The executed lesson, its quizzes rendered, as keyboard and screen-reader users meet it:
    labelled radio groups, the quiz by keyboard alone, feedback in live regions; then axe-core
    on the notebook's content (its markdown and outputs, not JupyterLab's own chrome)."""
    from autograder import quiz

    assert AXE.exists(), (
        f"{AXE} is missing: run `make test`, or `npm ci --prefix tests` (axe-core, pinned in tests/package-lock.json)")
    where = f"(screenshots and axe.json in {SHOTS})"
    release = nbformat.read(lab.root / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)
    answers = solutions()
    for cell in release.cells:
        if cell.id in answers:
            cell.source = answers[cell.id]
    (lab.root / A11Y_LESSON).parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(release, lab.root / A11Y_LESSON)
    nb = notebook(page, lab, A11Y_LESSON)
    nb.run_all(RUN_ALL_TIMEOUT)
    assert not nb.errors(), f"error or stderr outputs: {nb.errors()} {where}"

    # Every radio group has an accessible name: its question's number and text.
    practice, graded = nb.show("quiz_practice_show"), nb.cell("quiz_test_show")
    for cell, kind, label in ((practice, "practice", "Practice"), (graded, "test", "Question")):
        questions = quiz.load(kind)
        groups = cell.get_by_role("radiogroup")
        wait_until(lambda groups=groups, questions=questions: groups.count() == len(questions), 30,
                   f"{len(questions)} {kind} radio groups",
                   details=nb.screenshot_hint)
        for q in questions:
            text = re.escape(quiz._plain(q.prompt)[:60]).replace("/", r"\/")  # (Playwright's regex parser)
            name = re.compile(rf"^{label} {q.number} .*{text}")
            assert cell.get_by_role("radiogroup", name=name).count() == 1, (
                f"{kind} question {q.number} has no labelled group {where}")
            group = cell.get_by_role("radiogroup", name=name)
            assert group.get_by_role("radio").count() == 4, where

    # Keyboard alone: from the quiz's cell, Tab to the first option, arrow keys to choose, Tab
    # to Check (past the Hint), Enter; then Space on Check again. No mouse.
    first = quiz.load("practice")[0]
    question = practice.locator(".course-quiz-question").first
    radios = question.get_by_role("radio")
    practice.evaluate("cell => cell.focus()")  # the cell, as JupyterLab's cell navigation leaves it
    def focused():
        return page.evaluate("() => document.activeElement && document.activeElement.outerHTML.slice(0, 120)")

    for _ in range(10):
        page.keyboard.press("Tab")
        if radios.first.evaluate("e => e === document.activeElement"):
            break
    else:
        raise AssertionError(f"Tab never reached practice question 1's first option (focus: {focused()}) {where}")
    steps = quiz.LETTERS.index(first.answer)  # ArrowDown presses from A to the right answer
    for _ in range(steps):
        page.keyboard.press("ArrowDown")
    wait_until(lambda: radios.nth(steps).is_checked(), 10,
               f"ArrowDown x{steps} to choose {first.answer} (focus: {focused()})",
               details=nb.screenshot_hint)
    assert radios.nth(steps).evaluate("e => e === document.activeElement"), (
        f"focus left the options: {focused()} {where}")
    check = question.get_by_role("button", name="Check")
    for _ in range(3):
        page.keyboard.press("Tab")
        if check.evaluate("e => e === document.activeElement"):
            break
    else:
        raise AssertionError(f"Tab never reached the Check button (focus: {focused()}) {where}")
    page.keyboard.press("Enter")
    feedback = question.locator(".course-quiz-feedback")
    wait_until(lambda: "Right." in (feedback.text_content() or ""), 30, "feedback after Enter on Check",
               details=nb.screenshot_hint)
    live = feedback.evaluate("e => { const r = e.closest('[role=status], [aria-live]'); "
                             "return r && [r.getAttribute('role'), r.getAttribute('aria-live')]; }")
    assert live == ["status", "polite"], f"the practice feedback is not in a polite live region: {live} {where}"
    page.keyboard.press("ArrowUp")  # focus stays on Check: JupyterLab did not take the key
    assert check.evaluate("e => e === document.activeElement"), (
        f"ArrowUp moved focus away from Check: {focused()} {where}")
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Enter")  # the Hint opens by keyboard
    assert question.locator("details").evaluate("d => d.open"), (
        f"Enter on Hint did not open it (focus: {focused()}) {where}")
    page.keyboard.press("Shift+Tab")  # back into the group, on its checked option; another answer
    assert radios.nth(steps).evaluate("e => e === document.activeElement"), f"Shift+Tab went to {focused()} {where}"
    page.keyboard.press("ArrowDown")
    wait_until(lambda: (feedback.text_content() or "") == "", 10, "a new choice to clear the verdict",
               details=nb.screenshot_hint)
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    assert check.evaluate("e => e === document.activeElement"), f"Tab went to {focused()}, not Check {where}"
    page.keyboard.press(" ")
    wait_until(lambda: "Not quite." in (feedback.text_content() or ""), 30, "feedback after Space on Check",
               details=nb.screenshot_hint)
    nb.show("quiz_practice_show")
    question.screenshot(path=str(SHOTS / "13-practice-by-keyboard.png"))

    # A graded choice by keyboard: "answer saved" is announced from a live region.
    g1 = graded.locator(".course-quiz-question").first
    g1.get_by_role("radio").first.focus()  # where Tab into the group brings it
    page.keyboard.press("ArrowDown")
    status = g1.locator(".course-quiz-status")
    wait_until(lambda: "answer saved (B)" in (status.text_content() or ""), 30,
               "graded question 1 to say 'answer saved (B)'",
               details=nb.screenshot_hint)
    assert status.evaluate("e => [e.getAttribute('role'), e.getAttribute('aria-live')]") == ["status", "polite"], where

    # axe-core, cell by cell (each scrolled into view, as cells out of view are not laid out),
    # on the cells' rendered markdown and outputs. Excluded, as JupyterLab's chrome, not ours:
    # the collapse buttons and anchor links JupyterLab adds to rendered markdown headings.
    page.add_script_tag(path=str(AXE))
    page.evaluate(AXE_UNCLIP)
    results = {}
    for cell_id in nb.cell_ids:
        cell = nb.cell(cell_id)
        if cell.locator(".jp-MarkdownOutput, .jp-OutputArea-output").count() == 0:
            continue
        nb.scroll_to(cell_id)
        results[cell_id] = cell.evaluate(AXE_RUN, {"exclude": AXE_EXCLUDE})
    (SHOTS / "axe.json").write_text(json.dumps(results, indent=1))
    checked = {rule["id"] for kind in ("passes", "violations", "incomplete")
               for rule in results["quiz_practice_show"][kind]}
    assert {"color-contrast", "label", "aria-valid-attr-value"} <= checked, (
        f"axe did not check the quiz: only {sorted(checked)} {where}")
    violations = [dict(v, cell=cell_id) for cell_id, r in results.items() for v in r["violations"]]
    by_impact = Counter(v["impact"] for v in violations for _ in v["nodes"])
    print(f"axe-core {next(iter(results.values()))['testEngine']['version']} on {len(results)} cells: "
          + ", ".join(f"{impact} {by_impact.get(impact, 0)}" for impact in ("critical", "serious", "moderate", "minor"))
          + f" (violating elements by impact); {sum(len(r['passes']) for r in results.values())} passed checks")
    bad = [f"{v['cell']}: {v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
           for v in violations if v["impact"] in ("serious", "critical")]
    assert not bad, "axe-core finds serious or critical violations:\n" + "\n".join(bad) + f"\n{where}"


# Runs axe-core on one cell's rendered markdown and outputs (WCAG 2.x A and AA rules, and best practices).
AXE_RUN = """async (cell, {exclude}) => {
    const include = Array.from(cell.querySelectorAll('.jp-MarkdownOutput, .jp-OutputArea-output'));
    return await axe.run({include, exclude}, {resultTypes: ['violations', 'incomplete', 'passes']});
}"""
AXE_EXCLUDE = [".jp-collapseHeadingButton", ".jp-InternalAnchorLink"]
# JupyterLab's page wraps its shell in a 0-pixel-high `overflow: hidden` container that clips
# nothing (the shell inside is absolutely positioned), but axe-core takes it for a clip and
# skips everything in the notebook as invisible (color-contrast would check nothing). Letting
# it overflow changes nothing on screen; it lets axe see the page as a reader does.
AXE_UNCLIP = """() => {
    for (const e of document.querySelectorAll('.jp-ThemedContainer')) {
        const style = getComputedStyle(e);
        if (e.getBoundingClientRect().height < 2 && style.overflow === 'hidden') e.style.overflow = 'visible';
    }
}"""


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
    fallback = page.locator('.jp-OutputArea-output[data-mime-type="text/plain"]',
                            has_text=re.compile(r"^(VBox|Button)\("))
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
        wait_until(lambda images=images: images.count() >= 1
                   and images.first.evaluate("img => img.complete && img.naturalWidth > 0"),
                   30, f"the plot of cell {cell_id} to load", details=nb.screenshot_hint)
        widths = [img.evaluate("img => img.naturalWidth") for img in images.all()]
        assert all(w > 0 for w in widths), f"cell {cell_id}: image widths {widths} {where}"
        nb.screenshot(f"12-pool-lab-{cell_id}", cell_id)
    total = page.locator(".jp-RenderedImage img").count()
    assert total >= len(plot_cells), f"{total} images for {len(plot_cells)} plotting cells {where}"
    raised = {cell: text for cell, text in nb.errors().items() if "Traceback" in text or "Error:" in text[:200]}
    assert not raised, f"the pool lab raised: {raised} {where}"
