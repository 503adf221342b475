"""course_grade/nbgrader_ext/sweep_working_folder.py: nothing a submission leaves in its folder is
followed or published.

The in-kernel layers (the syntax-tree analysis and the runtime guard) refuse links, and the
sandbox gives a kernel a working folder of its own, so to test the sweep itself the slow tests
grade a kernel that got past both: the guard off, flagged statements kept, no sandbox. Canary
files sit beside the course, never real host files."""
from __future__ import annotations

import os
import socket
import stat

import nbformat
import pytest

from course_grade.nbgrader_ext.sweep_working_folder import _remove, special_entries
from tests.support.course import (
    ASSIGNMENT,
    answers_file,
    autograde,
    make_course,
    nbgrader,
    right_answers,
    solutions,
    student_notebook,
    submit,
)


def _canary(folder):
    canary = folder / "canary.txt"
    canary.write_text("secret")
    canary.chmod(0o600)
    return canary


def test_special_entries_are_found_without_following_links(tmp_path):
    canary = _canary(tmp_path)
    work = tmp_path / "work"
    (work / "sub").mkdir(parents=True)
    (work / "plain.txt").write_text("x")
    (work / "sub" / "plain.txt").write_text("x")
    (work / "link.txt").symlink_to(canary)
    (work / "dangling").symlink_to(tmp_path / "nowhere")
    (work / "folder-link").symlink_to(tmp_path)
    os.link(canary, work / "sub" / "hard.txt")
    os.mkfifo(work / "pipe")
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(work / "sock"))
    server.close()
    found = dict(special_entries(str(work)))
    assert found == {"link.txt": "a link", "dangling": "a link", "folder-link": "a link",
                     "sub/hard.txt": "a hard link to another file", "pipe": "a pipe", "sock": "a socket"}
    for rel in found:
        _remove(str(work / rel))
    assert canary.read_text() == "secret" and stat.S_IMODE(canary.stat().st_mode) == 0o600
    assert sorted(p.relative_to(work).as_posix() for p in work.rglob("*")) == ["plain.txt", "sub", "sub/plain.txt"]
    assert tmp_path.is_dir(), "removing a link to a folder never touches the folder"


def test_honest_folders_have_nothing_special(tmp_path):
    """A submission folder as nbgrader and a kernel leave it: files, folders, a database."""
    work = tmp_path / "work"
    (work / "data" / "deep").mkdir(parents=True)
    for name in ("connection-pooling.ipynb", "quiz_answers.json", "timestamp.txt", "test.db", "data/deep/x.csv"):
        (work / name).write_text("x")
    assert special_entries(str(work)) == []


# What a kernel that got past the guard and the analysis leaves, each aimed at a canary beside
# the course: nbgrader then writes the graded notebook, changes modes and copies files there.
LEAVE_TRAPS = """
import os, socket
canary = {canary!r}
os.remove('connection-pooling.ipynb'); os.symlink(canary, 'connection-pooling.ipynb')
os.remove('timestamp.txt'); os.symlink(canary, 'timestamp.txt')
os.link(canary, 'hard-link.txt')
os.symlink(os.path.dirname(canary), 'parent')
os.mkfifo('pipe')
socket.socket(socket.AF_UNIX).bind('sock')
open('leak.txt', 'w').write('what the kernel knows')
"""

UNGUARDED = "c.SandboxedKernelManager.guard = False\nc.FlagTampering.remove = False\n"


def _submission_with_traps(course, canary):
    nb = student_notebook(solutions())
    nb.cells.append(nbformat.v4.new_code_cell(LEAVE_TRAPS.format(canary=str(canary))))
    folder = submit(course, "mallory", nb, answers_file(right_answers())).parent
    (folder / "timestamp.txt").write_text("2026-12-01 10:00:00.000000 UTC")
    (folder / "notes.txt").symlink_to(canary)  # a link in the submission itself
    return folder


@pytest.mark.slow
@pytest.mark.parametrize("sandboxed", [False, True], ids=["unsandboxed", "sandboxed"])
def test_stock_autograde_follows_nothing_a_kernel_left(tmp_path, monkeypatch, sandboxed):
    if not sandboxed:
        monkeypatch.setenv("COURSE_SANDBOX", "off")
    canary = _canary(tmp_path)
    course = make_course(tmp_path / "course", extra_config=UNGUARDED)
    _submission_with_traps(course, canary)
    done, _ = autograde(course)
    assert done.returncode == 0, done.stdout + done.stderr
    assert canary.read_text() == "secret" and stat.S_IMODE(canary.stat().st_mode) == 0o600, \
        "the grader wrote or changed modes through a link the submission left"
    graded = course / "autograded" / "mallory" / ASSIGNMENT
    assert sorted(os.listdir(graded)) == ["connection-pooling.ipynb", "timestamp.txt"] if sandboxed else \
        ["connection-pooling.ipynb"], sorted(os.listdir(graded))
    assert all(stat.S_ISREG(os.lstat(graded / name).st_mode) for name in os.listdir(graded))
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        sub = gb.find_submission(ASSIGNMENT, "mallory")
        assert sub.score == pytest.approx(23)
        assert sub.notebooks[0].flagged, "links and special files are flagged for review"
    swept = nbformat.read(graded / "connection-pooling.ipynb", as_version=4).metadata["course"]["swept"]
    assert any(line.startswith("notes.txt: a link") for line in swept), swept
    if not sandboxed:
        kinds = {line.split(":")[0]: line for line in swept}
        assert {"connection-pooling.ipynb", "timestamp.txt", "hard-link.txt", "parent", "pipe", "sock"} <= set(kinds)
    done = nbgrader("generate_feedback", ASSIGNMENT, cwd=course)
    assert done.returncode == 0, done.stdout + done.stderr
    sent = sorted(p.name for p in (course / "feedback" / "mallory" / ASSIGNMENT).iterdir())
    assert sent == (["connection-pooling.html", "timestamp.txt"] if sandboxed else ["connection-pooling.html"])
    assert canary.read_text() == "secret" and stat.S_IMODE(canary.stat().st_mode) == 0o600
