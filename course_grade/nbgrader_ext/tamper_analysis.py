"""Tampering detected by meaning: an analysis of the syntax tree of a student's cell.

The honest solution space of this lesson is narrow (a URL, a number, an engine, a FastAPI app
reading one table), so the policy is an allow-list: a cell may import the modules a solution
needs and use the language freely, but not the machinery that reaches past its own code into
the grader: the import system, introspection (dunders, frames, computed attribute names,
`eval`/`exec`), IPython's shell, the process and the file system outside the submission.

The analysis reads the code IPython would run (`%` and `!` lines transformed into calls of
`get_ipython()`), never comments or string contents, and never a method by its name alone
(`re.compile`, `text(...).compile()`, `model.eval()` are ordinary calls). Code that does not
parse is left alone: it cannot run either.

What a syntax tree cannot see (code that reaches a forbidden object through an allowed one at
run time, database URLs that name other files, ...) is for the runtime audit hook.

    findings = analyse(source)            # [] for an honest cell
    for f in findings: print(f.line, f.what, f.why)
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from autograder.course import COURSE_FILES, SUBMISSION_FILES

# ------------------------------------------------------------------------------ the policy

# Modules a solution may import (each with all its submodules unless restricted below), and why.
ALLOWED_MODULES = {
    # the lesson's own libraries
    "fastapi": "the web framework the lesson builds with",
    "starlette": "the toolkit FastAPI is built on (its responses, requests, status codes)",
    "pydantic": "response models (FastAPI's documentation uses them)",
    "pydantic_core": "pydantic's own types",
    "pydantic_settings": "settings classes for the database URL",
    "sqlalchemy": "the engine, its pool, text(), Core and ORM queries",
    "aiosqlite": "the async SQLite driver the URL names",
    "sqlite3": "reading the lesson's own test.db (paths are checked as for open())",
    "httpx": "calling the app through ASGITransport, as the lesson does",
    "asgi_lifespan": "starting the app's lifespan before calling it, as the lesson does (LifespanManager)",
    "annotated_types": "constraints in Annotated[...] types",
    # typing and data
    "__future__": "from __future__ import annotations",
    "typing": "type hints (Annotated)", "typing_extensions": "type hints",
    "dataclasses": "plain data classes", "enum": "enumerations", "abc": "abstract classes",
    "collections": "namedtuple, defaultdict, abc", "numbers": "numeric types",
    "decimal": "prices as Decimal", "datetime": "timestamps", "uuid": "ids",
    "json": "encoding rows", "re": "regular expressions", "math": "arithmetic",
    "statistics": "arithmetic", "random": "sample data", "string": "text constants",
    "textwrap": "text formatting", "pprint": "printing rows", "copy": "copying rows",
    "functools": "partial, lru_cache, wraps", "itertools": "iteration helpers",
    # async, time, logging, configuration
    "asyncio": "gather, sleep, Semaphore (process and network helpers restricted below)",
    "contextlib": "asynccontextmanager for dependencies and lifespans",
    "time": "timing and sleeping", "logging": "logging.getLogger(__name__)",
    "os": "os.environ / os.getenv for the database URL, os.path (all else restricted below)",
    "sys": "sys.stdout / sys.stderr / sys.version (all else restricted below)",
    "pathlib": "Path('test.db') in a URL (paths are checked as for open())",
}

# Names a cell may import from the lesson's own package, exactly so (`from M import NAME`): what
# the lesson's read-only cells use, which a student may copy into a cell of their own. Nothing
# else of `autograder` (its checks, their state) is importable.
LESSON_IMPORTS = {"autograder.explain": {"request_failed"}}

# Restricted modules: only these attributes (and the names `from M import ...` may take).
MODULE_ALLOWS = {
    "os": {"environ", "getenv", "path", "getcwd", "sep", "linesep", "pathsep", "curdir", "name", "cpu_count"},
    "sys": {"stdout", "stderr", "version", "version_info", "platform", "maxsize", "float_info", "int_info",
            "byteorder", "implementation", "getrecursionlimit"},
}
# Otherwise-allowed modules: these attributes are not.
MODULE_DENIES = {
    "asyncio": {"create_subprocess_exec", "create_subprocess_shell", "subprocess", "open_connection",
                "start_server", "open_unix_connection", "start_unix_server", "all_tasks", "events"},
}

# Dunders a cell may read: names and versions, nothing that leads to code, globals or classes.
ALLOWED_DUNDER_ATTRS = {"__name__", "__qualname__", "__doc__", "__version__", "__module__"}
ALLOWED_DUNDER_NAMES = {"__name__", "__doc__", "__debug__", "__qualname__", "__module__"}

# Built-ins that run code, reach namespaces or stop in a debugger: flagged wherever named.
FORBIDDEN_BUILTINS = {
    "eval": "runs code built from a string",
    "exec": "runs code built from a string",
    "compile": "builds code from a string (the built-in; a method such as re.compile is fine)",
    "globals": "reaches the notebook's namespace directly",
    "locals": "reaches a namespace directly",
    "vars": "reaches an object's namespace directly",
    "__import__": "imports a module by a name built at run time",
    "breakpoint": "stops in a debugger",
    "get_ipython": "reaches IPython's shell (hooks, transformers, magics, the namespace)",
    "exit": "stops the kernel", "quit": "stops the kernel",
    "In": "reads IPython's input history", "Out": "reads IPython's output history",
    "_ih": "reads IPython's input history", "_oh": "reads IPython's output history",
    "_ii": "reads IPython's input history", "_iii": "reads IPython's input history",
    "_dh": "reads IPython's directory history",
}
REFLECTION = {"getattr", "setattr", "delattr"}

# Attribute names that belong to the interpreter's or IPython's machinery, on whatever object:
# `x.modules` reaches sys.modules through a library that imported sys, and so on.
FORBIDDEN_ATTRS = {
    **dict.fromkeys(("modules", "meta_path", "path_hooks", "path_importer_cache", "settrace", "setprofile",
                     "_getframe", "addaudithook", "excepthook", "displayhook", "unraisablehook"),
                    "the interpreter's import system, hooks or frames"),
    **dict.fromkeys(("f_back", "f_globals", "f_locals", "f_builtins", "f_code", "f_trace", "tb_frame", "tb_next",
                     "gi_frame", "cr_frame", "ag_frame", "gi_code", "cr_code", "ag_code", "co_code", "co_consts"),
                    "a frame or code object (another scope's variables)"),
    **dict.fromkeys(("input_transformers_post", "input_transformers_cleanup", "input_transformer_manager",
                     "ast_transformers", "set_custom_exc", "custom_exceptions", "user_ns", "user_global_ns",
                     "run_cell", "run_line_magic", "run_cell_magic", "register_magic_function",
                     "showtraceback", "_render_traceback_", "InteractiveTB", "SyntaxTB"),
                    "IPython's machinery (transformers, hooks, exception handlers, the namespace)"),
    **dict.fromkeys(("sys", "os", "builtins", "importlib", "gc", "ctypes", "subprocess", "socket", "shutil",
                     "signal", "multiprocessing", "_thread", "threading", "posix", "pty"),
                    "a module reached through another module"),
    **dict.fromkeys(("currentframe", "getouterframes", "getinnerframes", "_current_frames"),
                    "a frame or code object (another scope's variables)"),
    "system": "runs a shell command", "popen": "runs a shell command",
    **dict.fromkeys(("subprocess_exec", "subprocess_shell", "add_signal_handler", "remove_signal_handler",
                     "add_reader", "add_writer"),
                    "the event loop's processes, signals or raw file handles"),
    **dict.fromkeys(("get_field", "get_value", "vformat", "Formatter", "attrgetter", "methodcaller"),
                    "looks attributes up by names in strings, at run time"),
}
EVENT_METHODS = {"register", "unregister", "callbacks", "trigger"}  # IPython's shell.events.<...>

# IPython magics whose argument is code or a name: analysed as code, not flagged as magics.
CODE_MAGICS = {"time", "timeit"}
NAME_MAGICS = {"pinfo", "pinfo2"}

# Files the grader reads or owns: never opened by a student cell, even by a relative name.
GRADER_FILES = frozenset(SUBMISSION_FILES + COURSE_FILES)
PATH_OPENERS = {"open": "open()", "Path": "Path()", "PurePath": "Path()", "PosixPath": "Path()"}
MODULE_OPENERS = {("sqlite3", "connect"), ("aiosqlite", "connect"), ("pathlib", "Path"), ("pathlib", "PurePath"),
                  ("pathlib", "PosixPath"), ("io", "open")}
PATH_LEAVING = {"home", "cwd", "parent", "parents", "iterdir", "glob", "rglob", "walk", "expanduser",
                "symlink_to", "hardlink_to"}

# Built-in names the instructor's cells use: a student's top-level name must not hide them
# (the preprocessor adds what the notebook's locked cells read).
PROTECTED = frozenset({"globals", "print", "type", "len"})


@dataclass(frozen=True)
class Finding:
    line: int
    what: str  # the construct, e.g. "import subprocess"
    why: str  # the category, in a sentence

    def __str__(self) -> str:
        return f"line {self.line}: {self.what} ({self.why})"


# ----------------------------------------------------------------------------- the analysis

def ipython_source(source: str) -> str:
    """The Python code IPython runs for a cell (magics and `!` lines become calls)."""
    try:
        from IPython.core.inputtransformer2 import TransformerManager
    except ImportError:  # no IPython: nothing is transformed
        return source
    try:
        return TransformerManager().transform_cell(source)
    except Exception:  # IPython would fail on it as well, before running anything
        return source


def parse(code: str) -> ast.Module | None:
    try:
        return compile(code, "<cell>", "exec", ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    except (SyntaxError, ValueError):
        return None


def analyse(source: str, protected: frozenset[str] | set[str] = PROTECTED) -> list[Finding]:
    """Findings for one cell's source as the student wrote it ([] when it is honest)."""
    tree = parse(ipython_source(source))
    if tree is None:
        return []
    visitor = _Visitor(set(protected))
    visitor.visit(tree)
    return sorted(set(visitor.findings), key=lambda f: (f.line, f.what))


