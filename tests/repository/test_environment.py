"""One pin source (environment.yml) for local, CI and Binder; the running stack matches it."""
from __future__ import annotations

import re
import sys
import tomllib
from importlib import metadata

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement

from tests.support.course import ROOT
from tools import pins

PINS = [Requirement(line) for line in pins.read_pins()]


def _applies(req: Requirement) -> bool:
    return req.marker is None or req.marker.evaluate(default_environment())


@pytest.mark.parametrize("req", [r for r in PINS if _applies(r)], ids=lambda r: r.name)
def test_installed_version_is_the_pinned_one(req):
    (spec,) = req.specifier
    assert spec.operator == "==", f"{req}: environment.yml pins exact versions"
    assert metadata.version(req.name) == spec.version, f"{req.name}: run `make env` (pins drifted)"


def test_python_is_the_pinned_minor_version():
    assert f"{sys.version_info.major}.{sys.version_info.minor}" == pins.read_python()


def test_pins_satisfy_the_package_ranges():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pinned = {r.name.lower().replace("_", "-"): next(iter(r.specifier)).version for r in PINS}
    extras = project["optional-dependencies"]
    assert set(extras) == {"test", "hub"}, f"tools/pins.py lock resolves the extras test and hub, not {sorted(extras)}"
    for line in project["dependencies"] + extras["test"] + extras["hub"]:
        want = Requirement(line)
        name = want.name.lower().replace("_", "-")
        assert name in pinned, f"{name} is a dependency but has no pin: run `make lock`"
        assert want.specifier.contains(pinned[name]), (
            f"{name}=={pinned[name]} is outside {want.specifier}: run `make lock`")


def test_greenlet_is_pinned_for_the_asyncio_extension():
    assert any(r.name == "greenlet" for r in PINS), "sqlalchemy[asyncio] needs greenlet"


def test_every_environment_reads_the_same_pins():
    makefile = (ROOT / "Makefile").read_text()
    assert "tools/pins.py requirements" in makefile, "make env must install from environment.yml"
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^\s*make test\b", ci, re.M), ".ci/run must run the README's test command"
    assert "make test" in (ROOT / "README.md").read_text()
    post_build = (ROOT / "postBuild").read_text()
    assert "--no-deps" in post_build, "Binder installs the pins from environment.yml, then only our package"
    assert not (ROOT / "requirements.txt").exists(), "a second pin file would let Binder and local drift apart"
