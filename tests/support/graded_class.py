"""A graded class fabricated without a kernel, for the item-analysis tests and bench/report_time.py:
gradebook rows, autograded notebooks (each check's record beside its message), the quiz
answers files and grading-report.csv, as the grading command would leave them."""
from __future__ import annotations

import copy
import csv
import functools
import json
import re
from pathlib import Path

from course_grade.course import REPORT_FILE
from tests.support.course import ASSIGNMENT, RELEASE_NB, graded_cells, quiz_key, right_answers, solutions


def error_output(message: str, ename: str = "CheckFailed") -> dict:
    return {"output_type": "error", "ename": ename, "evalue": message,
            "traceback": [f"\x1b[0;31m{ename}\x1b[0m: {message}"]}


def record_output(record: dict) -> dict:
    """The display output a check's record is (autograder.records)."""
    from autograder.records import MIME

    return {"output_type": "display_data", "data": {MIME: record}, "metadata": {}}


def failed(gid: str, message: str, mistake: str | None = None) -> tuple:
    """A fabricated cell whose check failed with `message` (naming `mistake`), with its record."""
    from autograder import checks, registry  # noqa: F401 - importing the checks declares them
    from autograder.records import CheckRecord

    check = registry.get(gid)
    record = CheckRecord(gid, check.step, check.points, False, mistake=mistake, message=message)
    return (0.0, "CheckFailed", message, "", record.to_json())


def fabricate(course: Path, students: dict[str, dict], report: dict[str, dict] | None = None,
              flagged: tuple[str, ...] = ()) -> None:
    """Put a graded class into `course` (made by make_course) without running a kernel.

    `students`: id -> {"cells": {grade_id: (points, ename, message, stderr[, record])} for every
    graded cell whose result is not full marks with no output (missing cells get full marks;
    a record, as CheckRecord.to_json() gives it, is shown before the error),
    "answers": {question id: letter} written as quiz_answers.json (None: no file),
    "sources": {answer cell's grade_id: code} (default: the solution; "" leaves the released
    placeholder, as a student who wrote nothing)}.
    `report`: id -> grading-report.csv columns (the file is written when given)."""
    import datetime
    import uuid

    from nbgrader import api

    points = graded_cells()
    release = json.loads(RELEASE_NB.read_text())
    rows = {name: [] for name in ("student", "submitted_assignment", "submitted_notebook", "grade", "comment")}
    with api.Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        # the rows Gradebook.add_submission makes, inserted in bulk (500 students in well under a second)
        assignment = gb.find_assignment(ASSIGNMENT)
        known = {s.id for s in gb.students}
        now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
        for sid, spec in students.items():
            if sid not in known:
                rows["student"].append({"id": sid})
            sub_id = uuid.uuid4().hex
            rows["submitted_assignment"].append({"id": sub_id, "assignment_id": assignment.id, "student_id": sid,
                                                 "timestamp": now})
            for notebook in assignment.notebooks:
                nb_id = uuid.uuid4().hex
                rows["submitted_notebook"].append({"id": nb_id, "assignment_id": sub_id, "notebook_id": notebook.id,
                                                   "flagged": sid in flagged})
                for cell in notebook.grade_cells:
                    got = spec["cells"].get(cell.name)
                    rows["grade"].append({"id": uuid.uuid4().hex, "notebook_id": nb_id, "cell_id": cell.id,
                                          "auto_score": float(points[cell.name]) if got is None else float(got[0]),
                                          "needs_manual_grade": False})
                for cell in notebook.solution_cells:
                    rows["comment"].append({"id": uuid.uuid4().hex, "notebook_id": nb_id, "cell_id": cell.id})
        models = {"student": api.Student, "submitted_assignment": api.SubmittedAssignment,
                  "submitted_notebook": api.SubmittedNotebook, "grade": api.Grade, "comment": api.Comment}
        for name, model in models.items():
            if rows[name]:
                gb.db.execute(model.__table__.insert(), rows[name])
        gb.db.commit()
    written = solutions()
    for sid, spec in students.items():
        nb = copy.deepcopy(release)
        for cell in nb["cells"]:
            gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
            if gid in written and (spec.get("sources") or {}).get(gid, written[gid]):
                cell["source"] = (spec.get("sources") or {}).get(gid, written[gid])
            if gid in points and cell["cell_type"] == "code":
                got = spec["cells"].get(gid)
                cell["outputs"] = []
                if got and len(got) > 4 and got[4]:
                    cell["outputs"].append(record_output(got[4]))
                if got and got[2]:
                    cell["outputs"].append(error_output(got[2], got[1] or "CheckFailed"))
                if got and got[3]:
                    cell["outputs"].append({"output_type": "stream", "name": "stderr", "text": got[3]})
        folder = course / "autograded" / sid / ASSIGNMENT
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{ASSIGNMENT}.ipynb").write_text(json.dumps(nb))
        submitted = course / "submitted" / sid / ASSIGNMENT
        submitted.mkdir(parents=True, exist_ok=True)
        if spec.get("answers") is not None:
            (submitted / "quiz_answers.json").write_text(json.dumps({"format": 1, "answers": spec["answers"]}))
    if report is not None:
        columns = ["student", "status", "score", "max_score", "seconds", "note", "left_out", "removed_cells",
                   "sandbox", "worker"]
        with open(course / REPORT_FILE, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=columns, restval="")
            writer.writeheader()
            for sid, row in report.items():
                writer.writerow({"student": sid, **row})


