"""course_grade/nbgrader_ext/cached_check_cell_metadata.py: the grading workers' CheckCellMetadata decides exactly as
nbgrader's on the lesson's notebook and on corrupted copies of it (same exception, same
message, same jsonschema error logged), and it replaces nbgrader's only where the course
config has it."""
from __future__ import annotations

import copy
import itertools
import logging
import re

import nbformat
import pytest
from nbgrader.preprocessors import CheckCellMetadata
from traitlets.config.loader import PyFileConfigLoader

from course_grade.nbgrader_ext.cached_check_cell_metadata import (
    STOCK,
    CachedCheckCellMetadata,
    chain,
    use_cached_metadata_check,
)
from tests.support.course import ROOT, SOURCE_NB

COUNTER = itertools.count()


def graded_cells(nb):
    return [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")]


def _points(nb):
    graded_cells(nb)[0].metadata.nbgrader["points"] = "ten"


def _schema_old(nb):
    graded_cells(nb)[0].metadata.nbgrader["schema_version"] = 2


def _schema_new(nb):
    graded_cells(nb)[0].metadata.nbgrader["schema_version"] = 4


def _no_grade_id(nb):
    del graded_cells(nb)[0].metadata.nbgrader["grade_id"]


def _duplicate_id(nb):
    cells = graded_cells(nb)
    cells[1].metadata.nbgrader["grade_id"] = cells[0].metadata.nbgrader["grade_id"]


def _unknown_key(nb):
    graded_cells(nb)[0].metadata.nbgrader["hacked"] = True


def _grade_not_bool(nb):
    graded_cells(nb)[0].metadata.nbgrader["grade"] = "yes"


def _no_points(nb):
    del graded_cells(nb)[0].metadata.nbgrader["points"]


CASES = {"valid": lambda nb: None, "points a string": _points, "schema too old": _schema_old,
         "schema too new": _schema_new, "grade cell without grade_id": _no_grade_id,
         "duplicate grade_id": _duplicate_id, "unknown key": _unknown_key, "grade not a bool": _grade_not_bool,
         "grade cell without points": _no_points}


def outcome(preprocessor_class, nb) -> tuple:
    """What the check did: passed, or the exception's type and message, and the last line of
    each error it logged (for a schema error: jsonschema's own message)."""
    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record):  # a logged traceback: its final exception and message, not its file paths
            lines = record.getMessage().strip().splitlines()
            last = max((i for i, line in enumerate(lines) if re.match(r"[\w.]+(Error|Exception)\b", line)), default=0)
            records.append("\n".join(lines[last:]))

    log = logging.getLogger(f"test-metadata-check-{next(COUNTER)}")
    log.propagate = False
    log.addHandler(Keep())
    check = preprocessor_class(log=log)
    try:
        check.preprocess(nb, {})
        raised = None
    except Exception as exc:  # compared below
        raised = (type(exc).__name__, str(exc))
    return raised, records


@pytest.mark.parametrize("case", CASES)
def test_decides_as_nbgrader_does(case):
    nb = nbformat.read(SOURCE_NB, as_version=4)
    CASES[case](nb)
    stock = outcome(CheckCellMetadata, copy.deepcopy(nb))
    cached = outcome(CachedCheckCellMetadata, copy.deepcopy(nb))
    assert cached == stock
    assert (stock[0] is None) == (case == "valid"), stock
    again = outcome(CachedCheckCellMetadata, copy.deepcopy(nb))  # the validator, built once, is reused
    assert again == stock


def test_replaces_nbgraders_check_in_the_course_config_only():
    config = PyFileConfigLoader("nbgrader_config.py", path=str(ROOT)).load_config()
    names = ("sanitize_preprocessors", "autograde_preprocessors")
    before = {name: chain(config, name) for name in names}
    assert all(any(p in STOCK for p in c) for c in before.values()), (
        "the course config runs nbgrader's check in both passes")
    assert any(p.__name__ == "CollectQuizAnswers" for p in before["sanitize_preprocessors"] if isinstance(p, type)), \
        "the course's own additions are kept"
    use_cached_metadata_check(config)
    for name in names:
        assert chain(config, name) == [CachedCheckCellMetadata if p in STOCK else p for p in before[name]]
