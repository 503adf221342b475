"""The lesson's progress indicator: what the kernel knows of the four build steps, and what is next.

`show()` (a read-only cell near the top of the lesson, and again at its end) displays a
panel; every step check hands its record here (autograder.report.guarded), and the panel
updates in place through its display id, wherever it is shown. A step counts when each of
its visible checks (autograder.registry) has passed on its latest run, on the student's own
values: a pass with an earlier step's correct value standing in does not count, and a later
failure undoes it. The panel says only that much: hidden checks run when the notebook is
graded. When a check completes a step's visible checks, its cell also prints one line
saying so and what comes next.

Once the **Grade my notebook** button has graded the saved notebook (autograder.selfgrade),
it hands each graded cell's result here (`graded`), and the panel shows that grading: the
score, and the checks (hidden ones included) that did not pass. A check run after it makes
that grading out of date: the panel goes back to the kernel's own count and says when it
last graded. Importing this module also starts recording the cells the student runs
(autograder.cells), which the checks read.

The panel is plain HTML (no widget), so it also shows in nbconvert output and feedback. This
module never raises and never writes to stderr: a test cell must not lose its points to it.
"""
from __future__ import annotations

import html
import time
from dataclasses import dataclass, replace

from autograder import cells, registry, report
from autograder.records import CheckRecord

DISPLAY_ID = "course-progress"
GRADE_BUTTON = "Grade my notebook"
HIDDEN_LATER = f"hidden checks run only when your notebook is graded (press {GRADE_BUTTON} at the end)"


@dataclass(frozen=True)
class Grading:
    """What the Grade my notebook button found in the saved notebook."""
    score: float
    max_score: float
    failed: tuple[str, ...]  # the grade_ids that lost points, in the notebook's order
    steps_passed: tuple[int, ...]  # build steps whose every check (hidden ones too) has full marks
    at: str  # when, "HH:MM"
    current: bool = True  # no check has run since


_latest: dict[str, bool] = {}  # check name -> did its latest run pass on the student's own values
_grading: list[Grading] = []  # the latest grading by the button, if any
_shown = False
cells.install()


def steps() -> dict[int, tuple[str, tuple[str, ...]]]:
    """step -> (title, the visible checks whose latest run must have passed)."""
    return {n: (title, tuple(c.name for c in registry.for_step(n, hidden=False)))
            for n, title in registry.STEPS.items()}


def done_steps() -> list[int]:
    """Steps whose visible checks all passed on their latest run (none before the checks exist)."""
    return [n for n, (_, needed) in steps().items() if needed and all(_latest.get(c) for c in needed)]


def listen() -> None:
    """Hear every check's result (autograder.checks calls this when it is imported)."""
    report.on_result(hear)


def next_step() -> int | None:
    done = done_steps()
    return next((n for n in registry.STEPS if n not in done), None)


def _points(value: float) -> str:
    return f"{value:g}"


def _named(grade_id: str) -> str:
    check = registry.get(grade_id)
    if check is None:
        return f"quiz question {int(grade_id[4:6])}" if grade_id[4:6].isdigit() else f"`{grade_id}`"
    return f"“{check.title}”"


def _graded_line(grading: Grading) -> str:
    score = f"{_points(grading.score)}/{_points(grading.max_score)}"
    line = f"Graded at {grading.at} (your saved notebook): {score} points."
    if not grading.failed:
        return line + " Every check passes, hidden ones included."
    hidden = [g for g in grading.failed if (registry.get(g) is not None and registry.get(g).hidden)]
    others = [g for g in grading.failed if g not in hidden]
    if hidden:
        line += f" Hidden checks not passed: {'; '.join(_named(g) for g in hidden)}."
    if others:
        line += f" {'Other checks' if hidden else 'Checks'} not passed: {'; '.join(_named(g) for g in others)}."
    return line + f" Why: under {GRADE_BUTTON}."


def summary() -> str:
    """One line of plain text: the latest grading when no check ran since it, else the
    kernel's count: 'Progress: 2/4 steps pass their visible checks. Next: step 3, the pooled
    async engine.'"""
    if _grading and _grading[-1].current:
        return _graded_line(_grading[-1])
    done, upcoming = done_steps(), next_step()
    line = f"Progress: {len(done)}/{len(registry.STEPS)} steps pass their visible checks"
    if upcoming is None:
        line += f"; {HIDDEN_LATER}."
    else:
        line += f". Next: step {upcoming}, {registry.STEPS[upcoming]}."
    if _grading:
        last = _grading[-1]
        line += (f" (Last graded at {last.at}: {_points(last.score)}/{_points(last.max_score)} points, "
                 f"before the checks you ran since.)")
    return line


