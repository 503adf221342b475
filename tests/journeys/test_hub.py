"""`make hub` end to end: the course server on this machine, used as its users use it.

The test runs `make hub` (hub/course_hub.py) as root, on 127.0.0.1 and a free port, with users of
its own (made by make hub on the first run and kept, as test_journeys.py keeps its users), a fresh
course folder, exchange and hub database, and environments kept between runs in /var/tmp (make hub
rebuilds them only when the pins or the packages change). Then, in headless Chromium (Debian's,
offline: the page reaches 127.0.0.1 only):

1. the instructor logs in and releases the assignment from the formgrader, opened through the hub
   as a page of its own (JupyterHub's security headers unchanged);
2. two students log in, fetch it from JupyterLab's Assignment List, answer (the test writes the
   other steps' answers and the quiz into the fetched notebook as the student would; each student
   types step 2 in the browser, one right and one wrong), save and submit;
3. the instructor collects from the formgrader, grades with `course-grade grade` typed into a
   terminal of the course server (as the grader account, not root: the grading sandbox in a user
   namespace), sees both submissions and their scores in the formgrader, and releases feedback;
4. the students fetch their feedback and open it.

axe-core checks the words we add to the hub's pages (the login and home announcements; the rest
of those pages is JupyterHub's). Screenshots, axe.json and the hub's log go to test-artifacts/hub/.
A missing dependency (root, Chromium, Node.js, axe-core) fails the test: it never skips.
"""
from __future__ import annotations

import contextlib
import csv
import json
import os
import pwd
import re
import secrets
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest

from tests.journeys.test_journeys import (
    FULL,
    STEP2,
    WRONG_STEP2,
    WRONG_STEP2_SCORE,
    completed,
    gradebook_scores,
    root_env,
    write_as,
)
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, OFFLINE_ARGS, free_port, wait_until
from tests.support.course import ANSWERS_FILE, ASSIGNMENT, ROOT, answers_file, right_answers, solutions

pytestmark = pytest.mark.slow

SHOTS = ROOT / "test-artifacts" / "hub"
AXE = ROOT / "tests" / "node_modules" / "axe-core" / "axe.min.js"
ENVS = Path("/var/tmp/connection-pooling-hub-test-envs")  # kept between runs, as a machine keeps make hub's
INSTRUCTOR, GRADER = "hubteacher", "hubgrader"
STUDENTS = {"hubstudent1": solutions()[STEP2], "hubstudent2": WRONG_STEP2}  # what each types for step 2
EXPECTED = {"hubstudent1": FULL, "hubstudent2": WRONG_STEP2_SCORE}
SERVICE = "formgrader"
START_TIMEOUT = 900  # seconds: a first run builds two environments (about 2 minutes with uv's cache)
GRADE_TIMEOUT = 600


@dataclass
class Hub:
    url: str
    state: Path
    course: Path
    exchange: Path
    passwords: dict[str, str]
    log: Path

    def settings(self) -> dict:
        return json.loads((self.state / "hub-settings.json").read_text())


def tail(path: Path, chars: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


def http_status(url: str) -> int | None:
    """The status of a GET without following redirects; None while nothing answers."""
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    try:
        with urllib.request.build_opener(NoRedirect).open(url, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


def check_prerequisites() -> None:
    problems = []
    if os.geteuid() != 0:
        problems.append("the hub makes Unix users and starts servers as them: run the test as root, as CI does")
    if not Path(CHROMIUM).exists():
        problems.append(f"{CHROMIUM} is missing: apt-get install chromium (or `make test`)")
    if not AXE.exists():
        problems.append(f"{AXE} is missing: run `make test`, or `npm ci --prefix tests`")
    if not shutil.which("node") or not shutil.which("npm"):
        problems.append("Node.js and npm are missing (the hub's proxy): apt-get install npm (or `make test`)")
    if problems:
        pytest.fail("the hub test cannot run: " + "; ".join(problems))


def users_processes(uids: set[int]) -> list[int]:
    """The processes of the test's own users (what the hub started for them)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if entry.stat().st_uid in uids:
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


def stop(process: subprocess.Popen, hub: Hub) -> None:
    """SIGTERM to `make hub` and JupyterHub (one process group): JupyterHub stops the course server,
    the users' servers and its proxy; whatever is left of them after 120 s is killed."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
    uids = {pwd.getpwnam(name).pw_uid for name in [INSTRUCTOR, GRADER, *STUDENTS]}
    for pid in users_processes(uids):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    pid_file = hub.state / "proxy.pid"
    if pid_file.exists():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid_file.read_text().strip()), signal.SIGKILL)


