"""`course-grade setup students|exchange` (course_grade/commands/setup.py) and the release that
never makes the exchange (nbgrader_ext/release_into_existing_exchange.py). The students' config
is read back with nbgrader's config loader; the exchange's modes are tried as root and as an
ordinary user (`nobody`, in a forked child: the test's Python is not reachable by other users).
The real release/list round trip is slow."""
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from traitlets.config.loader import PyFileConfigLoader

from course_grade.__main__ import main
from tests.support.course import BIN, ROOT, tool_env

COURSE_ID = "fastapi-connection-pooling"


@pytest.fixture
def public(tmp_path):
    """A folder every user may enter (tmp_path's parents are closed to others)."""
    folder = Path(tempfile.mkdtemp(prefix="setup-test-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def course(public, monkeypatch) -> Path:
    course = public / "course"
    course.mkdir()
    shutil.copy(ROOT / "nbgrader_config.py", course)
    monkeypatch.setenv("NBGRADER_EXCHANGE", str(public / "srv" / "exchange"))
    return course


def run(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def loaded(path: Path):
    """A config file as nbgrader reads it (traitlets' loader)."""
    return PyFileConfigLoader(path.name, path=str(path.parent)).load_config()


# ------------------------------------------------------------------------------- students

def test_students_config_read_back_gives_the_courses_id_and_exchange(course, public, tmp_path, capsys):
    code, out, err = run(capsys, "setup", "students", "--course", course)
    assert (code, err) == (0, "")
    (tmp_path / "nbgrader_config.py").write_text(out)
    config = loaded(tmp_path / "nbgrader_config.py")
    assert config.CourseDirectory.course_id == COURSE_ID
    assert config.Exchange.root == str(public / "srv" / "exchange")
    assert "/etc/jupyter/nbgrader_config.py" in out and "~/.jupyter/nbgrader_config.py" in out


def test_students_config_follows_the_course_config_not_a_copy_of_it(course, tmp_path, capsys):
    with open(course / "nbgrader_config.py", "a") as f:
        f.write("\nc.CourseDirectory.course_id = \"o'brien-101\"\nc.Exchange.root = '/data/my exchange'\n")
    code, out, _ = run(capsys, "setup", "students", "--course", course)
    (tmp_path / "nbgrader_config.py").write_text(out)
    config = loaded(tmp_path / "nbgrader_config.py")
    assert (config.CourseDirectory.course_id, config.Exchange.root) == ("o'brien-101", "/data/my exchange")


def test_write_makes_folders_a_readable_file_and_is_idempotent(course, public, capsys):
    target = public / "home" / ".jupyter" / "nbgrader_config.py"
    old = os.umask(0o077)
    try:
        code, out, _ = run(capsys, "setup", "students", "--course", course, "--write", target)
    finally:
        os.umask(old)
    assert code == 0 and out == f"wrote {target} (made {target.parent.parent}, {target.parent})\n", out
    assert stat.S_IMODE(target.stat().st_mode) == 0o644 and stat.S_IMODE(target.parent.stat().st_mode) == 0o755
    assert loaded(target).CourseDirectory.course_id == COURSE_ID
    assert run(capsys, "setup", "students", "--course", course, "--write", target)[1] == (
        f"{target} already says this: nothing to do\n")
    assert sorted(p.name for p in target.parent.iterdir()) == ["nbgrader_config.py"], "no partial file left"


def test_write_never_replaces_another_file_without_force_nor_follows_a_link(course, public, capsys):
    target = public / "nbgrader_config.py"
    target.write_text("c.Exchange.root = '/elsewhere'\n")
    code, out, err = run(capsys, "setup", "students", "--course", course, "--write", target)
    assert (code, out) == (2, "") and "exists and says something else" in err and "--force" in err
    assert target.read_text() == "c.Exchange.root = '/elsewhere'\n"
    code, out, _ = run(capsys, "setup", "students", "--course", course, "--write", target, "--force")
    assert code == 0 and out == f"replaced {target}\n" and loaded(target).Exchange.root != "/elsewhere"

    victim = public / "victim"
    victim.write_text("keep me\n")
    link = public / "link.py"
    link.symlink_to(victim)
    for extra in ([], ["--force"]):
        code, _, err = run(capsys, "setup", "students", "--course", course, "--write", link, *extra)
        assert code == 2 and "is a link: it is never followed" in err and err.count("\n") == 1, err
    assert victim.read_text() == "keep me\n" and link.is_symlink()
    code, _, err = run(capsys, "setup", "students", "--course", course, "--write", public, "--force")
    assert code == 2 and "exists and is not a file" in err


def test_write_never_goes_through_a_folder_another_user_linked(course, public, capsys):
    """A student's ~/.jupyter made a link to a folder of root's: root's `--write` there is refused."""
    roots = public / "roots"
    roots.mkdir()
    home = public / "home"
    home.mkdir()
    (home / ".jupyter").symlink_to(roots)
    os.lchown(home / ".jupyter", 65534, 65534)  # nobody's link
    code, out, err = run(capsys, "setup", "students", "--course", course, "--write", home / ".jupyter" / "c.py")
    assert (code, out) == (2, "") and "is a link another user made" in err, err
    assert list(roots.iterdir()) == []
    os.lchown(home / ".jupyter", os.geteuid(), os.getegid())  # one's own link is one's own choice
    code, _, err = run(capsys, "setup", "students", "--course", course, "--write", home / ".jupyter" / "c.py")
    assert code == 0 and (roots / "c.py").exists(), err


def test_a_course_without_config_or_course_id_is_told_what_to_do(public, capsys):
    code, _, err = run(capsys, "setup", "students", "--course", public)
    assert code == 2 and err == f"error: no nbgrader_config.py in {public}: run this in the course folder or pass " \
                                "--course\n"
    (public / "nbgrader_config.py").write_text("c = get_config()\n")
    code, _, err = run(capsys, "setup", "exchange", "--course", public)
    assert code == 2 and "sets no c.CourseDirectory.course_id: set it" in err


# ------------------------------------------------------------------------------- exchange

def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_exchange_is_made_1777_with_0755_parents_whatever_the_umask(course, public, capsys):
    exchange = public / "srv" / "exchange"
    old = os.umask(0o077)
    try:
        code, out, err = run(capsys, "setup", "exchange", "--course", course)
    finally:
        os.umask(old)
    assert (code, err) == (0, "")
    assert out.startswith(f"made the exchange {exchange} with mode 1777") and f"made {public / 'srv'} too" in out
    assert (mode(exchange), mode(exchange.parent)) == (0o1777, 0o755)
    assert run(capsys, "setup", "exchange", "--course", course)[1] == (
        f"the exchange {exchange} is there with mode 1777: nothing to do\n")


@pytest.mark.parametrize("existing, message", [
    ("folder 0777", "exists with mode 777, not 1777: if it is the exchange, run `chmod 1777 "),
    ("folder 0755", "exists with mode 755, not 1777"),
    ("link", "is a link: set c.Exchange.root (or NBGRADER_EXCHANGE) to the folder it points to"),
    ("file", "exists and is not a folder"),
])
def test_something_already_there_is_refused_and_left_alone(course, public, capsys, existing, message):
    exchange = public / "srv" / "exchange"
    exchange.parent.mkdir()
    target = public / "elsewhere"
    target.mkdir(mode=0o700)
    if existing == "link":
        exchange.symlink_to(target)
    elif existing == "file":
        exchange.write_text("")
    else:
        exchange.mkdir()
        exchange.chmod(int(existing.split()[1], 8))
    before = exchange.lstat()
    code, out, err = run(capsys, "setup", "exchange", "--course", course)
    assert (code, out) == (2, "") and message in err and err.count("\n") == 1, err
    after = exchange.lstat()
    assert (after.st_mode, after.st_ino) == (before.st_mode, before.st_ino) and mode(target) == 0o700


def test_a_parent_closed_to_students_is_refused_before_anything_is_made(course, public, capsys):
    (public / "srv").mkdir(mode=0o700)
    code, _, err = run(capsys, "setup", "exchange", "--course", course)
    assert code == 2 and f"students could not reach the exchange {public / 'srv' / 'exchange'}: " \
                          f"{public / 'srv'} has mode 700" in err
    assert not (public / "srv" / "exchange").exists()


def as_user(user: str, action) -> tuple[int, str]:
    """Run `action()` in a forked child as `user` (its groups too); its return (an int) and what it
    printed. The modules it needs are already imported in this process."""
    import pwd

    who = pwd.getpwnam(user)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        status = 70
        try:
            os.close(read)
            sys.stdout = sys.stderr = os.fdopen(write, "w")  # pytest's capture is not this child's
            os.setgroups([])
            os.setgid(who.pw_gid)
            os.setuid(who.pw_uid)
            status = action()
        finally:
            sys.stdout.flush()
            os._exit(status)
    os.close(write)
    with os.fdopen(read) as f:
        said = f.read()
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]), said


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="switching to another user needs root")


