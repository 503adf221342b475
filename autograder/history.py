"""Find how a name was assigned in the cells the student ran, and evaluate it again.

IPython keeps the source of every executed cell (`In`), in JupyterLab and under nbgrader
alike. Step 3 uses it to ask a behavioural question the finished engine cannot answer:
"if POOL_SIZE were 7, would the pool have 7 connections?", and to grade the student's
step-3 line on its own when step 1 or 2 is wrong.
"""
from __future__ import annotations

import ast
import contextlib

_MISSING = object()
_FLAGS = ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT


def _cell_sources() -> list[str]:
    try:
        from IPython import get_ipython
    except ImportError:
        return []
    shell = get_ipython()
    if shell is None:
        return []
    return list(shell.user_ns.get("In") or shell.history_manager.input_hist_parsed)


def _module_level(statements):
    """Statements that run at a cell's top level (descending into if/for/while/with/try)."""
    for node in statements:
        yield node
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            continue
        for field in ("body", "orelse", "finalbody"):
            yield from _module_level(getattr(node, field, []) or [])
        for handler in getattr(node, "handlers", []) or []:
            yield from _module_level(handler.body)


def assignment(name: str) -> ast.expr | None:
    """The expression last assigned to `name` at the top level of an executed cell."""
    for source in reversed(_cell_sources()):
        try:
            tree = compile(source, "<cell>", "exec", flags=_FLAGS)
        except (SyntaxError, ValueError):
            continue
        found = None
        for node in _module_level(tree.body):
            if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
                found = node.value
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.target.id == name and node.value:
                found = node.value
        if found is not None:
            return found
    return None


@contextlib.contextmanager
def _names_set(ns: dict, values: dict):
    saved = {key: ns.get(key, _MISSING) for key in values}
    ns.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is _MISSING:
                ns.pop(key, None)
            else:
                ns[key] = old


def rebuild(name: str, ns: dict, overrides: dict):
    """Evaluate the expression last assigned to `name` again, with `overrides` set in the
    notebook's namespace meanwhile (so functions the student wrote see them too).
    Returns None when there is no such assignment or it fails."""
    expr = assignment(name)
    if expr is None:
        return None
    code = compile(ast.fix_missing_locations(ast.Expression(body=expr)), f"<{name} again>", "eval")
    with _names_set(ns, overrides):
        try:
            return eval(code, ns)  # noqa: S307 - the student's own line, already run once
        except Exception:
            return None
