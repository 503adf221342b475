"""User journeys: the README's flows, run as their users run them, on a fresh clone.

Every other test drives nbgrader on a scratch course folder made by `tests/support/course.py`, with the
test runner's own environment. These tests do what a person following the README does instead:
`git clone` the repository, `make env` in the clone, then the README's commands from the
course root (the instructor's table, `make lab`), with real Unix users where the README implies
several (a student who fetches and submits through the exchange, an instructor who is not root).

- The clone is of the committed HEAD of the repository under test (`git clone --no-hardlinks`):
  uncommitted changes are not in it. Commit before running these tests on a change.
- Clones live in a 0755 folder of the system's temporary folder (students and the sandbox's
  users must reach them), or in the non-root instructor's own 0700 home.
- The test process is root here, as in CI: it creates the users it needs (`useradd -m`,
  kept if they exist) and runs their commands as them, with the environment of a login
  (HOME, USER, PATH of the system, plus the machine's certificate and proxy settings).
- Students run nbgrader's fetch/submit/fetch_feedback from an environment made as the README
  says for an instructor's environment outside the course (the pins, then `pip install
  --no-deps .`), with the system's Python so every user can run it.
- On a fresh clone the gradebook (never committed) does not know the assignment: the make
  targets record it themselves (`make assignment`), and the journeys check that this leaves
  the clone as committed; the layouts that call `nbgrader autograde` directly run
  `make assignment` first, as the README's table says.

Marked slow; they are part of `make test`. Root is needed to create users: without it they
skip, except under CI (`CI` set), where they fail.
"""
from __future__ import annotations

import csv
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import nbformat
import pytest

from tests.support.course import ANSWERS_FILE, ASSIGNMENT, answers_file, graded_cells, right_answers, solutions

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
FULL = sum(graded_cells().values())  # 23: 13 on the build steps, 10 on the quiz
STEP2 = "step2_pool_size_solution"
WRONG_STEP2 = "POOL_SIZE = 10"  # tests/support/mistakes.py's size_wrong_number: loses step2_pool_size only
WRONG_STEP2_SCORE = FULL - graded_cells()["step2_pool_size"]
SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"
# what a login on this machine has besides HOME/USER/PATH: certificates, proxies, package indexes
MACHINE = ("SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "PIP_CERT", "PIP_INDEX_URL",
           "PIP_EXTRA_INDEX_URL", "UV_INDEX_URL", "UV_DEFAULT_INDEX", "UV_EXTRA_INDEX_URL", "UV_NATIVE_TLS",
           "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy", "LANG", "TZ",
           "COURSE_SANDBOX", "CI")
# left by the test runner (`make test` exports its venv and make's own variables): a user's shell has none
RUNNER_ONLY = ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "NBGRADER_EXCHANGE", "MAKEFLAGS", "MFLAGS", "MAKELEVEL",
               "MAKE_TERMOUT", "MAKE_TERMERR", "PWD", "OLDPWD")
INSTRUCTOR = "cpinstructor"  # the non-root instructor
STUDENTS = {"autograde": "cpstudent", "grade": "cpstudent2"}  # one student account per journey


# ---------------------------------------------------------------------------------------------
# running commands


def _tail(text: str | None, n: int = 4000) -> str:
    text = text or ""
    return text if len(text) <= n else "..." + text[-n:]


def run(args, cwd, env: dict, *, user: pwd.struct_passwd | None = None, timeout: float = 600,
        check: bool = True) -> subprocess.CompletedProcess:
    """Run `args` in `cwd` (as `user` if given) in a session of its own; the whole session is
    killed if it outlives `timeout`. With `check`, a non-zero exit fails the test with the output."""
    args = [str(a) for a in args]
    what = " ".join(args)
    who = dict(user=user.pw_uid, group=user.pw_gid, extra_groups=[]) if user is not None else {}
    proc = subprocess.Popen(args, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True, **who)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"`{what}` in {cwd} did not finish within {timeout} s\n"
                    f"--- stdout\n{_tail(out)}\n--- stderr\n{_tail(err)}")
    done = subprocess.CompletedProcess(args, proc.returncode, out, err)
    if check:
        assert done.returncode == 0, (f"`{what}` in {cwd}{' as ' + user.pw_name if user else ''} exited "
                                      f"{done.returncode}\n--- stdout\n{_tail(out)}\n--- stderr\n{_tail(err)}")
    return done