def quiz_cells(answers: dict[str, str] | None) -> dict[str, tuple]:
    """The quiz cells' results for `answers` (None: no file), with the very sentences
    course_grade.nbgrader_ext.grade_quiz_answers writes (autograder.quiz.verdict)."""
    out = {}
    for gid, qid, key in _quiz_cells():
        said = _verdict(qid, key["correct"], key["explanation"], json.dumps(key["why"]),
                        (answers or {}).get(qid, ""), answers is None)
        if said:
            out[gid] = (0.0, "CheckFailed", said, "")
    return out


@functools.cache
def _quiz_cells() -> list[tuple[str, str, dict]]:
    keys = quiz_key()
    return [(gid, m[1], keys[m[1]]) for gid in graded_cells() if (m := re.fullmatch(r"quiz\d+_(\w+)", gid))]


@functools.cache
def _verdict(qid, correct, explanation, why, letter, missing):
    from autograder.quiz import verdict

    return verdict(qid, correct, explanation, json.loads(why), {qid: letter} if letter else {}, missing=missing)


def from_harness(graded) -> dict[str, tuple]:
    """A harness Graded -> the cells of a fabricated student (build cells only: the quiz
    comes from the answers)."""
    return {gid: (c.points, c.ename, c.message, c.stderr, c.record.to_json() if c.record else None)
            for gid, c in graded.cells.items()
            if not gid.startswith("quiz") and (not c.full or c.message or c.stderr)}


def synthetic_class(n: int, seed: int = 1) -> tuple[dict, dict]:
    """`n` students with a spread of real messages (from autograder.explain and the quiz),
    for size and speed checks (bench/report_time.py uses it too)."""
    import random

    from autograder import explain

    rng = random.Random(seed)
    right = right_answers()
    points = graded_cells()
    build = [g for g in points if not g.startswith("quiz")]
    messages = [(m.message, m.key) for m in explain.AT_REQUEST + explain.IN_CELL if isinstance(m.message, str)]
    messages += [("`POOL_SIZE` is the string '5'; write the number without quotes: POOL_SIZE = 5.", None),
                 ("`DATABASE_URL` does not name the aiosqlite driver ('sqlite:///./test.db'): the URL reads "
                  "dialect+driver://location, so write \"sqlite+aiosqlite:///./test.db\".", None)]
    students, report = {}, {}
    for k in range(n):
        sid = f"student{k:04d}"
        cells = {}
        for gid in build:
            if rng.random() < 0.15:
                cells[gid] = failed(gid, *rng.choice(messages))
        answers = {qid: (letter if rng.random() < 0.7 else rng.choice("ABCD")) for qid, letter in right.items()
                   if rng.random() < 0.97}
        cells.update(quiz_cells(answers))
        students[sid] = {"cells": cells, "answers": answers}
        report[sid] = {"status": "graded", "seconds": f"{rng.uniform(3, 40):.1f}", "sandbox": "on",
                       "score": "", "max_score": str(sum(points.values()))}
    return students, report
