"""The instructor's side of the course: grading around stock nbgrader.

- `course-grade grade ASSIGNMENT` (`grading.py`): grading a class on Dask (`cluster.py`: a
  LocalCluster or a running cluster; `task.py`: one submission graded from bytes on any
  worker; `kernel_pool.py`: each worker's pre-started kernel);
- `sandbox.py`: every grading kernel in a bubblewrap sandbox;
- `tamper.py`, `tamper_preprocessor.py`: the syntax-tree analysis of student cells;
- `quiz_collect.py`, `quiz_grading.py`: the graded quiz scored outside the kernel;
- `nbgrader_plugins.py`: `LimitOutputSize`;
- `selfgrade.py`: a self-learner's grading of their own notebook.

It may import the kernel side (`autograder`); the kernel side never imports it
(tests/test_repository.py checks). A course hub installs only `autograder` into students'
environments.
"""

# The grading command's per-student report (written by grading.py, read by item_analysis.py).
REPORT_FILE = "grading-report.csv"
