"""The item-analysis report in a real browser (Debian's Chromium, driven by Playwright, offline
as in tests/journeys/test_browser.py): the page opens from a file, every plot is laid out (each SVG
has a non-zero box), nothing is wider than a 1280 px window, axe-core finds no serious or
critical accessibility violation, and a
screenshot goes to test-artifacts/item-analysis.png."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from course_grade.reports import item_analysis as ia
from course_grade.reports import item_report
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, OFFLINE_ARGS
from tests.support.course import ASSIGNMENT, ROOT, make_course
from tests.support.graded_class import fabricate, synthetic_class

pytestmark = pytest.mark.slow

AXE = ROOT / "tests" / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = ROOT / "test-artifacts"


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    course = make_course(tmp_path_factory.mktemp("report-browser") / "course")
    students, rows = synthetic_class(60, seed=7)
    rows["student0003"]["removed_cells"] = "cell 9: line 2 call of eval"
    rows["student0004"].update(status="timed out", note="grading took longer than 600 s and was stopped")
    fabricate(course, students, rows)
    html_path, _csv = item_report.write(ia.build(course, ASSIGNMENT), course / "reports")
    return html_path


def test_report_renders_its_plots_and_is_accessible(report):
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: install it with `apt-get install chromium`"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS + OFFLINE_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            errors = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            requests = []
            page.on("request", lambda r: requests.append(r.url))
            page.goto(report.as_uri())
            assert page.title() == f"Item analysis: {ASSIGNMENT}"
            boxes = page.eval_on_selector_all(
                "svg", "els => els.map(e => { const r = e.getBoundingClientRect(); return [r.width, r.height]; })")
            assert len(boxes) >= 6, boxes
            assert all(w > 0 and h > 0 for w, h in boxes), boxes
            bars = page.eval_on_selector_all("svg rect",
                                             "els => els.filter(e => e.getBoundingClientRect().height > 0).length")
            assert bars > 10, f"only {bars} bars drawn"
            assert page.locator("h1").count() == 1 and page.locator("h2").count() >= 5
            # read at 1280 px without scrolling sideways: the page, and each table (the quiz's long prompts) in it
            assert page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")
            wide = page.eval_on_selector_all(
                "table", "els => els.filter(e => e.getBoundingClientRect().right"
                         " > Math.min(innerWidth, e.parentElement.getBoundingClientRect().right) + 1)"
                         ".map(e => e.querySelector('caption')?.textContent)")
            assert wide == [], f"tables wider than the window: {wide}"
            assert page.locator("text=Submissions to look at").count() >= 1
            # nothing fetched but the page itself
            assert [u for u in requests if not u.startswith("file:")] == []
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "item-analysis.png"), full_page=True)
            assert AXE.exists(), f"{AXE} is missing: run `npm ci --prefix tests` (make test does)"
            page.add_script_tag(path=str(AXE))
            result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
            (ARTIFACTS / "item-analysis-axe.json").write_text(json.dumps(result["violations"], indent=1))
            bad = [f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
                   for v in result["violations"] if v["impact"] in ("serious", "critical")]
            assert not bad, "axe-core finds serious or critical violations:\n" + "\n".join(bad)
            assert not errors, errors
        finally:
            browser.close()
