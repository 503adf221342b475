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

`course_grade.reports.item_report.write(analysis, out_dir)` writes `ASSIGNMENT.html` (one self-contained page: inline SVG
plots, no script, no external file) and `ASSIGNMENT.csv` (one row per item).

Failures are grouped by their records: by the named mistake (`autograder.explain`'s
tables) a record names; other failures by their message's first sentence with numbers and
quoted values replaced. A failure that points up to an earlier check (`same_as`) or a hidden
check waiting for visible ones (`waiting_for`) is grouped as such and never counted as a new
mistake. Quiz failures are grouped by the answer collected.

Quiz statistics (classical test theory), over the graded students:
- difficulty p: the proportion of students who got the question right;
- discrimination: the point-biserial correlation between the item (1 right, 0 wrong) and
  the REST score, the student's total score on the assignment minus this item's score:

      r_pb = (M1 - M0) / s_n * sqrt(p * q)

  with M1 (M0) the mean rest score of the students who got the item right (wrong), p the
  proportion right, q = 1 - p, and s_n the population standard deviation (divide by n) of
  the rest score over all n students. It is undefined (shown as "—") when everyone got the
  item right, or everyone wrong, or every rest score is the same.
Flags: too easy (p > 0.9), too hard (p < 0.2), negatively discriminating (r < 0), and a
wrong option nobody chose (a distractor that does no work).
"""
from __future__ import annotations

import csv
import dataclasses
import datetime
import json
import logging
import math
import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path

from autograder.records import CheckRecord, by_cell
from course_grade import safe_csv
from course_grade.course import REPORT_FILE, UsageError

log = logging.getLogger(__name__)

LETTERS = "ABCD"
UNANSWERED = "unanswered"
TOO_EASY, TOO_HARD = 0.9, 0.2
TEACH_TOP = 5
QUIZ_STEP = "quiz"
_STEP_CELL = re.compile(r"^step(\d+)_")
_QUIZ_CELL = re.compile(r"quiz\d+_(?P<qid>\w+)")


class ReportError(UsageError):
    """Bad input (unknown assignment, no gradebook, nothing graded yet): one line saying what to do."""


# ------------------------------------------------------------------------------ the model

@dataclasses.dataclass
class Group:
    """Students whose failure message in one cell names the same mistake."""
    key: str                 # "named:closed_connection", "message:<first sentence>", "pointer:...", "gate", "quiz:B", ...
    kind: str                # named | message | pointer | gate | quiz | silent
    label: str               # what is wrong, short
    example: str             # one message as a student read it (the most common one)
    students: list[str] = dataclasses.field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.students)

    @property
    def is_mistake(self) -> bool:
        """A new mistake (not a pointer up, a gate, or a cell with nothing to say)."""
        return self.kind in ("named", "message", "quiz")


@dataclasses.dataclass
class Item:
    """One graded cell: a build check, or a graded quiz question."""
    grade_id: str
    step: int | str          # 1..4, or "quiz"
    title: str
    points: float
    n: int = 0
    passed: int = 0
    p: float | None = None               # pass rate = difficulty (proportion with full marks)
    r: float | None = None               # point-biserial discrimination against the rest score
    groups: list[Group] = dataclasses.field(default_factory=list)
    # quiz only
    qid: str = ""
    number: int = 0
    correct: str = ""
    options: dict[str, int] = dataclasses.field(default_factory=dict)   # A-D and "unanswered" -> students
    option_text: dict[str, str] = dataclasses.field(default_factory=dict)
    flags: list[str] = dataclasses.field(default_factory=list)

    @property
    def is_quiz(self) -> bool:
        return self.step == QUIZ_STEP

    @property
    def failed(self) -> int:
        return self.n - self.passed


@dataclasses.dataclass
class Step:
    step: int | str
    name: str
    heading: str             # the lesson's heading of this step ("" when not found)
    max_points: float
    scores: list[float] = dataclasses.field(default_factory=list)   # one per graded student

    @property
    def label(self) -> str:
        return "Quiz" if self.step == QUIZ_STEP else f"Step {self.step}"


@dataclasses.dataclass
class Submission:
    student: str
    score: float | None
    max_score: float | None
    seconds: float | None
    status: str
    note: str
    removed_cells: str
    sandbox: str
    flagged: bool
    left_out: str = ""
    reasons: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Teach:
    """One line of "what to teach again"."""
    label: str
    count: int
    step: int | str
    heading: str
    example: str
    key: str


@dataclasses.dataclass
class Analysis:
    assignment: str
    course_root: Path
    generated: str
    students: list[str]                    # graded students (the items' population)
    max_score: float
    items: list[Item]
    steps: list[Step]
    submissions: list[Submission]
    teach: list[Teach]
    lesson_notebook: Path | None           # the released lesson notebook (for links)
    has_grading_report: bool

    @property
    def cells(self) -> list[Item]:
        return [i for i in self.items if not i.is_quiz]

    @property
    def quiz(self) -> list[Item]:
        return [i for i in self.items if i.is_quiz]

    @property
    def flagged(self) -> list[Submission]:
        return [s for s in self.submissions if s.reasons]


# ------------------------------------------------------------------------------ statistics

def point_biserial(item: Sequence[float], rest: Sequence[float]) -> float | None:
    """r_pb = (M1 - M0) / s_n * sqrt(p * q), see the module's docstring. `item`: 0/1 per
    student; `rest`: the student's total score minus this item's score. None when undefined
    (fewer than two students, p = 0 or 1, or no spread in the rest score)."""
    n = len(item)
    if n < 2 or len(rest) != n:
        return None
    ones = [r for i, r in zip(item, rest, strict=False) if i]
    zeros = [r for i, r in zip(item, rest, strict=False) if not i]
    if not ones or not zeros:
        return None
    p = len(ones) / n
    mean = sum(rest) / n
    s_n = math.sqrt(sum((r - mean) ** 2 for r in rest) / n)   # population SD: divide by n
    if s_n < 1e-12:
        return None
    m1, m0 = sum(ones) / len(ones), sum(zeros) / len(zeros)
    return (m1 - m0) / s_n * math.sqrt(p * (1 - p))


def quiz_flags(p: float | None, r: float | None, options: dict[str, int], correct: str) -> list[str]:
    """The reasons to look at a quiz question again (see the module's docstring)."""
    flags = []
    if p is not None and p > TOO_EASY:
        flags.append(f"too easy (p > {TOO_EASY:g})")
    if p is not None and p < TOO_HARD:
        flags.append(f"too hard (p < {TOO_HARD:g})")
    if r is not None and r < 0:
        flags.append("negatively discriminating (r < 0): strong students got it wrong more often")
    unchosen = [letter for letter in LETTERS if letter != correct and options.get(letter, 0) == 0]
    if unchosen and sum(options.values()):
        flags.append(f"distractor{'s' if len(unchosen) > 1 else ''} nobody chose: {', '.join(unchosen)}")
    return flags


# -------------------------------------------------------------------- grouping the messages

_WRAPPED = re.compile(r"^Your step \d+ cell stopped with an error: ")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z(`“])")


def _first_clause(message: str) -> str:
    """What is wrong, for a label: a message's words before its first ': ' (its first sentence if none)."""
    text = _WRAPPED.sub("", message.strip())
    sentence = _first_sentence(text)
    clause = sentence.split(": ", 1)[0] if ": " in sentence else sentence
    return clause.rstrip(".;:, ")


def _first_sentence(text: str) -> str:
    return _SENTENCE_END.split(text.strip(), 1)[0]


def normalise(message: str) -> str:
    """The first sentence with its variable bits replaced: quoted values by '…', numbers by N."""
    text = _first_sentence(_WRAPPED.sub("", message.strip()))
    # a quote opens after a space, a bracket or a sign, never inside a word (SQLite's, don't)
    text = re.sub(r"(?<![\w'])'[^']*'(?!\w)", "'…'", text)
    text = re.sub(r'(?<!\w)"[^"]*"(?!\w)', '"…"', text)
    text = re.sub(r"\d+(?:\.\d+)?", "N", text)
    return text[:200]


@dataclasses.dataclass(frozen=True)
class Shown:
    """What a graded cell left: its check's record (None: no check gave one), its error when
    it has no record (a CheckFailed's sentence alone, any other "Name: text"), and whether it
    wrote to stderr."""
    record: CheckRecord | None = None
    error: str = ""
    stderr: bool = False

    @property
    def message(self) -> str:
        """What the student read."""
        return self.record.message if self.record is not None and not self.record.passed else self.error


def classify(shown: Shown, titles: dict[str, str] | None = None) -> tuple[str, str, str]:
    """(group key, kind, label) of a failed build cell, from its record. `titles`: check name
    -> its title, for the label of a failure that points up to another check."""
    record = shown.record
    if record is None or record.passed:
        if not shown.error:
            if shown.stderr:
                return "silent:stderr", "silent", "the cell wrote to stderr, which nbgrader scores 0"
            return "silent:none", "silent", "no message (a partial or manual score)"
        text = normalise(shown.error)  # the cell failed before its check gave a result
        return f"message:{text}", "message", _first_clause(shown.error)
    if record.waiting_for:
        return "gate", "gate", "hidden check not counted: the visible checks it builds on did not pass"
    if record.same_as:
        title = (titles or {}).get(record.same_as, record.same_as)
        return f"pointer:{record.same_as}", "pointer", f"same reason as “{title}” above"
    if record.mistake:
        return f"named:{record.mistake}", "named", _first_clause(record.message)
    return f"message:{normalise(record.message)}", "message", _first_clause(record.message)


def quiz_group(answers: dict[str, str] | None, state: str, qid: str) -> tuple[str, str, str]:
    """(group key, kind, label) of a quiz question lost, from the answers as collected
    (`state`: saved, missing or damaged)."""
    if state == "missing":
        return "quiz:missing", "quiz", "no quiz_answers.json submitted"
    if state == "damaged" or answers is None:
        return "quiz:damaged", "quiz", "quiz_answers.json damaged"
    letter = answers.get(qid)
    if letter is None:
        return "quiz:unanswered", "quiz", "not answered"
    return f"quiz:{letter}", "quiz", f"chose {letter}"


# ------------------------------------------------------------------------------- reading

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


def read_grading_report(course_root: Path) -> dict[str, dict[str, str]] | None:
    """student -> row of grading-report.csv (column -> text); None when there is none."""
    try:
        with open(course_root / REPORT_FILE, newline="", encoding="utf-8") as f:
            rows = [{k: safe_csv.restore(v or "") for k, v in row.items() if k} for row in csv.DictReader(f)]
        return {row["student"]: row for row in rows if row.get("student")}
    except (OSError, KeyError, csv.Error, UnicodeDecodeError):
        return None


def _checks() -> dict[str, object]:
    """grade_id -> the registry's declaration (step, description), {} if unavailable."""
    try:
        import autograder.checks  # noqa: F401 - declares every check
        from autograder import registry

        return {c.name: c for c in registry.declared()}
    except Exception as exc:  # the registry is a nicety: grade ids name their step too
        log.debug("registry unavailable: %s", exc)
        return {}


def _headings(nb_path: Path | None) -> dict[str, str]:
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


def _step_of(gid: str, checks: dict) -> int | str | None:
    if _QUIZ_CELL.fullmatch(gid) or gid.startswith("quiz"):
        return QUIZ_STEP
    if gid in checks:
        return checks[gid].step
    found = _STEP_CELL.match(gid)
    return int(found.group(1)) if found else None


def _gradebook_rows(gradebook: Path, assignment: str):
    """(grade cells [(grade_id, max_score, notebook)], quiz cell sources {grade_id: source},
    {student: {"grades": {grade_id: score or None}, "flagged": bool}}) from the gradebook."""
    from nbgrader.api import MissingEntry

    from course_grade.course import open_gradebook

    with open_gradebook(gradebook) as gb:
        try:
            a = gb.find_assignment(assignment)
        except MissingEntry:
            known = ", ".join(x.name for x in gb.assignments) or "none"
            raise ReportError(f"unknown assignment {assignment!r} (the gradebook has: {known}): give one of those names") from None
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
            subs[sub.student_id] = {"grades": grades, "flagged": flagged}
    return cells, sources, subs


def _quiz_keys(sources: dict[str, str]) -> dict[str, dict]:
    from course_grade.nbgrader_ext.grade_quiz_answers import QuizKeyError, read_key

    keys = {}
    for gid, source in sources.items():
        match = _QUIZ_CELL.fullmatch(gid)
        if match:
            try:
                keys[gid] = read_key(source, match["qid"])
            except QuizKeyError as exc:
                log.debug("no key for %s: %s", gid, exc)
    return keys


def _float(text: str) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


# ------------------------------------------------------------------------------- building

def build(course_root: Path, assignment: str) -> Analysis:
    """Read the course's grading results of `assignment` (see the module's docstring). Raises
    ReportError with one line saying what to do when there is nothing to report on."""
    course_root = Path(course_root).resolve()
    gradebook = course_root / "gradebook.db"
    if not gradebook.is_file():
        raise ReportError(f"no gradebook.db in {course_root}: run this in the course folder (or pass --course DIR) "
                          f"after grading with `course-grade grade {assignment}`")
    cells, sources, subs = _gradebook_rows(gradebook, assignment)
    report = read_grading_report(course_root)
    # a submission the grading command recorded without grades (0 points, flagged) is listed
    # with its reason below, and left out of the statistics: nothing of it was graded
    unscored = {s for s, row in (report or {}).items() if row.get("status") not in ("", "graded") and not row.get("score")}
    graded = sorted(s for s, row in subs.items()
                    if s not in unscored and any(v is not None for v in row["grades"].values()))
    if not graded:
        raise ReportError(f"nothing of {assignment!r} is graded yet: grade it first with `course-grade grade {assignment}` "
                          f"(or `nbgrader autograde {assignment}`)")
    checks = _checks()
    keys = _quiz_keys(sources)
    release = course_root / "release" / assignment / f"{assignment}.ipynb"
    source = course_root / "source" / assignment / f"{assignment}.ipynb"
    lesson = release if release.is_file() else None
    headings = _headings(lesson or (source if source.is_file() else None))

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
        step = _step_of(gid, checks)
        check = checks.get(gid)
        item = Item(gid, step if step is not None else "other",
                    check.title if check else (headings.get(gid) or gid), points)
        full = [1 if scores[s][gid] >= points - 1e-9 else 0 for s in graded]
        item.n, item.passed = len(graded), sum(full)
        item.p = item.passed / item.n if item.n else None
        item.r = point_biserial(full, [totals[s] - scores[s][gid] for s in graded])
        if item.is_quiz:
            match = _QUIZ_CELL.fullmatch(gid)
            item.qid = match["qid"] if match else gid
            item.number = int(re.match(r"quiz(\d+)", gid).group(1)) if re.match(r"quiz(\d+)", gid) else 0
            q = questions.get(item.qid)
            if q is not None:
                item.title = f"Question {q.number} ({q.difficulty}): {q.prompt}"
                item.number = q.number
                item.option_text = dict(zip(LETTERS, q.options, strict=False))
            item.correct = keys.get(gid, {}).get("correct", "")
            chosen = Counter((answers[s] or {}).get(item.qid, UNANSWERED) for s in graded)
            item.options = {letter: chosen.get(letter, 0) for letter in LETTERS} | {UNANSWERED: chosen.get(UNANSWERED, 0)}
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
                group.label = _first_clause(group.example)
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
    order = sorted({i.step for i in items}, key=lambda st: (isinstance(st, str), st if isinstance(st, int) else 0, str(st)))
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
            score=totals.get(s) if in_gb else _float(row.get("score", "")),
            max_score=max_total if in_gb else _float(row.get("max_score", "")),
            seconds=_float(row.get("seconds", "")), status=row.get("status", "") or ("graded" if in_gb else "not graded"),
            note=row.get("note", ""), removed_cells=row.get("removed_cells", ""), sandbox=row.get("sandbox", ""),
            flagged=bool(subs.get(s, {}).get("flagged")), left_out=row.get("left_out", ""))
        if sub.removed_cells:
            n = len([c for c in sub.removed_cells.split("; ") if c])
            sub.reasons.append(f"REVIEW: tampering: removed {n} cell(s) that reached for the grader: {sub.removed_cells}")
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
               "mistakes": "; ".join(f"{g.key.split(':', 1)[-1] if g.kind == 'named' else g.label}={g.count}" for g in i.groups)}
        if i.is_quiz:
            row.update({"difficulty": _fmt(i.p), "correct": i.correct, "flags": "; ".join(i.flags),
                        **{k: str(v) for k, v in i.options.items()}})
        else:
            row["pass_rate"] = _fmt(i.p)
        rows.append(row)
    return rows
