"""`make hub`: the course on a JupyterHub on this machine, as root, from a fresh clone.

    sudo make hub                                   # defaults below; Ctrl-C stops the hub
    sudo make hub HUB_ARGS="--port 8800 --students ana,ben,eva --passwords pw.txt"

Each step is idempotent (run it again after a change, or to start the hub again):
1. users: the instructors, the grader account and the students, as local Unix users
   (`useradd -m`; an existing account is kept as it is). A hub user made here gets a random
   password, written to ROOT/state/passwords.txt (mode 0600); `--passwords FILE` (lines NAME:PASSWORD)
   sets them for any hub user, and so does `passwd NAME`. The grader account has no password:
   it only runs the course server.
2. environments, from environment.yml's pins with the system's Python 3.11 (every user can run
   it): ROOT/envs/users for everyone's own server, with the kernel side only (autograder/, from
   tools/kernel-package) and nbgrader's instructor extensions disabled; ROOT/envs/course for the
   course server, with both packages (course_grade too).
3. the course: a clone of this repository in the grader account's home, the assignment
   recorded in its gradebook; the exchange (`course-grade setup exchange`); the students'
   nbgrader config in their environment (`course-grade setup students --write`).
4. the hub (hub/jupyterhub_config.py, which reads ROOT/state/hub-settings.json), on 127.0.0.1 only,
   in the foreground: this process becomes JupyterHub.

Runs with `make env`'s Python (.venv), as root; the rest runs from the environments it builds.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import pwd
import secrets
import shutil
import socket
import sqlite3
import stat
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from autograder.course import ASSIGNMENT
from course_grade.commands.setup import course_settings

REPO = Path(__file__).resolve().parent.parent
SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"
# nbgrader's instructor extensions, off in everyone's own server (the course server has them)
INSTRUCTOR_SERVER_EXTENSIONS = ("nbgrader.server_extensions.formgrader", "nbgrader.server_extensions.course_list")
INSTRUCTOR_LAB_PLUGINS = ("@jupyter/nbgrader:formgrader", "@jupyter/nbgrader:course-list",
                          "@jupyter/nbgrader:create-assignment")
# nbgrader's Formgrader panel in JupyterLab frames the formgrader, which JupyterHub >= 4.1 forbids
# (frame-ancestors 'none': a blank panel, jupyter/nbgrader#1870): off in the course server too,
# where the formgrader is the default page instead.
FRAMED_FORMGRADER = "@jupyter/nbgrader:formgrader"
SERVICE = "formgrader"  # the course server's name: /services/formgrader/
# JupyterLab's defaults for every user of the hub: no news or update checks and no extension
# manager (they reach the internet; a course server asks students nothing of the kind)
LAB_OVERRIDES = {
    "@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/extensionmanager-extension:plugin": {"enabled": False},
}


class HubError(Exception):
    """What stops the set-up, in one sentence saying what to do."""


@dataclass(frozen=True)
class Settings:
    """What hub/jupyterhub_config.py reads (ROOT/state/hub-settings.json)."""

    state: str  # the hub's own files, root's alone (0700): database, cookie secret, passwords.txt
    ip: str
    port: int
    hub_port: int
    proxy_api_port: int
    service_port: int
    service: str
    instructors: list[str]
    grader: str
    students: list[str]
    course: str
    exchange: str
    users_env: str
    course_env: str
    proxy: str


# ------------------------------------------------------------------------------ helpers


def run(args, *, user: pwd.struct_passwd | None = None, cwd=None, env=None, quiet=False) -> str:
    """Run a command (as `user` if given); its output, or a HubError naming it."""
    args = [str(a) for a in args]
    who = dict(user=user.pw_uid, group=user.pw_gid, extra_groups=[]) if user else {}
    done = subprocess.run(args, cwd=cwd, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, **who)
    if done.returncode:
        raise HubError(f"`{' '.join(args)}`{' as ' + user.pw_name if user else ''} failed (exit {done.returncode}): "
                       f"{(done.stderr or done.stdout).strip()[-1500:]}")
    if not quiet and done.stdout.strip():
        print(done.stdout.strip())
    return done.stdout


def say(text: str) -> None:
    print(f"[course hub] {text}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def login_env(user: pwd.struct_passwd, env_bin: Path, **extra) -> dict:
    """What `user` has after logging in, with an environment's tools first on PATH."""
    keep = {k: os.environ[k] for k in ("LANG", "TZ", "SSL_CERT_FILE", "SSL_CERT_DIR") if k in os.environ}
    return {"LANG": "C.UTF-8", **keep, "HOME": user.pw_dir, "USER": user.pw_name, "LOGNAME": user.pw_name,
            "SHELL": user.pw_shell, "PATH": f"{env_bin}:{SYSTEM_PATH}", **extra}


