"""What the tests share (none of it is a test):

- `course`: a scratch course folder, real nbgrader runs on it, submissions and their results.
- `harness`: a submission graded in seconds in a forked IPython shell, without nbgrader
  (run as `python -m tests.support.harness`, from the repository root).
- `submissions`, `variants`, `mistakes`: right and wrong submissions, the correct variants and
  the mistake catalogue; `tamper_cases`, `red_team`, `red_team_files`: attacks and look-alikes.
- `graded_class`: a graded class fabricated without a kernel (the item analysis, bench/).
- `hostile_cells`: ids and names a spreadsheet would run as formulas.
- `apps`, `browser`, `pg_server`: the lesson's app in process, JupyterLab with headless
  Chromium, a throwaway PostgreSQL server (its fixtures reach every test through conftest.py).
"""
