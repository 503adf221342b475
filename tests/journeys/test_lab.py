"""`make lab`, the README's first command, starts JupyterLab on a working copy of the lesson."""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.support.course import ASSIGNMENT, RELEASE_NB, ROOT, tool_env

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str):
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, json.loads(response.read())


def test_make_lab_serves_a_working_copy_of_the_lesson():
    work = f"workspace/lab-test-{os.getpid()}"
    port, token = _free_port(), "lab-test-token"
    venv = Path(sys.executable).parent.parent
    args = f"--no-browser --ServerApp.ip=127.0.0.1 --ServerApp.port={port} --IdentityProvider.token={token}"
    lab = subprocess.Popen(
        ["make", "--no-print-directory", "lab", f"VENV={venv}", f"WORK={work}", f"LAB_ARGS={args}"],
        cwd=ROOT, env=tool_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        deadline, status = time.monotonic() + 90, None
        while time.monotonic() < deadline and lab.poll() is None:
            try:
                status, _ = _get(f"http://127.0.0.1:{port}/api/status?token={token}")
                break
            except OSError:
                time.sleep(0.5)
        assert status == 200, (
            f"JupyterLab did not answer:\n{lab.stdout.read1().decode() if lab.poll() is not None else ''}")
        copy = ROOT / work / f"{ASSIGNMENT}.ipynb"
        assert copy.read_text() == RELEASE_NB.read_text()
        status, model = _get(f"http://127.0.0.1:{port}/api/contents/{work}/{ASSIGNMENT}.ipynb?token={token}&content=0")
        assert status == 200 and model["type"] == "notebook"
    finally:
        if lab.poll() is None:
            os.killpg(lab.pid, signal.SIGTERM)
        lab.wait(timeout=30)
        shutil.rmtree(ROOT / work, ignore_errors=True)


def test_make_lab_keeps_an_existing_copy(tmp_path):
    """Re-running `make lab` never overwrites the learner's work."""
    work = f"workspace/lab-keep-{os.getpid()}"
    copy = ROOT / work / f"{ASSIGNMENT}.ipynb"
    copy.parent.mkdir(parents=True)
    copy.write_text("my work")
    venv = Path(sys.executable).parent.parent
    try:
        # `jupyter --version` stands in for JupyterLab so the target returns at once
        done = subprocess.run(["make", "--no-print-directory", "lab", f"VENV={venv}", f"WORK={work}",
                               "LAB_ARGS=--version"],
                              cwd=ROOT, env=tool_env(), capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert copy.read_text() == "my work"
    finally:
        shutil.rmtree(ROOT / work, ignore_errors=True)