def names(text: str) -> list[str]:
    """Comma-separated user names, each one useradd takes as it is."""
    found = [n.strip() for n in text.split(",") if n.strip()]
    for name in found:
        if not name.replace("-", "").replace("_", "").isalnum() or name[0] in "-_" or name != name.lower():
            raise HubError(f"{name!r} is not a user name this script makes: use lower-case letters, digits, - and _")
    return found


# ------------------------------------------------------------------------------ 1. users


def ensure_user(name: str) -> tuple[pwd.struct_passwd, bool]:
    """The local user `name`, made with a home and bash unless it exists; whether it was made."""
    try:
        return pwd.getpwnam(name), False
    except KeyError:
        run(["useradd", "-m", "-s", "/bin/bash", name])
        return pwd.getpwnam(name), True


def set_passwords(pairs: dict[str, str]) -> None:
    if pairs:
        subprocess.run(["chpasswd"], input="".join(f"{n}:{p}\n" for n, p in pairs.items()), text=True, check=True,
                       capture_output=True)


def read_passwords(path: Path, hub_users: list[str]) -> dict[str, str]:
    """NAME:PASSWORD lines; only the hub's own users (never root, nor the grader account)."""
    pairs = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, sep, password = line.partition(":")
        if not sep or not password:
            raise HubError(f"{path} line {number} is not NAME:PASSWORD: write one user a line")
        if name not in hub_users:
            raise HubError(f"{path} line {number} names {name!r}, not a user of this hub ({', '.join(hub_users)}): "
                           f"set other accounts' passwords with passwd")
        pairs[name] = password
    return pairs


def make_users(s: Settings, passwords: Path | None) -> None:
    hub_users = [*s.instructors, *s.students]
    made = {}
    for name in [*hub_users, s.grader]:
        _, new = ensure_user(name)
        if new and name != s.grader:
            made[name] = secrets.token_urlsafe(12)
    given = read_passwords(passwords, hub_users) if passwords else {}
    set_passwords({**made, **given})
    record = Path(s.state) / "passwords.txt"
    fresh = {n: p for n, p in made.items() if n not in given}
    if fresh:
        fd = os.open(record, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "a") as f:
            f.write("".join(f"{n}:{p}\n" for n, p in fresh.items()))
        say(f"made {', '.join(fresh)} with random passwords, listed in {record} (change one with `passwd NAME`)")
    if given:
        say(f"set the passwords of {', '.join(given)} from {passwords}")
    say(f"users: instructors {', '.join(s.instructors)}; grader account {s.grader}; students {', '.join(s.students)}")


# ------------------------------------------------------------------------------ 2. environments


def system_python() -> Path:
    """A Python 3.11 every user can run (the environments' interpreter)."""
    for candidate in ("/usr/bin/python3.11", "/usr/local/bin/python3.11"):
        path = Path(candidate)
        real = path.resolve()
        if real.exists() and all(p.stat().st_mode & stat.S_IXOTH for p in [real, *real.parents]):
            return path
    raise HubError("no Python 3.11 that every user can run in /usr/bin or /usr/local/bin: install it "
                   "(apt-get install python3.11 python3.11-venv)")


def find_uv() -> str:
    for candidate in (os.environ.get("UV"), shutil.which("uv"), str(REPO / ".tools" / "bin" / "uv")):
        if candidate and os.access(candidate, os.X_OK):
            return os.path.abspath(candidate)
    raise HubError("uv is missing: run `make env` first (it installs uv into .tools/)")


def sources_digest(pins: str) -> str:
    """What an environment is built from: the pins and this repository's packages as they are now."""
    digest = hashlib.sha256(pins.encode())
    paths = ["autograder", "course_grade", "pyproject.toml", "tools/kernel-package"]
    for what in (["ls-files", "-s", "--others", "--exclude-standard"], ["diff", "HEAD"]):
        digest.update(run(["git", "-c", "safe.directory=*", "-C", REPO, *what, "--", *paths], quiet=True).encode())
    return digest.hexdigest()


