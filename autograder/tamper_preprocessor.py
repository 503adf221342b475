"""An nbgrader preprocessor that runs the tampering analysis (autograder/tamper.py) before any
student code does: configured first in `c.Autograde.autograde_preprocessors`, so stock
`nbgrader autograde` and the grading command both run it.

Each student-written code cell (every code cell but the instructor's locked ones, whose
source nbgrader has already restored from the gradebook) is analysed. A cell with findings
has its code replaced by a comment that lists them (so an attack earns nothing and the
reviewer sees why), its findings kept in `cell.metadata["course"]["flagged"]`, a warning in
the log, and the notebook is flagged in the gradebook (the formgrader's flag; the grading
command reports it as REVIEW).
"""
from __future__ import annotations

import ast
import builtins

from nbgrader.api import Gradebook, MissingEntry
from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Bool

from autograder import tamper

# the notebook-level stamp: the analysis ran (the grading command checks it)
SCANNED = "tampering_scanned"


def removed_source(findings: list[tamper.Finding], source: str) -> str:
    lines = ["# removed by the grader for review: this cell reached past the lesson's code"]
    lines += [f"#   {f}" for f in findings]
    lines += ["# the code as submitted (not run):"]
    lines += ["# | " + line for line in source.splitlines()]
    return "\n".join(lines) + "\n"


def is_instructor_cell(cell) -> bool:
    meta = cell.metadata.get("nbgrader", {})
    return bool(meta.get("grade_id")) and bool(meta.get("locked"))


def protected_names(nb) -> frozenset[str]:
    """Built-ins the instructor's cells read: a student's top-level name must not hide them."""
    names = set(tamper.PROTECTED)
    for cell in nb.cells:
        if cell.cell_type == "code" and is_instructor_cell(cell):
            tree = tamper.parse(cell.source)
            for node in ast.walk(tree) if tree else ():
                if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and hasattr(builtins, node.id):
                    names.add(node.id)
    return frozenset(names)


class FlagTampering(NbGraderPreprocessor):
    """Remove and flag student cells that reach for the grading machinery."""

    remove = Bool(True, help="Replace a flagged cell's code with a comment (False: flag only)").tag(config=True)

    def preprocess(self, nb, resources):
        self.protected = protected_names(nb)
        self.found = []
        nb, resources = super().preprocess(nb, resources)
        nb.metadata.setdefault("course", {})[SCANNED] = True
        if self.found:
            resources.setdefault("course", {})["flagged"] = self.found
            self._flag_in_gradebook(resources)
        return nb, resources

    def preprocess_cell(self, cell, resources, index):
        course = cell.metadata.get("course")
        if isinstance(course, dict):
            course.pop("flagged", None)  # only this analysis says what is flagged
        if cell.cell_type != "code" or is_instructor_cell(cell):
            return cell, resources
        findings = tamper.analyse(cell.source, self.protected)
        if not findings:
            return cell, resources
        name = cell.metadata.get("nbgrader", {}).get("grade_id") or "added by the student"
        cell.metadata.setdefault("course", {})["flagged"] = [str(f) for f in findings]
        self.found.append(f"cell {index + 1} ({name}): " + "; ".join(str(f) for f in findings))
        self.log.warning("Flagged for review, cell %d (%s): %s", index + 1, name, "; ".join(map(str, findings)))
        if self.remove:
            cell.source = removed_source(findings, cell.source)
            cell.outputs, cell.execution_count = [], None
        return cell, resources

    def _flag_in_gradebook(self, resources) -> None:
        info = resources.get("nbgrader", {})
        if not info.get("db_url"):
            return
        try:
            with Gradebook(info["db_url"]) as gb:
                nb = gb.find_submission_notebook(info["notebook"], info["assignment"], info["student"])
                nb.flagged = True
                gb.db.commit()
        except (MissingEntry, KeyError) as exc:
            self.log.warning("Could not flag the submission in the gradebook: %s", exc)
