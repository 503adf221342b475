"""How a check reports: one sentence, once, no traceback from our code, nothing on stderr.

- nbgrader gives 0 points to a test cell that writes anything to stderr, so every check runs
  with warnings and stderr captured (`guarded`).
- A failure is raised as `CheckFailed`, which IPython renders as its message alone
  (`_render_traceback_`), so the student reads what to fix instead of the inside of this
  package.
- One mistake, one message: when a later check fails for the very reason an earlier check in
  this kernel already gave (and that check still fails), it points there instead of saying
  it again.
- A check that grades its step with an earlier step's correct value standing in (`stand_in`)
  passes, says so once, and does not count towards the progress panel.
- Every result is also shown as data (autograder.records), before a failure is raised, so
  that it is among the cell's outputs; the progress panel hears the same record.
"""
from __future__ import annotations

import ast
import asyncio
import contextlib
import functools
import gc
import inspect
import io
import sys
import warnings

from autograder import registry
from autograder.records import CheckRecord


class CheckFailed(AssertionError):
    """A check found something to fix; the message says what and how, `mistake` names it
    (a key of autograder.explain's tables) when it is a named mistake."""

    def __init__(self, message: str, mistake: str | None = None, unexplained: bool = False):
        super().__init__(message)
        self.mistake = mistake
        self.unexplained = unexplained  # the generic sentence around a raw error: nothing named fits

    def _render_traceback_(self) -> list[str]:  # called by IPython instead of a traceback
        return [f"\x1b[0;31m{type(self).__name__}\x1b[0m: {self}"]


def fail(message: str, mistake: str | None = None, *, unexplained: bool = False) -> None:
    raise CheckFailed(message, mistake, unexplained)


# who hears each check's result: CheckRecord -> None (the progress panel)
_listeners: list = []


def on_result(listener) -> None:
    if listener not in _listeners:
        _listeners.append(listener)


# check name -> (its latest run passed, the message it gave when it failed)
_latest: dict[str, tuple[bool, str]] = {}
# a failure message -> the first check that gave it
_first_said: dict[str, str] = {}
# notes said by the check now running (stand-ins), and every note already shown -> by whom
_notes: list[str] = []
_notes_shown: dict[str, str] = {}


def stand_in(note: str) -> None:
    """Called by a check that grades its step with an earlier step's correct value."""
    if note not in _notes:
        _notes.append(note)


def _once(name: str, message: str) -> tuple[str, str | None]:
    """The message to show for `name`'s failure and the check it points to: the message itself
    (and None), or, if an earlier check that still fails gave exactly this message, a pointer
    to it (and that check)."""
    first = _first_said.setdefault(message, name)
    if first != name and _latest.get(first) == (False, message):
        where, this = registry.get(first), registry.get(name)
        title = f"“{where.title}”" if where else f"`{first}`"
        what = f" ({this.description})" if this else ""
        return f"Not passed{what}, for the reason given above under {title}: fix that and run this cell again.", first
    _first_said[message] = name
    return message, None


def latest(name: str) -> tuple[bool, str] | None:
    """(passed, message) of the latest run of check `name` in this kernel, or None."""
    return _latest.get(name)


def _say_notes(name: str) -> None:
    for note in _notes:
        if _notes_shown.setdefault(note, name) == name:
            print(note)


def _unexpected(name: str, exc: BaseException) -> CheckFailed:
    return CheckFailed(
        f"the check `{name}` could not run ({type(exc).__name__}: {exc}); "
        "re-run the notebook from the top (Kernel > Restart and Run All) and try again.",
        unexplained=True,
    )


# The syntax-tree nodes CPython shares between all trees (Load, Store, Add, Eq, Not, And...).
_SHARED_AST_NODES = tuple({type(node): node for node in ast.walk(ast.parse(
    "a = b; del c; a + b - c * d @ e / f % g ** h << i >> j | k & l ^ m // n; not a; ~a; +a; -a; "
    "a and b or c; a == b != c < d <= e > f >= g is h is not i in j not in k")) if not node._fields}.values())


