"""JupyterLab and headless Chromium for tests/journeys/test_browser.py: a server on 127.0.0.1 in a
scratch folder, and the few things a person does in it (open a notebook, type into a cell,
use the Run menu, wait for the kernel), each with a bounded wait and a clear failure."""
from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]
# The page may reach 127.0.0.1 and nothing else: every other request goes to a proxy on a
# closed port (loopback never uses a proxy), and no host name resolves. Chromium enforces
# this itself; Playwright's request routing would do it too, but it runs every request of
# JupyterLab through Python and slows the page down by minutes.
OFFLINE_ARGS = ["--proxy-server=http://127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"]
BIN = Path(sys.executable).parent

# Lab settings for the scratch user: no news or update checks (they would reach the network
# and put a toast over the screenshots), no extension manager (it queries PyPI).
USER_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/extensionmanager-extension/plugin.jupyterlab-settings": {"enabled": False},
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Lab:
    """`jupyter lab` serving `root` on 127.0.0.1; stop() always ends it and its kernels."""

    def __init__(self, root: Path, home: Path, timeout: float = 120):
        self.root, self.port, self.token = root, free_port(), f"browser-test-{os.getpid()}"
        self.log_path = home / "jupyter-lab.log"
        settings = home / "lab-user-settings"
        for name, value in USER_SETTINGS.items():
            (settings / name).parent.mkdir(parents=True, exist_ok=True)
            (settings / name).write_text(json.dumps(value))
        env = {
            **os.environ,
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "JUPYTER_CONFIG_DIR": str(home / "jupyter-config"),
            "JUPYTER_RUNTIME_DIR": str(home / "jupyter-runtime"),
            "JUPYTERLAB_SETTINGS_DIR": str(settings),
            "JUPYTERLAB_WORKSPACES_DIR": str(home / "lab-workspaces"),
            "IPYTHONDIR": str(home / "ipython"),
            "MPLCONFIGDIR": str(home / "matplotlib"),
            "NBGRADER_EXCHANGE": str(home / "exchange"),
        }
        env.pop("MPLBACKEND", None)
        args = [str(BIN / "jupyter"), "lab", "--no-browser", "--ServerApp.ip=127.0.0.1",
                f"--ServerApp.port={self.port}", "--ServerApp.port_retries=0",
                f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={root}",
                "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
        if os.geteuid() == 0:
            args.append("--allow-root")
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - the server's log, open until stop() closes it
        self.process = subprocess.Popen(args, cwd=root, env=env, stdout=self._log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.api("status")
                return
            except OSError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"JupyterLab did not answer on port {self.port} within {timeout:.0f} s "
                                     f"(exit code {self.process.returncode}):\n{self.log_tail()}")
            time.sleep(0.5)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def api(self, path: str, method: str = "GET", timeout: float = 10):
        request = urllib.request.Request(f"{self.url}/api/{path}", method=method,
                                         headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read()
            return json.loads(body) if body else None

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def shutdown_kernels(self) -> None:
        for kernel in self.api("kernels", timeout=5):
            self.api(f"kernels/{kernel['id']}", method="DELETE", timeout=15)

    def stop(self) -> None:
        """Shut the kernels down through the API (they run in their own sessions), then end the
        server's process group: SIGTERM, and SIGKILL if it is still there after 20 s."""
        if self.process.poll() is None:
            with contextlib.suppress(Exception):  # the server's own shutdown ends its kernels too
                self.shutdown_kernels()
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
            except ProcessLookupError:
                pass
        self._log.close()


# ------------------------------------------------------------------------- in the page

STDERR = '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'  # errors too
CELLS = ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell"  # of the notebook in front
PROMPTS_JS = f"""
() => Array.from(document.querySelectorAll('{CELLS}')).map(
    c => c.classList.contains('jp-CodeCell')
        ? (c.querySelector('.jp-InputArea-prompt')?.textContent || '').trim() : null)
"""


def wait_until(check, timeout: float, what: str, interval: float = 0.5, details=lambda: ""):
    """Poll check() until it returns something truthy; fail naming `what` after `timeout` s."""
    deadline, last = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last seen: {last!r}) {details()}")


class Notebook:
    """One notebook open in the lab page. Cells are found by their index in the file (the DOM
    holds every cell in the default windowing mode; open() checks that the counts agree)."""

    def __init__(self, page, lab: Lab, path: str, cell_ids: list[str], shots: Path):
        self.page, self.lab, self.path, self.cell_ids, self.shots = page, lab, path, cell_ids, shots

    # navigation -----------------------------------------------------------------------
    def open(self, timeout: float = 120) -> Notebook:
        # ?reset: a fresh workspace, so no tab from an earlier test comes back
        self.page.goto(f"{self.lab.url}/lab/tree/{self.path}?reset&token={self.lab.token}", timeout=timeout * 1000)
        cells = self.page.locator(CELLS)
        wait_until(lambda: cells.count() == len(self.cell_ids), timeout,
                   f"{self.path} to show its {len(self.cell_ids)} cells", details=self.screenshot_hint)
        self.wait_kernel_idle(timeout, "the kernel to start")
        status = self.page.locator(".jp-StatusBar-TextItem")  # "Python 3 (ipykernel) | Idle"
        wait_until(lambda: any(t.strip().endswith("| Idle") for t in status.all_inner_texts()), timeout,
                   "the page to connect to the kernel", details=self.screenshot_hint)
        return self

    def cell(self, cell_id: str):
        assert cell_id in self.cell_ids, f"{self.path} has no cell {cell_id!r}"
        return self.page.locator(CELLS).nth(self.cell_ids.index(cell_id))

    def show(self, cell_id: str):
        """Scroll a cell into view, as a reader would, and return it."""
        cell = self.cell(cell_id)
        cell.scroll_into_view_if_needed(timeout=10_000)
        return cell

    def scroll_to(self, cell_id: str) -> None:
        """Bring a cell into view as a reader scrolls to it: centred, or its top at the top of
        the notebook when it is taller than the window."""
        self.cell(cell_id).evaluate("""cell => cell.scrollIntoView(
            {block: cell.getBoundingClientRect().height < window.innerHeight * 0.8 ? 'center' : 'start'})""")
        self.page.wait_for_timeout(300)  # let the layout settle (cells out of view are not laid out)

    def overflowing(self, cell_id: str, selector: str) -> list[str]:
        """Texts of the elements in a cell whose content is taller than their box (it spills)."""
        self.scroll_to(cell_id)
        return self.cell(cell_id).evaluate(
            "(cell, sel) => Array.from(cell.querySelectorAll(sel))"
            ".filter(e => e.scrollHeight > e.clientHeight + 1).map(e => e.textContent.trim())", selector)

    def screenshot(self, name: str, cell_id: str | None = None) -> Path:
        if cell_id:
            self.scroll_to(cell_id)
        self.page.mouse.move(700, 990)  # the pointer on the status bar, not hovering a cell
        path = self.shots / f"{name}.png"
        self.page.screenshot(path=str(path))
        return path

    def screenshot_hint(self) -> str:
        try:
            path = self.shots / "failure.png"
            self.page.screenshot(path=str(path))
            return f"(screenshot of the page: {path}; server log: {self.lab.log_path})"
        except Exception:
            return f"(server log: {self.lab.log_path})"

    # kernel and execution ---------------------------------------------------------------
    def kernel_state(self) -> str | None:
        sessions = [s for s in self.lab.api("sessions") if s.get("path", "").endswith(self.path)]
        return sessions[0]["kernel"]["execution_state"] if sessions and sessions[0].get("kernel") else None

    def wait_kernel_idle(self, timeout: float, what: str) -> None:
        wait_until(lambda: self.kernel_state() == "idle", timeout, what, details=self.screenshot_hint)

    def prompts(self) -> list[str | None]:
        return self.page.evaluate(PROMPTS_JS)

    def menu(self, menu: str, item: str) -> None:
        """Click a main-menu entry, e.g. menu("Run", "Run All Cells")."""
        self.page.get_by_role("menuitem", name=menu, exact=True).first.click(timeout=10_000)
        entry = self.page.locator(".lm-Menu-item:not(.lm-mod-disabled) .lm-Menu-itemLabel",
                                  has_text=re.compile(rf"^{re.escape(item)}$"))
        entry.first.click(timeout=10_000)

    def run_all(self, timeout: float, expect_all: bool = True) -> list[str | None]:
        """Run → Run All Cells, then wait until nothing is queued or running and the kernel is
        idle; with expect_all, until every code cell also shows an execution count."""
        before = self.prompts()
        self.menu("Run", "Run All Cells")
        # the click queues the cells at once ([*]); wait to see it started before waiting for the end
        wait_until(lambda: self.prompts() != before or "[*]:" in self.prompts(), 30,
                   "Run All Cells to start", interval=0.2, details=self.screenshot_hint)

        stopped_since = []

        def finished():
            prompts = self.prompts()
            if any(p == "[*]:" for p in prompts) or self.kernel_state() != "idle":
                stopped_since.clear()
                return None
            if not expect_all or all(p is None or re.fullmatch(r"\[\d+\]:", p) for p in prompts):
                return prompts
            # Idle with cells left unrun: Run All stopped at an error. Say which, once it is stable.
            stopped_since.append(time.monotonic())
            if stopped_since[-1] - stopped_since[0] > 5:
                unrun = [self.cell_ids[i] for i, p in enumerate(prompts) if p is not None and "[ ]" in p]
                raise AssertionError(f"Run All Cells stopped in {self.path}: {len(unrun)} cells did not run "
                                     f"(first: {unrun[:3]}); errors shown: {self.errors()} {self.screenshot_hint()}")
            return None

        return wait_until(finished, timeout, f"every cell of {self.path} to finish running",
                          interval=1.0, details=self.screenshot_hint)

    def errors(self) -> dict[str, str]:
        """cell id -> the text of its error or stderr outputs, for every cell that has some."""
        found = {}
        cells = self.page.locator(CELLS)
        for i, cell_id in enumerate(self.cell_ids):
            texts = cells.nth(i).locator(STDERR).all_text_contents()
            if texts:
                found[cell_id] = "\n".join(texts)[-1500:]
        return found

    def type_into(self, cell_id: str, code: str) -> None:
        """Replace a code cell's text as a person does: click into it, select all, type."""
        editor = self.show(cell_id).locator(".cm-content")
        editor.click(timeout=10_000)
        self.page.keyboard.press("ControlOrMeta+a")
        self.page.keyboard.press("Delete")
        self.page.keyboard.insert_text(code)
        typed = "\n".join(editor.locator(".cm-line").all_text_contents())
        assert typed == code, f"cell {cell_id} shows\n{typed}\ninstead of the typed\n{code}\n{self.screenshot_hint()}"

    def run_cell(self, cell_id: str, timeout: float = 60) -> str:
        """Select a cell and press Shift+Enter; wait for its new execution count."""
        cell = self.show(cell_id)
        cell.locator(".jp-InputArea-prompt").click(timeout=10_000)  # selects the cell (command mode)
        before = self.prompts()[self.cell_ids.index(cell_id)]
        self.page.keyboard.press("Shift+Enter")

        def done():
            now = self.prompts()[self.cell_ids.index(cell_id)]
            return now if now != before and now and re.fullmatch(r"\[\d+\]:", now) else None

        return wait_until(done, timeout, f"cell {cell_id} to run", details=self.screenshot_hint)

    def outputs_text(self, cell_id: str) -> str:
        return self.cell(cell_id).locator(".jp-OutputArea").text_content(timeout=10_000) or ""
