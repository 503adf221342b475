"""The instructor's side of the course: grading around stock nbgrader.

- `course-grade grade ASSIGNMENT` (`grading.py`, `_worker.py`, `kernel_pool.py`): the parallel
  grading command;
- `sandbox.py`: every grading kernel in a bubblewrap sandbox;
- `tamper.py`, `tamper_preprocessor.py`: the syntax-tree analysis of student cells;
- `quiz_collect.py`, `quiz_grading.py`: the graded quiz scored outside the kernel;
- `nbgrader_plugins.py`: `LimitOutputSize`;
- `selfgrade.py`: a self-learner's grading of their own notebook.

It may import the kernel side (`autograder`); the kernel side never imports it
(tests/test_repository.py checks). A course hub installs only `autograder` into students'
environments.
"""
