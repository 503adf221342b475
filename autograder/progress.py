"""The lesson's progress indicator: how many of the four build steps pass, and what is next.

`show()` (a read-only cell near the top of the lesson, and again at its end) displays a
panel; every step check hands its record here (autograder.report.guarded), and the panel
updates in place through its display id, wherever it is shown. A step counts as done when
each of its visible checks (autograder.registry) has passed on its latest run, on the
student's own values: a pass with an earlier step's correct value standing in does not
count, and a later failure undoes it. When a check completes a step, its cell also prints
one line saying so and what comes next. Importing this module also starts recording the
cells the student runs (autograder.cells), which the checks read.

The panel is plain HTML (no widget), so it also shows in nbconvert output and feedback. This
module never raises and never writes to stderr: a test cell must not lose its points to it.
"""
from __future__ import annotations

import html

from autograder import cells, registry, report
from autograder.records import CheckRecord

DISPLAY_ID = "course-progress"

_latest: dict[str, bool] = {}  # check name -> did its latest run pass on the student's own values
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


def summary() -> str:
    """One line of plain text: 'Progress: 2/4 steps done. Next: step 3, the pooled async engine.'"""
    done, upcoming = done_steps(), next_step()
    line = f"Progress: {len(done)}/{len(registry.STEPS)} steps done."
    if upcoming is None:
        return line + " All four steps pass: on to the quizzes."
    return line + f" Next: step {upcoming}, {registry.STEPS[upcoming]}."


def _html() -> str:
    done, upcoming = done_steps(), next_step()
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
        "<div style=\"color:#57606a;margin-top:4px\">Updates as your step checks pass. "
        "Run a step's test cells after your code.</div></div>"
    )


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
        if _shown:
            from IPython.display import update_display

            update_display(_bundle(), raw=True, display_id=DISPLAY_ID)
        for n in sorted(finished):
            print(f"Step {n} done. {summary()}")
    except Exception:
        pass


def reset() -> None:
    _latest.clear()
