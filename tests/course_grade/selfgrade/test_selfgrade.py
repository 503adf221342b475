"""Self-grading (`python -m course_grade selfgrade`, its warm service and the lesson's button) and
the working copy commands (`workspace`, `reset`): real grading, the learner's files never changed."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import types

import nbformat
import psutil
import pytest
from nbclient import NotebookClient

from course_grade.selfgrade import client as selfgrade
from tests.support.course import (
    ANSWERS_FILE,
    ASSIGNMENT,
    RELEASE_NB,
    ROOT,
    answers_file,
    make_course,
    results,
    right_answers,
    solutions,
    student_notebook,
    submit,
    tool_env,
)

pytestmark = pytest.mark.slow


def command(*args, cwd, **env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "course_grade", *args], cwd=cwd, env=tool_env(**env),
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(autouse=True)
def private_service(monkeypatch):
    """Every test gets its own runtime folder (services, sockets) and cache, and its services
    are stopped after it: the user's own self-grading service is never touched."""
    from course_grade.selfgrade import service

    home = tempfile.mkdtemp(prefix="cg-")  # short: a Unix socket's path has at most 107 bytes
    for name in ("run", "cache"):
        os.mkdir(os.path.join(home, name))
    monkeypatch.setenv("XDG_RUNTIME_DIR", os.path.join(home, "run"))
    monkeypatch.setenv("XDG_CACHE_HOME", os.path.join(home, "cache"))
    monkeypatch.delenv(service.SWITCH, raising=False)
    monkeypatch.delenv(service.IDLE_VARIABLE, raising=False)
    yield service
    service.stop(ROOT)
    for lock in (service.runtime_folder()).glob("*.lock"):
        try:
            left = psutil.Process(int(lock.read_text()))
            if "course_grade.selfgrade.service" in " ".join(left.cmdline()):  # only a service of this test
                left.kill()
        except (ValueError, psutil.Error):
            pass
    shutil.rmtree(home, ignore_errors=True)


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def eventually(condition, what: str, seconds: float = 180):
    for _ in range(int(seconds * 10)):
        found = condition()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"never happened: {what}")


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
    assert ("PASS 1/1  Step 4: after each request every connection is back in the pool, "
            "and the next request reuses it.") in out
    assert "PASS 1/1  Step 3 (hidden): the pool size comes from POOL_SIZE, not a typed-in number." in out
    assert out.count("PASS") == 20 and "1 check(s) to fix" in out
    assert snapshot(learner) == before, "self-grading must not touch the learner's files"
    ran = private_service_status()
    assert ran is not None and ran["gradings"] == 1, "the click was graded by the self-grading service"


def private_service_status():
    from course_grade.selfgrade import service

    return service.status(ROOT)


def test_second_click_reuses_the_warm_service_and_a_new_service_the_cached_assignment(learner, private_service):
    service = private_service
    stale = socket.socket(socket.AF_UNIX)  # a socket left by a service that died
    stale.bind(str(service.Place.of(ROOT).socket))
    stale.close()
    before = snapshot(learner)
    first = command("selfgrade", "--course", str(ROOT), cwd=learner)
    assert first.returncode == 0, first.stderr
    one = service.status(ROOT)
    assert one["generated"] == 1 and one["gradings"] == 1, "the first click makes the assignment once"
    second = command("selfgrade", "--course", str(ROOT), cwd=learner)
    two = service.status(ROOT)
    assert second.stdout == first.stdout and "Score: 22/23" in second.stdout
    assert two["pid"] == one["pid"] and two["generated"] == 1 and two["gradings"] == 2, \
        "the second click is graded by the same service, without generate_assignment"
    status = command("selfgrade", "--status", "--course", str(ROOT), cwd=learner)
    assert status.returncode == 0 and f"(pid {one['pid']}): 2 notebook(s) graded" in status.stdout, status.stderr
    stopped = command("selfgrade", "--stop", "--course", str(ROOT), cwd=learner)
    assert stopped.returncode == 0 and stopped.stdout.startswith("Stopped the self-grading service"), stopped.stderr
    assert f"(pid {one['pid']})" in stopped.stdout
    eventually(lambda: gone(one["pid"]), "the stopped service exits")
    after = command("selfgrade", "--status", "--course", str(ROOT), cwd=learner)
    assert after.stdout.strip() == "The self-grading service of this course is not running.", after.stderr
    assert service.status(ROOT) is None, "--status starts no service"
    third = command("selfgrade", "--course", str(ROOT), cwd=learner)
    three = service.status(ROOT)
    assert third.stdout == first.stdout
    assert three["pid"] != one["pid"] and three["generated"] == 0, "a new service takes the assignment from the cache"
    assert snapshot(learner) == before, "self-grading must not touch the learner's files"


