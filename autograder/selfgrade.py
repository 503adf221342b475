"""The lesson's **Grade my notebook** button (kernel side).

Clicking it runs the instructor-side self-grading command in a separate process,
`python -m course_grade selfgrade NOTEBOOK` (course_grade/selfgrade.py), which grades a copy of
the saved notebook with the hidden tests. This module never imports the instructor side: a
course hub that installs only `autograder` shows the button, and a click says self-grading is
not available there.
"""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

ASSIGNMENT = "connection-pooling"


def _env() -> dict:
    """This interpreter's tools (nbgrader) first on PATH, for the grading process."""
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}


def _this_notebook() -> Path:
    """The notebook this kernel runs (JupyterLab tells the kernel its path), else the lesson here."""
    session = os.environ.get("JPY_SESSION_NAME", "")
    if session.endswith(".ipynb") and Path(session).is_file():
        return Path(session)
    return Path.cwd() / f"{ASSIGNMENT}.ipynb"


def button():
    """Show a 'Grade my notebook' button; grading runs only when it is clicked (never while autograding)."""
    from IPython.display import display

    display(make_button())


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
        out.append_stdout("Grading a copy of the saved notebook with every hidden test (this can take a minute)...\n")
        done = subprocess.run([sys.executable, "-m", "course_grade", "selfgrade", str(_this_notebook())],
                              capture_output=True, text=True, env=_env())
        out.outputs = ()
        out.append_stdout(done.stdout if done.returncode == 0 else (done.stderr.strip() or done.stdout) + "\n")
        go.disabled = False

    go.on_click(on_click)
    return widgets.VBox([go, out])
