"""What the student ran: every executed cell's code, the names it defines, and its error.

An IPython `post_run_cell` hook (installed when the progress panel or the checks are
imported, near the top of the lesson) records each cell as it runs. The checks use it to
- say "your step 3 cell raised TypeError ..." instead of grading a stale `engine` from an
  earlier run (no "Step N done" while the student's own cell of that step fails);
- run the student's own step-3 code again with other inputs: "if POOL_SIZE were 7, would
  the pool keep 7?", a behavioural question for any code through which the value flows
  (a variable, a dict of options, a helper function ...), and "with the correct POOL_SIZE
  standing in, does step 3 work?", so a mistake in an earlier step costs that step only;
- run a step's own cells again on their own (`alone`), in a namespace that holds only what
  the earlier steps define: a cell that works only because another cell (the lesson's
  read-only demo, say) imported a name it uses fails there, as it would in a fresh kernel.

Cells the grader itself runs (test cells, which import `autograder`) are not the student's
and are never run again. Without the hook (cells run before it was installed) the cells'
code comes from IPython's `In`, with no record of errors.
"""
from __future__ import annotations

import ast
import asyncio
import contextlib
import io
import re
import signal
import threading
from dataclasses import dataclass

_FLAGS = ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT


@dataclass
class Run:
    source: str                   # the cell's Python code, as IPython ran it (magics transformed)
    error: BaseException | None   # what it raised, if anything
    defines: frozenset[str]       # names its top level assigns, defines or imports


_runs: list[Run] = []
RERUN_TIME_LIMIT = 5  # seconds: the student's cells, run again by a check, never hang it


def _tree(source: str) -> ast.Module | None:
    try:
        return compile(source, "<cell>", "exec", flags=_FLAGS)
    except (SyntaxError, ValueError):
        return None


def _top_level(statements):
    """Statements that run at a cell's top level (descending into if/for/while/with/try)."""
    for node in statements:
        yield node
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            continue
        for field in ("body", "orelse", "finalbody"):
            yield from _top_level(getattr(node, field, []) or [])
        for handler in getattr(node, "handlers", []) or []:
            yield from _top_level(handler.body)


def _targets(node) -> list[str]:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [node.name]
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return [(a.asname or a.name).split(".")[0] for a in node.names]
    targets = []
    if isinstance(node, ast.Assign):
        targets = node.targets
    elif isinstance(node, (ast.AnnAssign, ast.AugAssign)) and (not isinstance(node, ast.AnnAssign) or node.value):
        targets = [node.target]
    elif isinstance(node, (ast.With, ast.AsyncWith)):
        targets = [item.optional_vars for item in node.items if item.optional_vars]
    elif isinstance(node, (ast.For, ast.AsyncFor)):
        targets = [node.target]
    names = []
    for target in targets:
        names += [n.id for n in ast.walk(target) if isinstance(n, ast.Name)]
    return names


_ASSIGNED = re.compile(r"^(?:async\s+def\s+|def\s+|class\s+)?([A-Za-z_]\w*)\s*(?:[:=(]|$)", re.M)


def _defines(source: str) -> frozenset[str]:
    tree = _tree(source)
    if tree is None:  # not valid Python: the names it seems to assign, so its error is still found
        return frozenset(_ASSIGNED.findall(source))
    return frozenset(name for node in _top_level(tree.body) for name in _targets(node))


def _is_graders(source: str) -> bool:
    """A test or read-only course cell: it imports our package."""
    return "from autograder import" in source or "import autograder" in source


def _shell():
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    return get_ipython()


def _record(result) -> None:
    try:
        shell = _shell()
        raw = result.info.raw_cell if result.info is not None else ""
        source = shell.transform_cell(raw) if shell is not None else raw
        error = result.error_before_exec or result.error_in_exec
        if not _is_graders(source):
            _runs.append(Run(source, error, _defines(source)))
    except Exception:  # a hook must never disturb the student's cell
        pass


def install() -> None:
    """Start recording cells (once per kernel, whatever reloads this module)."""
    shell = _shell()
    if shell is None or getattr(shell, "_course_cells_hook", None) is not None:
        return
    shell.events.register("post_run_cell", _record)
    shell._course_cells_hook = _record


def runs() -> list[Run]:
    """The student's executed cells, oldest first."""
    shell = _shell()
    if _runs or shell is None:
        return list(_runs)
    sources = list(shell.user_ns.get("In") or shell.history_manager.input_hist_parsed)
    return [Run(s, None, _defines(s)) for s in sources if s.strip() and not _is_graders(s)]


def latest(name: str) -> Run | None:
    """The latest executed cell that defines `name` at its top level."""
    return next((r for r in reversed(runs()) if name in r.defines), None)


def raised(names, also: str | None = None) -> Run | None:
    """The latest cell defining one of `names` when it raised; with `also` (a regular
    expression), also the latest cell after those whose code matches it (a route added to
    `app` in a cell of its own, say), when it raised."""
    found = [run for run in (latest(name) for name in names) if run is not None]
    if also:
        history = runs()
        first = min((history.index(run) for run in found), default=0)
        later = [run for run in history[first:] if re.search(also, run.source)]
        if later:
            found.append(later[-1])
    return next((run for run in found if run.error is not None), None)


