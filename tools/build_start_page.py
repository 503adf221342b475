"""Write notebooks/start.ipynb, the course's start page (what Binder opens first).

Edit the page here, then run `python tools/build_start_page.py`; `--check` writes nothing and
exits non-zero when the committed notebook differs (tests/notebooks/test_start_page.py runs it).
"""
from __future__ import annotations

import sys

if __package__:  # imported as tools.<name> (the tests)
    from . import lesson_words
    from .notebook_builder import ROOT, code, md, write_or_check
else:  # run as a script: python tools/<name>.py
    import lesson_words
    from notebook_builder import ROOT, code, md, write_or_check

NOTEBOOK = ROOT / "notebooks" / "start.ipynb"
LESSON = "../workspace/connection-pooling/connection-pooling.ipynb"
# minutes (if you know FastAPI, if you are new to it) of each notebook, from tools/lesson_words.py's
# model of the committed notebooks: build them first
TIMES = lesson_words.course()
ALL = tuple(sum(times[i] for times in TIMES.values()) for i in range(2))


def minutes(name: str) -> str:
    """A row's two time cells: `30 min | 60 min`."""
    return " | ".join(f"{lesson_words.stated(m)} min" for m in TIMES[name])



CELLS = [
    md("welcome", """
# Connection pooling in FastAPI

Welcome. In this course you build a small FastAPI service that reads a database through a
**connection pool**, the piece of every web backend that lets many requests share a few
database connections, and you learn to tell a healthy pool from one that leaks or runs dry.

You write real code in a Jupyter notebook and call your app from the notebook itself: no
server to run, nothing to install beyond this environment.

**Time:** the lesson with its quizzes takes """ + lesson_words.phrase(*TIMES["lesson"]) + """;
the whole path below, the optional PostgreSQL notebook included, """ + lesson_words.phrase(*ALL) + """.
"""),
    md("path", f"""
## The path through the course

| | notebook | what you do | if you know FastAPI | if you are new to it |
|---|---|---|---|---|
| 1 | [**The lesson**]({LESSON}) | build the app in four graded steps (database URL, pool size, pooled async engine, a FastAPI route with a `yield` dependency), then a practice quiz with instant feedback and a graded 10-question quiz | {minutes("lesson")} |
| 2 | [**Pool lab**](pool-lab.ipynb) | watch a pool at work in plots: queueing, exhaustion and its `TimeoutError`, a leaked connection, pooled vs unpooled speed | {minutes("pool lab")} |
| 3 | [**Beyond SQLite: PostgreSQL**](postgres.ipynb) (optional) | the same app against a database server, and what changes when connections are expensive | {minutes("postgres")} |

Open the lesson with the link in the table (it is your own copy, made by the cell below if it
is missing). Run its cells from top to bottom: *Run → Run All Cells* re-runs everything.
"""),  # noqa: E501 - a markdown table row cannot wrap
    code("make_copy", """
# Makes your working copy of the lesson if it is missing; never overwrites your work.
from pathlib import Path

from autograder import workspace

copy, made = workspace.ensure(Path.cwd().parent)
print(("Made" if made else "Found") + " your copy of the lesson:", copy.relative_to(Path.cwd().parent))
"""),
    md("checking", """
## How to check your work

- **Under each step**, test cells check your code. A passing check prints nothing (or
  "Step N done"); a failing one says in one sentence what is wrong and how to fix it.
- **The progress panel** near the top of the lesson counts the steps whose checks pass
  (0/4 to 4/4) and names the next one. It updates as you run the test cells.
- **Practice quiz:** press *Check* after choosing an answer to see if you are right and why.
- **Grade yourself:** at the end of the lesson, save the notebook and press
  **Grade my notebook**. It grades a copy of the saved file with the full autograder,
  including the hidden tests your instructor would run, and lists every check's result.
  From a terminal: `python -m course_grade selfgrade` in the course folder.

In a course, your instructor releases the lesson and grades what you submit with nbgrader;
your graded quiz choices are saved in `quiz_answers.json` beside the notebook, so submit
that file with it.
"""),
    md("reset", """
## How to start over

If your copy gets into a tangle, first try *Kernel → Restart Kernel and Run All Cells*.
To start from a fresh copy of the lesson, set `RESET = True` below and run the cell (or run
`python -m autograder reset` in a terminal). Your old notebook and quiz answers are not
deleted: they are kept beside the new copy with `.backup-` and the time in their names.
"""),
    code("reset_copy", """
RESET = False  # set to True and run this cell to get a fresh copy of the lesson

if RESET:
    copy, backups = workspace.reset(Path.cwd().parent)
    for backup in backups:
        print("kept your previous work as", backup.name)
    print("fresh copy:", copy.relative_to(Path.cwd().parent))
else:
    print("Nothing changed (RESET is False).")
"""),
    md("binder", """
## On Binder

A Binder session is temporary: it ends after some minutes without activity and your files go
with it. To keep your work, download your notebook (*File → Download*) and
`quiz_answers.json` before you leave. To work on your own machine instead, clone the
repository and run `make lab`: it builds the same environment from the same pinned versions.
"""),
]


def main(argv: list[str]) -> None:
    write_or_check(NOTEBOOK, CELLS, argv, "python tools/build_start_page.py")


if __name__ == "__main__":
    main(sys.argv[1:])