def build_env(uv: str, env: Path, packages: list[Path], pins: str) -> None:
    """A venv at `env` with the pins, then `packages` without their dependencies; kept when its
    stamp says it was built from the same pins and sources."""
    stamp, digest = env / ".course-hub-stamp", sources_digest(pins)
    if stamp.exists() and stamp.read_text() == digest:
        say(f"{env} is up to date")
        return
    say(f"building {env} (uv, from environment.yml's pins)")
    run([uv, "venv", "--quiet", "--allow-existing", "--python", system_python(), env])
    pin_file = env / "pins.txt"
    pin_file.write_text(pins)
    python = env / "bin" / "python"
    run([uv, "pip", "install", "--quiet", "--compile-bytecode", "--python", python, "-r", pin_file])
    run([uv, "pip", "install", "--quiet", "--compile-bytecode", "--reinstall", "--no-deps", "--python", python,
         *packages])
    for top, dirs, files in os.walk(env):  # every user reads it (uv keeps its cache's modes)
        for name in dirs + files:
            path = os.path.join(top, name)
            if not os.path.islink(path):
                os.chmod(path, os.stat(path).st_mode | stat.S_IROTH | (stat.S_IXOTH if name in dirs else 0))
    stamp.write_text(digest)


def build_envs(s: Settings) -> None:
    uv = find_uv()
    pins = run([sys.executable, REPO / "tools" / "pins.py", "requirements"], quiet=True)
    users, course = Path(s.users_env), Path(s.course_env)
    build_env(uv, users, [REPO / "tools" / "kernel-package"], pins)
    jupyter = users / "bin" / "jupyter"
    for extension in INSTRUCTOR_SERVER_EXTENSIONS:
        run([jupyter, "server", "extension", "disable", "--sys-prefix", extension], quiet=True)
    run([jupyter, "labextension", "disable", "--level=sys_prefix", *INSTRUCTOR_LAB_PLUGINS], quiet=True)
    build_env(uv, course, [REPO], pins)
    run([course / "bin" / "jupyter", "labextension", "disable", "--level=sys_prefix", FRAMED_FORMGRADER], quiet=True)
    for env in (users, course):
        overrides = env / "share" / "jupyter" / "lab" / "settings" / "overrides.json"
        overrides.parent.mkdir(parents=True, exist_ok=True)
        overrides.write_text(json.dumps(LAB_OVERRIDES, indent=1) + "\n")


# ------------------------------------------------------------------------------ 3. the course


def has_assignment(gradebook: Path) -> bool:
    if not gradebook.exists():
        return False
    try:
        with sqlite3.connect(f"file:{gradebook}?mode=ro", uri=True) as db:
            return db.execute("select 1 from assignment where name = ?", (ASSIGNMENT,)).fetchone() is not None
    except sqlite3.Error:
        return False


def setup_course(s: Settings) -> None:
    grader = pwd.getpwnam(s.grader)
    course, course_bin = Path(s.course), Path(s.course_env) / "bin"
    if course.exists():
        say(f"the course folder {course} is there: kept as it is")
    else:
        run(["git", "-c", "safe.directory=*", "clone", "--quiet", "--no-hardlinks", REPO, course])
        for top, dirs, files in os.walk(course):
            for name in [*dirs, *files]:
                os.chown(os.path.join(top, name), grader.pw_uid, grader.pw_gid, follow_symlinks=False)
        os.chown(course, grader.pw_uid, grader.pw_gid)
        course.chmod(0o700)  # solutions, hidden tests and grades: the grader account's alone
        say(f"cloned the course into {course} (the grader account's, mode 0700)")
    if course.stat().st_mode & 0o077:
        raise HubError(f"{course} is open to other users, students included (solutions, grades): "
                       f"run `chmod 700 {course}`")
    env = login_env(grader, course_bin, NBGRADER_EXCHANGE=s.exchange, PWD=str(course))
    if not has_assignment(course / "gradebook.db"):
        run([course_bin / "nbgrader", "generate_assignment", ASSIGNMENT, "--force", "--log-level=WARN"], user=grader,
            cwd=course, env=env)
        say(f"recorded {ASSIGNMENT} in {course / 'gradebook.db'}")
    root_env = {"PATH": f"{course_bin}:{SYSTEM_PATH}", "LANG": "C.UTF-8", "HOME": "/root",
                "NBGRADER_EXCHANGE": s.exchange}
    grade = course_bin / "course-grade"
    run([grade, "setup", "exchange", "--course", course], cwd=course, env=root_env)
    users_config = Path(s.users_env) / "etc" / "jupyter" / "nbgrader_config.py"
    run([grade, "setup", "students", "--course", course, "--write", users_config, "--force"], cwd=course,
        env=root_env)


# ------------------------------------------------------------------------------ 4. the hub