def imports_only(run: Run) -> bool:
    """A cell of imports and nothing else (a student may put a step's imports in a cell of their own)."""
    tree = _tree(run.source)
    return tree is not None and bool(tree.body) and all(isinstance(n, (ast.Import, ast.ImportFrom)) for n in tree.body)


def step_runs(names, also: str | None = None) -> list[Run]:
    """A step's own cells, oldest first: the latest cell defining each of `names`, the later
    cells whose code matches `also` (as `raised` finds them), and, before them, every cell
    of imports only (once each)."""
    history = runs()
    found = [run for run in (latest(name) for name in names) if run is not None]
    if also and found:
        first = min(history.index(run) for run in found)
        found += [run for run in history[first:] if re.search(also, run.source)]
    chosen = {id(run) for run in found}
    imports, seen = [], set()
    for run in history:
        if id(run) not in chosen and imports_only(run) and run.error is None and run.source not in seen:
            seen.add(run.source)
            imports.append(run)
    return imports + [run for run in history if id(run) in chosen]


class _Rewrite(ast.NodeTransformer):
    """Top-level `NAME = ...` becomes `NAME = <value>` for the names being stood in."""

    def __init__(self, values: dict):
        self.values = values

    def visit_FunctionDef(self, node):  # assignments inside functions are left alone
        return node

    visit_AsyncFunctionDef = visit_ClassDef = visit_Lambda = visit_FunctionDef

    def _value(self, node, targets):
        names = [t.id for t in targets if isinstance(t, ast.Name) and t.id in self.values]
        if names and len(targets) == 1:
            node.value = ast.copy_location(ast.Constant(self.values[names[0]]), node.value)
        return node

    def visit_Assign(self, node):
        return self._value(node, node.targets)

    def visit_AnnAssign(self, node):
        return self._value(node, [node.target]) if node.value else node


class RerunTimeout(BaseException):
    """The student's code, run again, took longer than a check may wait."""


RERUN_FILE = "<your cell, run again>"


@contextlib.contextmanager
def _time_limit(seconds: float):
    """Interrupt the student's code run again after `seconds` (a loop, a sleep), where the
    platform allows it: a SIGALRM timer, in the main thread, where IPython runs cells. The
    timer only interrupts while that code is on the stack; while it waits on the event loop,
    `asyncio.timeout` in `rerun` bounds it instead."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield
        return

    def interrupt(_signum, frame):
        while frame is not None:
            if frame.f_code.co_filename == RERUN_FILE:
                raise RerunTimeout(f"did not finish within {seconds:g} s")
            frame = frame.f_back
        signal.setitimer(signal.ITIMER_REAL, 0.05)  # not in the student's code right now: soon again

    previous = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


async def _execute(run: Run, scratch: dict, values: dict) -> None:
    """One of the student's cells, already run once, run again in `scratch` (with `values`
    replacing its top-level assignments of those names)."""
    tree = ast.fix_missing_locations(_Rewrite(values).visit(_tree(run.source)))
    # dont_inherit: compiled as the kernel compiles a cell, not with this module's `annotations` future
    code = compile(tree, RERUN_FILE, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True)
    result = eval(code, scratch)  # the student's own cell
    if hasattr(result, "__await__"):
        await result


async def alone(step: list[Run], namespace: dict, seconds: float = RERUN_TIME_LIMIT):
    """Run a step's cells again, in order, in `namespace` alone (none of the kernel's other
    names), bounded by `seconds`: (the cell that raised, its error), or (None, None) when they
    all ran, or did not finish in time (not what this asks)."""
    try:
        async with asyncio.timeout(seconds):
            with contextlib.redirect_stdout(io.StringIO()), _time_limit(seconds):
                for run in step:
                    if _tree(run.source) is None:
                        continue
                    try:
                        await _execute(run, namespace, {})
                    except Exception as exc:
                        return run, exc
    except (RerunTimeout, TimeoutError):
        pass
    return None, None


async def rerun(ns: dict, name: str, values: dict, seconds: float = RERUN_TIME_LIMIT):
    """Run the student's cells again, in a copy of the namespace, from the latest one that
    assigns one of `values`' names to the latest one that defines `name`, with those
    assignments replaced by `values`. Cells that raised when the student ran them are left
    out (but the last), and the whole run is bounded by `seconds`. Returns (the new `name`
    or None, the error of the last cell or None)."""
    history = runs()
    end = next((i for i in range(len(history) - 1, -1, -1) if name in history[i].defines), None)
    if end is None:
        return None, None
    starts = [next((i for i in range(end, -1, -1) if key in history[i].defines), None) for key in values]
    start = min([s for s in starts if s is not None], default=end)
    scratch = dict(ns)
    scratch.update(values)
    scratch.pop(name, None)
    error = None
    try:
        async with asyncio.timeout(seconds):
            with contextlib.redirect_stdout(io.StringIO()), _time_limit(seconds):
                for index in range(start, end + 1):
                    run = history[index]
                    if _tree(run.source) is None or (run.error is not None and index != end):
                        continue
                    try:
                        await _execute(run, scratch, values)
                        error = None
                    except Exception as exc:  # an earlier cell stops where it stopped before; the last one counts
                        error = exc
    except (RerunTimeout, TimeoutError):
        return None, TimeoutError(f"your step 3 code, run again with other values by this check, did not finish "
                                  f"within {seconds:g} s")
    return scratch.get(name), error
