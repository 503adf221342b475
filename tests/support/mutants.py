"""Mutants of the lesson's four solution cells: every single edit a student could make, graded
to find the mistakes nobody wrote into tests/support/mistakes.py.

A mutant is one step's solution cell with one edit made by an `ast` operator (below) to its
source text: the rest of the cell, comments included, is kept. Its id says where and what,
`step4:drop_await:L20:conn.execute`: step, operator, line in the cell, what changed. Mutants
with the same source are kept once (the first made).

`classify` puts a graded mutant (tests/support/harness.py) into one class:
- `does_not_run`: the mutated cell is not valid Python (still graded: it must get a named message);
- `equivalent`: full marks (each one is listed in EQUIVALENT with why it cannot be wrong);
- `not_own_step`: it loses a graded cell outside its own step (a later step is graded with a
  correct value standing in, report.stand_in, and quizzes never depend on the code);
- `fallback`: a failing cell shows the generic sentence around a raw error (its record's
  `unexplained`) or shows no record of its failure;
- `named`: every failing cell's record names a mistake or says something specific;
- `error`: the harness could not grade it (a timeout).

    python -m tests.support.mutants          # every mutant: the counts, then the fallbacks by class
    python -m tests.support.mutants --list   # the ids only, nothing graded
"""
from __future__ import annotations

import argparse
import ast
import collections
import dataclasses
import re
import sys
import time

from autograder.registry import STEP_NAMES
from tests.support.course import solutions
from tests.support.mistakes import STEP1, STEP2, STEP3, STEP4

CELLS = {1: STEP1, 2: STEP2, 3: STEP3, 4: STEP4}  # step -> its solution cell's grade_id
# the earlier steps whose values a step's code uses: their names (autograder.registry) are
# what `rename_scope` may write in place of another value
USES = {1: (), 2: (), 3: (1, 2), 4: (3,)}
EARLIER_VALUES = {step: tuple(name for used in uses for name in STEP_NAMES[used]) for step, uses in USES.items()}

# ----------------------------------------------------------------------- the replacement tables

URL_EDITS = [  # (kind, old part, new part) applied to the step-1 URL
    ("url_scheme", "sqlite+aiosqlite", "postgresql+asyncpg"),
    ("url_scheme", "sqlite+aiosqlite", "mysql+aiomysql"),
    ("url_scheme", "sqlite+aiosqlite", "aiosqlite"),
    ("url_driver", "+aiosqlite", ""),
    ("url_driver", "+aiosqlite", "+pysqlite"),
    ("url_driver", "+aiosqlite", "+asyncpg"),
    ("url_driver", "+aiosqlite", "+aiosqllite"),
    ("url_driver", "+aiosqlite", ":aiosqlite"),
    ("url_driver", "+aiosqlite", "+aiosqlite+aiosqlite"),
    ("url_driver", "sqlite+", "sqlite3+"),
    ("url_slashes", ":///", "://"),
    ("url_slashes", ":///", ":////"),
    ("url_slashes", ":///", ":/"),
    ("url_slashes", "./", ".\\"),
    ("url_path", "./test.db", "test.db"),
    ("url_path", "./test.db", "./tests.db"),
    ("url_path", "./test.db", "./test.sqlite"),
    ("url_path", "./test.db", ":memory:"),
    ("url_path", "/./test.db", ""),
    ("url_path", "./test.db", "./test.db "),
    ("url_path", "./test.db", "./Test.db"),
    ("url_path", "./test.db", "../test.db"),
]
ROUTE_PATHS = ["/item", "/items/", "items", "/Items", "/"]
SQL_EDITS = [("items", "item"), ("*", "id"), ("*", "name, price"), ("SELECT * FROM items", "select * from items"),
             ("SELECT", "SELECT DISTINCT"), ("FROM", "FORM"), (" FROM items", " FROM items LIMIT 2")]
HTTP_METHODS = {"get": ["post", "put", "delete", "head"]}
METHOD_SWAPS = {
    "connect": ["begin", "raw_connection"],
    "begin": ["connect"],
    "execute": ["scalars", "scalar", "stream", "exec_driver_sql"],
    "mappings": ["all", "fetchall", "scalars", "first", "one", "keys"],
    "all": ["mappings"],
}
KEYWORD_RENAMES = {"pool_size": ["max_overflow", "poolsize", "size", "pool_timeout"]}
IMPORT_MODULES = {"sqlalchemy.ext.asyncio": ["sqlalchemy", "sqlalchemy.asyncio", "sqlalchemy.ext"],
                  "sqlalchemy": ["sqlalchemy.sql", "sqlalchemy.orm"],
                  "fastapi": ["starlette", "fastapi.params"],
                  "typing": ["typing_extensions", "types"]}


