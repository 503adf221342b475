"""import-linter contract types of this course's own (registered in pyproject.toml's
[tool.importlinter] `contract_types`; `make lint` runs them with the built-in ones).

private_names: no module uses another module's private names. A name is private when it
starts with one underscore (`_env`; `__version__` and other dunders are public). Checked in
every module of the root packages (autograder, course_grade), from their source:

    from course_grade.grading import _env         # broken: a private name of another module
    from course_grade import grading; grading._env  # broken: the same, through the module
    import course_grade.grading as g; g._env()     # broken

A module's own private names, a package's private submodules used by that package, and
private names of third-party packages are not checked. tests/, tools/ and bench/ are outside
the root packages, so tests may reach into a module's private names to test them.

import-linter's import graph records which modules import which, not the names imported,
so this contract reads each module's syntax tree itself (about 50 files: well under 1 s).
"""
from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

from importlinter import Contract, ContractCheck, fields, output


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _module_file(module: str) -> Path | None:
    """The source file of `module`, found without importing anything."""
    root, *rest = module.split(".")
    spec = importlib.util.find_spec(root)
    if spec is None or not spec.submodule_search_locations:
        return Path(spec.origin) if spec and spec.origin and not rest else None
    base = Path(next(iter(spec.submodule_search_locations))).joinpath(*rest)
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _resolve(importer: str, is_package: bool, level: int, module: str | None) -> str:
    """The absolute name of `from <level dots><module> import ...` written in `importer`."""
    if not level:
        return module or ""
    parts = importer.split(".")
    base = parts if is_package else parts[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([module] if module else []))


def private_uses(importer: str, path: Path, modules: set[str]) -> list[tuple[int, str, str]]:
    """(line, module, private name) for each use in `importer` of a private name that one
    of `modules` (other than `importer` itself) defines."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    found: list[tuple[int, str, str]] = []
    aliases: dict[str, str] = {}  # a local name -> the module of ours it is bound to

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname and alias.name in modules:
                    aliases[alias.asname] = alias.name
                elif not alias.asname and alias.name.split(".")[0] in {m.split(".")[0] for m in modules}:
                    # `import a.b.c` binds `a`; attribute chains a.b.c._x are read below
                    aliases.setdefault(alias.name.split(".")[0], alias.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom):
            source = _resolve(importer, is_package, node.level, node.module)
            if source not in modules:
                continue
            for alias in node.names:
                submodule = f"{source}.{alias.name}"
                if submodule in modules:
                    aliases[alias.asname or alias.name] = submodule
                    if _is_private(alias.name) and not importer.startswith(source + "."):
                        found.append((node.lineno, source, alias.name))
                elif _is_private(alias.name) and source != importer:
                    found.append((node.lineno, source, alias.name))

    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _is_private(node.attr):
            chain, inner = [], node.value
            while isinstance(inner, ast.Attribute):
                chain.append(inner.attr)
                inner = inner.value
            if isinstance(inner, ast.Name) and inner.id in aliases:
                owner = ".".join([aliases[inner.id], *reversed(chain)])
                if owner in modules and owner != importer and f"{owner}.{node.attr}" not in modules:
                    found.append((node.lineno, owner, node.attr))
    return sorted(set(found))


class PrivateNamesContract(Contract):
    """Configuration options:

    - allow: uses that are let through, each as "importer -> module._name" (optional). Every
      entry must still match a use: a stale one breaks the contract, so the list only shrinks.
    """

    type_name = "private_names"

    allow = fields.SetField(subfield=fields.StringField(), required=False, default=set())

    def check(self, graph, verbose: bool) -> ContractCheck:
        modules = {m for m in graph.modules if not graph.is_module_squashed(m)}  # not external packages
        uses, unreadable = [], []
        for importer in sorted(modules):
            path = _module_file(importer)
            if path is None:
                unreadable.append(importer)
                continue
            for line, owner, name in private_uses(importer, path, modules):
                uses.append({"importer": importer, "line": line, "owner": owner, "name": name,
                             "key": f"{importer} -> {owner}.{name}"})
        output.verbose_print(verbose, f"Read {len(modules) - len(unreadable)} modules for private names.")
        allowed = {entry.strip() for entry in self.allow}  # type: ignore[attr-defined]
        broken = [use for use in uses if use["key"] not in allowed]
        stale = sorted(allowed - {use["key"] for use in uses})
        return ContractCheck(kept=not (broken or stale or unreadable),
                             metadata={"broken": broken, "stale": stale, "unreadable": unreadable})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for use in check.metadata["broken"]:
            output.print_error(f"{use['importer']}:{use['line']} uses {use['owner']}.{use['name']}, "
                               "a private name of another module", bold=False)
            output.new_line()
        for entry in check.metadata["stale"]:
            output.print_error(f"allowed but no longer used (remove it from `allow`): {entry}", bold=False)
            output.new_line()
        for module in check.metadata["unreadable"]:
            output.print_error(f"{module}: no source file found", bold=False)
            output.new_line()
