"""Judge one notebook: its cells run again in a fresh sandboxed kernel, its verdicts decided
from outside (observe, decide). The one entry point the preprocessor calls."""
from __future__ import annotations

from jupyter_core.utils import run_sync

from autograder.records import CheckRecord
from course_grade.judge.decide import decide, step_of
from course_grade.judge.folder import JudgeFolder
from course_grade.judge.observe import Observed, observe
from course_grade.judge.session import JudgeKernel


def cells_to_run(nb) -> list[tuple[int, str | None, str]]:
    """(index, grade_id, source) of the cells the judge runs, in order: every code cell the
    student could write (solution cells and cells they added), none of the lesson's locked
    cells. The judge makes the set-up cell's `test.db` itself."""
    found = []
    for index, cell in enumerate(nb.cells):
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "code" and (meta.get("solution") or not meta.get("locked")):
            found.append((index, meta.get("grade_id"), cell.source))
    return found


async def _judge(nb, config, zygote, cell_seconds: float) -> Observed:
    folder = JudgeFolder()
    kernel = JudgeKernel(folder, config=config, zygote=zygote, cell_seconds=cell_seconds)
    try:
        return await observe(kernel, folder, cells_to_run(nb), step_of)
    finally:
        await kernel.close()
        folder.close()


def judge(nb, config=None, zygote=None, cell_seconds: float = 60.0) -> tuple[dict[str, CheckRecord], Observed]:
    """The judge's record of every build-step check of `nb`, and what it saw."""
    seen = run_sync(_judge)(nb, config, zygote, cell_seconds)
    return decide(seen), seen