# --------------------------------------------------------------------------------- the mutants

@dataclasses.dataclass(frozen=True)
class Mutant:
    id: str          # "step4:drop_await:L20:conn.execute"
    step: int
    operator: str
    line: int        # in the step's cell, from 1
    what: str
    source: str      # the whole mutated cell

    @property
    def answers(self) -> dict[str, str]:
        """The submission: this cell mutated, every other solution cell right."""
        return {CELLS[self.step]: self.source}

    def runs(self) -> bool:
        """The cell is valid Python (top-level `await` allowed, as IPython allows it)."""
        try:
            compile(self.source, "<mutant>", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
        except SyntaxError:
            return False
        return True


class _Text:
    """The cell's source, edited by (line, column) spans as `ast` reports them."""

    def __init__(self, source: str):
        self.source = source
        self.lines = source.splitlines(keepends=True)
        self.starts = [0]
        for line in self.lines:
            self.starts.append(self.starts[-1] + len(line))

    def at(self, lineno: int, col: int) -> int:
        """Offset of (lineno from 1, col in UTF-8 bytes, as ast gives it)."""
        line = self.lines[lineno - 1]
        return self.starts[lineno - 1] + len(line.encode()[:col].decode())

    def span(self, node) -> tuple[int, int]:
        return self.at(node.lineno, node.col_offset), self.at(node.end_lineno, node.end_col_offset)

    def of(self, node) -> str:
        start, end = self.span(node)
        return self.source[start:end]

    def replace(self, start: int, end: int, new: str) -> str:
        return self.source[:start] + new + self.source[end:]

    def lines_of(self, first: int, last: int) -> tuple[int, int]:
        """The span of whole lines first..last (from 1)."""
        return self.starts[first - 1], self.starts[last]


def _parents(tree) -> dict:
    out = {}
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            out[child] = node
    return out


def _short(text: str, limit: int = 40) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"' if '"' in value or "\\" in value \
        else f'"{value}"'


def _label(part: str) -> str:
    """A string's changed part as an id shows it: as it is, or quoted when empty or edged with spaces."""
    return repr(part) if not part or part != part.strip() else _short(part, 30)


def _near_miss(name: str) -> list[str]:
    """Spellings a student could type for `name`."""
    out = []
    if name.isupper():
        out.append(name.lower())
    elif "_" in name:
        out.append(name.replace("_", "", 1))
    if len(name) > 3:
        out.append(name[:-1])
    else:
        out.append(name + "s")
    return [n for n in dict.fromkeys(out) if n != name]


class _Maker:
    """Every single-edit mutant of one step's cell, in a fixed order."""

    def __init__(self, step: int, source: str):
        self.step, self.text = step, _Text(source)
        self.tree = ast.parse(source)
        self.parent = _parents(self.tree)
        self.made: list[tuple[str, int, str, str]] = []  # (operator, line, what, source)

    def add(self, operator: str, node_or_line, what: str, start: int, end: int, new: str) -> None:
        line = node_or_line if isinstance(node_or_line, int) else node_or_line.lineno
        self.made.append((operator, line, what, self.text.replace(start, end, new)))

    # ---- helpers about where a node is
    def _function(self, node):
        while node in self.parent:
            node = self.parent[node]
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                return node
        return None

    def _in_annotation_or_decorator(self, node) -> bool:
        child = node
        while child in self.parent:
            up = self.parent[child]
            if isinstance(up, ast.arg) and up.annotation is child:
                return True
            if isinstance(up, (ast.FunctionDef, ast.AsyncFunctionDef)) and child in up.decorator_list:
                return True
            child = up
        return False

    def _awaited(self, node) -> bool:
        return isinstance(self.parent.get(node), ast.Await)

    # ---- the operators
    def drop_await(self):
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Await):
                start, end = self.text.span(node)
                inner = self.text.of(node.value)
                self.add("drop_await", node, _short(_callee(node.value)), start, end, inner)

    def drop_async(self):
        for node in ast.walk(self.tree):
            if isinstance(node, (ast.AsyncWith, ast.AsyncFunctionDef, ast.AsyncFor)):
                start = self.text.at(node.lineno, node.col_offset)
                what = {ast.AsyncWith: "async with", ast.AsyncFunctionDef: f"async def {getattr(node, 'name', '')}",
                        ast.AsyncFor: "async for"}[type(node)]
                self.add("drop_async", node, what.strip(), start, start + len("async "), "")

    def add_await(self):
        for node in ast.walk(self.tree):
            if not isinstance(node, ast.Call) or self._awaited(node) or self._in_annotation_or_decorator(node):
                continue
            function = self._function(node)
            if function is not None and not isinstance(function, ast.AsyncFunctionDef):
                continue  # `await` outside an async function: not what a student would write
            start, end = self.text.span(node)
            up = self.parent.get(node)
            tight = isinstance(up, (ast.Attribute, ast.Subscript)) or (isinstance(up, ast.Call) and up.func is node)
            new = f"(await {self.text.of(node)})" if tight else f"await {self.text.of(node)}"
            self.add("add_await", node, _short(_callee(node)), start, end, new)

    def move_await(self):
        """`await f(g())` -> `f(await g())`: the await on the wrong call."""
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Await) and isinstance(node.value, ast.Call):
                for arg in node.value.args:
                    if isinstance(arg, ast.Call):
                        start, end = self.text.span(node)
                        a_start, a_end = self.text.span(arg)
                        inner = self.text.source[self.text.span(node.value)[0]:a_start] + "await " + \
                            self.text.source[a_start:self.text.span(node.value)[1]]
                        self.add("move_await", node, f"{_callee(node.value)}->{_callee(arg)}", start, end, inner)

    def yield_return(self):
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Expr) and isinstance(node.value, ast.Yield):
                start = self.text.at(node.lineno, node.col_offset)
                self.add("yield_to_return", node, _short(self.text.of(node)), start, start + len("yield"), "return")
            elif isinstance(node, ast.Return) and node.value is not None:
                start = self.text.at(node.lineno, node.col_offset)
                self.add("return_to_yield", node, _short(self.text.of(node)), start, start + len("return"), "yield")

    def delete_stmt(self):
        for node in ast.walk(self.tree):
            if isinstance(node, ast.stmt):
                first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
                start, end = self.text.lines_of(first, node.end_lineno)
                what = self.text.lines[node.lineno - 1].strip().rstrip(":")
                self.add("delete_stmt", first, _short(what), start, end, "")

    def drop_decorator(self):
        for node in ast.walk(self.tree):
            for deco in getattr(node, "decorator_list", []):
                start, end = self.text.lines_of(deco.lineno, deco.end_lineno)
                self.add("drop_decorator", deco, _short("@" + self.text.of(deco)), start, end, "")

    def rename_near(self):
        """Each name, spelled a little wrong where it is written once."""
        for node in ast.walk(self.tree):
            for name, start in self._name_sites(node):
                for typo in _near_miss(name):
                    self.add("rename_near", node, f"{name}->{typo}", start, start + len(name), typo)

    def _name_sites(self, node) -> list[tuple[str, int]]:
        if isinstance(node, ast.Name):
            return [(node.id, self.text.span(node)[0])]
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            line_start = self.text.at(node.lineno, node.col_offset)
            found = re.compile(r"def\s+").search(self.text.source, line_start)
            return [(node.name, found.end())]
        if isinstance(node, ast.arg):
            return [(node.arg, self.text.span(node)[0])]
        if isinstance(node, ast.alias) and node.asname is None and "." not in node.name:
            return [(node.name, self.text.span(node)[0])]
        return []

    def rename_scope(self):
        """A variable used where another value in scope was meant (`engine` for `conn`...)."""
        bound = self._bound_values()
        for node in ast.walk(self.tree):
            if not (isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and node.id in bound["all"]):
                continue
            visible = [n for n, line in bound[self._function(node)] if line < node.lineno]
            visible += list(EARLIER_VALUES[self.step])
            visible += [n for n, line in bound[None] if line < node.lineno]
            visible += self._comprehension_targets(node)
            start = self.text.span(node)[0]
            for other in dict.fromkeys(visible):
                if other != node.id:
                    self.add("rename_scope", node, f"{node.id}->{other}", start, start + len(node.id), other)

    def _comprehension_targets(self, node) -> list[str]:
        out = []
        while node in self.parent:
            node = self.parent[node]
            if isinstance(node, (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)):
                out += [t.id for g in node.generators for t in ast.walk(g.target) if isinstance(t, ast.Name)]
        return out

    def _bound_values(self) -> dict:
        """function node (None: the cell) -> [(value name, line bound)]; "all": every value name."""
        out = collections.defaultdict(list)
        names = set(EARLIER_VALUES[self.step])
        for node in ast.walk(self.tree):
            targets = []
            if isinstance(node, ast.Assign):
                targets = node.targets
            elif isinstance(node, (ast.With, ast.AsyncWith)):
                targets = [item.optional_vars for item in node.items if item.optional_vars is not None]
            elif isinstance(node, ast.arg):
                out[self._function(node)].append((node.arg, node.lineno))
                names.add(node.arg)
            elif isinstance(node, ast.comprehension):
                names |= {t.id for t in ast.walk(node.target) if isinstance(t, ast.Name)}
            for target in targets:
                for t in ast.walk(target):
                    if isinstance(t, ast.Name):
                        out[self._function(node)].append((t.id, node.lineno))
                        names.add(t.id)
        out["all"] = names
        return out

    def strings(self):
        for node in ast.walk(self.tree):
            if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
                continue
            start, end = self.text.span(node)
            value = node.value
            up = self.parent.get(node)
            edits = []
            if "://" in value:
                edits = [(kind, old, new) for kind, old, new in URL_EDITS if old in value]
                edits.append(("url_other", value, ""))
            elif isinstance(up, ast.Call) and isinstance(up.func, ast.Attribute) and up.func.attr in HTTP_METHODS:
                edits = [("route_path", value, new) for new in ROUTE_PATHS]
            elif value.upper().startswith("SELECT"):
                edits = [("sql", old, new) for old, new in SQL_EDITS if old in value]
            for kind, old, new in edits:
                changed = value.replace(old, new, 1)
                if changed != value:
                    label = f"{_label(old)}->{_label(new)}"
                    self.add(kind, node, label, start, end, _quoted(changed))

    def numbers(self):
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Constant) and type(node.value) is int:
                start, end = self.text.span(node)
                n = node.value
                for new in dict.fromkeys([str(n + 1), str(n - 1), "0", str(-n), f"{n}.0", f'"{n}"', str(n * 2)]):
                    self.add("number", node, f"{n}->{new}", start, end, new)

    def methods(self):
        for node in ast.walk(self.tree):
            if not (isinstance(node, ast.Attribute) and isinstance(self.parent.get(node), ast.Call)
                    and self.parent[node].func is node):
                continue
            end = self.text.span(node)[1]
            start = end - len(node.attr)
            decorator = self._in_annotation_or_decorator(node)
            table = HTTP_METHODS if decorator else METHOD_SWAPS
            operator = "http_method" if decorator else "method"
            for new in table.get(node.attr, []):
                self.add(operator, node, f"{_callee(node)}->{new}", start, end, new)

    def keywords(self):
        for node in ast.walk(self.tree):
            if not isinstance(node, ast.Call):
                continue
            items = [*node.args, *node.keywords]
            items.sort(key=lambda n: (n.lineno, n.col_offset))
            for kw in items:
                if not isinstance(kw, ast.keyword) or kw.arg is None:
                    continue
                k_start, k_end = self.text.span(kw)
                for new in KEYWORD_RENAMES.get(kw.arg, []):
                    self.add("keyword_rename", kw, f"{kw.arg}->{new}", k_start, k_start + len(kw.arg), new)
                value = self.text.of(kw.value)
                self.add("positional_argument", kw, f"{kw.arg}={_short(value)}->{_short(value)}", k_start, k_end, value)
            for i, arg in enumerate(items):
                a_start, a_end = self.text.span(arg)
                if i > 0:
                    start, end = self.text.span(items[i - 1])[1], a_end
                elif len(items) > 1:
                    start, end = a_start, self.text.span(items[1])[0]
                else:
                    start, end = a_start, a_end
                self.add("drop_argument", arg, f"{_callee(node)}(-{_short(self.text.of(arg), 30)})", start, end, "")

    def add_call(self):
        """`Depends(get_connection)` -> `Depends(get_connection())`: a function called, not passed."""
        defined = {n.name for n in ast.walk(self.tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Call):
                for arg in node.args:
                    if isinstance(arg, ast.Name) and arg.id in defined:
                        start, end = self.text.span(arg)
                        self.add("add_call", arg, f"{arg.id}->{arg.id}()", start, end, f"{arg.id}()")

    def imports(self):
        for node in ast.walk(self.tree):
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            start, end = self.text.span(node)
            for i, alias in enumerate(node.names):
                rest = node.names[:i] + node.names[i + 1:]
                if rest:
                    clone = ast.ImportFrom(node.module, rest, node.level) if isinstance(node, ast.ImportFrom) \
                        else ast.Import(rest)
                    self.add("drop_import", node, alias.name, start, end, ast.unparse(clone))
                else:
                    l_start, l_end = self.text.lines_of(node.lineno, node.end_lineno)
                    self.add("drop_import", node, alias.name, l_start, l_end, "")
            if isinstance(node, ast.ImportFrom) and node.module in IMPORT_MODULES:
                for module in IMPORT_MODULES[node.module]:
                    clone = ast.ImportFrom(module, node.names, node.level)
                    self.add("import_module", node, f"{node.module}->{module}", start, end, ast.unparse(clone))

    OPERATORS = ("imports", "drop_await", "move_await", "add_await", "drop_async",
                 "yield_return", "strings", "numbers", "methods", "keywords", "add_call", "rename_near",
                 "rename_scope", "drop_decorator", "delete_stmt")

    def all(self) -> list[tuple[str, int, str, str]]:
        for name in self.OPERATORS:
            getattr(self, name)()
        return self.made


def _callee(node) -> str:
    """`conn.execute` for `conn.execute(...)`, `engine.connect` for `engine.connect()`..."""
    if isinstance(node, ast.Call):
        node = node.func
    if isinstance(node, ast.Attribute):
        base = node.value
        if isinstance(base, ast.Call):
            return f"{_callee(base)}().{node.attr}"
        return f"{ast.unparse(base)}.{node.attr}" if isinstance(base, (ast.Name, ast.Attribute)) else node.attr
    return ast.unparse(node)


def generate(sources: dict[int, str] | None = None) -> list[Mutant]:
    """Every mutant of the four solution cells (`sources`: step -> code, the solution's by
    default), deduplicated by source, in a fixed order; ids are unique."""
    if sources is None:
        given = solutions()
        sources = {step: given[cell] for step, cell in CELLS.items()}
    out, seen, ids = [], set(), collections.Counter()
    for step, source in sources.items():
        seen.add((step, source))
        for operator, line, what, code in _Maker(step, source).all():
            if (step, code) in seen:
                continue
            seen.add((step, code))
            base = f"step{step}:{operator}:L{line}:{what}"
            ids[base] += 1
            mutant_id = base if ids[base] == 1 else f"{base}#{ids[base]}"
            out.append(Mutant(mutant_id, step, operator, line, what, code))
    return out


# ------------------------------------------------------------------------------ classifying

CLASSES = ("equivalent", "named", "fallback", "not_own_step", "does_not_run", "error")


@dataclasses.dataclass(frozen=True)
class Outcome:
    mutant: Mutant
    kind: str                  # one of CLASSES
    lost: dict[str, str]       # graded cell -> its message
    fallbacks: dict[str, str]  # failing cells without a named or specific message -> why
    named_ok: bool             # (does_not_run) every failing cell named or specific
    error: str = ""


def _why_not_named(cell) -> str | None:
    """None when a failing cell's record names its mistake or says something specific; else why."""
    record = cell.record
    if record is not None and record.same_as is not None:
        return None  # points to the earlier cell that gave this failure: that cell is judged
    if record is None:
        return f"no record ({cell.shown or 'stderr: ' + cell.stderr.strip()[:200]})"
    if record.passed:
        return f"its record passed, the cell failed ({cell.shown or 'stderr: ' + cell.stderr.strip()[:200]})"
    if record.unexplained:
        return record.message
    if record.mistake is None and not record.message:
        return "a record without a message"
    return None


def classify(mutant: Mutant, graded) -> Outcome:
    """The class of one mutant, from its harness.Graded."""
    if graded.error:
        return Outcome(mutant, "error", {}, {}, False, graded.error.strip().splitlines()[-1][:300])
    lost = {gid: cell.message for gid, cell in graded.cells.items() if not cell.full}
    fallbacks = {gid: why for gid, cell in graded.cells.items() if not cell.full
                 for why in [_why_not_named(cell)] if why is not None}
    own = f"step{mutant.step}_"
    if not mutant.runs():
        kind = "does_not_run"
    elif not lost:
        kind = "equivalent"
    elif any(not gid.startswith(own) for gid in lost):
        kind = "not_own_step"
    elif fallbacks:
        kind = "fallback"
    else:
        kind = "named"
    return Outcome(mutant, kind, lost, fallbacks, not fallbacks)


def problem(outcome: Outcome) -> str | None:
    """What is wrong with a mutant's grading, None when nothing is: it loses only its own step's
    cells, each with a named or specific message (or it is a reviewed equivalent)."""
    m = outcome.mutant
    if outcome.kind == "error":
        return f"not graded: {outcome.error}"
    if outcome.kind == "equivalent":
        return None if m.id in EQUIVALENT else "full marks, and not in EQUIVALENT: review it (why can it not be wrong?)"
    if m.id in EQUIVALENT:
        return f"listed as equivalent but lost {sorted(outcome.lost)}"
    others = sorted(gid for gid in outcome.lost if not gid.startswith(f"step{m.step}_"))
    if others:
        return f"lost cells outside step {m.step}: {others}"
    if outcome.fallbacks:
        return "not named: " + "; ".join(f"{gid}: {why[:300]}" for gid, why in outcome.fallbacks.items())
    return None


# the raw error as explain.raw() puts it into the generic sentences ("failed with X:", "stopped
# with X", "could not run (X:"), or any name that looks like an exception's
RAW_CLASS = re.compile(r"(?:failed with|stopped with|could not run \()\s*([A-Z]\w*)\b"
                       r"|\b([A-Z]\w*(?:Error|Exception|Exit|Interrupt|Timeout|Closed|Started|Greenlet))\b")
ANSWERED = re.compile(r"answered (\d{3}) instead of 200")


def error_class(why: str) -> str:
    """A fallback's group for the report: the raw exception's class named in its message, or
    the HTTP status it answered (a label to read, never a grading decision)."""
    found = ANSWERED.search(why)
    if found:
        return f"HTTP {found.group(1)}"
    found = RAW_CLASS.search(why)
    return (found.group(1) or found.group(2)) if found else "(no exception named)"


# Mutants that earn full marks, reviewed: id -> why no behaviour the lesson asks for changes.
# A mutant with full marks that is not here fails the slow test, so a new one is looked at.
EQUIVALENT: dict[str, str] = {
    "step4:import_module:L1:typing->typing_extensions": "typing_extensions.Annotated is typing.Annotated on 3.11",
    "step4:import_module:L4:sqlalchemy->sqlalchemy.sql": "sqlalchemy.sql.text is the function sqlalchemy exports",
    "step4:return_to_yield:L21:return [dict(row) for row in result.m...":
        "FastAPI 0.165 streams a route that yields as JSON Lines: one line, the whole list, the same JSON "
        "(content-type application/jsonl)",
    "step4:sql:L20:SELECT * FROM items->select * from items": "SQL keywords are case-insensitive",
    "step4:sql:L20:SELECT->SELECT DISTINCT": "every row has its own primary key `id`: DISTINCT drops none",
    "step4:method:L14:engine.connect->begin": "engine.begin() lends a pooled connection too, in a transaction "
                                              "committed when the block ends: a read is the same",
    "step4:rename_near:L19:read_items->readitems": "nothing calls the route function by its name",
    "step4:rename_near:L19:read_items->read_item": "nothing calls the route function by its name",
}

# Mutants graded wrong today (class, as `classify` says): strict xfail in the slow test, so
# each one shows until autograder/explain.py names it, and a fixed one is noticed.
KNOWN: dict[str, str] = {
    # none today: a mutant that gets the generic sentence (or costs another step) is listed here,
    # "id": "fallback", until its class of mistake is named in autograder/explain.py
}

# The fast tier's sample, graded on every run (a few seconds): one or more mutants of each
# kind of edit, each with the class it must get. The slow tier grades every mutant.
FAST_SAMPLE: dict[str, str] = {
    "step1:url_driver:L1:+aiosqlite->+pysqlite": "named",
    'step2:number:L1:5->"5"': "named",
    "step3:drop_import:L1:create_async_engine": "named",
    "step4:drop_await:L20:conn.execute": "named",
    "step4:yield_to_return:L15:yield conn": "named",
    "step4:http_method:L18:app.get->post": "named",
    "step4:rename_near:L14:engine->engin": "named",
    "step4:method:L14:engine.connect->begin": "equivalent",
    "step4:drop_async:L19:async def read_items": "does_not_run",
    'step4:drop_argument:L18:app.get(-"/items")': "named",
}


# ---------------------------------------------------------------------------------- running

def grade(mutants: list[Mutant], jobs: int = 2) -> dict[str, Outcome]:
    from tests.support.harness import grade_many

    graded = grade_many({m.id: (m.answers, None) for m in mutants}, jobs=jobs)
    return {m.id: classify(m, graded[m.id]) for m in mutants}


def report(outcomes: dict[str, Outcome], out=sys.stdout) -> None:
    counts = collections.Counter(o.kind for o in outcomes.values())
    failing = [o for o in outcomes.values() if o.kind != "equivalent" and o.kind != "error"]
    named = [o for o in failing if not o.fallbacks and o.kind != "not_own_step"]
    print(f"mutants        {len(outcomes)}", file=out)
    for kind in CLASSES:
        extra = ""
        if kind == "does_not_run":
            unnamed = sum(1 for o in outcomes.values() if o.kind == kind and o.fallbacks)
            extra = f"  ({unnamed} of them without a named message)"
        print(f"{kind:14} {counts[kind]}{extra}", file=out)
    share = len(named) / len(failing) if failing else 1.0
    print(f"share named among failing mutants: {len(named)}/{len(failing)} = {share:.0%}", file=out)
    print("(named: every failing cell named or specific, only its own step lost; does_not_run counted by "
          "its messages)", file=out)

    groups = collections.defaultdict(list)
    for o in outcomes.values():
        for gid, why in o.fallbacks.items():
            groups[error_class(why)].append((o, gid, why))
    if groups:
        print("\nfallback messages, by the error they show:", file=out)
    for cls in sorted(groups, key=lambda c: (-len(groups[c]), c)):
        print(f"\n== {cls} ({len(groups[cls])} cells)", file=out)
        for o, gid, why in groups[cls]:
            print(f"  {o.mutant.id}  [{o.kind}]\n      {gid}: {why[:400]}", file=out)
    others = [o for o in outcomes.values() if o.kind == "not_own_step"]
    if others:
        print("\nlosing points outside their own step:", file=out)
        for o in others:
            cells = {gid: msg for gid, msg in o.lost.items() if not gid.startswith(f"step{o.mutant.step}_")}
            for gid, msg in cells.items():
                print(f"  {o.mutant.id}\n      {gid}: {msg[:300]}", file=out)
    errors = [o for o in outcomes.values() if o.kind == "error"]
    for o in errors:
        print(f"  not graded: {o.mutant.id}: {o.error}", file=out)
    new_equivalent = [o for o in outcomes.values() if o.kind == "equivalent" and o.mutant.id not in EQUIVALENT]
    if new_equivalent:
        print("\nfull marks, not yet reviewed in EQUIVALENT:", file=out)
        for o in new_equivalent:
            print(f"  {o.mutant.id}", file=out)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.support.mutants", description=__doc__.split("\n\n")[0])
    parser.add_argument("--list", action="store_true", help="list the mutants' ids, grade nothing")
    parser.add_argument("-k", default="", help="only mutants whose id contains this")
    parser.add_argument("--all", action="store_true", help="also list every mutant: its class and messages")
    parser.add_argument("--known", action="store_true",
                        help="also print KNOWN as it would be today (every mutant graded wrong), to review and paste")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args(argv)
    mutants = [m for m in generate() if args.k in m.id]
    if args.list:
        for m in mutants:
            print(m.id)
        print(f"{len(mutants)} mutants", collections.Counter(m.step for m in mutants))
        return 0
    start = time.perf_counter()
    outcomes = grade(mutants, jobs=args.jobs)
    report(outcomes)
    if args.known:
        print("\nKNOWN = {")
        for o in outcomes.values():
            if problem(o) is not None and o.kind != "equivalent":
                print(f"    {o.mutant.id!r}: {o.kind!r},")
        print("}")
    if args.all:
        print("\nevery mutant:")
        for o in outcomes.values():
            print(f"{o.kind:13} {o.mutant.id}")
            for gid, message in o.lost.items():
                print(f"      {gid}: {message[:300]}")
    print(f"\n{len(mutants)} mutants graded in {time.perf_counter() - start:.0f} s", file=sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