def root_env(**extra) -> dict:
    """Root's own environment, without what the test runner added (its venv on PATH, make's variables)."""
    runner_bins = {os.path.realpath(os.path.dirname(sys.executable)), os.path.realpath(REPO / ".venv" / "bin")}
    env = {k: v for k, v in os.environ.items() if k not in RUNNER_ONLY}
    env["PATH"] = os.pathsep.join(p for p in os.environ.get("PATH", SYSTEM_PATH).split(os.pathsep)
                                  if p and os.path.realpath(p) not in runner_bins)
    return {**env, **extra}


def activated(env: dict, venv: Path, **extra) -> dict:
    """`env` after `source VENV/bin/activate` (README: the environment's tools first on PATH)."""
    return {**env, "VIRTUAL_ENV": str(venv), "PATH": f"{venv / 'bin'}{os.pathsep}{env['PATH']}", **extra}


def login_env(user: pwd.struct_passwd, **extra) -> dict:
    """What `user` has after logging in to this machine."""
    env = {k: os.environ[k] for k in MACHINE if k in os.environ}
    env.setdefault("LANG", "C.UTF-8")
    return {**env, "HOME": user.pw_dir, "USER": user.pw_name, "LOGNAME": user.pw_name, "SHELL": user.pw_shell,
            "PATH": f"{user.pw_dir}/.local/bin:{SYSTEM_PATH}", **extra}


# ---------------------------------------------------------------------------------------------
# users, files, grades


def need_root() -> None:
    if os.geteuid() != 0:
        (pytest.fail if os.environ.get("CI") else pytest.skip)(
            "this journey creates Unix users and grades as root, as CI does: run the tests as root")


def unix_user(name: str) -> pwd.struct_passwd:
    """The user `name`, created with a home (`useradd -m`) unless it exists."""
    try:
        return pwd.getpwnam(name)
    except KeyError:
        run(["useradd", "-m", "-s", "/bin/bash", name], "/", root_env(), timeout=60)
        return pwd.getpwnam(name)


def chown_tree(path: Path, user: pwd.struct_passwd) -> None:
    os.chown(path, user.pw_uid, user.pw_gid, follow_symlinks=False)
    for top, dirs, files in os.walk(path):
        for name in dirs + files:
            os.chown(os.path.join(top, name), user.pw_uid, user.pw_gid, follow_symlinks=False)


def write_as(user: pwd.struct_passwd | None, path: Path, text: str) -> None:
    """Write a file as `user` would (their file, in folders of theirs)."""
    missing = [p for p in reversed(path.parents) if not p.exists()]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    if user is not None:
        for p in [*missing, path]:
            os.chown(p, user.pw_uid, user.pw_gid)


def completed(nb, answers: dict[str, str]):
    """`nb` (a fetched or released notebook) with its solution cells written as `answers` says."""
    nb = nbformat.from_dict(json.loads(json.dumps(nb)))
    filled = set()
    for cell in nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if gid in answers:
            cell.source = answers[gid]
            filled.add(gid)
    assert filled == set(answers), f"cells not found in the notebook: {set(answers) - filled}"
    return nb


def solution_files(answers: dict[str, str] | None = None) -> dict[str, str]:
    """A submission folder's files: the release notebook completed with `answers` (the solution
    by default) and every quiz answer right."""
    nb = nbformat.read(REPO / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)
    return {f"{ASSIGNMENT}.ipynb": nbformat.writes(completed(nb, answers or solutions())),
            ANSWERS_FILE: answers_file(right_answers())}


def hand_in(course: Path, student: str, owner: pwd.struct_passwd | None = None, answers=None) -> None:
    """A submission put into `submitted/STUDENT/ASSIGNMENT/`, as an instructor does without an exchange."""
    for name, text in solution_files(answers).items():
        write_as(owner, course / "submitted" / student / ASSIGNMENT / name, text)


def gradebook_scores(course: Path, student: str) -> tuple[float, dict[str, tuple[float, float]]]:
    """The student's total and each graded cell's (score, max) in the course's gradebook.db,
    read from a copy (the course may belong to another user)."""
    from nbgrader.api import Gradebook

    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "gradebook.db"
        shutil.copy(course / "gradebook.db", copy)
        with Gradebook(f"sqlite:///{copy}") as gb:
            total = gb.find_submission(ASSIGNMENT, student).score
            cells = {}
            for gid in graded_cells():
                grade = gb.find_grade(gid, ASSIGNMENT, ASSIGNMENT, student)
                cells[gid] = (grade.score, grade.max_score)
    return total, cells


