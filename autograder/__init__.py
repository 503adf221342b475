"""Checks for the "Connection pooling in FastAPI" course.

Not to be confused with `autograded/`, the folder nbgrader writes graded copies into:
this package holds the checks that the lesson's test cells call, e.g.

    from autograder import checks
    checks.step1_database_url(globals())

Every check either returns quietly or raises `CheckFailed` (an AssertionError) whose
message is one plain sentence saying what is wrong and how to fix it.
"""
from autograder.report import CheckFailed

__all__ = ["CheckFailed"]
