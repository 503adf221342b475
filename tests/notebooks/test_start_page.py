"""The start page (notebooks/start.ipynb): its path through the course leads to real
notebooks, and its cells make the learner's copy without ever overwriting it."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys

import nbformat
import pytest
from nbclient import NotebookClient

from tests.support.course import RELEASE_NB, ROOT

pytestmark = pytest.mark.slow

START = ROOT / "notebooks" / "start.ipynb"


def run_start_page(course):
    nb = nbformat.read(course / "notebooks" / "start.ipynb", as_version=4)
    NotebookClient(nb, timeout=120, resources={"metadata": {"path": str(course / "notebooks")}}).execute()
    out = {}
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            assert o.output_type == "stream" and o.name == "stdout", f"{cell.id}: {o}"
        out[cell.id] = "".join(o.text for o in cell.get("outputs", []))
    return out


def test_start_page_is_generated_and_has_no_outputs():
    done = subprocess.run([sys.executable, str(ROOT / "tools" / "build_start_page.py"), "--check"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    nb = nbformat.read(START, as_version=4)
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in nb.cells if c.cell_type == "code")


def test_every_link_leads_to_a_notebook_of_the_course(tmp_path):
    """The lesson link works once the page's first cell has run; the others exist already."""
    course = tmp_path / "course"
    shutil.copytree(ROOT / "notebooks", course / "notebooks")
    shutil.copytree(RELEASE_NB.parent, course / "release" / RELEASE_NB.parent.name)
    out = run_start_page(course)
    assert "Made your copy of the lesson: workspace/connection-pooling/connection-pooling.ipynb" in out["make_copy"]
    text = "\n".join(c.source for c in nbformat.read(START, as_version=4).cells if c.cell_type == "markdown")
    links = re.findall(r"\]\(([^)\s]+\.ipynb)\)", text)
    assert len(links) >= 3
    for link in links:
        assert (course / "notebooks" / link).resolve().is_file(), link
    assert "pool-lab.ipynb" in links and any("connection-pooling.ipynb" in link for link in links)


def test_running_the_page_again_keeps_the_learners_work(tmp_path):
    course = tmp_path / "course"
    shutil.copytree(ROOT / "notebooks", course / "notebooks")
    shutil.copytree(RELEASE_NB.parent, course / "release" / RELEASE_NB.parent.name)
    run_start_page(course)
    copy = course / "workspace" / "connection-pooling" / "connection-pooling.ipynb"
    copy.write_text('{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}')
    out = run_start_page(course)
    assert "Found your copy" in out["make_copy"] and "Nothing changed" in out["reset_copy"]
    assert copy.read_text().startswith('{"cells": []'), "running the start page must not reset the lesson"