def shown_errors(course: Path, student: str, cells: list[str]) -> dict[str, str]:
    """The first line of the error each of `cells` shows in the autograded notebook."""
    path = course / "autograded" / student / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    if not path.exists():
        return {}
    out = {}
    for cell in nbformat.read(path, as_version=4).cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if gid in cells:
            errors = [f"{o.ename}: {o.evalue}" for o in cell.get("outputs", []) if o.output_type == "error"]
            out[gid] = (errors[0] if errors else "(no error shown)").splitlines()[0][:300]
    return out


def assert_score(course: Path, student: str, expected: float, after: str) -> None:
    total, cells = gradebook_scores(course, student)
    if abs(total - expected) > 1e-9:
        lost = [gid for gid, (score, top) in cells.items() if score < top]
        build = sum(top for gid, (s, top) in cells.items() if not gid.startswith("quiz"))
        build_score = sum(s for gid, (s, top) in cells.items() if not gid.startswith("quiz"))
        pytest.fail(f"after {after}, the gradebook gives {student} {total:g}/{FULL} "
                    f"({build_score:g}/{build:g} on the build steps), expected {expected:g}; cells short of "
                    f"full marks: " + "; ".join(f"{gid} {cells[gid][0]:g}/{cells[gid][1]:g}: {why}" for gid, why in
                                                {g: shown_errors(course, student, lost).get(g, "")
                                                 for g in lost}.items()))


# COURSE_SANDBOX=off (a developer's choice, never CI's) turns the sandbox off, and these checks
SANDBOX_WANTED = os.environ.get("COURSE_SANDBOX", "").lower() not in ("off", "0", "no", "false")


def assert_sandboxed(done: subprocess.CompletedProcess, what: str) -> None:
    """Grading ran its kernels in the sandbox (stock nbgrader logs one line when it is off)."""
    text = done.stdout + done.stderr
    if not SANDBOX_WANTED:
        return
    assert "sandbox OFF" not in text, f"{what} graded without the sandbox:\n{_tail(text, 2000)}"