@needs_root
def test_an_ordinary_user_is_told_to_use_root_and_nothing_is_made(course, public):
    run_cli = lambda: main(["setup", "exchange", "--course", str(course)])  # noqa: E731
    from course_grade.commands.setup import course_settings
    course_settings(course)  # import nbgrader's config machinery here, before the fork
    code, said = as_user("nobody", run_cli)
    assert code == 2 and said.startswith("error: cannot make the exchange ") and "permission denied: run this " \
                                                                                  "as root (sudo)" in said, said
    assert not (public / "srv").exists()


@needs_root
def test_in_the_exchange_every_user_writes_and_nobody_moves_the_courses_folder(course, public, capsys):
    assert run(capsys, "setup", "exchange", "--course", course)[0] == 0
    exchange = public / "srv" / "exchange"
    (exchange / COURSE_ID).mkdir(mode=0o755)  # what the instructor's release makes

    def student():
        (exchange / "mine").mkdir()  # nbgrader checks a student can write here
        try:
            (exchange / COURSE_ID).rename(exchange / "hijacked")
        except PermissionError:
            return 0
        return 1

    code, said = as_user("nobody", student)
    assert (code, said) == (0, ""), said
    assert (exchange / COURSE_ID).is_dir() and (exchange / "mine").owner() == "nobody"


