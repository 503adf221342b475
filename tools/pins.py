"""The pinned versions in environment.yml: read them, or write them anew.

environment.yml is the only place exact versions live. Binder reads it directly; the local
and CI environments read its pip list through this script:

    python tools/pins.py requirements   # print the pins as a requirements file (for uv/pip)
    python tools/pins.py lock           # re-resolve pyproject.toml's ranges and rewrite the pins

Standard library only: it runs before any environment exists.
"""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENV_FILE = ROOT / "environment.yml"
PYTHON = "3.11"

HEADER = f"""\
# The one source of pinned versions for every environment:
#   - Binder: repo2docker builds its environment from this file;
#   - local and CI: `make env` feeds the pip list below to uv (see tools/pins.py).
# Do not edit the pins by hand: change the ranges in pyproject.toml and run `make lock`.
name: connection-pooling
channels:
  - conda-forge
dependencies:
  - python={PYTHON}
  - pip
  - pip:
"""

_PIN = re.compile(r"^\s{6}- (?P<req>\S.*)$")


def read_pins(path: Path = ENV_FILE) -> list[str]:
    """Return the requirement lines of the pip section of environment.yml."""
    pins, in_pip = [], False
    for line in path.read_text().splitlines():
        if line.strip() == "- pip:":
            in_pip = True
            continue
        if in_pip:
            match = _PIN.match(line)
            if match:
                pins.append(match["req"].strip())
            elif line.strip() and not line.lstrip().startswith("#"):
                break
    if not pins:
        raise SystemExit(f"{path}: found no pinned packages under '- pip:'")
    return pins


def read_python(path: Path = ENV_FILE) -> str:
    match = re.search(r"^\s*- python=(\S+)\s*$", path.read_text(), re.M)
    if not match:
        raise SystemExit(f"{path}: found no '- python=X.Y' line")
    return match[1]


def lock() -> None:
    """Re-resolve; the current pins are kept wherever the ranges still allow them (uv prefers
    the versions already in its output file), so adding a dependency moves nothing else."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        current = Path(tmp) / "pins.txt"
        current.write_text("\n".join(read_pins()) + "\n" if ENV_FILE.exists() else "")
        subprocess.run(
            ["uv", "pip", "compile", str(ROOT / "pyproject.toml"), "--extra", "test", "--extra", "hub",
             "-o", str(current), "--python-version", PYTHON, "--universal", "--no-header", "--no-annotate", "--quiet"],
            check=True, capture_output=True, text=True,
        )
        out = current.read_text()
    pins = [line.strip() for line in out.splitlines() if line.strip() and not line.startswith("#")]
    ENV_FILE.write_text(HEADER + "".join(f"      - {pin}\n" for pin in pins))
    print(f"wrote {len(pins)} pins to {ENV_FILE.name}")


def main(argv: list[str]) -> None:
    if argv == ["requirements"]:
        print("\n".join(read_pins()))
    elif argv == ["python"]:
        print(read_python())
    elif argv == ["lock"]:
        lock()
    else:
        raise SystemExit("usage: python tools/pins.py requirements | python | lock")


if __name__ == "__main__":
    main(sys.argv[1:])
