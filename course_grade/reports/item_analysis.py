"""Item analysis: what did the class get wrong? One report per assignment, after grading.

    course-grade report connection-pooling [--course DIR]

`build(course_root, assignment)` reads, without running anything:
- the course gradebook (nbgrader's `gradebook.db`): every submission's score per grade cell
  (`Grade.score`: the auto score, or the instructor's manual score where one was given), the
  `flagged` mark, and the source of each quiz cell (its hidden test holds the key);
- the autograded notebooks (`autograded/<student>/<assignment>/<assignment>.ipynb`): the
  record each graded cell's check left (autograder.records), and whether it wrote to stderr;
- the quiz answers as collected (`submitted/<student>/<assignment>/quiz_answers.json`);
- `grading-report.csv` of the grading command (seconds, status, note, removed cells,
  sandbox), when there is one (after plain `nbgrader autograde` those columns stay empty).

`course_grade.reports.item_report.write(analysis, out_dir)` writes `ASSIGNMENT.html` (one
self-contained page: inline SVG plots, no script, no external file) and `ASSIGNMENT.csv`
(one row per item).

The pieces: `items` (the data model), `readers` (what is read), `failures` (how failures
are grouped), `statistics` (the quiz's numbers), `item_analysis_html` (the page).
"""
from __future__ import annotations

import dataclasses
import datetime
import logging
import re
from collections import Counter, defaultdict
from pathlib import Path

from course_grade.late import course_penalty_method
from course_grade.nbgrader_ext.grade_quiz_answers import QUIZ_CELL
from course_grade.reports.failures import Shown, classify, first_clause, quiz_group
from course_grade.reports.grading_report import read_grading_report
from course_grade.reports.items import (
    LETTERS,
    QUIZ_STEP,
    TEACH_TOP,
    UNANSWERED,
    Analysis,
    Group,
    Item,
    ReportError,
    Step,
    Submission,
    Teach,
)
from course_grade.reports.readers import (
    as_float,
    cell_results,
    checks_by_id,
    gradebook_scores,
    quiz_answers_state,
    quiz_keys,
    step_headings,
    step_of,
)
from course_grade.reports.statistics import point_biserial, quiz_flags

log = logging.getLogger(__name__)

# ------------------------------------------------------------------------------ the model

# ------------------------------------------------------------------------------ statistics

# -------------------------------------------------------------------- grouping the messages

# ------------------------------------------------------------------------------- reading

# ------------------------------------------------------------------------------- building