def _forget_traceback_sources() -> None:
    """Empty the caches IPython's traceback formatting (`executing`, `stack_data`) keeps of every
    file a traceback passed through: once a traceback went through SQLAlchemy that is ~200,000
    objects which each later gc.collect() rescans (~30 ms). The next traceback re-parses them.
    What a library version lacks is skipped; this never raises."""
    try:
        source = getattr(sys.modules.get("executing"), "Source", None)
        if source is None:
            return  # no traceback was formatted with `executing` in this kernel
        classes = [source]
        for cls in classes:  # executing.Source and its subclasses (stack_data's Source)
            classes += cls.__subclasses__()
        modules = [m for name, m in list(sys.modules.items())
                   if m is not None and name.partition(".")[0] in ("executing", "stack_data")]
        for holder in classes + modules:
            for name, value in list(vars(holder).items()):
                if hasattr(type(value), "cache_clear"):  # functools.lru_cache / cache
                    value.cache_clear()
                elif holder in classes and isinstance(value, dict) and "cache" in name:
                    value.clear()  # Source's per-class caches: parsed files, nodes by code position
        for node in _SHARED_AST_NODES:  # `executing` sets .parent on them too: it keeps the last tree alive
            node.__dict__.pop("parent", None)
    except Exception:  # only ever a cost, never a failure of the check
        pass


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
            _forget_traceback_sources()
            gc.collect()


def _record(name: str, passed: bool, **found) -> CheckRecord:
    check = registry.get(name)
    return CheckRecord(name, check.step if check else 0, check.points if check else 0, passed, **found)


def _show(record: CheckRecord) -> None:
    """Put a declared check's record among the running cell's outputs (nothing outside
    IPython); never raises."""
    if registry.get(record.check) is None:
        return  # a helper guarded like a check (the quiz's): its cell is graded by other means
    try:
        from IPython import get_ipython

        shell = get_ipython()
        if shell is not None:
            shell.display_pub.publish(data=record.bundle(), metadata={})
    except Exception:  # the record is for readers; the cell's result stands without it
        pass


def _finish(name: str, failure: CheckFailed | None):
    passed = failure is None
    _latest[name] = (passed, "" if passed else str(failure))
    if passed:
        record = _record(name, True, stand_in=bool(_notes))
        shown = None
    else:
        message, same_as = _once(name, str(failure))
        record = _record(name, False, mistake=failure.mistake, message=message, stand_in=bool(_notes),
                         same_as=same_as, unexplained=failure.unexplained)
        shown = CheckFailed(message, failure.mistake, failure.unexplained)
    for listener in _listeners:
        listener(record)
    if passed:
        _say_notes(name)
    _show(record)
    return shown


def guarded(func):
    """Decorate a check: capture warnings/stderr; turn any surprise into one sentence."""
    name = func.__name__

    if inspect.iscoroutinefunction(func):
        @functools.wraps(func)
        async def run_async(*args, **kwargs):
            _notes.clear()
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
            shown = _finish(name, failure)
            if shown is None:
                return result
            raise shown.with_traceback(None) from None

        return run_async

    @functools.wraps(func)
    def run(*args, **kwargs):
        _notes.clear()
        with _quiet():
            try:
                result = func(*args, **kwargs)
                failure = None
            except CheckFailed as exc:
                failure = exc
            except Exception as exc:
                failure = _unexpected(name, exc)
        shown = _finish(name, failure)
        if shown is None:
            return result
        raise shown.with_traceback(None) from None

    return run


def hidden_gate(name: str) -> None:
    """The visible part of a hidden check's cell: it passes once the visible checks that the
    hidden one builds on pass (so a blank notebook fails it), and says the rest is graded later."""
    check = registry.get(name)
    if check is None:
        raise CheckFailed(f"there is no check named `{name}`: "
                          "restore this test cell from a fresh copy of the notebook.")
    waiting = [n for n in check.needs if not _latest.get(n, (False, ""))[0]]
    if waiting:
        titles = "; ".join(f"“{registry.get(n).title}”" for n in waiting)
        message = ("This hidden check runs when your notebook is graded, and only counts once these checks above pass: "
                   f"{titles}. Make them pass first.")
        _show(_record(name, False, message=message, waiting_for=tuple(waiting)))
        raise CheckFailed(message).with_traceback(None)
    print(f"Hidden check, run when your notebook is graded: {check.description}.")


def reset() -> None:
    """Forget every result (tests; a fresh kernel starts this way)."""
    _latest.clear()
    _first_said.clear()
    _notes.clear()
    _notes_shown.clear()
