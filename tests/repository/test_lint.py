"""The import contracts `make lint` enforces (pyproject.toml's [tool.importlinter]) hold on the
tree, and an import that breaks one fails lint-imports, naming the contract."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = str(Path(sys.executable).parent / "lint-imports")
KERNEL_SIDE = "The kernel side (autograder) never imports the instructor side (course_grade)"
PRIVATE_NAMES = "No module uses another module's private names"
LAYERS = "course_grade: each layer imports only the layers below it"
KERNELS = "The kernels and the judge never import nbgrader"


def lint_imports(cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([LINT_IMPORTS, "--no-cache"], cwd=cwd, capture_output=True, text=True, timeout=60)


def verdicts(output: str) -> dict[str, str]:
    """Each contract's name (its start) -> KEPT or BROKEN, from lint-imports' summary."""
    found = {}
    for line in output.splitlines():
        for verdict in ("KEPT", "BROKEN"):
            if line.endswith(" " + verdict):
                found[line.removesuffix(" " + verdict)] = verdict
    return found


def copy_of_the_tree(dest: Path) -> Path:
    """The two packages' sources, the contract type and pyproject.toml, in `dest` (lint-imports
    reads the packages from the folder it runs in, ahead of the installed ones)."""
    for package in ("autograder", "course_grade"):
        shutil.copytree(ROOT / package, dest / package, ignore=shutil.ignore_patterns("__pycache__"))
    (dest / "tools").mkdir()
    shutil.copy(ROOT / "tools" / "lint_contracts.py", dest / "tools")
    shutil.copy(ROOT / "pyproject.toml", dest)
    return dest


def test_the_tree_keeps_every_import_contract():
    done = lint_imports(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    found = verdicts(done.stdout)
    assert all(found.get(name) == "KEPT" for name in (KERNEL_SIDE, LAYERS, KERNELS)), found
    assert [name for name in found if name.startswith(PRIVATE_NAMES)], found


PLANTED = {
    # the kernel side importing the instructor side
    "kernel_imports_instructor": ("autograder/lab.py", "import course_grade\n", KERNEL_SIDE,
                                  "autograder.lab -> course_grade"),
    # a lower layer importing a higher one: the engine reaching up into a command
    "engine_imports_a_command": ("course_grade/engine/readout.py", "from course_grade.commands import merge\n", LAYERS,
                                 "course_grade.engine.readout -> course_grade.commands.merge"),
    # the grading kernels importing nbgrader, directly or through another module
    "kernels_import_nbgrader": ("course_grade/kernels/processes.py", "import nbgrader\n", KERNELS,
                                "course_grade.kernels.processes -> nbgrader"),
    # another module's private name, imported by name ...
    "private_name_imported": ("autograder/lab.py", "from autograder.quiz import _radio\n", PRIVATE_NAMES,
                              "uses autograder.quiz._radio"),
    # ... and read through the module
    "private_name_attribute": ("autograder/progress.py", "from autograder import quiz\nquiz._radio\n", PRIVATE_NAMES,
                               "uses autograder.quiz._radio"),
}


@pytest.mark.slow  # each case runs lint-imports on a copy of the tree: about a second of CPU
@pytest.mark.parametrize("case", PLANTED)
def test_an_import_that_breaks_a_contract_fails_lint_imports(tmp_path, case):
    module, planted, contract, says = PLANTED[case]
    tree = copy_of_the_tree(tmp_path)
    path = tree / module
    path.write_text(path.read_text() + "\n" + planted)
    done = lint_imports(tree)
    assert done.returncode != 0, done.stdout
    broken = [name for name, verdict in verdicts(done.stdout).items() if verdict == "BROKEN"]
    assert [name for name in broken if name.startswith(contract)], done.stdout
    assert len(broken) == 1, f"only the planted import breaks a contract: {broken}"
    assert says in " ".join(done.stdout.split()), done.stdout