def build(course_root: Path, assignment: str) -> Analysis:
    """Read the course's grading results of `assignment` (see the module's docstring). Raises
    ReportError with one line saying what to do when there is nothing to report on."""
    course_root = Path(course_root).resolve()
    gradebook = course_root / "gradebook.db"
    if not gradebook.is_file():
        raise ReportError(f"no gradebook.db in {course_root}: run this in the course folder (or pass --course DIR) "
                          f"after grading with `course-grade grade {assignment}`")
    cells, sources, subs = gradebook_scores(gradebook, assignment)
    report = read_grading_report(course_root)
    # a submission the grading command recorded without grades (0 points, flagged) is listed
    # with its reason below, and left out of the statistics: nothing of it was graded
    unscored = {s for s, row in (report or {}).items()
                if row.get("status") not in ("", "graded") and not row.get("score")}
    graded = sorted(s for s, row in subs.items()
                    if s not in unscored and any(v is not None for v in row["grades"].values()))
    if not graded:
        raise ReportError(f"nothing of {assignment!r} is graded yet: "
                          f"grade it first with `course-grade grade {assignment}` "
                          f"(or `nbgrader autograde {assignment}`)")
    if any(row["late"].is_late for row in subs.values()):  # the late rule's name, from the course config
        method = course_penalty_method(course_root)
        for row in subs.values():
            row["late"] = dataclasses.replace(row["late"], method=method)
    checks = checks_by_id()
    keys = quiz_keys(sources)
    release = course_root / "release" / assignment / f"{assignment}.ipynb"
    source = course_root / "source" / assignment / f"{assignment}.ipynb"
    lesson = release if release.is_file() else None
    headings = step_headings(lesson or (source if source.is_file() else None))

    # scores: student -> grade_id -> score (None: not graded counts 0)
    scores = {s: {gid: subs[s]["grades"].get(gid) or 0.0 for gid, _, _ in cells} for s in graded}
    totals = {s: sum(scores[s].values()) for s in graded}
    max_total = sum(m for _, m, _ in cells)

    # what each graded cell left: student -> grade_id -> Shown
    shown = {}
    for s in graded:
        found = {}
        for nb_name in sorted({nb for _, _, nb in cells}):
            found.update(cell_results(course_root / "autograded" / s / assignment / f"{nb_name}.ipynb"))
        shown[s] = found
    collected = {s: quiz_answers_state(course_root / "submitted" / s / assignment) for s in graded}
    answers = {s: found for s, (found, _state) in collected.items()}

    questions = {}
    try:
        from autograder import quiz as quiz_module

        questions = {q.id: q for q in quiz_module.load("test")}
    except Exception as exc:
        log.debug("quiz questions unavailable: %s", exc)

    titles = {gid: c.title for gid, c in checks.items()}
    items: list[Item] = []
    for gid, points, _nb in cells:
        step = step_of(gid, checks)
        check = checks.get(gid)
        item = Item(gid, step if step is not None else "other",
                    check.title if check else (headings.get(gid) or gid), points)
        full = [1 if scores[s][gid] >= points - 1e-9 else 0 for s in graded]
        item.n, item.passed = len(graded), sum(full)
        item.p = item.passed / item.n if item.n else None
        item.r = point_biserial(full, [totals[s] - scores[s][gid] for s in graded])
        if item.is_quiz:
            match = QUIZ_CELL.fullmatch(gid)
            item.qid = match["qid"] if match else gid
            item.number = int(re.match(r"quiz(\d+)", gid).group(1)) if re.match(r"quiz(\d+)", gid) else 0
            q = questions.get(item.qid)
            if q is not None:
                item.title = f"Question {q.number} ({q.difficulty}): {q.prompt}"
                item.number = q.number
                item.option_text = dict(zip(LETTERS, q.options, strict=False))
            item.correct = keys.get(gid, {}).get("correct", "")
            chosen = Counter((answers[s] or {}).get(item.qid, UNANSWERED) for s in graded)
            item.options = ({letter: chosen.get(letter, 0) for letter in LETTERS}
                            | {UNANSWERED: chosen.get(UNANSWERED, 0)})
            item.flags = quiz_flags(item.p, item.r, item.options, item.correct)
        # the failures, grouped
        groups: dict[str, Group] = {}
        examples: dict[str, Counter] = defaultdict(Counter)
        for s, ok in zip(graded, full, strict=False):
            if ok:
                continue
            cell = shown[s].get(gid, Shown())
            if item.is_quiz:
                key, kind, label = quiz_group(*collected[s], item.qid)
                message = cell.error  # the quiz's verdict, as the student read it
            else:
                key, kind, label = classify(cell, titles)
                message = cell.message
            if kind == "pointer":  # name the mistake it points to, when that cell's record is there
                up = cell.record.same_as
                if up in shown[s]:
                    up_key, up_kind, up_label = classify(shown[s][up], titles)
                    if up_kind in ("named", "message"):
                        key, label = f"pointer:{up_key}", f"same mistake as above: {up_label}"
            group = groups.setdefault(key, Group(key, kind, label, ""))
            group.students.append(s)
            examples[key][message] += 1
        for key, group in groups.items():
            group.example = examples[key].most_common(1)[0][0]
            if group.kind in ("named", "message"):  # what most of them read, with its real values
                group.label = first_clause(group.example)
            if group.kind == "quiz" and key.startswith("quiz:") and key[5:] in item.option_text:
                group.label = f"chose {key[5:]}: {item.option_text[key[5:]]}"
        item.groups = sorted(groups.values(), key=lambda g: (not g.is_mistake, -g.count, g.label))
        items.append(item)

    # steps
    step_names = {}
    try:
        from autograder.registry import STEPS

        step_names = dict(STEPS)
    except Exception:
        pass
    order = sorted({i.step for i in items},
                   key=lambda st: (isinstance(st, str), st if isinstance(st, int) else 0, str(st)))
    steps = []
    for st in order:
        members = [i for i in items if i.step == st]
        heading = next((headings.get(i.grade_id, "") for i in members if headings.get(i.grade_id)), "")
        name = step_names.get(st, "the graded quiz" if st == QUIZ_STEP else str(st))
        steps.append(Step(st, name, heading, sum(i.points for i in members),
                          [sum(scores[s][i.grade_id] for i in members) for s in graded]))

    # submissions
    everyone = sorted(set(subs) | set(report or {}))
    submissions = []
    for s in everyone:
        row = (report or {}).get(s, {})
        in_gb = s in subs and s in scores
        sub = Submission(
            student=s,
            score=totals.get(s) if in_gb else as_float(row.get("score", "")),
            max_score=max_total if in_gb else as_float(row.get("max_score", "")),
            seconds=as_float(row.get("seconds", "")),
            status=row.get("status", "") or ("graded" if in_gb else "not graded"),
            note=row.get("note", ""), removed_cells=row.get("removed_cells", ""), sandbox=row.get("sandbox", ""),
            flagged=bool(subs.get(s, {}).get("flagged")), left_out=row.get("left_out", ""),
            late=subs.get(s, {}).get("late"))
        if sub.removed_cells:
            n = len([c for c in sub.removed_cells.split("; ") if c])
            sub.reasons.append(f"REVIEW: tampering: removed {n} cell(s) that reached for the grader: "
                               f"{sub.removed_cells}")
        elif sub.flagged:
            sub.reasons.append("REVIEW: flagged in the gradebook (tampering analysis or the formgrader)")
        if sub.sandbox and sub.sandbox != "on":
            sub.reasons.append(f"graded without the sandbox: {sub.sandbox}")
        if sub.status and sub.status != "graded":
            sub.reasons.append(f"{sub.status}: {sub.note}" if sub.note else sub.status)
        submissions.append(sub)

    teach = _teach(items, headings)
    return Analysis(assignment, course_root, datetime.datetime.now().strftime("%Y-%m-%d %H:%M"), graded, max_total,
                    items, steps, submissions, teach, lesson, report is not None)


