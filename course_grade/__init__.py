"""The instructor's side of the course: grading around stock nbgrader.

- `course-grade grade ASSIGNMENT` (`grading.py`): grading a class on Dask (`cluster.py`: a
  LocalCluster or a running cluster; `task.py`: one submission graded from bytes on any
  worker; `kernel_pool.py`: each worker's pre-started kernel);
- `sandbox.py`: every grading kernel in a bubblewrap sandbox;
- `tamper.py`, `tamper_preprocessor.py`: the syntax-tree analysis of student cells;
- `quiz_collect.py`, `quiz_grading.py`: the graded quiz scored outside the kernel;
- `nbgrader_plugins.py`: `LimitOutputSize` (every output cut by size, per cell and per notebook);
- `selfgrade.py`: a self-learner's grading of their own notebook;
- `safe_csv.py`, `safe_csv_export_plugin.py`: every CSV file written with no cell a
  spreadsheet would run as a formula (`nbgrader export` too).

It may import the kernel side (`autograder`); the kernel side never imports it
(tests/test_repository.py checks). A course hub installs only `autograder` into students'
environments.
"""

# Modules the grading processes go without. jsonschema imports rfc3987_syntax, when installed
# (jupyter-events asks for it), only to check the "iri" and "iri-reference" formats, and that
# module builds its parser when imported: ~1.1 s of CPU in every process that imports nbformat
# (the command, each Dask worker, each nbgrader step, the self-grading service). No schema
# that grading validates (nbformat's, nbgrader's cell metadata) uses a format: jsonschema then
# simply has no checker for those two (tests/test_repository.py checks both). Notebook kernels
# and JupyterLab never import this package, so they keep it.
NOT_IMPORTED = ("rfc3987_syntax",)


def _go_without() -> None:
    import sys

    for name in NOT_IMPORTED:
        sys.modules.setdefault(name, None)  # `import name` then raises ImportError at once


_go_without()