def check_proxy() -> str:
    proxy = REPO / "hub" / "node_modules" / ".bin" / "configurable-http-proxy"
    if not proxy.exists():
        raise HubError(f"{proxy} is missing: run `make hub` (it runs `npm ci --prefix hub`)")
    version = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip().lstrip("v")
    if not version or int(version.split(".")[0]) < 20:
        raise HubError(f"configurable-http-proxy 5 needs Node.js 20 or newer, this machine has {version or 'none'}: "
                       f"install Node.js 20 (Debian 13's nodejs, or NodeSource's for Debian 12)")
    return str(proxy)


def settings_from(args: argparse.Namespace) -> Settings:
    root = Path(args.root).absolute()
    envs = Path(args.envs).absolute() if args.envs else root / "envs"
    graders = names(args.grader)
    if len(graders) != 1:
        raise HubError(f"--grader names one account, not {args.grader!r}")
    grader = graders[0]
    try:
        grader_home = Path(pwd.getpwnam(grader).pw_dir)
    except KeyError:
        grader_home = Path("/home") / grader  # useradd -m's default
    return Settings(
        state=str(root / "state"), ip="127.0.0.1", port=args.port, hub_port=free_port(), proxy_api_port=free_port(),
        service_port=free_port(), service=SERVICE, instructors=names(args.instructors), grader=grader,
        students=names(args.students), course=str(args.course or grader_home / ASSIGNMENT),
        exchange=args.exchange or course_settings(REPO)[1],
        users_env=str(envs / "users"), course_env=str(envs / "course"), proxy=check_proxy())


def start_hub(s: Settings) -> None:
    """Become JupyterHub (this process: Ctrl-C and signals reach it)."""
    settings = Path(s.state) / "hub-settings.json"
    settings.write_text(json.dumps(asdict(s), indent=1) + "\n")
    say(f"JupyterHub at http://{s.ip}:{s.port}/ (the course server, for instructors: "
        f"http://{s.ip}:{s.port}/services/{s.service}/formgrader); Ctrl-C stops it")
    env = {**os.environ, "COURSE_HUB_SETTINGS": str(settings), "PATH": f"{Path(sys.executable).parent}:{SYSTEM_PATH}"}
    for runner_only in ("VIRTUAL_ENV", "PYTHONPATH", "NBGRADER_EXCHANGE"):
        env.pop(runner_only, None)
    os.chdir(s.state)
    os.execve(sys.executable, [sys.executable, "-m", "jupyterhub", "-f", str(REPO / "hub" / "jupyterhub_config.py")],
              env)


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default="/srv/connection-pooling-hub",
                        help="the hub's folder: state/ (database, passwords; root's) and envs/ (default: %(default)s)")
    parser.add_argument("--envs", help="where the users' and the course's environments go (default: ROOT/envs)")
    parser.add_argument("--port", type=int, default=8000,
                        help="the hub's port on 127.0.0.1, the only address it listens on (default: %(default)s)")
    parser.add_argument("--instructors", default="instructor",
                        help="comma-separated: hub admins, who use the course server (default: %(default)s)")
    parser.add_argument("--grader", default="grader",
                        help="the account that owns the course and runs the course server (default: %(default)s)")
    parser.add_argument("--students", default="student1,student2", help="comma-separated (default: %(default)s)")
    parser.add_argument("--passwords", type=Path, help="a file of NAME:PASSWORD lines for hub users (chpasswd)")
    parser.add_argument("--course", type=Path, help="the course folder (default: ~GRADER/connection-pooling)")
    parser.add_argument("--exchange",
                        help="nbgrader's exchange (default: the course's nbgrader_config.py: NBGRADER_EXCHANGE, "
                             "else /srv/nbgrader/exchange)")
    parser.add_argument("--no-start", action="store_true", help="set everything up, then stop (do not start the hub)")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse(argv)
    try:
        if os.geteuid() != 0:
            raise HubError("the hub makes users and starts servers as them: run it as root (sudo make hub)")
        s = settings_from(args)
        for folder in (Path(s.state).parent, Path(s.users_env).parent):  # every user reads the environments
            if not folder.exists():
                folder.mkdir(parents=True)
                folder.chmod(0o755)
        Path(s.state).mkdir(exist_ok=True)
        Path(s.state).chmod(0o700)  # root's alone
        overlap = set(s.instructors) & set(s.students) or {s.grader} & {*s.instructors, *s.students}
        if overlap:
            raise HubError(f"{', '.join(sorted(overlap))} cannot have two roles: give each role its own account")
        make_users(s, args.passwords)
        build_envs(s)
        setup_course(s)
        if args.no_start:
            say("set up; start the hub with `make hub` (without --no-start)")
            return 0
        start_hub(s)
    except HubError as exc:
        print(f"make hub: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
