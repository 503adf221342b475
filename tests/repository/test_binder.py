"""Binder: what repo2docker reads is here and agrees with the pins, and postBuild runs cleanly
in a fresh environment built from those pins. (Binder itself cannot be reached from here.)"""
from __future__ import annotations

import os
import shutil
import subprocess

import pytest
import yaml

from tests.support.course import ROOT
from tools import pins

pytestmark = pytest.mark.slow


# Every file repo2docker would read to build an environment (its buildpacks' config files).
REPO2DOCKER_FILES = ["environment.yml", "requirements.txt", "Pipfile", "Pipfile.lock", "setup.py", "pyproject.toml",
                     "runtime.txt", "apt.txt", "postBuild", "start", "install.R", "DESCRIPTION", "Project.toml",
                     "default.nix", "Dockerfile"]


def test_repo2docker_sees_environment_yml_and_postbuild():
    """No binder/ folder (it would hide the root files) and no second environment file."""
    assert not (ROOT / "binder").exists() and not (ROOT / ".binder").exists()
    present = {name for name in REPO2DOCKER_FILES if (ROOT / name).exists()}
    # pyproject.toml is only read by postBuild (repo2docker's conda buildpack ignores it)
    assert present == {"environment.yml", "postBuild", "pyproject.toml"}, present
    assert os.access(ROOT / "postBuild", os.X_OK) and (ROOT / "postBuild").read_text().startswith("#!/usr/bin/env bash")


def test_environment_yml_is_a_conda_environment_with_the_pins():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert env["channels"] == ["conda-forge"]
    deps = env["dependencies"]
    assert f"python={pins.read_python()}" in deps and "pip" in deps
    (pip_section,) = [d["pip"] for d in deps if isinstance(d, dict)]
    assert pip_section == pins.read_pins(), "the pip list Binder installs is the one make env installs"
    assert all("==" in line for line in pip_section)


def test_readme_has_the_binder_link_to_the_start_page():
    readme = (ROOT / "README.md").read_text()
    assert "mybinder.org/v2/" in readme and "urlpath=lab/tree/notebooks/start.ipynb" in readme
    assert (ROOT / "notebooks" / "start.ipynb").is_file()


def test_postbuild_runs_cleanly_in_a_fresh_environment(tmp_path):
    """A new environment from the pins (as Binder's), a copy of the repository, then postBuild."""
    uv = shutil.which("uv")
    assert uv, "uv is needed to build the fresh environment: run `make env` (it installs uv)"
    venv = tmp_path / "env"
    subprocess.run([uv, "venv", "--quiet", "--python", pins.read_python(), str(venv)], check=True)
    (tmp_path / "pins.txt").write_text("\n".join(pins.read_pins()) + "\n")
    subprocess.run([uv, "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"), "-r",
                    str(tmp_path / "pins.txt")], check=True, timeout=600)
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout.split()
    repo = tmp_path / "repo"
    for name in listed:
        if (ROOT / name).is_file():
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, repo / name)
    env = {**os.environ, "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}", "VIRTUAL_ENV": str(venv)}
    env.pop("PYTHONPATH", None)
    # repo2docker's pip is the environment's own; uv venvs have none, so give it one the same way
    subprocess.run([uv, "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"), "pip"], check=True)
    done = subprocess.run(["bash", "postBuild"], cwd=repo, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert (repo / "workspace" / "connection-pooling" / "connection-pooling.ipynb").is_file()
    probe = subprocess.run(
        [str(venv / "bin" / "python"), "-c",
         "import autograder, pathlib; from autograder import checks, quiz, progress, selfgrade, lab\n"
         "print(len(quiz.load('practice')), len(quiz.load('test')), pathlib.Path(autograder.__file__).parent)"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert probe.returncode == 0, probe.stderr[-2000:]
    practice, test, where = probe.stdout.split()
    assert int(practice) >= 5 and test == "10"
    assert str(venv) in where, "postBuild installs the package into the environment (not a path into the repo)"
