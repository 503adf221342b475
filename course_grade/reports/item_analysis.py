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

from course_grade import reasons
from course_grade.late import course_penalty_method
from course_grade.nbgrader_ext.grade_quiz_answers import QUIZ_CELL
from course_grade.reports.attention import Attention, answer_cells, assess, read_facts
from course_grade.reports.failures import Shown, classify, first_clause, quiz_group
from course_grade.reports.grading_report import read_grading_report
from course_grade.reports.items import (
    LETTERS,
    QUIZ_STEP,
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
    # who needs a look, and why (everyone submitted, graded or not)
    submitted_dir = course_root / "submitted"
    everyone = sorted(set(subs) | set(report or {})
                      | {p.parent.name for p in submitted_dir.glob(f"*/{assignment}") if p.is_dir()})
    collected = {s: quiz_answers_state(submitted_dir / s / assignment) for s in everyone}
    answers = {s: found for s, (found, _state) in collected.items()}
    released = answer_cells(_json(release)) if release.is_file() else None
    questions = [m["qid"] for gid, _, _ in cells if (m := QUIZ_CELL.fullmatch(gid))]
    attention: list[Attention] = []
    for s in everyone:
        facts = read_facts(course_root, assignment, s, (report or {}).get(s, {}), subs.get(s), collected[s])
        attention += assess(facts, released, questions)
    absent = {a.student: a for a in attention if a.code in (reasons.BLANK, reasons.NEARLY_BLANK)}

    quiz_text = {}
    try:
        from autograder import quiz as quiz_module

        quiz_text = {q.id: q for q in quiz_module.load("test")}
    except Exception as exc:
        log.debug("quiz questions unavailable: %s", exc)

    titles = {gid: c.title for gid, c in checks.items()}
    items: list[Item] = []
    # student -> grade_id -> (the mistake it cost, the cell that says it); a gate: ("", the checks waited on)
    blame: dict[str, dict[str, tuple]] = defaultdict(dict)
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
            q = quiz_text.get(item.qid)
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
            if s in absent:  # nothing (or almost nothing) answered: not a mistake, on the attention list
                key, kind, label = f"absent:{absent[s].code}", "absent", f"{absent[s].code} submission"
                message = absent[s].found
            elif item.is_quiz:
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
                        blame[s][gid] = (up_key, up)
            elif kind == "gate":  # the hidden check waits on visible ones: it costs their mistake
                blame[s][gid] = ("", cell.record.waiting_for)
            elif kind in ("named", "message"):
                blame[s][gid] = (key, gid)
            elif kind == "quiz":
                blame[s][gid] = (f"{item.qid}:{key}", gid)
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
    submissions = []
    for s in everyone:
        row = (report or {}).get(s, {})
        in_gb = s in subs and s in scores
        submissions.append(Submission(
            student=s,
            score=totals.get(s) if in_gb else as_float(row.get("score", "")),
            max_score=max_total if in_gb else as_float(row.get("max_score", "")),
            seconds=as_float(row.get("seconds", "")),
            status=row.get("status", "") or ("graded" if in_gb else "not graded"),
            note=row.get("note", ""), removed_cells=row.get("removed_cells", ""), sandbox=row.get("sandbox", ""),
            flagged=bool(subs.get(s, {}).get("flagged")), left_out=row.get("left_out", ""),
            late=subs.get(s, {}).get("late")))

    lost = {s: {gid: points - scores[s][gid] for gid, points, _ in cells} for s in graded}
    teach = _teach(items, headings, blame, lost)
    names = {s: row["name"] for s, row in subs.items() if row.get("name")}
    emails = {s: row["email"] for s, row in subs.items() if row.get("email")}
    return Analysis(assignment, course_root, datetime.datetime.now().strftime("%Y-%m-%d %H:%M"), graded, max_total,
                    items, steps, submissions, teach, lesson, report is not None, attention, names, emails)


def _json(path: Path) -> dict:
    import json

    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _teach(items: list[Item], headings: dict[str, str], blame: dict[str, dict[str, tuple]],
           lost: dict[str, dict[str, float]]) -> list[Teach]:
    """The mistakes that cost the class most points: each student counted once per mistake,
    with every cell it cost them (cells pointing up to it, hidden checks waiting on a cell it
    failed); build steps and quiz answers together, the costliest first."""
    by_id = {i.grade_id: i for i in items}
    label, example, where = {}, {}, {}
    for item in items:
        for g in item.groups:
            if not g.is_mistake:
                continue
            key = f"{item.qid}:{g.key}" if item.is_quiz else g.key
            if key not in label:
                label[key] = f"Quiz question {item.number}, {g.label}" if item.is_quiz else g.label
                if item.is_quiz and item.correct:
                    label[key] += f" (the answer is {item.correct})"
                example[key], where[key] = g.example, item
    cost: dict[str, dict[str, float]] = defaultdict(dict)   # mistake -> student -> points lost
    for student, cells in blame.items():
        for gid, (key, via) in cells.items():
            if not key:  # a gate: the mistake of the first check it waits on that this student failed
                key = next((cells[c][0] for c in via if c in cells and cells[c][0]), "")
            if key in label:
                cost[key][student] = cost[key].get(student, 0.0) + lost[student][gid]
    ranked = sorted(cost, key=lambda k: (-sum(cost[k].values()), -len(cost[k]), label[k]))
    return [Teach(_mistake_id(key, label[key]), label[key], where[key].step, headings.get(where[key].grade_id, ""),
                  example[key], sorted(cost[key]), sum(cost[key].values()))
            for key in ranked if by_id.get(where[key].grade_id)]


def _mistake_id(key: str, label: str) -> str:
    """The id a spreadsheet gets: the named mistake's key, "quiz_id:B", or for a message no named
    mistake matches "unnamed:" and its first words ("unnamed:app_does_not_answer_get_items")."""
    if key.startswith("named:"):
        return key.split(":", 1)[1]
    if ":quiz:" in key:
        return key.replace(":quiz:", ":")
    words = re.findall(r"[a-z0-9]+", label.lower())
    return "unnamed:" + "_".join(words[:6])


# -------------------------------------------------------------------------------- writing

CSV_COLUMNS = ["kind", "id", "step", "title", "points", "students", "passed", "failed", "pass_rate", "difficulty",
               "discrimination", "mean_score", "correct", "A", "B", "C", "D", "unanswered", "flags", "mistakes"]
# ASSIGNMENT-teach.csv: every mistake, the costliest first (ids, never sentences, in the id columns)
TEACH_COLUMNS = ["rank", "mistake", "step", "what", "points_lost", "students", "student_ids"]
# ASSIGNMENT-students.csv: one line per student, for a mail merge
STUDENT_COLUMNS = ["student", "name", "email", "score", "max_score", "late_penalty", "score_after_penalty",
                   "attention", "to_do", "mistake_ids", "mistakes"]


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
               "mistakes": _mistake_counts(i)}
        if i.is_quiz:
            row.update({"difficulty": _fmt(i.p), "correct": i.correct, "flags": "; ".join(i.flags),
                        **{k: str(v) for k, v in i.options.items()}})
        else:
            row["pass_rate"] = _fmt(i.p)
        rows.append(row)
    return rows