def test_service_grades_exactly_as_the_instructors_grading(learner, tmp_path):
    """The same submission: scores per cell and messages from the service, and from
    `course-grade grade` in an instructor's course."""
    from course_grade.selfgrade import client as selfgrade

    graded, where = selfgrade.grade_notebook(learner / f"{ASSIGNMENT}.ipynb", ROOT)
    assert where == "service"
    mine = {r.grade_id: (r.score, r.points, r.message) for r in selfgrade.results_of(graded)}
    course = make_course(tmp_path / "course")
    submit(course, "ann", nbformat.read(learner / f"{ASSIGNMENT}.ipynb", as_version=4),
           (learner / ANSWERS_FILE).read_text())
    done = command("grade", ASSIGNMENT, "--jobs", "1", "--no-feedback", cwd=course)
    assert done.returncode == 0, done.stdout[-3000:]
    theirs = {gid: (r.score, r.max_score, r.message) for gid, r in results(course, "ann").items()}
    assert {g: m[:2] for g, m in mine.items()} == {g: t[:2] for g, t in theirs.items()}
    for gid, (_score, _points, message) in mine.items():
        shown = selfgrade.ANSI.sub("", theirs[gid][2])
        assert bool(message) == bool(shown) and message in shown, gid
    assert (graded.score, graded.max_score) == (22, 23)


@pytest.mark.parametrize("how", ["switched off", "cannot start"])
def test_without_a_service_the_command_grades_in_its_own_process(learner, tmp_path_factory, how, private_service,
                                                                  monkeypatch):
    if how == "switched off":
        env = {private_service.SWITCH: "off"}
    else:  # a runtime folder whose socket path is too long for a Unix socket: the service fails
        deep = tmp_path_factory.mktemp("run") / ("x" * 110)
        deep.mkdir()
        env = {"XDG_RUNTIME_DIR": str(deep)}
    before = snapshot(learner)
    done = command("selfgrade", "--course", str(ROOT), cwd=learner, **env)
    assert done.returncode == 0, done.stderr
    assert "Score: 22/23" in done.stdout and "FAIL 0/1  Step 2: POOL_SIZE is the integer 5." in done.stdout
    assert snapshot(learner) == before
    for key, value in env.items():  # the same settings here: the grading says where it ran
        monkeypatch.setenv(key, value)
    graded, where = selfgrade.grade_notebook(learner / f"{ASSIGNMENT}.ipynb", ROOT)
    assert where != "service" and graded.score == 22, where
    assert private_service.status(ROOT) is None


def test_warm_starts_the_service_in_the_background_and_it_stops_when_idle(learner, private_service):
    service = private_service
    before = snapshot(learner)
    warm = subprocess.run([sys.executable, "-c",
                           "import sys; from pathlib import Path; "
                           "from course_grade.selfgrade import client as selfgrade; "
                           f"sys.exit(selfgrade.main(Path({str(learner / (ASSIGNMENT + '.ipynb'))!r}), None, "
                           "warm=True))"],
                          cwd=learner, env=tool_env(**{service.IDLE_VARIABLE: "3"}), capture_output=True, text=True,
                          timeout=120)
    assert warm.returncode == 0 and warm.stdout == "", warm.stderr
    up = eventually(lambda: service.status(ROOT), "the warm service answers")
    place = service.Place.of(ROOT)
    assert place.socket.exists() and os.stat(place.folder).st_mode & 0o777 == 0o700
    assert os.stat(place.folder / "authkey").st_mode & 0o777 == 0o600
    eventually(lambda: gone(up["pid"]), "the idle service exits")
    assert not place.socket.exists(), "an idle service removes its socket"
    assert snapshot(learner) == before