@pytest.fixture(scope="module")
def shots():
    SHOTS.mkdir(parents=True, exist_ok=True)
    for old in [*SHOTS.glob("*.png"), *SHOTS.glob("*.json"), *SHOTS.glob("*.log")]:
        old.unlink()
    print(f"screenshots: {SHOTS}")
    return SHOTS


@pytest.fixture(scope="module")
def hub(shots):
    """`make hub` with the test's users, a fresh course, exchange and hub state; stopped after."""
    check_prerequisites()
    base = Path(tempfile.mkdtemp(prefix="course-hub-test-"))
    base.chmod(0o755)  # the grader account reaches its course folder in it
    passwords = {name: secrets.token_urlsafe(12) for name in [INSTRUCTOR, *STUDENTS]}
    password_file = base / "passwords.txt"
    password_file.write_text("".join(f"{n}:{p}\n" for n, p in passwords.items()))
    password_file.chmod(0o600)
    for name in STUDENTS:  # what an earlier run left in a kept account
        try:
            home = Path(pwd.getpwnam(name).pw_dir)
        except KeyError:
            continue
        for leftover in (home / ASSIGNMENT, home / ".jupyter" / "lab" / "workspaces"):
            shutil.rmtree(leftover, ignore_errors=True)
    port = free_port()
    hub = Hub(url=f"http://127.0.0.1:{port}", state=base / "hub" / "state", course=base / "course",
              exchange=base / "exchange", passwords=passwords, log=shots / "hub.log")
    args = ["--root", base / "hub", "--envs", ENVS, "--port", port, "--instructors", INSTRUCTOR, "--grader", GRADER,
            "--students", ",".join(STUDENTS), "--passwords", password_file, "--course", hub.course,
            "--exchange", hub.exchange]
    with open(hub.log, "w") as out:
        process = subprocess.Popen(["make", "hub", f"HUB_ARGS={shlex.join(map(str, args))}"], cwd=ROOT,
                                   env={**root_env(), "PWD": str(ROOT)}, stdin=subprocess.DEVNULL, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        # up when the hub answers and its proxy reaches the course server (its own redirect to log in)
        while http_status(f"{hub.url}/hub/api/") != 200 or http_status(f"{hub.url}/services/{SERVICE}/") != 302:
            assert process.poll() is None, f"make hub exited {process.returncode}:\n{tail(hub.log)}"
            assert time.monotonic() < deadline, f"the hub did not start within {START_TIMEOUT} s:\n{tail(hub.log)}"
            time.sleep(1)
        yield hub
    finally:
        stop(process, hub)
        subprocess.run(["rm", "-rf", "--one-file-system", base], check=False)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS + OFFLINE_ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


# ------------------------------------------------------------------------------ in the browser


def new_page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(60_000)
    page = context.new_page()
    page.errors = []
    page.on("pageerror", lambda exc: page.errors.append(str(exc)))
    return page


def login(browser, hub: Hub, name: str):
    """A page where `name` has logged in with their password on the hub's login page."""
    page = new_page(browser)
    page.goto(f"{hub.url}/hub/login")
    page.fill("#username_input", name)
    page.fill("#password_input", hub.passwords[name])
    page.click("#login_submit")
    wait_until(lambda: "/hub/login" not in page.url, 60, f"{name} to get past the login page",
               details=lambda: f"(still at {page.url}; hub log: {hub.log})")
    return page


def shot(page, name: str) -> None:
    page.screenshot(path=str(SHOTS / f"{name}.png"))


def formgrader(page, hub: Hub, path: str = "manage_assignments"):
    """Open a page of the formgrader through the hub; its response, whose headers JupyterHub set."""
    response = page.goto(f"{hub.url}/services/{SERVICE}/formgrader/{path}")
    assert response is not None and response.ok, f"the formgrader's {path} answered {response and response.status}"
    return response


def formgrader_action(page, hub: Hub, column: str, success: str, name: str) -> str:
    """Click an action of the assignment's row on Manage Assignments (release, collect,
    release-feedback); the dialog's text, which must say `success`."""
    formgrader(page, hub)
    row = page.locator("tbody tr", has_text=ASSIGNMENT)
    row.locator(f".{column} a").click()
    dialog = page.locator(".modal-dialog")
    dialog.wait_for()
    text = dialog.inner_text()
    shot(page, name)
    assert success in text, f"the formgrader's {column} said: {text[:1500]}"
    dialog.locator(".modal-footer button").first.click()
    return text


def open_lab(page, hub: Hub, name: str, path: str = "") -> None:
    """The student's JupyterLab (waiting for the hub to start their server)."""
    page.goto(f"{hub.url}/user/{name}/lab{'/tree/' + path if path else ''}?reset", timeout=180_000)
    page.get_by_role("menuitem", name="Nbgrader", exact=True).wait_for(timeout=180_000)


def assignment_list(page) -> None:
    page.get_by_role("menuitem", name="Nbgrader", exact=True).click()
    page.locator(".lm-Menu-itemLabel", has_text="Assignment List").click()
    page.locator("#released_assignments_list").wait_for()


def saved_source(path: Path, cell_id: str) -> str | None:
    try:
        return next((c.source for c in nbformat.read(path, as_version=4).cells if c.id == cell_id), None)
    except Exception:  # being written
        return None


# ------------------------------------------------------------------------------ the tests


def test_students_environment_has_the_kernel_side_only(hub):
    settings = hub.settings()
    python = Path(settings["users_env"]) / "bin" / "python"
    probe = ("import importlib.util as u, autograder.checks, nbgrader\n"
             "print(u.find_spec('course_grade') is None)")
    done = subprocess.run([python, "-c", probe], cwd="/", capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"the students' environment cannot import the checks: {done.stderr[-2000:]}"
    assert done.stdout.strip() == "True", "course_grade is installed in the students' environment"
    listed = subprocess.run([Path(settings["users_env"]) / "bin" / "jupyter", "server", "extension", "list"],
                            cwd="/", capture_output=True, text=True, timeout=120)
    text = re.sub(r"\x1b\[[0-9;]*m", "", listed.stdout + listed.stderr)  # without its colours
    assert re.search(r"nbgrader\.server_extensions\.formgrader\s+disabled", text), (
        f"the formgrader is not disabled in the students' servers:\n{text}")
    assert re.search(r"nbgrader\.server_extensions\.assignment_list\s+enabled", text), text
    course_python = Path(settings["course_env"]) / "bin" / "python"
    done = subprocess.run([course_python, "-c", "import course_grade.commands.grade"], cwd="/", capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, f"the course server's environment lacks course_grade: {done.stderr[-2000:]}"


def listening(port: int) -> set[str]:
    """The local addresses of the sockets listening on `port` (IPv4 and IPv6)."""
    found = set()
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, hex_port = fields[1].split(":")
            if fields[3] == "0A" and int(hex_port, 16) == port:  # LISTEN
                raw = bytes.fromhex(address)
                if width == 8:
                    found.add(".".join(str(b) for b in raw[::-1]))
                else:
                    found.add(":".join(raw[i:i + 4][::-1].hex() for i in range(0, 16, 4)))
    return found


def test_hub_listens_on_loopback_only(hub):
    settings = hub.settings()
    for what in ("port", "hub_port", "proxy_api_port", "service_port"):
        addresses = listening(settings[what])
        assert addresses == {"127.0.0.1"}, f"the hub's {what} {settings[what]} listens on {addresses or 'nothing'}"


AXE_RUN = """async (selector) => await axe.run({include: Array.from(document.querySelectorAll(selector))},
    {resultTypes: ['violations', 'incomplete', 'passes']})"""


def test_our_words_on_the_hub_pages_are_accessible(hub, browser):
    """axe-core on what we add to JupyterHub's pages (its announcements); the rest is JupyterHub's."""
    results = {}
    page = new_page(browser)
    page.goto(f"{hub.url}/hub/login")
    shot(page, "00-login")
    page.add_script_tag(path=str(AXE))
    assert page.locator(".announcement").count() == 1, "the login page does not show the course's announcement"
    results["login"] = page.evaluate(AXE_RUN, ".announcement")
    page.context.close()
    page = login(browser, hub, INSTRUCTOR)
    page.goto(f"{hub.url}/hub/home")
    link = page.locator(".announcement a", has_text="the formgrader")
    assert link.get_attribute("href") == f"/services/{SERVICE}/formgrader", "the home page's link to the formgrader"
    shot(page, "00-home")
    page.add_script_tag(path=str(AXE))
    results["home"] = page.evaluate(AXE_RUN, ".announcement")
    page.context.close()
    (SHOTS / "axe.json").write_text(json.dumps(results, indent=1))
    checked = {rule["id"] for r in results.values() for rule in r["passes"] + r["violations"]}
    assert "color-contrast" in checked, f"axe checked nothing of the announcements: {sorted(checked)}"
    bad = [f"{where}: {v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
           for where, r in results.items() for v in r["violations"] if v["impact"] in ("serious", "critical")]
    assert not bad, "axe-core finds serious or critical violations:\n" + "\n".join(bad) + f"\n(see {SHOTS})"


def test_a_class_on_the_hub(hub, browser):
    where = f"(screenshots in {SHOTS}; hub log {hub.log})"

    # 1. The instructor releases the assignment from the formgrader, a page of its own.
    teacher = login(browser, hub, INSTRUCTOR)
    response = formgrader(teacher, hub)
    csp = response.headers.get("content-security-policy", "")
    assert "frame-ancestors 'none'" in csp, f"the formgrader's pages lost JupyterHub's frame-ancestors: {csp!r}"
    teacher.locator("tbody tr", has_text=ASSIGNMENT).wait_for()
    shot(teacher, "01-formgrader")
    formgrader_action(teacher, hub, "release", f"Successfully released '{ASSIGNMENT}'", "02-released")

    # 2. Each student fetches, answers (step 2 typed in the browser) and submits.
    students = {}
    for number, (name, step2) in enumerate(STUDENTS.items(), 1):
        students[name] = login(browser, hub, name)
        answer_and_submit(students[name], hub, name, step2, number)

    # 3. The instructor collects, grades in the course server's terminal, and sees the grades.
    formgrader_action(teacher, hub, "collect", f"Successfully collected submissions of '{ASSIGNMENT}'",
                      "06-collected")
    for name in STUDENTS:
        assert (hub.course / "submitted" / name / ASSIGNMENT / ANSWERS_FILE).exists(), f"{name} was not collected"
    grader_home = Path(pwd.getpwnam(GRADER).pw_dir)
    exit_file, grade_log = grader_home / "hub-test-grade.exit", grader_home / "hub-test-grade.log"
    for old in (exit_file, grade_log):
        old.unlink(missing_ok=True)
    teacher.goto(f"{hub.url}/services/{SERVICE}/lab?reset", timeout=180_000)
    teacher.get_by_role("menuitem", name="Nbgrader", exact=True).click()  # its Formgrader panel would be blank
    entries = teacher.locator(".lm-Menu-itemLabel").all_inner_texts()
    assert "Formgrader" not in entries and "Assignment List" in entries, f"the Nbgrader menu shows {entries}"
    teacher.keyboard.press("Escape")
    teacher.locator(".jp-LauncherCard", has_text="Terminal").click()
    terminal = teacher.locator(".jp-Terminal .xterm-screen").first
    terminal.wait_for()
    terminal.click()
    teacher.keyboard.type(f"whoami; course-grade grade {ASSIGNMENT} 2>&1 | tee {grade_log}; "
                          f"echo ${{PIPESTATUS[0]}} > {exit_file}\n")
    wait_until(exit_file.exists, GRADE_TIMEOUT, "course-grade grade to finish in the course server's terminal",
               interval=2, details=lambda: tail(grade_log))
    shot(teacher, "07-graded-in-the-terminal")
    status = exit_file.read_text().strip()
    assert status == "0", f"course-grade grade exited {status}:\n{tail(grade_log)}"
    with open(hub.course / "grading-report.csv", newline="") as f:
        report = {row["student"]: row for row in csv.DictReader(f)}
    for name, expected in EXPECTED.items():
        total, _cells = gradebook_scores(hub.course, name)
        assert abs(total - expected) < 1e-9, f"{name} scored {total:g}, expected {expected:g}:\n{tail(grade_log)}"
        assert report[name]["sandbox"] == "on", f"{name} was graded without the sandbox: {report[name]}"
    owner = pwd.getpwuid((hub.course / "gradebook.db").stat().st_uid).pw_name
    assert owner == GRADER, f"the gradebook belongs to {owner}: grading ran as someone else than the grader account"

    formgrader(teacher, hub, f"manage_submissions/{ASSIGNMENT}")
    for name, expected in EXPECTED.items():
        shows_score(teacher.locator("tbody tr", has_text=name), expected, f"the formgrader's row of {name} {where}")
    shot(teacher, "08-formgrader-submissions")
    formgrader_action(teacher, hub, "release-feedback", f"Successfully released feedback of '{ASSIGNMENT}'",
                      "09-feedback-released")

    # 4. Each student fetches their feedback and opens it.
    for number, (name, page) in enumerate(students.items(), 1):
        read_feedback(page, hub, name, number)
    errors = {name: page.errors for name, page in [(INSTRUCTOR, teacher), *students.items()] if page.errors}
    assert not errors, f"errors in the pages: {errors}"


def shows_score(locator, score: float, what: str) -> None:
    """Wait until `locator` shows "SCORE / FULL" (nbgrader writes 23 or 23.0)."""
    pattern = re.compile(rf"\b{score:g}(\.0+)? / {FULL:g}(\.0+)?\b")
    wait_until(lambda: locator.count() and pattern.search(locator.first.inner_text()), 60,
               f"{what} to show the score {score:g} / {FULL:g}")


def answer_and_submit(page, hub: Hub, name: str, step2: str, number: int) -> None:
    """Fetch from the Assignment List, answer (step 2 typed, the rest written as the student), save,
    submit."""
    user = pwd.getpwnam(name)
    notebook = Path(user.pw_dir) / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    open_lab(page, hub, name)
    assignment_list(page)
    page.locator("#released_assignments_list .list_item", has_text=ASSIGNMENT).get_by_role("button",
                                                                                          name="Fetch").click()
    wait_until(notebook.exists, 60, f"{name}'s Fetch to bring {notebook}")
    shot(page, f"03-{number}-fetched")
    # the steps but 2, and the quiz, answered as the student would (their own files)
    others = {gid: code for gid, code in solutions().items() if gid != STEP2}
    write_as(user, notebook, nbformat.writes(completed(nbformat.read(notebook, as_version=4), others)))
    write_as(user, notebook.parent / ANSWERS_FILE, answers_file(right_answers()))

    cell_ids = [c.id for c in nbformat.read(notebook, as_version=4).cells]
    open_lab(page, hub, name, f"{ASSIGNMENT}/{ASSIGNMENT}.ipynb")
    cells = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell")
    wait_until(lambda: cells.count() == len(cell_ids), 120, f"{name}'s notebook to show its {len(cell_ids)} cells")
    cell = cells.nth(cell_ids.index(STEP2))
    cell.scroll_into_view_if_needed()
    cell.locator(".cm-content").click()
    page.keyboard.press("ControlOrMeta+a")
    page.keyboard.press("Delete")
    page.keyboard.insert_text(step2)
    page.keyboard.press("ControlOrMeta+s")
    wait_until(lambda: saved_source(notebook, STEP2) == step2, 30, f"{name}'s typed step 2 to be saved in {notebook}")
    shot(page, f"04-{number}-answered")

    assignment_list(page)
    page.locator("#fetched_assignments_list .list_item", has_text=ASSIGNMENT).first.get_by_role(
        "button", name="Submit").click()
    page.locator("#submitted_assignments_list .list_item", has_text=ASSIGNMENT).first.wait_for()
    inbound = hub.exchange / "fastapi-connection-pooling" / "inbound"
    wait_until(lambda: any(p.name.startswith(f"{name}+{ASSIGNMENT}+") for p in inbound.iterdir()), 30,
               f"{name}'s submission in {inbound}")
    shot(page, f"05-{number}-submitted")


def read_feedback(page, hub: Hub, name: str, number: int) -> None:
    """Fetch Feedback in the Assignment List, follow "(view feedback)", open the page."""
    open_lab(page, hub, name)
    assignment_list(page)
    submitted = page.locator("#submitted_assignments_list .list_item", has_text=ASSIGNMENT).first
    submitted.get_by_role("button", name="Fetch Feedback").click()
    view = page.locator("#submitted_assignments_list a", has_text="view feedback").first
    view.wait_for()
    shot(page, f"10-{number}-feedback-fetched")
    view.click()
    item = page.locator(".jp-DirListing-item", has_text=f"{ASSIGNMENT}.html")
    item.wait_for()
    item.dblclick()
    body = page.frame_locator(".jp-HTMLViewer iframe").locator("body")
    shows_score(body, EXPECTED[name], f"{name}'s feedback page (screenshots in {SHOTS})")
    shot(page, f"11-{number}-feedback")
    assert "BEGIN HIDDEN TESTS" not in body.inner_text(), f"{name}'s feedback shows hidden tests"