def _teach(items: list[Item], headings: dict[str, str]) -> list[Teach]:
    """The most common mistakes across the class (distinct students, each mistake counted
    once per student however many cells it cost), each with the step it belongs to."""
    students: dict[str, set] = defaultdict(set)
    where: dict[str, Counter] = defaultdict(Counter)
    label, example = {}, {}
    for item in items:
        for g in item.groups:
            if not g.is_mistake:
                continue
            key = f"{item.qid}:{g.key}" if item.is_quiz else g.key
            students[key].update(g.students)
            where[key][item.grade_id] += g.count
            if key not in label:
                label[key] = f"Quiz question {item.number}, {g.label}" if item.is_quiz else g.label
                if item.is_quiz and item.correct:
                    label[key] += f" (the answer is {item.correct})"
                example[key] = g.example
    by_id = {i.grade_id: i for i in items}
    ranked = sorted(students, key=lambda k: (-len(students[k]), label[k]))[:TEACH_TOP]
    out = []
    for key in ranked:
        gid = where[key].most_common(1)[0][0]
        out.append(Teach(label[key], len(students[key]), by_id[gid].step, headings.get(gid, ""), example[key], key))
    return out


# -------------------------------------------------------------------------------- writing

CSV_COLUMNS = ["kind", "id", "step", "title", "points", "students", "passed", "failed", "pass_rate", "difficulty",
               "discrimination", "mean_score", "correct", "A", "B", "C", "D", "unanswered", "flags", "mistakes"]


def _fmt(value: float | None, digits: int = 3) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def csv_rows(analysis: Analysis) -> list[dict[str, str]]:
    rows = []
    for st in analysis.steps:
        n = len(st.scores)
        full = sum(1 for v in st.scores if v >= st.max_points - 1e-9)
        rows.append({"kind": "step", "id": f"step{st.step}" if isinstance(st.step, int) else str(st.step),
                     "step": str(st.step), "title": st.heading or st.name, "points": f"{st.max_points:g}",
                     "students": str(n), "passed": str(full), "failed": str(n - full),
                     "pass_rate": _fmt(full / n if n else None), "mean_score": _fmt(sum(st.scores) / n if n else None)})
    for i in analysis.items:
        row = {"kind": "quiz" if i.is_quiz else "cell", "id": i.grade_id, "step": str(i.step), "title": i.title,
               "points": f"{i.points:g}", "students": str(i.n), "passed": str(i.passed), "failed": str(i.failed),
               "discrimination": _fmt(i.r),
               "mistakes": "; ".join(f"{g.key.split(':', 1)[-1] if g.kind == 'named' else g.label}={g.count}"
                                     for g in i.groups)}
        if i.is_quiz:
            row.update({"difficulty": _fmt(i.p), "correct": i.correct, "flags": "; ".join(i.flags),
                        **{k: str(v) for k, v in i.options.items()}})
        else:
            row["pass_rate"] = _fmt(i.p)
        rows.append(row)
    return rows
