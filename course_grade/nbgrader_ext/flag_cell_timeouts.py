"""nbgrader preprocessor: a cell stopped at its time limit is named and flagged for review.

nbgrader's Execute stops a cell that runs longer than `c.Execute.timeout` and records an error
output (nbclient's CellTimeoutError); the cell loses its points with no note anywhere else.
`FlagCellTimeouts`, configured right after Execute in `nbgrader_config.py` (so stock `nbgrader
autograde`, the grading command and self-grading run it), names those cells in the log and in
the notebook's metadata (`course.timed_out`) and flags the notebook in the gradebook, so the
formgrader shows it; the grading command's report gives it as the reason "cell time limit".
"""
from __future__ import annotations

from nbgrader.preprocessors import Execute, NbGraderPreprocessor

from course_grade.nbgrader_ext.flag_tampering import flag_in_gradebook

TIMED_OUT = "timed_out"  # notebook metadata: course.timed_out, the cells stopped at the limit


def timeout_ename(config) -> str:
    """The error name nbgrader's Execute gives a cell stopped at its time limit."""
    given = config.Execute.get("error_on_timeout") if "Execute" in config else None
    return (given or Execute.class_traits()["error_on_timeout"].default()).get("ename", "CellTimeoutError")


def timed_out_cells(nb: dict, ename: str) -> list[str]:
    """The cells of a graded notebook that nbgrader's Execute stopped at the per-cell time
    limit: an error output named `ename`."""
    found = []
    for number, cell in enumerate(nb.get("cells", []), start=1):
        if any(o.get("output_type") == "error" and o.get("ename") == ename for o in cell.get("outputs", [])):
            found.append(cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") or f"cell {number}")
    return found


class FlagCellTimeouts(NbGraderPreprocessor):
    """Name and flag the cells nbgrader's Execute stopped at the per-cell time limit."""

    def preprocess(self, nb, resources):
        cells = timed_out_cells(nb, timeout_ename(self.config))
        nb.metadata.setdefault("course", {})[TIMED_OUT] = cells
        if cells:
            self.log.warning("Flagged for review, stopped at the per-cell time limit (c.Execute.timeout): %s",
                             ", ".join(cells))
            flag_in_gradebook(resources, self.log)
        return nb, resources
