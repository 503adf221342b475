"""What the grading command prints while it runs: a progress bar, and one line per submission."""
from __future__ import annotations

import time

from course_grade.engine.bundles import Graded


def summary_line(o: Graded) -> str:
    score = f"{o.score:g}/{o.max_score:g}" if o.score is not None and o.merged else "-"
    note = o.note + (f" (left out: {', '.join(o.left_out)})" if o.left_out else "")
    note += f" REVIEW: removed {len(o.tampering)} cell(s) that reached for the grader" if o.tampering else ""
    note += f" (log: {o.log_file})" if o.log_file else ""
    return f"{o.student:<24} {o.status:<9} {score:>9} {o.seconds:7.1f}s  {note}".rstrip()


class Progress:
    """A progress bar on a terminal; one plain line per submission otherwise (logs, CI)."""

    def __init__(self, total: int, out):
        self.total, self.out, self.done, self.failed = total, out, 0, 0
        self.bar = hasattr(out, "isatty") and out.isatty()
        self.start = time.monotonic()

    def update(self, o: Graded) -> None:
        self.done += 1
        self.failed += o.status != "graded"
        if not self.bar:
            print(f"[{self.done}/{self.total}, {self.failed} failed] {summary_line(o)}", file=self.out, flush=True)
            return
        width = 30
        filled = int(width * self.done / self.total)
        rate = (time.monotonic() - self.start) / self.done
        left = rate * (self.total - self.done)
        line = (f"\r[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} graded, "
                f"{self.failed} failed, ~{left:.0f}s left")
        if o.status != "graded":
            line = f"\r\x1b[K{summary_line(o)}\n" + line
        print(line, end="" if self.done < self.total else "\n", file=self.out, flush=True)


def duration(n: float) -> str:
    return f"{n:.0f} s" if n < 120 else f"{n / 60:.0f} min" if n < 7200 else f"{round(n / 3600, 1):g} h"
