"""The kernel sandbox (course_grade/kernels/sandbox.py): a probe notebook run through nbclient with the
sandboxed kernel manager checks each protection from inside and outside; a real
`nbgrader autograde` of the solution scores full marks inside it; and the fallback
(COURSE_SANDBOX=off) grades the same, with one line saying what is missing.

Under CI (the CI variable set) these tests fail, not skip, when bwrap is missing."""
from __future__ import annotations

import csv
import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import psutil
import pytest
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_notebook

from course_grade.kernels import sandbox
from tests.support.course import ASSIGNMENT, BIN, autograde, graded_cells, make_course, results, submit_as, tool_env
from tests.support.submissions import CORRECT_VARIANTS

pytestmark = pytest.mark.slow

SOLUTION = CORRECT_VARIANTS[0]


@pytest.fixture(scope="module", autouse=True)
def bwrap_works():
    why = sandbox._probe()
    if why is not None and os.environ.get(sandbox.SWITCH, "").lower() != "off":
        if os.environ.get("CI"):
            pytest.fail(f"the sandbox cannot start under CI: {why}")
        pytest.skip(f"the sandbox cannot start here: {why}")


def run(cells: list[str], folder: Path, **manager) -> list[str]:
    """Run `cells` in a sandboxed kernel in `folder`; each cell's stdout (errors raise). The
    runtime guard (tests/autograder/test_guard.py) is off unless asked for: these probes test the sandbox
    itself, doing what the guard would refuse first."""
    manager.setdefault("guard", False)
    nb = new_notebook(cells=[new_code_cell(c) for c in cells],
                      metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    client = NotebookClient(nb, timeout=120, kernel_manager_class=sandbox.SandboxedKernelManager,
                            resources={"metadata": {"path": str(folder)}})
    for name, value in manager.items():
        client.config.SandboxedKernelManager[name] = value
    client.execute()
    return ["".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream") for cell in nb.cells]


def running(marker: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        if marker in " ".join(proc.info["cmdline"] or []):
            found.append(proc)
    return found


@pytest.fixture
def course_like(tmp_path):
    """A course folder with hidden tests and a gradebook; the kernel works in one student's folder."""
    root = tmp_path / "course"
    (root / "source" / "a").mkdir(parents=True)
    (root / "source" / "a" / "a.ipynb").write_text("{}")
    (root / "gradebook.db").write_text("secret")
    (root / "nbgrader_config.py").write_text("")
    (root / "submitted" / "bob" / "a").mkdir(parents=True)
    (root / "submitted" / "bob" / "a" / "a.ipynb").write_text("{}")
    work = root / "autograded" / "alice" / "a"
    work.mkdir(parents=True)
    (work / "a.ipynb").write_text("{}")
    (work / "quiz_answers.json").write_text("{}")
    return root, work


def test_processes_die_with_the_kernel(tmp_path):
    """Own PID namespace: a detached process a cell starts is gone once the notebook finished."""
    marker = f"{1000 + uuid.uuid4().int % 1000}.{uuid.uuid4().int % 10**6}"
    out = run(["import os, subprocess\n"
               f"p = subprocess.Popen(['sleep', '{marker}'], start_new_session=True)\n"
               "print(os.getpid(), p.pid, sorted(int(d) for d in os.listdir('/proc') if d.isdigit()))"], tmp_path)
    kernel_pid, child_pid, *_ = out[0].split(maxsplit=2)
    assert int(kernel_pid) < 10 and int(child_pid) < 20, f"not in a PID namespace of its own: {out[0]}"
    assert len(out[0].split("[")[1].split(",")) < 10, "the sandbox sees only its own processes"
    psutil.wait_procs(running(marker), timeout=10)
    assert running(marker) == [], "a process the submission started outlived its kernel"


def test_no_network_beyond_its_own_loopback(tmp_path):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    try:
        out = run(["import socket\n"
                   "s = socket.socket(); s.settimeout(5)\n"
                   f"try:\n    s.connect(('127.0.0.1', {port})); print('connected')\n"
                   "except OSError as e:\n    print('refused', type(e).__name__)\n"
                   "print([name for _, name in socket.if_nameindex()])"], tmp_path)
    finally:
        server.close()
    assert out[0].startswith("refused"), out[0]
    assert out[0].splitlines()[1] == "['lo']"


def test_filesystem_read_only_but_the_working_folder_and_a_private_tmp(tmp_path, course_like):
    """Only the working folder and /tmp are writable, and both are the sandbox's own: what the
    kernel writes there (files, links) never reaches the host, the files the grader put in the
    folder are there read-only, and nothing of the host's /tmp is visible."""
    root, work = course_like
    outside = Path("/tmp") / f"outside-{uuid.uuid4().hex}"
    outside.write_text("x")
    inside = f"inside-{uuid.uuid4().hex}"
    targets = ["/etc/sandbox-probe", sys.prefix + "/sandbox-probe", str(Path(sandbox.__file__).parent / "probe.py"),
               str(root / "gradebook.db"), str(root / "source" / "a" / "a.ipynb"), str(work.parent / "escape.txt"),
               str(Path.home() / "sandbox-probe")]
    try:
        out = run(["import os\n"
                   f"for t in {targets!r}:\n"
                   "    try:\n        open(t, 'w').write('x'); print('WROTE', t)\n"
                   "    except OSError as e:\n        print('refused', t, e.errno)",
                   f"open('here.txt', 'w').write('ok'); open('/tmp/{inside}', 'w').write('ok')\n"
                   "os.symlink('/etc/passwd', 'link.txt'); os.mkdir('made')\n"
                   f"print(os.path.exists({str(outside)!r}), sorted(os.listdir('/tmp')))",
                   "print(open('here.txt').read(), open('quiz_answers.json').read())\n"
                   "for name in ('quiz_answers.json', 'a.ipynb'):\n"
                   "    for how in (lambda: open(name, 'w'), lambda: os.remove(name), lambda: os.rename(name, 'x')):\n"
                   "        try:\n            how(); print('CHANGED', name)\n"
                   "        except OSError as e:\n            print('refused', name, e.errno)"], work)
    finally:
        outside.unlink()
    assert "WROTE" not in out[0], out[0]
    assert out[2].startswith("ok {}"), "the kernel reads back what it wrote and the files the grader put there"
    assert "CHANGED" not in out[2], out[2]
    assert sorted(p.name for p in work.iterdir()) == ["a.ipynb", "quiz_answers.json"], \
        "nothing the kernel wrote (a file, a link, a folder) may reach the host's folder"
    assert (work / "quiz_answers.json").read_text() == "{}" and (work / "a.ipynb").read_text() == "{}"
    assert out[1].startswith("False"), "the host's /tmp must not be visible"
    assert not (Path("/tmp") / inside).exists(), "the sandbox's /tmp must be private"
    assert (root / "gradebook.db").read_text() == "secret"


def test_the_course_folder_is_invisible(course_like):
    """A cell that searches the whole filesystem for notebooks and gradebooks finds its own folder's only."""
    root, work = course_like
    out = run(["import os\nfound = []\n"
               "for top, dirs, files in os.walk('/'):\n"
               "    if top in ('/proc', '/dev', '/sys'):\n        dirs[:] = []; continue\n"
               "    found += [os.path.join(top, f) for f in files if f.endswith('.ipynb') or f == 'gradebook.db'"
               " or f == 'nbgrader_config.py']\n"
               "print('\\n'.join(found))"], work)
    found = [line for line in out[0].splitlines() if line]
    assert str(work / "a.ipynb") in found
    leaked = [f for f in found if not f.startswith(str(work) + "/") and not f.startswith(sys.prefix + "/lib")
              and not f.startswith("/usr/")]
    assert leaked == [], leaked
    # nbgrader's own test files (in the Python environment) aside, no gradebook and no course
    mine = [f for f in found if "/site-packages/" not in f]
    assert not any(f.endswith(("gradebook.db", "nbgrader_config.py")) for f in mine), mine
    real_course = Path(__file__).resolve().parents[3]
    assert not any(f.startswith(str(real_course / "source")) for f in found)


def test_limits_on_memory_processes_file_size_and_cpu(tmp_path):
    out = run(["import resource as r, os\n"
               "print([r.getrlimit(k)[0] for k in (r.RLIMIT_AS, r.RLIMIT_NPROC, r.RLIMIT_FSIZE, r.RLIMIT_CPU)], "
               "os.getuid())",
               "try:\n    b = bytearray(3 << 30); print('allocated')\nexcept MemoryError:\n    print('MemoryError')",
               "try:\n    open('big', 'wb').write(b'x' * (40 << 20)); print('written')\n"
               "except OSError as e:\n    print('refused', e.errno)",
               "import subprocess\nps = []\n"
               "try:\n    for _ in range(200): ps.append(subprocess.Popen(['sleep', '30']))\n"
               "except OSError as e:\n    print('refused', len(ps))\nfor p in ps: p.kill()",
               # the two memory-backed folders hold `scratch` bytes each, counted in `memory`
               "for folder in ('/tmp', '.'):\n    n = 0\n    try:\n"
               "        while n < 100:\n            open(f'{folder}/f{n}', 'wb').write(b'x' * (10 << 20)); n += 1\n"
               "    except OSError as e:\n        print(folder, 'full', e.errno, n)"],
              tmp_path, memory=2 << 30, processes=64, file_size=20 << 20, cpu_seconds=300, scratch=64 << 20)
    limits, uid = out[0].rsplit(maxsplit=1)
    assert limits == f"[{(2 << 30) - 2 * (64 << 20)}, 64, {20 << 20}, 300]"
    full = [line.split() for line in out[4].splitlines()]  # ENOSPC by 64 MiB ('.' holds 'big' already)
    assert [(f, what, errno) for f, what, errno, _ in full] == [("/tmp", "full", "28"), (".", "full", "28")], out[4]
    assert all(int(n) <= 6 for *_, n in full), out[4]
    if os.geteuid() == 0:
        assert int(uid) >= sandbox.UID_BASE, "as root, the sandbox runs as an unprivileged uid"
    assert out[1].strip() == "MemoryError"
    assert out[2].startswith("refused 27"), out[2]  # EFBIG
    assert out[3].startswith("refused"), out[3]
    assert 20 < int(out[3].split()[1]) < 64


def test_solution_scores_full_marks_under_stock_nbgrader_in_the_sandbox(tmp_path):
    course = make_course(tmp_path / "course")
    submit_as(course, SOLUTION)
    done, _ = autograde(course)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "sandbox OFF" not in done.stderr
    scores = results(course, SOLUTION.name)
    assert all(c.full for c in scores.values()), {g: c for g, c in scores.items() if not c.full}
    assert set(scores) == set(graded_cells())


def test_fallback_grades_unsandboxed_and_says_what_is_missing(tmp_path):
    """COURSE_SANDBOX=off: full marks still, one log line naming the missing protections, and
    the grading command records it in grading-report.csv."""
    course = make_course(tmp_path / "course")
    submit_as(course, SOLUTION)
    env = tool_env(COURSE_SANDBOX="off")
    done = subprocess.run([str(BIN / "nbgrader"), "autograde", ASSIGNMENT, "--create", "--force"], cwd=course,
                          env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [line for line in done.stderr.splitlines() if "sandbox OFF" in line]
    assert len(lines) == 1, done.stderr[-3000:]
    assert "COURSE_SANDBOX=off" in lines[0] and "no PID namespace" in lines[0] and "limits" in lines[0]
    assert all(c.full for c in results(course, SOLUTION.name).values())

    graded = subprocess.run([str(BIN / "python"), "-m", "course_grade", "grade", ASSIGNMENT, "--no-feedback"],
                            cwd=course, env=env, capture_output=True, text=True, timeout=900)
    assert graded.returncode == 0, graded.stdout[-3000:]
    assert sum("sandbox OFF" in line for line in graded.stdout.splitlines()) == 1
    with open(course / "grading-report.csv") as f:
        row = next(csv.DictReader(f))
    assert row["sandbox"].startswith("OFF (COURSE_SANDBOX=off)")


def test_grading_command_records_the_sandbox_on(tmp_path):
    course = make_course(tmp_path / "course")
    submit_as(course, SOLUTION)
    graded = subprocess.run([str(BIN / "python"), "-m", "course_grade", "grade", ASSIGNMENT, "--no-feedback"],
                            cwd=course, env=tool_env(), capture_output=True, text=True, timeout=900)
    assert graded.returncode == 0, graded.stdout[-3000:]
    assert "sandbox OFF" not in graded.stdout
    with open(course / "grading-report.csv") as f:
        row = next(csv.DictReader(f))
    assert row["sandbox"] == "on" and row["status"] == "graded"
    assert float(row["score"]) == float(row["max_score"])


def test_fallback_when_bwrap_is_missing(tmp_path, monkeypatch):
    """No bwrap on PATH: the status line says so, and a kernel still runs (unsandboxed)."""
    sandbox._probe.cache_clear()
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(sandbox, "_warned", False)
    try:
        assert sandbox.status().startswith("OFF (bwrap is not installed")
        out = run(["import os; print(os.getpid() > 10)"], tmp_path)
        assert out[0].strip() == "True"
    finally:
        sandbox._probe.cache_clear()


@pytest.mark.parametrize("switch", ["on", "off"])
def test_every_grading_kernel_has_the_runtime_guard(tmp_path, monkeypatch, switch):
    """Sandboxed or not, the kernel refuses a process start from the first cell on, and the
    guard left no name in the notebook's namespace."""
    if switch == "off":
        monkeypatch.setenv(sandbox.SWITCH, "off")
    try:
        out = run(["import subprocess\ntry:\n    subprocess.Popen(['true'])\n"
                   "except PermissionError as e:\n    print(e)",
                   "print(sorted(n for n in globals() if not n.startswith('_') and n not in "
                   "('In', 'Out', 'get_ipython', 'exit', 'quit', 'open', 'subprocess')))"],
                  tmp_path, guard=True)
    finally:  # the switched-off answer must not stay cached for the tests after this one
        if switch == "off":
            sandbox._probe.cache_clear()
    assert out[0].startswith("blocked while grading: starting a process"), out
    assert out[1].strip() == "[]", out
