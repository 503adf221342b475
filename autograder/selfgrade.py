"""The lesson's **Grade my notebook** button (kernel side).

Clicking it runs the instructor-side self-grading command in a separate process,
`python -m course_grade selfgrade NOTEBOOK` (course_grade/selfgrade/client.py), which grades a copy of
the saved notebook with the hidden tests on the course's warm self-grading service. Showing
the button starts that service in the background (`selfgrade NOTEBOOK --warm`, detached,
output discarded), so its kernel is booted by the time the learner clicks; not in a grading
kernel, nor where the instructor side is not installed, nor with COURSE_SELFGRADE_SERVICE=off.
A click asks the command for its result as data (`--json`): the button shows its report, and
hands each graded cell's score to the progress panel (autograder.progress.graded), which then
shows the score and the checks, hidden ones included, that did not pass.
This module never imports the instructor side: a course hub that installs only `autograder`
shows the button, and a click says self-grading is not available there.
"""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

from autograder.course import ASSIGNMENT, tool_env

SERVICE_SWITCH = "COURSE_SELFGRADE_SERVICE"  # =off: no background service (grading then takes longer)


def _this_notebook() -> Path:
    """The notebook this kernel runs (JupyterLab tells the kernel its path), else the lesson here."""
    session = os.environ.get("JPY_SESSION_NAME", "")
    if session.endswith(".ipynb") and Path(session).is_file():
        return Path(session)
    return Path.cwd() / f"{ASSIGNMENT}.ipynb"


def _grading_kernel() -> bool:
    """Whether this kernel is grading a submission: grading kernels install the runtime guard
    (autograder/guard.py) before the first cell, and start no process."""
    guard = sys.modules.get("autograder.guard")
    return bool(guard is not None and guard._state.get("installed"))


def warm_up() -> bool:
    """Start the course's self-grading service in the background (it boots a kernel and loads
    the assignment) so that a click grades in seconds; returns whether it was asked to."""
    if _grading_kernel() or os.environ.get(SERVICE_SWITCH, "").lower() in ("off", "0", "no", "false") \
            or importlib.util.find_spec("course_grade") is None:
        return False
    notebook = _this_notebook()
    try:
        proc = subprocess.Popen([sys.executable, "-m", "course_grade", "selfgrade", str(notebook), "--warm"],
                                cwd=notebook.parent if notebook.parent.is_dir() else None, env=tool_env(),
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
    except Exception:  # never in the way of the lesson: a click still grades, only slower
        return False
    threading.Thread(target=proc.wait, daemon=True).start()  # reaped when it returns (at once)
    return True


def button():
    """Show a 'Grade my notebook' button; grading runs only when it is clicked (never while
    autograding). Showing it warms the self-grading service up in the background."""
    from IPython.display import display

    display(make_button())
    warm_up()


def _grading(printed: str) -> dict | None:
    """The grading `selfgrade --json` printed (its report and cells), or None."""
    try:
        found = json.loads(printed)
    except ValueError:
        return None
    if isinstance(found, dict) and isinstance(found.get("report"), str) and isinstance(found.get("cells"), list):
        return found
    return None


def make_button():
    import ipywidgets as widgets

    go = widgets.Button(description="Grade my notebook", button_style="primary", icon="check",
                        layout=widgets.Layout(width="auto"))
    out = widgets.Output()

    def on_click(_):
        # kernel-side updates of the Output widget (not `with out:`), so the result is in the
        # widget's model as well as on screen
        go.disabled = True
        out.outputs = ()
        if importlib.util.find_spec("course_grade") is None:
            out.append_stdout("Self-grading is not installed here (it comes with the course repository): "
                              "your instructor grades the notebook you submit.\n")
            go.disabled = False
            return
        out.append_stdout("Grading a copy of the saved notebook with every hidden test (a few seconds; "
                          "the first time, up to a minute)...\n")
        done = subprocess.run([sys.executable, "-m", "course_grade", "selfgrade", str(_this_notebook()), "--json"],
                              capture_output=True, text=True, env=tool_env())
        out.outputs = ()
        grading = _grading(done.stdout) if done.returncode == 0 else None
        if grading is None:
            out.append_stdout((done.stderr.strip() or done.stdout) + "\n")
        else:
            out.append_stdout(grading["report"] + "\n")
            from autograder import progress

            progress.graded(grading["cells"])
        go.disabled = False

    go.on_click(on_click)
    return widgets.VBox([go, out])