def test_the_button_warms_up_only_outside_grading(monkeypatch, tmp_path):
    """Showing the button starts `selfgrade --warm` in the background; a grading kernel (the
    runtime guard installed) or COURSE_SELFGRADE_SERVICE=off starts nothing."""
    from autograder import selfgrade

    started = []

    class Popen:
        def __init__(self, cmd, **kw):
            started.append((cmd, kw))

        def wait(self):
            return 0

    monkeypatch.setattr(selfgrade.subprocess, "Popen", Popen)
    (tmp_path / f"{ASSIGNMENT}.ipynb").write_text("{}")
    monkeypatch.setenv("JPY_SESSION_NAME", str(tmp_path / f"{ASSIGNMENT}.ipynb"))
    assert selfgrade.warm_up()
    cmd, kw = started.pop()
    assert cmd[1:] == ["-m", "course_grade", "selfgrade", str(tmp_path / f"{ASSIGNMENT}.ipynb"), "--warm"]
    assert kw["stdout"] == kw["stderr"] == subprocess.DEVNULL and kw["start_new_session"]
    monkeypatch.setitem(sys.modules, "autograder.guard", types.SimpleNamespace(_state={"installed": True}))
    assert not selfgrade.warm_up() and not started
    monkeypatch.delitem(sys.modules, "autograder.guard")
    monkeypatch.setenv("COURSE_SELFGRADE_SERVICE", "off")
    assert not selfgrade.warm_up() and not started


@pytest.mark.parametrize("make, says", [
    (lambda d: d / "missing.ipynb", "does not exist"),
    (lambda d: (d / "broken.ipynb").write_text("{not json") and d / "broken.ipynb", "not a readable notebook"),
    (lambda d: (d / "notes.txt").write_text("x") and d / "notes.txt", "is not a notebook"),
])
def test_selfgrade_bad_input_is_one_line_and_exit_2(tmp_path, make, says):
    done = command("selfgrade", str(make(tmp_path)), cwd=tmp_path)
    assert done.returncode == 2 and says in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_lesson_button_grades_the_notebook_it_runs_in(learner):
    """The button, clicked in a real kernel, grades the notebook the kernel belongs to, shows
    the report, and the progress panel shows that grading."""
    path = learner / "connection-pooling.ipynb"
    probe = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        f"import os\nos.environ['JPY_SESSION_NAME'] = {str(path)!r}\n"
        "from autograder import progress, selfgrade\nbox = selfgrade.make_button()\ngo, out = box.children\n"
        "go.click()\nprint(''.join(o.get('text', '') for o in out.outputs))\nprint('PANEL:', progress.summary())")])
    NotebookClient(probe, timeout=600, resources={"metadata": {"path": str(learner)}}).execute()
    shown = "".join(o.get("text", "") for o in probe.cells[0].outputs)
    assert "Score: 22/23" in shown and "FAIL 0/1  Step 2" in shown, shown
    panel = shown.split("PANEL: ", 1)[1]
    assert "(your saved notebook): 22/23 points." in panel, panel
    assert "Checks not passed: “Step 2: POOL_SIZE is the integer 5”." in panel and "Hidden" not in panel, panel


def test_workspace_copy_is_made_once_and_reset_keeps_a_backup(tmp_path):
    course = tmp_path / "course"
    (course / "release" / ASSIGNMENT).mkdir(parents=True)
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
