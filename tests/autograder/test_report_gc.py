"""A check's closing gc.collect() (report._quiet) stays cheap after a traceback went through a
library: IPython's traceback formatting (executing, stack_data) caches every file it parsed,
~200,000 objects that each later collection would rescan, and report forgets them.

Each test runs a kernel-like IPython shell in a fresh interpreter, so the counts of
gc-tracked objects are not disturbed by anything else the tests did.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Margin over the count before the error: the failed cell's own traceback (sys.last_traceback)
# and the cell's bookkeeping. Without report's clearing the count grows by ~80,000.
MARGIN = 3000

DRIVER = r'''
import gc, json, linecache, sys
from IPython.core.interactiveshell import InteractiveShell
from traitlets.config import Config

config = Config()
config.HistoryManager.hist_file = ":memory:"
config.InteractiveShell.ipython_dir = sys.argv[1]
config.InteractiveShell.colors = "nocolor"
config.InteractiveShell.xmode = "Context"  # a kernel's default: formatted with stack_data
shell = InteractiveShell.instance(config=config)
shown = []
shell._showtraceback = lambda etype, evalue, stb: shown.append(shell.InteractiveTB.stb2text(stb))


def cell(source):
    shown.clear()
    result = shell.run_cell(source, store_history=True)
    return result, "".join(shown)


def cached_sources():
    import executing
    return len(executing.Source.__dict__.get("__source_cache_with_lines", {})) + sum(
        len(cls.__dict__.get("__source_cache_with_lines", {})) for cls in executing.Source.__subclasses__())


def failing_line(result):
    """The library source line the error was raised at."""
    tb = result.error_in_exec.__traceback__
    while tb.tb_next:
        tb = tb.tb_next
    return tb.tb_frame.f_code.co_filename, linecache.getline(tb.tb_frame.f_code.co_filename, tb.tb_lineno).strip()


# As in a grading kernel: the libraries, then the checks (whose import gc.freeze()s them).
cell("import sqlalchemy\nfrom autograder import checks\nPOOL_SIZE = 5")
cell("1 / 0")  # IPython imports its traceback formatting at the first error: not what is measured
cell("checks.step2_pool_size(globals())")
before = len(gc.get_objects())

# A student's sync engine on the async driver: the error is raised deep inside SQLAlchemy.
FAIL = "engine = sqlalchemy.create_engine('sqlite+aiosqlite://')\nengine.connect()"
first, first_shown = cell(FAIL)
after_error = len(gc.get_objects())
cached_after_error = cached_sources()
checked, _ = cell("checks.step2_pool_size(globals())")
after_check = len(gc.get_objects())
cached_after_check = cached_sources()

second, second_shown = cell(FAIL)
print(json.dumps({
    "before": before, "after_error": after_error, "after_check": after_check,
    "cached_after_error": cached_after_error, "cached_after_check": cached_after_check,
    "check_passed": checked.success,
    "first_error": type(first.error_in_exec).__name__, "second_error": type(second.error_in_exec).__name__,
    "first_line": failing_line(first), "second_line": failing_line(second),
    "first_shown": first_shown, "second_shown": second_shown,
}))
'''


@pytest.fixture(scope="module")
def kernel_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("report-gc")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "COURSE_SELFGRADE_SERVICE": "off"}
    done = subprocess.run([sys.executable, "-c", DRIVER, str(folder / "ipython")], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, f"the driver failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_check_after_a_library_traceback_leaves_no_parsed_sources_to_rescan(kernel_run):
    run = kernel_run
    assert run["first_error"] == "MissingGreenlet", run["first_shown"][-2000:]
    assert run["check_passed"]
    assert run["cached_after_error"] > 0, "the traceback was not formatted with executing: nothing measured"
    assert run["after_error"] > run["before"] + 10 * MARGIN, (
        f"the traceback left only {run['after_error'] - run['before']} more gc-tracked objects "
        f"({run['before']} -> {run['after_error']}): this test no longer measures anything")
    assert run["after_check"] <= run["before"] + MARGIN, (
        f"gc-tracked objects: {run['before']} before the error, {run['after_error']} after it, "
        f"{run['after_check']} after the check (allowed: {run['before'] + MARGIN}); every later "
        "gc.collect() rescans what the traceback formatting kept")
    assert run["cached_after_check"] == 0


def test_a_traceback_after_the_caches_were_emptied_still_shows_the_library_source(kernel_run):
    run = kernel_run
    assert run["second_error"] == run["first_error"] == "MissingGreenlet"
    filename, line = run["second_line"]
    assert run["first_line"] == run["second_line"]
    assert "sqlalchemy" in filename and line
    for shown in (run["first_shown"], run["second_shown"]):
        assert filename in shown and line in shown, f"{filename}: {line!r} is not in the traceback:\n{shown[-3000:]}"
    # the library's frames (after the cell's own) read the same as before the caches were emptied
    first, second = (shown[shown.index("\nFile "):] for shown in (run["first_shown"], run["second_shown"]))
    assert second == first