def _mistake_counts(item: Item) -> str:
    """'closed_connection=3; unnamed=1': the item's mistakes by id (unnamed: a message no
    named mistake matches); pointers, gates and answers not given are not mistakes."""
    counts: Counter = Counter()
    for g in item.groups:
        if g.is_mistake:
            counts[g.key.split(":", 1)[1] if g.kind in ("named", "quiz") else "unnamed"] += g.count
    return "; ".join(f"{k}={n}" for k, n in counts.items())


def teach_rows(analysis: Analysis) -> list[dict[str, str]]:
    return [{"rank": str(k), "mistake": t.key, "step": str(t.step), "what": t.label,
             "points_lost": f"{t.points_lost:g}", "students": str(t.count), "student_ids": " ".join(t.students)}
            for k, t in enumerate(analysis.teach, start=1)]


def student_rows(analysis: Analysis) -> list[dict[str, str]]:
    """Everyone submitted: score, the late penalty, the attention list's codes and what to do,
    and the mistakes they made (ids and sentences in their own columns)."""
    made: dict[str, list] = defaultdict(list)
    for t in analysis.teach:
        for s in t.students:
            made[s].append(t)
    look = analysis.to_look_at
    rows = []
    for sub in analysis.submissions:
        s = sub.student
        late = sub.late
        penalty = late.penalty if late is not None and late.is_late else 0.0
        rows.append({"student": s, "name": analysis.names.get(s, ""), "email": analysis.emails.get(s, ""),
                     "score": _fmt(sub.score, 2), "max_score": _fmt(sub.max_score, 2),
                     "late_penalty": f"{penalty:g}",
                     "score_after_penalty": _fmt(None if sub.score is None else max(0.0, sub.score - penalty), 2),
                     "attention": "; ".join(a.code for a in look.get(s, [])),
                     "to_do": " | ".join(f"{a.found}: {a.to_do}" for a in look.get(s, [])),
                     "mistake_ids": "; ".join(t.key for t in made[s]),
                     "mistakes": " | ".join(t.label for t in made[s])})
    return rows
