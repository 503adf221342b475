"""The judge's kernel: a fresh sandboxed kernel that runs a submission's cells again, then
serves its app (autograder/serve.py) while the judge looks from outside."""
from __future__ import annotations

import builtins
import json
import os
from dataclasses import dataclass, field

from autograder.explain import clip
from autograder.serve import MARK
from course_grade.judge.folder import JudgeError, JudgeFolder
from course_grade.kernels.sandbox import SandboxedKernelManager
from course_grade.kernels.spares import HISTORY, astop, kernel_env

START_SECONDS = 60.0


@dataclass
class CellRun:
    """How one of the submission's cells ended when the judge ran it."""
    index: int                 # its index in the notebook
    grade_id: str | None
    source: str = ""
    ename: str | None = None   # the exception's class name, None when it ran to the end
    evalue: str = ""

    def error(self) -> BaseException | None:
        """The exception, rebuilt from its name and text (a built-in class when there is one)."""
        if self.ename is None:
            return None
        kind = getattr(builtins, self.ename, None)
        if not (isinstance(kind, type) and issubclass(kind, Exception)):
            kind = type(self.ename, (Exception,), {})
        try:
            return kind(self.evalue)
        except Exception:
            return type(self.ename, (Exception,), {})(self.evalue)


@dataclass
class Said:
    """What a judge's call printed after `MARK` (the server's own account: explains, never decides)."""
    facts: dict = field(default_factory=dict)
    error: str | None = None  # the call itself failed (ename: evalue)


class JudgeKernel:
    """One fresh kernel in its own sandbox, working in the judge's folder."""

    def __init__(self, folder: JudgeFolder, config=None, zygote=None, cell_seconds: float = 60.0):
        self.folder = folder
        self.cell_seconds = cell_seconds
        self.km = SandboxedKernelManager(kernel_name="python3", **({"config": config} if config else {}))
        self.km.writable = tuple(os.path.realpath(p) for p in folder.files())
        if zygote is not None:
            self.km.zygote = zygote
        self.kc = None
        self.dead = False

    async def start(self) -> None:
        await self.km.start_kernel(cwd=self.folder.path, env=kernel_env(), extra_arguments=[HISTORY])
        self.kc = self.km.client()
        self.kc.start_channels()
        await self.kc.wait_for_ready(timeout=START_SECONDS)

    @property
    def socket_folder(self) -> str:
        """Where the server makes its sockets: the kernel's private folder (host and sandbox
        see it at the same path), or the judge's folder when the kernel runs unsandboxed."""
        private = getattr(self.km, "_private", None)
        return private if self.km.sandboxed and private else self.folder.path

    async def run(self, code: str, *, silent: bool = False, seconds: float | None = None) -> tuple[list[str], dict]:
        """Run `code`; (the text it printed, the reply's content). JudgeError when the kernel
        died or the code did not finish in time (the kernel is then of no further use)."""
        if self.dead:
            raise JudgeError("the judge's kernel stopped earlier")
        printed: list[str] = []

        def hear(msg):
            if msg["msg_type"] == "stream":
                printed.append(msg["content"].get("text", ""))

        try:
            reply = await self.kc.execute_interactive(code, silent=silent, store_history=not silent,
                                                      allow_stdin=False, timeout=seconds or self.cell_seconds,
                                                      output_hook=hear)
        except TimeoutError:
            if not silent and await self._interrupted():
                return printed, {"status": "error", "ename": "TimeoutError",
                                 "evalue": f"the cell was stopped after {seconds or self.cell_seconds:g} s"}
            self.dead = True
            raise JudgeError(f"a cell did not finish within {seconds or self.cell_seconds:g} s") from None
        except Exception as exc:  # the kernel died, or its channels closed
            self.dead = True
            raise JudgeError(f"the kernel stopped ({type(exc).__name__}: {exc})") from None
        if not await self.km.is_alive():
            self.dead = True
            raise JudgeError("the kernel died while running the notebook's code")
        return printed, reply["content"]

    async def _interrupted(self, seconds: float = 10.0) -> bool:
        """Interrupt the cell that runs too long, as nbgrader's Execute does, and whether the
        kernel is idle again (the next cells then run, as they do when grading)."""
        try:
            await self.km.interrupt_kernel()
            await self.kc.execute_interactive("", silent=True, store_history=False, timeout=seconds)
        except Exception:  # still busy, or gone
            return False
        return True

    async def cell(self, index: int, grade_id: str | None, source: str) -> CellRun:
        _, content = await self.run(source)
        if content.get("status") == "error":
            return CellRun(index, grade_id, source, content.get("ename") or "Exception", content.get("evalue") or "")
        return CellRun(index, grade_id, source)

    async def call(self, code: str, seconds: float | None = None) -> Said:
        """Run one of the judge's own lines (silently); the facts its last MARK line gives."""
        printed, content = await self.run(code, silent=True, seconds=seconds)
        facts = {}
        for line in "".join(printed).splitlines():
            if line.startswith(MARK):
                try:
                    found = json.loads(line[len(MARK):])
                except ValueError:
                    continue
                facts = found if isinstance(found, dict) else {}
        error = None
        if content.get("status") == "error":
            error = clip(f"{content.get('ename')}: {content.get('evalue')}", 500)
        return Said(facts, error)

    def processes(self) -> list[int]:
        from course_grade.judge.watch import sandbox_processes

        return sandbox_processes(self.km)

    async def close(self) -> None:
        if self.kc is not None:
            self.kc.stop_channels()
        await astop(self.km)
