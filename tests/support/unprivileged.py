"""Grading as an instructor who is not root, for the class-sized runs (the galleries, the bench).

On a course server (`make hub`) the grader is an ordinary account: the sandbox takes its
user-namespace form and no zygote forks the kernels. These helpers give a class-sized run what
that account has, made by root as `make hub` makes it:
- `grader()`: the Unix account (`useradd -m`, kept if it exists);
- `grader_env()`: the instructor's environment as `make hub` builds it (the pins, then this
  repository without dependencies, with the system's Python 3.11 every user can run), in
  /var/tmp, rebuilt only when the pins or the packages change (hub/course_hub.py's stamp);
- `public_folder()`: a 0755 folder the account can reach, for its course;
- `grade_as()`: `course-grade grade` run by the account in its course, with a login's
  environment (HOME, USER, the system's PATH behind the environment's bin/).
Root is needed to make the account and to hand it the course (`give`).
"""
from __future__ import annotations

import os
import pwd
import subprocess
import tempfile
from pathlib import Path

from tests.support.course import ROOT

GRADER = "cpgrader"  # the class-sized runs' grader; tests/journeys/ and the hub test use accounts of their own
ENV = Path("/var/tmp/connection-pooling-grader-env")  # kept between runs, as a server keeps make hub's
SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"
# what a login on this machine has besides HOME/USER/PATH (certificates, the sandbox switch, CI)
PASSED_ON = ("SSL_CERT_FILE", "SSL_CERT_DIR", "LANG", "TZ", "COURSE_SANDBOX", "CI")


class NotRoot(RuntimeError):
    """Only root can make the grader's account and hand it a course."""


def grader(name: str = GRADER) -> pwd.struct_passwd:
    """The unprivileged grader's account, made with a home unless it exists (two test workers
    may ask at once: whichever `useradd` loses finds the account the other made)."""
    if os.geteuid() != 0:
        raise NotRoot("grading as another user needs root to make that user: run the tests as root, as CI does")
    try:
        return pwd.getpwnam(name)
    except KeyError:
        made = subprocess.run(["useradd", "-m", "-s", "/bin/bash", name], capture_output=True, text=True, timeout=60)
    try:
        return pwd.getpwnam(name)
    except KeyError:
        raise RuntimeError(f"could not make the account {name!r} with useradd: {made.stderr.strip()}") from None


def grader_env(env: Path = ENV) -> Path:
    """The instructor's environment every user can run, as `make hub` builds it."""
    from hub import course_hub

    pins = subprocess.run(["python3", str(ROOT / "tools" / "pins.py"), "requirements"], capture_output=True,
                          text=True, check=True, timeout=60).stdout
    course_hub.build_env(course_hub.find_uv(), env, [ROOT], pins)
    return env


def public_folder(prefix: str) -> Path:
    """A new folder under /var/tmp that every user can reach (the account's course goes in it)."""
    folder = Path(tempfile.mkdtemp(prefix=prefix, dir="/var/tmp"))
    folder.chmod(0o755)
    return folder


def give(folder: Path, user: pwd.struct_passwd) -> None:
    """`folder` and everything in it becomes the user's (links themselves, never their targets)."""
    os.chown(folder, user.pw_uid, user.pw_gid, follow_symlinks=False)
    for top, dirs, files in os.walk(folder):
        for name in dirs + files:
            os.chown(os.path.join(top, name), user.pw_uid, user.pw_gid, follow_symlinks=False)


def login_env(user: pwd.struct_passwd, env: Path) -> dict[str, str]:
    """What the user has after logging in and activating `env`."""
    passed = {k: os.environ[k] for k in PASSED_ON if k in os.environ}
    return {"LANG": "C.UTF-8", **passed, "HOME": user.pw_dir, "USER": user.pw_name, "LOGNAME": user.pw_name,
            "VIRTUAL_ENV": str(env), "PATH": f"{env / 'bin'}:{SYSTEM_PATH}"}


def grade_as(user: pwd.struct_passwd, env: Path, course: Path, *args: str,
             timeout: float = 1800) -> subprocess.CompletedProcess:
    """`course-grade grade ARGS` run by `user` from `course` (theirs), in `env`."""
    return subprocess.run([str(env / "bin" / "course-grade"), "grade", *args], cwd=course,
                          env={**login_env(user, env), "PWD": str(course)}, user=user.pw_uid, group=user.pw_gid,
                          extra_groups=[], capture_output=True, text=True, timeout=timeout)