# ------------------------------------------------------------------------------- stock nbgrader

def nbgrader(*args, cwd, env) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "nbgrader"), *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)


@pytest.mark.slow
def test_release_needs_the_exchange_then_a_students_first_list_works(course, public, capsys):
    """The findings, end to end with stock nbgrader: release_assignment does not make the
    exchange; `setup exchange` does; a student with `setup students`' file lists the release."""
    shutil.copytree(ROOT / "release", course / "release")
    exchange = public / "srv" / "exchange"
    instructor = tool_env(NBGRADER_EXCHANGE=str(exchange))
    refused = nbgrader("release_assignment", "connection-pooling", cwd=course, env=instructor)
    assert refused.returncode != 0 and not exchange.parent.exists(), refused.stderr
    assert f"The exchange folder {exchange} does not exist: make it once with `course-grade setup exchange`" \
        in refused.stderr, refused.stderr[-2000:]

    assert run(capsys, "setup", "exchange", "--course", course)[0] == 0
    released = nbgrader("release_assignment", "connection-pooling", cwd=course, env=instructor)
    assert released.returncode == 0, released.stderr[-2000:]
    assert "invalid" not in released.stderr and mode(exchange) == 0o1777, "nbgrader keeps the modes as made"

    home = public / "student"
    assert run(capsys, "setup", "students", "--course", course, "--write", home / ".jupyter" / "nbgrader_config.py"
               )[0] == 0
    student = {k: v for k, v in tool_env(HOME=str(home)).items() if k not in ("NBGRADER_EXCHANGE",
                                                                              "JUPYTER_CONFIG_DIR")}
    listed = nbgrader("list", cwd=home, env=student)
    assert listed.returncode == 0, listed.stderr[-2000:]
    assert f"{COURSE_ID} connection-pooling" in listed.stdout + listed.stderr, listed.stdout + listed.stderr
