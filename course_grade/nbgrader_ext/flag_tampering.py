"""An nbgrader preprocessor that runs the tampering analysis (course_grade/nbgrader_ext/tamper_analysis.py) before any
student code does: configured first in `c.Autograde.autograde_preprocessors`, so stock
`nbgrader autograde` and the grading command both run it.

Each student-written code cell (every code cell but the instructor's locked ones, whose
source nbgrader has already restored from the gradebook) is analysed. A cell with findings
has its offending top-level statements commented out under a comment that lists them (so
an attack earns nothing, the reviewer sees why, and honest code in the same cell still
runs), its findings kept in `cell.metadata["course"]["flagged"]`, a warning in the log,
and the notebook is flagged in the gradebook (the formgrader's flag; the grading command
reports it as REVIEW).
"""
from __future__ import annotations

import ast
import builtins

from nbgrader.api import MissingEntry
from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Bool

from course_grade.course import open_gradebook
from course_grade.nbgrader_ext import tamper_analysis as tamper

# the notebook-level stamp: the analysis ran (the grading command checks it)
SCANNED = "tampering_scanned"


def removed_source(findings: list[tamper.Finding], source: str) -> str:
    lines = ["# removed by the grader for review: this cell reached past the lesson's code"]
    lines += [f"#   {f}" for f in findings]
    lines += ["# the code as submitted (not run):"]
    lines += ["# | " + line for line in source.splitlines()]
    return "\n".join(lines) + "\n"


def _bound(node) -> set[str]:
    """Names a top-level statement defines."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {node.name}
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return {(a.asname or a.name).split(".")[0] for a in node.names}
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}


def _used(node) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def without_flagged_statements(findings: list[tamper.Finding], source: str) -> str:
    """The cell with only its flagged top-level statements removed (commented out, findings
    listed above), so the honest rest of the cell still runs and earns its points; the whole
    cell when a finding cannot be placed in a statement."""
    code = tamper.ipython_source(source)
    tree = tamper.parse(code)
    if tree is None:
        return removed_source(findings, source)
    spans = [(node.lineno, node.end_lineno or node.lineno) for node in tree.body]
    if any(not any(first <= f.line <= last for first, last in spans) for f in findings):
        return removed_source(findings, source)
    removed = [any(first <= f.line <= last for f in findings) for first, last in spans]
    # a statement using a name that only a removed statement defined goes too (it would fail)
    changed = True
    while changed:
        changed = False
        gone = set().union(*(_bound(node) for node, out in zip(tree.body, removed, strict=False) if out))
        kept = set().union(*(_bound(node) for node, out in zip(tree.body, removed, strict=False) if not out))
        for i, node in enumerate(tree.body):
            if not removed[i] and _used(node) & (gone - kept):
                removed[i] = changed = True
    lines = code.splitlines()
    for (first, last), out in zip(spans, removed, strict=False):
        if not out:
            continue
        for i in range(first - 1, last):
            lines[i] = "# removed for review | " + lines[i]
    head = ["# removed by the grader for review: the statements marked below reached past the lesson's code"]
    head += [f"#   {f}" for f in findings]
    return "\n".join(head + lines) + "\n"


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


def flag_in_gradebook(resources, log) -> None:
    """Flag the notebook being graded for review in the gradebook (the formgrader's flag)."""
    info = resources.get("nbgrader", {})
    if not info.get("db_url"):
        return
    try:
        with open_gradebook(info["db_url"]) as gb:
            nb = gb.find_submission_notebook(info["notebook"], info["assignment"], info["student"])
            nb.flagged = True
            gb.db.commit()
    except (MissingEntry, KeyError) as exc:
        log.warning("Could not flag the submission in the gradebook: %s", exc)


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
            flag_in_gradebook(resources, self.log)
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
            cell.source = without_flagged_statements(findings, cell.source)
            cell.outputs, cell.execution_count = [], None
        return cell, resources
