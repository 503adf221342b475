"""The test suite. Its folders mirror the packages, so the tests of `course_grade/kernels/spares.py`
are in `tests/course_grade/kernels/test_spares.py`:

- `autograder/`: the kernel side (checks, records, the mistake catalogue, quiz, guard, progress).
- `course_grade/`: the instructor side, folder by folder (`commands/`, `selfgrade/`, `reports/`,
  `nbgrader_ext/`, `kernels/`; `engine/` is exercised through `commands/test_grade.py` and
  `commands/test_merge.py`), and `test_safe_csv.py` for the shared module.
- `journeys/`: whole-course flows: the README's journeys on a fresh clone, the nbgrader workflow,
  `make lab`, the lesson in a real browser, stock `nbgrader autograde`, the red-team galleries.
- `notebooks/`: the notebooks a learner runs (the lesson, the start page, the pool lab,
  PostgreSQL) and the claims the lesson makes.
- `repository/`: what is committed: the release, the pins, Binder, the lint contracts.
- `support/`: helpers the tests share, imported as `from tests.support.course import make_course`.

`conftest.py` holds the fixtures every folder uses. pytest runs with `--import-mode=importlib`
and the repository root on `sys.path` (pyproject.toml), so no test folder shadows a package.
"""
