"""The instructor's side of the course: grading around stock nbgrader. Its folders say where
their code runs, from the top layer down (each imports only the layers below it; `make lint`
checks it):

- `commands/`: the `course-grade` commands (grade, selfgrade, report, export), each with
  `HELP`, `add_arguments()` and `main()`; the grading run's merge, progress and nbgrader steps,
  and the Dask cluster. Runs in the instructor's process.
- `selfgrade/`: a self-learner's grading: the client and the background service.
- `reports/`: what the instructor reads after grading: grading-report.csv and the item
  analysis (items, readers, failures, statistics, the page).
- `engine/`: one submission graded from bytes, on a Dask worker or the self-grading service:
  the bundles (`bundles`), `grade()` (`task`) and what it reads back (`readout`).
- `nbgrader_ext/`: every plugin `nbgrader_config.py` names, one per file, named after its
  class; they run inside nbgrader, under stock commands too.
- `kernels/`: the grading kernels: the sandbox, the zygote, each worker's spare kernel and
  the process killer. No nbgrader here.
- `course`, `files`, `reasons`, `safe_csv`: facts and helpers every layer uses.

It may import the kernel side (`autograder`); the kernel side never imports it. A course hub
installs only `autograder` into students' environments.
"""

# Modules the grading processes go without. jsonschema imports rfc3987_syntax, when installed
# (jupyter-events asks for it), only to check the "iri" and "iri-reference" formats, and that
# module builds its parser when imported: ~1.1 s of CPU in every process that imports nbformat
# (the command, each Dask worker, each nbgrader step, the self-grading service). No schema
# that grading validates (nbformat's, nbgrader's cell metadata) uses a format: jsonschema then
# simply has no checker for those two (tests/repository/test_repository.py checks both). Notebook kernels
# and JupyterLab never import this package, so they keep it.
NOT_IMPORTED = ("rfc3987_syntax",)


def _go_without() -> None:
    import sys

    for name in NOT_IMPORTED:
        sys.modules.setdefault(name, None)  # `import name` then raises ImportError at once


_go_without()