def _literal(node) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _path_problem(path: str) -> str | None:
    if "\x00" in path:
        return "a path with a NUL byte"
    p = PurePosixPath(path.replace("\\", "/"))
    if path.startswith(("/", "~", "\\")) or (len(path) > 1 and path[1] == ":"):
        return "a path outside the submission's folder"
    if ".." in re.split(r"[/\\:?]", path) or path.startswith("file:/"):
        return "a path outside the submission's folder"
    if p.name in GRADER_FILES or p.suffix == ".ipynb":
        return "a file the grader reads"
    return None


@dataclass
class _Visitor(ast.NodeVisitor):
    protected: set[str]
    findings: list[Finding] = field(default_factory=list)
    aliases: dict[str, str] = field(default_factory=dict)  # local name -> module it names
    class_depth: int = 0
    func_depth: int = 0

    def flag(self, node, what: str, why: str) -> None:
        self.findings.append(Finding(getattr(node, "lineno", 0), what, why))

    # --------------------------------------------------------------------- imports
    def _check_module(self, node, module: str) -> bool:
        root = module.split(".")[0]
        if root not in ALLOWED_MODULES:
            self.flag(node, f"import {module}", "a module this lesson's solution does not need")
            return False
        return True

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if self._check_module(node, alias.name):
                parts = alias.name.split(".")
                if len(parts) > 1 and parts[0] in MODULE_ALLOWS and parts[1] not in MODULE_ALLOWS[parts[0]]:
                    self.flag(node, f"import {alias.name}", "a restricted part of a module")
                # `import a.b` binds a; `import a.b as c` binds c to a.b
                self.aliases[alias.asname or parts[0]] = alias.name if alias.asname else parts[0]
            self._binds(node, alias.asname or alias.name.split(".")[0])

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = node.module or ""
        if node.level:
            self.flag(node, f"from {'.' * node.level}{module} import ...",
                      "a relative import (there is no package here)")
            return
        if module in LESSON_IMPORTS and all(a.name in LESSON_IMPORTS[module] for a in node.names):
            for alias in node.names:
                self._binds(node, alias.asname or alias.name)
            return
        if self._check_module(node, module):
            root, *rest = module.split(".")
            for alias in node.names:
                name = alias.name
                if name == "*":
                    if root in MODULE_ALLOWS or root in MODULE_DENIES:
                        self.flag(node, f"from {module} import *", "a restricted module imported whole")
                    continue
                if ((root in MODULE_ALLOWS and not rest and name not in MODULE_ALLOWS[root])
                        or (root in MODULE_DENIES and not rest and name in MODULE_DENIES[root])):
                    self.flag(node, f"from {module} import {name}", "a restricted part of a module")
                elif name in FORBIDDEN_ATTRS:
                    self.flag(node, f"from {module} import {name}", FORBIDDEN_ATTRS[name])
                elif name.startswith("__") and name.endswith("__") and name not in ALLOWED_DUNDER_ATTRS:
                    self.flag(node, f"from {module} import {name}", "a dunder: the interpreter's internals")
                self.aliases[alias.asname or name] = f"{module}.{name}"
        for alias in node.names:
            if alias.name != "*":
                self._binds(node, alias.asname or alias.name)

    # --------------------------------------------------------------------- bindings
    def _binds(self, node, name: str, *, in_class: bool | None = None) -> None:
        """A name bound at the notebook's top level must not hide what test cells use."""
        top = self.func_depth == 0 and self.class_depth == 0
        if not top and not in_class:
            return
        if name.startswith("__") and name.endswith("__") and self.class_depth == 0:
            self.flag(node, f"{name} = ...", "sets an interpreter name (a dunder) in the notebook")
        elif name in self.protected and self.class_depth == 0:
            self.flag(node, f"{name} = ...", "hides a built-in that the test cells call")

    def visit_Name(self, node: ast.Name) -> None:
        name = node.id
        if isinstance(node.ctx, (ast.Store, ast.Del)):
            self._binds(node, name)
            return
        if name in FORBIDDEN_BUILTINS:
            self.flag(node, name, FORBIDDEN_BUILTINS[name])
        elif name in REFLECTION or name == "open":
            self.flag(node, name, "used as a value: calls through it cannot be checked")
        elif name.startswith("__") and name.endswith("__") and name not in ALLOWED_DUNDER_NAMES:
            self.flag(node, name, "a dunder name: the interpreter's internals")
        elif self.aliases.get(name) in MODULE_ALLOWS and not isinstance(getattr(node, "_parent", None), ast.Attribute):
            self.flag(node, name, "a restricted module used as a value")

    def visit_Global(self, node: ast.Global) -> None:
        for name in node.names:
            if name in self.protected or (name.startswith("__") and name.endswith("__")):
                self.flag(node, f"global {name}", "rebinds an interpreter or test-cell name from a function")

    def _scoped(self, node, kind: str) -> None:
        for deco in node.decorator_list:
            self.visit(deco)
        if kind == "class":
            for base in node.bases + [k.value for k in node.keywords]:
                self.visit(base)
            self._binds(node, node.name)
            self.class_depth += 1
            for stmt in node.body:
                self.visit(stmt)
            self.class_depth -= 1
            return
        if node.name == "_render_traceback_":
            self.flag(node, f"def {node.name}", FORBIDDEN_ATTRS[node.name])
        self._binds(node, node.name)
        self.visit(node.args)
        if node.returns:
            self.visit(node.returns)
        depth = self.class_depth
        self.func_depth += 1
        self.class_depth = 0
        for stmt in node.body:
            self.visit(stmt)
        self.func_depth -= 1
        self.class_depth = depth

    def visit_ClassDef(self, node):
        self._scoped(node, "class")

    def visit_FunctionDef(self, node):
        self._scoped(node, "def")

    visit_AsyncFunctionDef = visit_FunctionDef

    # --------------------------------------------------------------------- attributes
    def _root_module(self, node) -> tuple[str, list[str]] | None:
        """For a.b.c rooted at an imported module: (module, [b, c])."""
        chain = []
        while isinstance(node, ast.Attribute):
            chain.append(node.attr)
            node = node.value
        if isinstance(node, ast.Name) and node.id in self.aliases:
            full = self.aliases[node.id].split(".")
            return full[0], full[1:] + chain[::-1]
        if isinstance(node, ast.Name) and node.id in ("os", "sys"):  # imported in another cell
            return node.id, chain[::-1]
        return None

    def _attr_name(self, node, attr: str, parent=None, base=None) -> None:
        if attr.startswith("__") and attr.endswith("__"):
            ok = attr in ALLOWED_DUNDER_ATTRS
            ok = ok or (attr == "__class__" and isinstance(parent, ast.Attribute)
                        and parent.attr in ("__name__", "__qualname__"))
            ok = ok or (isinstance(base, ast.Call) and isinstance(base.func, ast.Name) and base.func.id == "super"
                        and not base.args)
            if not ok:
                self.flag(node, f".{attr}", "a dunder attribute: the interpreter's internals")
        elif attr in FORBIDDEN_ATTRS:
            self.flag(node, f".{attr}", FORBIDDEN_ATTRS[attr])

    def visit_Attribute(self, node: ast.Attribute) -> None:
        self._attr_name(node, node.attr, getattr(node, "_parent", None), node.value)
        rooted = self._root_module(node)
        if rooted:
            module, chain = rooted
            first = chain[0] if chain else None
            if ((module in MODULE_ALLOWS and first is not None and first not in MODULE_ALLOWS[module])
                    or (module in MODULE_DENIES and first in MODULE_DENIES[module])):
                self.flag(node, f"{module}.{'.'.join(chain)}", "a restricted part of a module")
            elif module == "pathlib" and any(c in PATH_LEAVING for c in chain):
                self.flag(node, f"{module}.{'.'.join(chain)}", "a path outside the submission's folder")
            if isinstance(node.ctx, (ast.Store, ast.Del)):
                self.flag(node, f"{module}.{'.'.join(chain)} = ...", "changes a module other code uses")
        if node.attr in EVENT_METHODS and isinstance(node.value, ast.Attribute) and node.value.attr == "events":
            self.flag(node, f".events.{node.attr}", "IPython's event hooks")
        if node.attr in PATH_LEAVING and self._is_path_expr(node.value):
            self.flag(node, f".{node.attr}", "a path outside the submission's folder")
        node.value._parent = node
        self.visit(node.value)

    def _is_path_expr(self, node) -> bool:
        while isinstance(node, (ast.Attribute, ast.Call)):
            node = node.func if isinstance(node, ast.Call) else node.value
        return isinstance(node, ast.Name) and self.aliases.get(node.id, "").startswith("pathlib")

    # --------------------------------------------------------------------- calls
    def _magic(self, node: ast.Call) -> bool:
        """get_ipython().run_line_magic('time', code) and friends: analyse the code instead."""
        f = node.func
        if not (isinstance(f, ast.Attribute) and isinstance(f.value, ast.Call) and isinstance(f.value.func, ast.Name)
                and f.value.func.id == "get_ipython" and not f.value.args
                and f.attr in ("run_line_magic", "run_cell_magic")):
            return False
        args = [_literal(a) for a in node.args]
        if node.keywords or None in args or not args:
            return False
        name = args[0]
        if name in CODE_MAGICS or name in NAME_MAGICS:
            cell = f.attr == "run_cell_magic"
            code = args[-1] if cell else args[1] if len(args) > 1 else ""
            if cell and len(args) == 3 and args[1].strip():
                return False  # options on a cell magic line: flag it as a magic
            for found in analyse(code, self.protected):
                self.findings.append(Finding(node.lineno + cell + found.line - 1, found.what, found.why))
            return True
        return False

    def visit_Call(self, node: ast.Call) -> None:
        f = node.func
        if self._magic(node):
            return
        if (isinstance(f, ast.Attribute) and isinstance(f.value, ast.Call) and isinstance(f.value.func, ast.Name)
                and f.value.func.id == "get_ipython"):
            self.flag(node, f"get_ipython().{f.attr}(...)", "an IPython magic, shell escape or hook")
            for arg in node.args + [k.value for k in node.keywords]:
                self.visit(arg)
            return
        if isinstance(f, ast.Name) and f.id in REFLECTION:
            name = _literal(node.args[1]) if len(node.args) > 1 else None
            rest = node.args + [k.value for k in node.keywords]
            if name is None:
                self.flag(node, f"{f.id}(..., <computed name>)", "an attribute named at run time cannot be checked")
            else:  # getattr(x, "name") is x.name
                ctx = ast.Load() if f.id == "getattr" else ast.Store()
                self.visit(ast.copy_location(ast.Attribute(value=node.args[0], attr=name, ctx=ctx), node))
                rest = rest[1:]
            for arg in rest:
                self.visit(arg)
            return
        opener = None
        if isinstance(f, ast.Name) and (f.id in PATH_OPENERS
                                        and (f.id == "open" or self.aliases.get(f.id, "").startswith("pathlib"))):
            opener = PATH_OPENERS[f.id]
        else:
            rooted = self._root_module(f) if isinstance(f, ast.Attribute) else None
            if isinstance(f, ast.Name) and f.id in self.aliases:
                full = self.aliases[f.id].split(".")
                rooted = (full[0], full[1:])
            if rooted and len(rooted[1]) == 1 and (rooted[0], rooted[1][0]) in MODULE_OPENERS:
                opener = f"{rooted[0]}.{rooted[1][0]}()"
        if opener:
            target = node.args[0] if node.args else next(
                (k.value for k in node.keywords if k.arg in ("file", "database", "path")), None)
            path = _literal(target) if target is not None else "."
            problem = "a path computed at run time cannot be checked" if path is None else _path_problem(path)
            if problem:
                self.flag(node, f"{opener} of {path!r}" if path is not None else opener, problem)
            for arg in node.args + [k.value for k in node.keywords]:
                self.visit(arg)
            if isinstance(f, ast.Attribute):
                self.visit(f.value)
            return
        self.generic_visit(node)
