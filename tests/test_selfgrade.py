"""Self-grading (`python -m course_grade selfgrade` and the lesson's button) and the working copy
commands (`workspace`, `reset`): real grading, the learner's files never changed."""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import nbformat
import pytest
from nbclient import NotebookClient

from course import ANSWERS_FILE, RELEASE_NB, ROOT, answers_file, right_answers, solutions, student_notebook, tool_env

pytestmark = pytest.mark.slow


def command(*args, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "course_grade", *args], cwd=cwd, env=tool_env(),
                          capture_output=True, text=True, timeout=600)


def snapshot(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.fixture
def learner(tmp_path):
    """A learner's copy with step 2 wrong (a string) and every quiz answer right."""
    answers = solutions()
    answers["step2_pool_size_solution"] = "POOL_SIZE = '5'"
    nbformat.write(student_notebook(answers), tmp_path / "connection-pooling.ipynb")
    (tmp_path / ANSWERS_FILE).write_text(answers_file(right_answers()))
    return tmp_path


def test_selfgrade_shows_score_and_messages_and_changes_nothing(learner):
    before = snapshot(learner)
    done = command("selfgrade", "--course", str(ROOT), cwd=learner)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "Score: 22/23" in out
    assert "FAIL 0/1  Step 2: POOL_SIZE is the integer 5." in out
    assert "`POOL_SIZE` is the string '5'; write the number without quotes" in out
    assert "PASS 1/1  Step 4: after each request every connection is back in the pool." in out
    assert "PASS 1/1  Step 3 (hidden): the pool size comes from POOL_SIZE, not a typed-in number." in out
    assert out.count("PASS") == 20 and "1 check(s) to fix" in out
    assert snapshot(learner) == before, "self-grading must not touch the learner's files"


@pytest.mark.parametrize("make, says", [
    (lambda d: d / "missing.ipynb", "does not exist"),
    (lambda d: (d / "broken.ipynb").write_text("{not json") and d / "broken.ipynb", "not a readable notebook"),
    (lambda d: (d / "notes.txt").write_text("x") and d / "notes.txt", "is not a notebook"),
])
def test_selfgrade_bad_input_is_one_line_and_exit_2(tmp_path, make, says):
    done = command("selfgrade", str(make(tmp_path)), cwd=tmp_path)
    assert done.returncode == 2 and says in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_lesson_button_grades_the_notebook_it_runs_in(learner):
    """The button, clicked in a real kernel, grades the notebook the kernel belongs to."""
    path = learner / "connection-pooling.ipynb"
    probe = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        f"import os\nos.environ['JPY_SESSION_NAME'] = {str(path)!r}\n"
        "from autograder import selfgrade\nbox = selfgrade.make_button()\ngo, out = box.children\n"
        "go.click()\nprint(''.join(o.get('text', '') for o in out.outputs))")])
    NotebookClient(probe, timeout=600, resources={"metadata": {"path": str(learner)}}).execute()
    shown = "".join(o.get("text", "") for o in probe.cells[0].outputs)
    assert "Score: 22/23" in shown and "FAIL 0/1  Step 2" in shown


def test_workspace_copy_is_made_once_and_reset_keeps_a_backup(tmp_path):
    course = tmp_path / "course"
    (course / "release" / "connection-pooling").mkdir(parents=True)
    (course / "release" / "connection-pooling" / "connection-pooling.ipynb").write_bytes(RELEASE_NB.read_bytes())
    copy = course / "workspace" / "connection-pooling" / "connection-pooling.ipynb"
    assert command("workspace", cwd=course).returncode == 0 and copy.read_bytes() == RELEASE_NB.read_bytes()
    copy.write_text(json.dumps({"my": "work"}))
    (copy.parent / ANSWERS_FILE).write_text("{}")
    again = command("workspace", cwd=course)
    assert "kept your copy" in again.stdout and json.loads(copy.read_text()) == {"my": "work"}
    reset = command("reset", cwd=course)
    assert reset.returncode == 0 and copy.read_bytes() == RELEASE_NB.read_bytes()
    backups = sorted(p.name for p in copy.parent.glob("*.backup-*"))
    assert len(backups) == 2 and "kept your previous work" in reset.stdout
    assert json.loads(next(copy.parent.glob("connection-pooling.backup-*.ipynb")).read_text()) == {"my": "work"}
    assert not (copy.parent / ANSWERS_FILE).exists()


def test_workspace_outside_the_course_is_a_clear_error(tmp_path):
    done = command("reset", cwd=tmp_path)
    assert done.returncode == 2 and "run this in the course repository" in done.stderr
    assert not (tmp_path / "workspace").exists()