def grades_csv_score(course: Path, student: str) -> tuple[float, float]:
    with open(course / "grades.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["student_id"] == student and r["assignment"] == ASSIGNMENT]
    assert len(rows) == 1, f"grades.csv has {len(rows)} rows for {student}"
    return float(rows[0]["raw_score"]), float(rows[0]["max_score"])


def real_uv() -> str:
    """The uv executable root uses (a pyenv shim resolved to the binary it runs)."""
    found = shutil.which("uv", path=root_env()["PATH"])
    if found:
        with open(found, "rb") as f:
            if f.read(4) == b"\x7fELF":
                return os.path.realpath(found)
    done = run(["python3", "-c", "import uv; print(uv.find_uv_bin())"], "/", root_env(), check=False, timeout=60)
    if done.returncode == 0 and done.stdout.strip():
        return done.stdout.strip().splitlines()[-1]
    pytest.fail(f"cannot find uv's executable (PATH: {root_env()['PATH']}); `make env` installs it")


def system_python() -> str:
    """The system's Python 3.11, on the PATH every user has."""
    for name in ("python3.11", "python3"):
        found = shutil.which(name, path=SYSTEM_PATH)
        if found:
            version = run([found, "-c", "import sys; print(sys.version_info[:2] == (3, 11))"], "/", root_env(),
                          timeout=60)
            if version.stdout.strip() == "True":
                return found
    pytest.fail(f"no Python 3.11 on {SYSTEM_PATH}: the README's fresh machine has one")


# ---------------------------------------------------------------------------------------------
# clones


@pytest.fixture(scope="session")
def public_tmp():
    """A folder every user can reach (0755) in the system's temporary folder."""
    base = Path(tempfile.mkdtemp(prefix="course-journeys-"))
    base.chmod(0o755)
    yield base
    remove(base)


def remove(folder: Path) -> None:
    """rm -rf (several times faster than shutil.rmtree on a virtual environment's files)."""
    run(["rm", "-rf", "--one-file-system", folder], "/", root_env(), timeout=600, check=False)


def fresh_clone(dest: Path, env: dict, user: pwd.struct_passwd | None = None, make_env: bool = True) -> Path:
    """`git clone` of the repository's committed HEAD into `dest` (owned by `user` if given),
    then `make env` there, as the README says (as `user`)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    run(["git", "clone", "--quiet", "--no-hardlinks", REPO, dest], dest.parent, root_env(), timeout=300)
    if user is not None:
        chown_tree(dest, user)
    if make_env:
        run(["make", "env"], dest, {**env, "PWD": str(dest)}, user=user, timeout=900)
        assert (dest / ".venv" / ".installed").exists()
    return dest


def assert_unchanged(course: Path) -> None:
    """The clone is as committed: recording the assignment rebuilt exactly release/."""
    changed = run(["git", "status", "--porcelain"], course, {**root_env(), "GIT_CONFIG_COUNT": "1",
                  "GIT_CONFIG_KEY_0": "safe.directory", "GIT_CONFIG_VALUE_0": "*"}, timeout=60).stdout
    assert not changed.strip(), f"the README's commands changed committed files in a fresh clone:\n{changed}"


def record_assignment(course: Path, env: dict, user: pwd.struct_passwd | None = None) -> None:
    """`make assignment`, before calling nbgrader directly on a fresh clone (README's table)."""
    run(["make", "assignment"], course, {**env, "PWD": str(course)}, user=user, timeout=600)
    assert_unchanged(course)


@pytest.fixture(scope="session")
def course_a(public_tmp):
    """The README's layout, as root: the clone of the `make autograde` journey, of the README
    layout, of the symlinked layout (through a link) and of `make lab`."""
    return fresh_clone(public_tmp / "a" / "course", root_env())


@pytest.fixture(scope="session")
def course_b(public_tmp):
    """A second clone, as root, at a path with a space and non-ASCII letters: the `make grade`
    journey and that layout."""
    return fresh_clone(public_tmp / "cours é" / "ü x", root_env())


@pytest.fixture(scope="session")
def outside(public_tmp):
    """A clone without .venv, and an environment outside it made as the README says (the pins,
    then `pip install --no-deps .`, here with uv) with the system's Python, so that every user
    can run it: the venv-outside layout, and the students' nbgrader (the course's own .venv
    may use an interpreter only root can reach, e.g. pyenv's under /root)."""
    base = public_tmp / "outside"
    course = fresh_clone(base / "course", root_env(), make_env=False)
    venv, uv, env = base / "env", real_uv(), root_env()
    run([uv, "venv", "--quiet", "--python", system_python(), venv], base, env, timeout=300)
    (base / "pins.txt").write_text(run(["python3", "tools/pins.py", "requirements"], course, env, timeout=60).stdout)
    run([uv, "pip", "install", "--quiet", "--compile-bytecode", "--python", venv / "bin" / "python",
         "-r", base / "pins.txt"], base, env, timeout=900)
    run([uv, "pip", "install", "--quiet", "--compile-bytecode", "--python", venv / "bin" / "python",
         "--no-deps", course], base, env, timeout=300)
    return course, venv


@pytest.fixture(scope="session")
def students_env(outside):
    """The environment students run nbgrader's fetch/submit commands from."""
    return outside[1]


def test_a_fresh_clone_builds_the_readme_environment(course_a):
    """The clone is the repository's HEAD, `make env` built the instructor's tools, and a second
    `make env` has nothing to do."""
    head = run(["git", "rev-parse", "HEAD"], REPO, root_env(), timeout=60).stdout.strip()
    cloned = run(["git", "rev-parse", "HEAD"], course_a, root_env(), timeout=60).stdout.strip()
    assert cloned == head
    for tool in ("python", "nbgrader", "jupyter", "course-grade"):
        assert (course_a / ".venv" / "bin" / tool).exists(), f"make env did not install {tool}"
    again = run(["make", "env"], course_a, root_env(), timeout=120)
    assert "Nothing to be done" in again.stdout or "is up to date" in again.stdout, again.stdout


# ---------------------------------------------------------------------------------------------
# the instructor's table, with a student on the other side of the exchange


class Exchange:
    """One course's exchange and one student account, for an instructor journey as root."""

    def __init__(self, public_tmp: Path, course: Path, students_env: Path, journey: str):
        need_root()
        self.course = course
        self.root = public_tmp / f"exchange-{journey}"
        self.instructor = activated(root_env(), course / ".venv", NBGRADER_EXCHANGE=str(self.root))
        made = self.teacher("course-grade", "setup", "exchange")  # README: once per machine
        assert self.root.is_dir() and stat.S_IMODE(self.root.stat().st_mode) == 0o1777, made.stdout
        self.student = unix_user(STUDENTS[journey])
        self.home = Path(self.student.pw_dir)
        for leftover in (self.home / ASSIGNMENT, self.home / ".jupyter", self.home / ".local" / "share" / "jupyter"):
            shutil.rmtree(leftover, ignore_errors=True)  # a previous run's
        self.student_env = activated(login_env(self.student), students_env)
        # README: the students' config, as `course-grade setup students` prints it, in the student's own ~/.jupyter
        write_as(self.student, self.home / ".jupyter" / "nbgrader_config.py",
                 self.teacher("course-grade", "setup", "students").stdout)
        self.submissions = 0

    def teacher(self, *args, timeout: float = 900) -> subprocess.CompletedProcess:
        return run(args, self.course, {**self.instructor, "PWD": str(self.course)}, timeout=timeout)

    def as_student(self, *args) -> subprocess.CompletedProcess:
        return run(args, self.home, {**self.student_env, "PWD": str(self.home)}, user=self.student, timeout=300)

    def fetch(self) -> None:
        self.as_student("nbgrader", "fetch_assignment", ASSIGNMENT)
        assert self.notebook.exists(), f"fetch_assignment did not make {self.notebook}"

    @property
    def notebook(self) -> Path:
        return self.home / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"

    def submit(self, answers: dict[str, str]) -> None:
        """The student saves the fetched notebook completed with `answers`, answers the quiz
        (the quiz writes quiz_answers.json beside the notebook), and submits."""
        if self.submissions:
            time.sleep(1.1)  # a later submission has a later timestamp
        nb = completed(nbformat.read(self.notebook, as_version=4), answers)
        write_as(self.student, self.notebook, nbformat.writes(nb))
        write_as(self.student, self.notebook.parent / ANSWERS_FILE, answers_file(right_answers()))
        self.as_student("nbgrader", "submit", ASSIGNMENT)
        self.submissions += 1

    def release_and_hand_in(self, answers: dict[str, str]) -> None:
        """The README's first round: the instructor releases, the student fetches and submits,
        the instructor collects."""
        self.teacher("nbgrader", "release_assignment", ASSIGNMENT)
        self.fetch()
        self.submit(answers)
        self.collect()

    def collect(self) -> None:
        self.teacher("nbgrader", "collect", *(["--update"] if self.submissions > 1 else []), ASSIGNMENT)
        got = self.course / "submitted" / self.student.pw_name / ASSIGNMENT
        assert (got / ANSWERS_FILE).exists(), (
            f"collect did not bring the quiz answers: {sorted(p.name for p in got.iterdir())}")
        assert nbformat.read(got / f"{ASSIGNMENT}.ipynb", as_version=4).cells == \
            nbformat.read(self.notebook, as_version=4).cells, "collect did not bring the latest submission"

    def feedback_fetched(self) -> Path:
        self.as_student("nbgrader", "fetch_feedback", ASSIGNMENT)
        pages = sorted((self.home / ASSIGNMENT / "feedback").glob(f"*/{ASSIGNMENT}.html"))
        assert pages, f"fetch_feedback brought no page into {self.home / ASSIGNMENT / 'feedback'}"
        return pages[-1]


def with_wrong_step2() -> dict[str, str]:
    return {**solutions(), STEP2: WRONG_STEP2}


def test_instructor_as_root_with_make_autograde(public_tmp, course_a, students_env):
    """README's table, as root: release, a student fetches and submits, collect, `make
    autograde`, `make feedback`, release and fetch the feedback, `make export`; then the
    student resubmits with a wrong step 2 and `make autograde` regrades the newer submission."""
    x = Exchange(public_tmp, course_a, students_env, "autograde")
    student = x.student.pw_name
    x.release_and_hand_in(solutions())
    graded = x.teacher("make", "autograde")
    assert_unchanged(course_a)
    assert_sandboxed(graded, "make autograde")
    assert_score(course_a, student, FULL, "make autograde of the solution")

    x.teacher("make", "feedback")
    assert (course_a / "feedback" / student / ASSIGNMENT / f"{ASSIGNMENT}.html").exists()
    x.teacher("nbgrader", "release_feedback", ASSIGNMENT)
    page = x.feedback_fetched().read_text()
    assert "BEGIN HIDDEN TESTS" not in page and "check_answer(" not in page, "the feedback shows hidden tests"
    x.teacher("make", "export")
    assert grades_csv_score(course_a, student) == (FULL, FULL)

    x.submit(with_wrong_step2())
    x.collect()
    regraded = x.teacher("make", "autograde")
    assert_sandboxed(regraded, "make autograde")
    assert_score(course_a, student, WRONG_STEP2_SCORE, "the resubmission (wrong step 2) and make autograde")
    x.teacher("make", "export")
    assert grades_csv_score(course_a, student) == (WRONG_STEP2_SCORE, FULL)


def test_instructor_as_root_with_make_grade(public_tmp, course_b, students_env):
    """The same journey with the grading command (`make grade`: feedback and grades.csv
    included); a resubmission graded by `make grade`, another by `course-grade grade --resume`,
    which must grade the newer submission."""
    x = Exchange(public_tmp, course_b, students_env, "grade")
    student = x.student.pw_name
    x.release_and_hand_in(solutions())
    x.teacher("make", "grade")
    assert_unchanged(course_b)
    assert_score(course_b, student, FULL, "make grade of the solution")
    assert grades_csv_score(course_b, student) == (FULL, FULL)
    with open(course_b / "grading-report.csv", newline="") as f:
        (row,) = [r for r in csv.DictReader(f) if r["student"] == student]
    assert row["sandbox"] == "on" or not SANDBOX_WANTED, f"make grade graded without the sandbox: {row}"
    x.teacher("nbgrader", "release_feedback", ASSIGNMENT)
    assert "BEGIN HIDDEN TESTS" not in x.feedback_fetched().read_text()

    x.submit(with_wrong_step2())
    x.collect()
    x.teacher("make", "grade")
    assert_score(course_b, student, WRONG_STEP2_SCORE, "the resubmission (wrong step 2) and make grade")
    assert grades_csv_score(course_b, student) == (WRONG_STEP2_SCORE, FULL)

    x.submit(solutions())  # fixed again
    x.collect()
    resumed = x.teacher("course-grade", "grade", ASSIGNMENT, "--resume")
    assert_score(course_b, student, FULL, "a second resubmission (step 2 fixed) and course-grade grade --resume "
                 f"(it said: {resumed.stdout.strip().splitlines()[0] if resumed.stdout.strip() else ''!r})")
    assert grades_csv_score(course_b, student) == (FULL, FULL)


# ---------------------------------------------------------------------------------------------
# an instructor who is not root, the course in their 0700 home


@pytest.fixture(scope="module")
def own_course():
    """The non-root instructor's clone in their home (mode 0700) and their own `make env`, which
    installs uv into the clone's .tools/ (Debian's Python refuses pip installs outside a venv)."""
    need_root()
    user = unix_user(INSTRUCTOR)
    home = Path(user.pw_dir)
    home.chmod(0o700)
    env = login_env(user)
    course = home / "course-journeys"
    remove(course)
    fresh_clone(course, env, user=user)
    yield user, course, env
    remove(course)


def test_instructor_not_root_in_a_0700_home(own_course):
    """`make autograde` and `make grade` run by an unprivileged instructor (the sandbox in a user
    namespace) give the solution full marks."""
    user, course, env = own_course
    hand_in(course, "alice", owner=user)
    graded = run(["make", "autograde"], course, {**env, "PWD": str(course)}, user=user, timeout=900)
    assert_sandboxed(graded, "make autograde (not root)")
    assert_score(course, "alice", FULL, f"make autograde as {user.pw_name}")
    run(["make", "grade"], course, {**env, "PWD": str(course)}, user=user, timeout=900)
    assert_score(course, "alice", FULL, f"make grade as {user.pw_name}")
    with open(course / "grading-report.csv", newline="") as f:
        (row,) = [r for r in csv.DictReader(f) if r["student"] == "alice"]
    assert row["sandbox"] == "on" or not SANDBOX_WANTED, f"make grade (not root) graded without the sandbox: {row}"
    assert grades_csv_score(course, "alice") == (FULL, FULL)


# ---------------------------------------------------------------------------------------------
# course layouts, graded by stock nbgrader autograde


@pytest.fixture(scope="session")
def layout(request, public_tmp):
    """(course folder to run from, its environment) for each layout (parametrized indirectly)."""
    kind = request.param
    if kind == "readme":  # .venv inside the course, make env (shared with the make autograde journey)
        course = request.getfixturevalue("course_a")
        record_assignment(course, root_env())
        return course, activated(root_env(), course / ".venv")
    if kind == "venv-outside":  # README: the pins, then `pip install --no-deps .` into an environment elsewhere
        course, venv = request.getfixturevalue("outside")
        env = activated(root_env(), venv)
        # `make release` would build .venv: its nbgrader step, with this environment
        run(["nbgrader", "generate_assignment", ASSIGNMENT, "--force", "--log-level=WARN"], course,
            {**env, "PWD": str(course)}, timeout=600)
        assert not (course / ".venv").exists()
        return course, env
    if kind == "spaces-non-ascii":  # the make grade journey's clone
        course = request.getfixturevalue("course_b")
        record_assignment(course, root_env())
        return course, activated(root_env(), course / ".venv")
    if kind == "symlink":  # the course reached through a symlink, every command run from the link
        link = public_tmp / "current-course"
        link.symlink_to(request.getfixturevalue("course_a"), target_is_directory=True)
        record_assignment(link, root_env())
        return link, activated(root_env(), link / ".venv")
    raise AssertionError(kind)


@pytest.mark.parametrize("layout", ["readme", "venv-outside", "spaces-non-ascii", "symlink"], indirect=True)
def test_layout_stock_autograde_gives_full_marks(layout, request):
    course, env = layout
    student = "layout-" + request.node.callspec.id
    hand_in(course, student)
    graded = run(["nbgrader", "autograde", ASSIGNMENT, "--student", student], course, {**env, "PWD": str(course)},
                 timeout=900)
    assert_sandboxed(graded, f"nbgrader autograde in {course}")
    assert_score(course, student, FULL, f"nbgrader autograde in {course}")


# ---------------------------------------------------------------------------------------------
# the student's path: make lab


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url: str, timeout: float = 10) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_make_lab_serves_the_lesson(course_a, tmp_path):
    """`make lab` (LAB_ARGS for a headless run) starts JupyterLab on the student's working copy."""
    port, token = free_port(), secrets.token_hex(16)
    log = tmp_path / "lab.log"
    args = ["make", "lab", f"LAB_ARGS=--no-browser --port={port} --ServerApp.token={token}"]
    with open(log, "w") as out:
        lab = subprocess.Popen(args, cwd=course_a, env={**root_env(), "PWD": str(course_a)}, stdin=subprocess.DEVNULL,
                               stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            assert lab.poll() is None, f"make lab exited {lab.returncode}:\n{_tail(log.read_text())}"
            assert time.monotonic() < deadline, f"JupyterLab did not answer within 180 s:\n{_tail(log.read_text())}"
            try:
                if http_get(f"{base}/api/status?token={token}", timeout=5)[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.5)
        path = f"workspace/{ASSIGNMENT}/{ASSIGNMENT}.ipynb"
        status, page = http_get(f"{base}/lab/tree/{path}?token={token}")
        assert status == 200 and b"JupyterLab" in page, f"/lab/tree/{path}: {status}\n{page[:500]!r}"
        status, body = http_get(f"{base}/api/contents/{path}?token={token}")
        assert status == 200, f"/api/contents/{path}: {status} {body[:500]!r}"
        model = json.loads(body)
        assert model["type"] == "notebook"
        lesson = nbformat.read(REPO / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)
        served = model["content"]["cells"]
        assert [c["source"] for c in served] == [c.source for c in lesson.cells], (
            "the served notebook is not the lesson")
        assert any(c["metadata"].get("nbgrader", {}).get("grade_id") == STEP2 for c in served)
    finally:
        if lab.poll() is None:
            os.killpg(lab.pid, signal.SIGTERM)
            try:
                lab.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(lab.pid, signal.SIGKILL)
                lab.wait(timeout=30)