def _step_line(n: int) -> str:
    """What a check's cell prints when it completes step `n`'s visible checks."""
    hidden = len(registry.for_step(n, hidden=True))
    if not hidden:
        return f"Step {n} passes its checks."
    return (f"Step {n} passes its visible checks; its {hidden} hidden check{'s' if hidden > 1 else ''} "
            f"run{'' if hidden > 1 else 's'} when your notebook is graded.")


def _html() -> str:
    grading = _grading[-1] if _grading and _grading[-1].current else None
    done = list(grading.steps_passed) if grading else done_steps()
    upcoming = next((n for n in registry.STEPS if n not in done), None)
    pills = []
    for n, title in registry.STEPS.items():
        state = "done" if n in done else "next" if n == upcoming else "todo"
        mark = {"done": "&#10003;", "next": "&#9654;", "todo": "&#9675;"}[state]
        colour = {"done": "#1a7f37", "next": "#0969da", "todo": "#6e7781"}[state]
        weight = "bold" if state == "next" else "normal"
        pills.append(f'<span class="course-progress-step course-progress-{state}" '
                     f'style="margin-right:1.2em;color:{colour};font-weight:{weight}">'
                     f"{mark} Step {n}: {html.escape(title)}</span>")
    percent = 100 * len(done) // len(registry.STEPS)
    return (
        '<div class="course-progress" style="border:1px solid #d0d7de;border-radius:6px;padding:8px 12px;'
        'font-family:sans-serif;font-size:14px">'
        f'<div class="course-progress-summary" style="margin-bottom:6px"><b>{html.escape(summary())}</b></div>'
        '<div style="background:#eaeef2;border-radius:4px;height:8px;margin-bottom:6px">'
        f'<div style="background:#1a7f37;width:{percent}%;height:8px;border-radius:4px"></div></div>'
        f"<div>{''.join(pills)}</div>"
        f"<div style=\"color:#57606a;margin-top:4px\">{html.escape(_footer(grading))}</div></div>"
    )


def _footer(grading: Grading | None) -> str:
    if grading is not None:
        return (f"A step is ticked when all its checks, hidden ones included, passed in that grading. Running a "
                f"check again shows your progress in this kernel; press {GRADE_BUTTON} again to grade anew.")
    return (f"Counts a step once its visible checks pass, as you run its test cells after your code; "
            f"{GRADE_BUTTON} (at the end) runs the hidden checks too.")


def _bundle() -> dict:
    return {"text/plain": summary(), "text/html": _html()}


def show() -> None:
    """Display the panel here (it keeps updating wherever it is shown)."""
    global _shown
    try:
        from IPython.display import display

        display(_bundle(), raw=True, display_id=DISPLAY_ID)
        _shown = True
    except Exception:
        pass


def hear(record: CheckRecord) -> None:
    """Called with every check's record; updates the panel, and says so when a step becomes
    done. A pass with an earlier step's value standing in does not count."""
    try:
        if not any(record.check in needed for _, needed in steps().values()):
            return
        before = set(done_steps())
        _latest[record.check] = record.passed and not record.stand_in
        finished = set(done_steps()) - before
        if _grading and _grading[-1].current:
            _grading[-1] = replace(_grading[-1], current=False)
        _update()
        for n in sorted(finished):
            print(f"{_step_line(n)} {summary()}")
    except Exception:
        pass


def _update() -> None:
    if _shown:
        from IPython.display import update_display

        update_display(_bundle(), raw=True, display_id=DISPLAY_ID)


def graded(cells_graded: list[dict]) -> None:
    """Called by the Grade my notebook button with each graded cell's result (dicts with
    grade_id, score and points, in the notebook's order): the panel shows that grading."""
    try:
        import autograder.checks  # noqa: F401 - declares every check: which are hidden, which step

        rows = [(str(c["grade_id"]), float(c["score"]), float(c["points"])) for c in cells_graded]
        failed = tuple(gid for gid, score, points in rows if score < points - 1e-9)
        steps_passed = tuple(n for n in registry.STEPS
                             if (names := {c.name for c in registry.for_step(n)})
                             and names <= {gid for gid, _, _ in rows} and not names & set(failed))
        _grading[:] = [Grading(sum(r[1] for r in rows), sum(r[2] for r in rows), failed, steps_passed,
                               time.strftime("%H:%M"))]
        _update()
    except Exception:
        pass


def reset() -> None:
    _latest.clear()
    _grading.clear()
