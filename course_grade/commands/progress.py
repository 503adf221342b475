"""What the grading command prints: while it runs, a progress bar (or one line per submission),
and at the end the class's summary (mean, median, a histogram, each step's figures, and the
attention list: who needs a look, why, and what to do)."""
from __future__ import annotations

import math
import statistics
import time

from course_grade.engine.bundles import Graded
from course_grade.reasons import LATE, ORDER


def summary_line(o: Graded) -> str:
    score = f"{o.score_after_penalty:g}/{o.max_score:g}" if o.score is not None and o.merged else "-"
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



HISTOGRAM_BINS, BAR_WIDTH = 6, 30
LISTED = 10  # students named in one line of the summary; grading-report.csv has them all


def histogram(scores: list[float], max_score: float, bins: int = HISTOGRAM_BINS) -> list[str]:
    """A text histogram of scores 0..max_score in `bins` bins of whole points (a partial
    score falls in the bin of its whole part; the last bin holds max_score)."""
    top = math.floor(max_score)
    width = max(1, math.ceil((top + 1) / bins))
    edges = list(range(0, top + 1, width))
    counts = [0] * len(edges)
    for v in scores:
        counts[min(int(max(v, 0) // width), len(edges) - 1)] += 1
    most = max(counts) or 1
    label = len(f"{top}-{top}")
    lines = []
    for i, (low, n) in enumerate(zip(edges, counts, strict=True)):
        high = top if i == len(edges) - 1 else low + width - 1
        bar = "#" * math.ceil(BAR_WIDTH * n / most)
        lines.append(f"  {f'{low}-{high}':>{label}}  {bar:<{BAR_WIDTH}} {n}")
    return lines


def class_summary(after: dict[str, float], max_score: float, steps: list[tuple[str, float, list[float]]],
                  attention: list, graded_of: tuple[int, int], report: str = "") -> list[str]:
    """What an instructor reads after a run: `after` each graded student's score after the late
    penalty; `steps` (label, points, each graded student's score); `attention` the attention
    list (course_grade/reports/attention.Attention), grouped by reason; `graded_of` (graded,
    submissions) of the class; `report` where the page that says what to do is."""
    graded, total = graded_of
    lines = [f"{graded} of {total} submission(s) graded."]
    if after:
        scores = sorted(after.values())
        lines.append(f"Score of {max_score:g} (after late penalties), {len(scores)} student(s): "
                     f"mean {statistics.fmean(scores):.1f}, median {statistics.median(scores):g}, "
                     f"lowest {scores[0]:g}, highest {scores[-1]:g}")
        lines += histogram(scores, max_score)
    if steps:
        width = max(len(label) for label, _, _ in steps)
        lines.append(f"By step, of {len(steps[0][2])} graded student(s):")
        lines.append(f"  {'':<{width}}  {'full marks':>10}  {'mean':>9}  {'median':>6}")
        for label, points, values in steps:
            full = sum(v >= points - 1e-9 for v in values)
            mean = f"{statistics.fmean(values):.1f}/{points:g}"
            lines.append(f"  {label:<{width}}  {full:>10}  {mean:>9}  {statistics.median(values):>6g}")
    groups: dict[str, list] = {}
    for a in sorted(attention, key=lambda a: ORDER.index(a.code)):
        groups.setdefault(a.code, []).append(a)
    if groups:
        people = len({a.student for a in attention})
        lines.append(f"To look at: {people} student(s), each flagged in the formgrader"
                     + (f"; why and what to do: {report}" if report else ""))
        for code, items in groups.items():
            named = [f"{a.student} {a.found}" if code == LATE else a.student for a in items[:LISTED]]
            more = f" and {len(items) - LISTED} more" if len(items) > LISTED else ""
            lines.append(f"  {code} ({len(items)}): {'; '.join(named) if code == LATE else ', '.join(named)}{more}"
                         f" -> {items[0].to_do}")
    else:
        lines.append("To look at: nobody.")
    return lines
