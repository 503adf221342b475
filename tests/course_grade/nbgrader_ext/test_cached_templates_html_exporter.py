"""course_grade/nbgrader_ext/cached_templates_html_exporter.py (fast tier): the workers' feedback exporter renders the
page nbconvert's HTMLExporter renders, compiling its templates once per process."""
from __future__ import annotations

import re

import jinja2
import nbformat
import pytest
from nbconvert.exporters import HTMLExporter
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output
from traitlets.config import Config

from course_grade.nbgrader_ext import cached_templates_html_exporter as feedback_exporter
from course_grade.nbgrader_ext.cached_templates_html_exporter import (
    CachedTemplatesHTMLExporter,
    use_cached_feedback_templates,
)

# nbconvert gives each JavaScript and widget output a random element id
RANDOM_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def fixture_notebook() -> nbformat.NotebookNode:
    nb = new_notebook(metadata={"language_info": {"name": "python"}})
    nb.cells = [
        new_markdown_cell("## Step 1\nSet `DATABASE_URL`: *async* driver."),
        new_code_cell("DATABASE_URL = 'sqlite+aiosqlite:///test.db'\nprint(DATABASE_URL)", execution_count=1,
                      outputs=[new_output("stream", name="stdout", text="sqlite+aiosqlite:///test.db\n")]),
        new_code_cell("raise ValueError('no')", execution_count=2,
                      outputs=[new_output("error", ename="ValueError", evalue="no", traceback=["ValueError: no"])]),
        new_code_cell("show()", execution_count=3,
                      outputs=[new_output("display_data", data={"application/javascript": "console.log(1)",
                                                                "text/plain": ""})]),
    ]
    return nb


@pytest.fixture
def fresh_cache(monkeypatch):
    cache = feedback_exporter._MemoryBytecodeCache()
    monkeypatch.setattr(feedback_exporter, "_CACHE", cache)
    return cache


@pytest.fixture
def compilations(monkeypatch):
    count = {"n": 0}
    compile_ = jinja2.Environment.compile

    def counted(self, *args, **kwargs):
        count["n"] += 1
        return compile_(self, *args, **kwargs)

    monkeypatch.setattr(jinja2.Environment, "compile", counted)
    return count


def test_the_page_is_the_one_htmlexporter_renders(fresh_cache):
    nb = fixture_notebook()
    stock, _ = HTMLExporter().from_notebook_node(nb)
    first, _ = CachedTemplatesHTMLExporter().from_notebook_node(nb)
    again, _ = CachedTemplatesHTMLExporter().from_notebook_node(nb)  # from compiled templates
    assert "sqlite+aiosqlite" in stock and "ValueError" in stock
    assert RANDOM_ID.sub("ID", first) == RANDOM_ID.sub("ID", stock)
    assert RANDOM_ID.sub("ID", again) == RANDOM_ID.sub("ID", stock)


def test_a_second_exporter_reuses_the_compiled_templates(fresh_cache, compilations):
    nb = fixture_notebook()
    CachedTemplatesHTMLExporter().from_notebook_node(nb)
    first = compilations["n"]
    assert first > 0 and fresh_cache.store, "the first exporter compiles the templates and keeps them"
    CachedTemplatesHTMLExporter().from_notebook_node(nb)
    assert compilations["n"] == first, "a second exporter must not compile the templates again"
    HTMLExporter().from_notebook_node(nb)
    assert compilations["n"] > first, "stock HTMLExporter compiles them for each exporter"


def test_a_changed_template_is_compiled_again(fresh_cache, tmp_path):
    nb = fixture_notebook()
    (tmp_path / "page.j2").write_text("first {{ nb.cells | length }}")
    assert CachedTemplatesHTMLExporter(template_file=str(tmp_path / "page.j2")).from_notebook_node(nb)[0] == "first 4"
    (tmp_path / "page.j2").write_text("second {{ nb.cells | length }}")
    assert CachedTemplatesHTMLExporter(template_file=str(tmp_path / "page.j2")).from_notebook_node(nb)[0] == "second 4"


def test_the_course_config_gets_it_unless_it_chose_an_exporter():
    config = Config()
    use_cached_feedback_templates(config)
    assert config.GenerateFeedback.exporter_class is CachedTemplatesHTMLExporter
    own = Config()
    own.GenerateFeedback.exporter_class = HTMLExporter
    use_cached_feedback_templates(own)
    assert own.GenerateFeedback.exporter_class is HTMLExporter
