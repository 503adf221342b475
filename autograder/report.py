"""How a check reports: one sentence, no traceback from our code, nothing on stderr.

nbgrader gives 0 points to a test cell that writes anything to stderr, so every check runs
with warnings and stderr captured (`guarded`). A failure is raised as `CheckFailed`, which
IPython renders as its message alone (`_render_traceback_`), so the student reads what to
fix instead of the inside of this package.
"""
from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import inspect
import io
import warnings

from autograder import progress


class CheckFailed(AssertionError):
    """A check found something to fix; the message says what and how."""

    def _render_traceback_(self) -> list[str]:  # called by IPython instead of a traceback
        return [f"\x1b[0;31m{type(self).__name__}\x1b[0m: {self}"]


def fail(message: str) -> None:
    raise CheckFailed(message)


@contextlib.contextmanager
def _quiet():
    """Capture warnings and stderr (for example SQLAlchemy's garbage-collector warnings
    about connections a student leaked) so that nbgrader does not zero the cell."""
    with warnings.catch_warnings(record=True), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("always")
        try:
            yield
        finally:
            # Leaked connections are reclaimed here, inside the capture, rather than in
            # whichever later cell the garbage collector happens to run.
            gc.collect()


def _unexpected(name: str, exc: BaseException) -> CheckFailed:
    return CheckFailed(
        f"the check `{name}` could not run ({type(exc).__name__}: {exc}); "
        "re-run the notebook from the top (Kernel > Restart and Run All) and try again."
    )


def guarded(func):
    """Decorate a check: capture warnings/stderr; turn any surprise into one sentence."""
    name = func.__name__

    if inspect.iscoroutinefunction(func):
        @functools.wraps(func)
        async def run_async(*args, **kwargs):
            with _quiet():
                try:
                    result = await func(*args, **kwargs)
                    failure = None
                except CheckFailed as exc:
                    failure = exc
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # never show our own traceback to a student
                    failure = _unexpected(name, exc)
            progress.record(name, failure is None)
            if failure is None:
                return result
            raise failure.with_traceback(None) from None

        return run_async

    @functools.wraps(func)
    def run(*args, **kwargs):
        with _quiet():
            try:
                result = func(*args, **kwargs)
                failure = None
            except CheckFailed as exc:
                failure = exc
            except Exception as exc:
                failure = _unexpected(name, exc)
        progress.record(name, failure is None)
        if failure is None:
            return result
        raise failure.with_traceback(None) from None

    return run
