"""What the item analysis reads, without running anything: the records graded cells left,
the quiz answers as collected, the gradebook's rows, the source notebook's headings."""
from __future__ import annotations

import json
import logging
import math
import re
from pathlib import Path

from autograder.records import by_cell
from course_grade.late import late_of
from course_grade.nbgrader_ext.grade_quiz_answers import QUIZ_CELL
from course_grade.reports.failures import Shown
from course_grade.reports.items import QUIZ_STEP, ReportError

log = logging.getLogger("course_grade.reports.item_analysis")


STEP_CELL = re.compile(r"^step(\d+)_")




def _read_json(path: Path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _text(value) -> str:
    return "".join(value) if isinstance(value, list) else str(value or "")


def cell_results(notebook_path: Path) -> dict[str, Shown]:
    """grade_id -> what the graded cell left (Shown), for every graded code cell."""
    nb = _read_json(notebook_path)
    if not isinstance(nb, dict):
        return {}
    records = by_cell(nb)
    out = {}
    for cell in nb.get("cells", []):
        gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if not gid or cell.get("cell_type") != "code":
            continue
        errors, stderr = [], False
        for o in cell.get("outputs", []):
            if o.get("output_type") == "error":
                name, value = o.get("ename", ""), _text(o.get("evalue", ""))
                errors.append(value if name == "CheckFailed" else f"{name}: {value}")
            elif o.get("output_type") == "stream" and o.get("name") == "stderr" and _text(o.get("text")).strip():
                stderr = True
        record = records.get(gid)
        out[gid] = Shown(record, "" if record is not None else "\n".join(errors).strip(), stderr)
    return out


def quiz_answers(folder: Path) -> dict[str, str] | None:
    """The collected answers (question id -> letter); None when the file is missing or damaged."""
    return quiz_answers_state(folder)[0]


def quiz_answers_state(folder: Path) -> tuple[dict[str, str] | None, str]:
    """(the collected answers or None, "saved" | "missing" | "damaged")."""
    from autograder.quiz import ANSWERS_FILE, AnswersFileError, read_answers

    try:
        answers = read_answers(str(folder / ANSWERS_FILE))
    except AnswersFileError:
        return None, "damaged"
    return answers, "missing" if answers is None else "saved"


def checks_by_id() -> dict[str, object]:
    """grade_id -> the registry's declaration (step, description), {} if unavailable."""
    try:
        import autograder.checks  # noqa: F401 - declares every check
        from autograder import registry

        return {c.name: c for c in registry.declared()}
    except Exception as exc:  # the registry is a nicety: grade ids name their step too
        log.debug("registry unavailable: %s", exc)
        return {}


def step_headings(nb_path: Path | None) -> dict[str, str]:
    """grade_id -> the text of the last level-2 heading above it in the lesson notebook."""
    nb = _read_json(nb_path) if nb_path else None
    out, current = {}, ""
    for cell in (nb or {}).get("cells", []) if isinstance(nb, dict) else []:
        if cell.get("cell_type") == "markdown":
            for line in _text(cell.get("source")).splitlines():
                if line.startswith("## "):
                    current = line[3:].strip()
        gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if gid:
            out[gid] = current
    return out


def step_of(gid: str, checks: dict) -> int | str | None:
    if QUIZ_CELL.fullmatch(gid) or gid.startswith("quiz"):
        return QUIZ_STEP
    if gid in checks:
        return checks[gid].step
    found = STEP_CELL.match(gid)
    return int(found.group(1)) if found else None


def gradebook_scores(gradebook: Path, assignment: str):
    """(grade cells [(grade_id, max_score, notebook)], quiz cell sources {grade_id: source},
    {student: {"grades": {grade_id: score or None}, "flagged": bool, "late": Late, "name": str, "email": str}}) from the
    gradebook (Late's method left empty: the course config names it)."""
    from nbgrader.api import MissingEntry

    from course_grade.course import open_gradebook

    with open_gradebook(gradebook) as gb:
        try:
            a = gb.find_assignment(assignment)
        except MissingEntry:
            known = ", ".join(x.name for x in gb.assignments) or "none"
            raise ReportError(f"unknown assignment {assignment!r} (the gradebook has: {known}): "
                              "give one of those names") from None
        cells, sources = [], {}
        for nb in a.notebooks:
            cells += [(c.name, float(c.max_score), nb.name) for c in nb.grade_cells]
            sources.update({c.name: c.source for c in nb.source_cells if c.name.startswith("quiz")})
        subs = {}
        for sub in a.submissions:
            grades, flagged = {}, False
            for snb in sub.notebooks:
                flagged = flagged or bool(snb.flagged)
                for g in snb.grades:
                    grades[g.name] = None if g.auto_score is None and g.manual_score is None else float(g.score)
            name = " ".join(filter(None, [sub.student.first_name, sub.student.last_name]))
            subs[sub.student_id] = {"grades": grades, "flagged": flagged, "late": late_of(sub), "name": name,
                                     "email": sub.student.email or ""}
    return cells, sources, subs


def quiz_keys(sources: dict[str, str]) -> dict[str, dict]:
    from course_grade.nbgrader_ext.grade_quiz_answers import QuizKeyError, read_key

    keys = {}
    for gid, source in sources.items():
        match = QUIZ_CELL.fullmatch(gid)
        if match:
            try:
                keys[gid] = read_key(source, match["qid"])
            except QuizKeyError as exc:
                log.debug("no key for %s: %s", gid, exc)
    return keys


def as_float(text: str) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None
