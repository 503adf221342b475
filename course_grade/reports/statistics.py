"""The quiz's item statistics.

Quiz statistics (classical test theory), over the graded students:
- difficulty p: the proportion of students who got the question right;
- discrimination: the point-biserial correlation between the item (1 right, 0 wrong) and
  the REST score, the student's total score on the assignment minus this item's score:

      r_pb = (M1 - M0) / s_n * sqrt(p * q)

  with M1 (M0) the mean rest score of the students who got the item right (wrong), p the
  proportion right, q = 1 - p, and s_n the population standard deviation (divide by n) of
  the rest score over all n students. It is undefined (shown as "—") when everyone got the
  item right, or everyone wrong, or every rest score is the same.
Flags: too easy (p > 0.9), too hard (p < 0.2), negatively discriminating (r < 0), and a
wrong option nobody chose (a distractor that does no work).
"""
from __future__ import annotations

import math
from collections.abc import Sequence

from course_grade.reports.items import LETTERS

TOO_EASY, TOO_HARD = 0.9, 0.2  # a question most get right, or few


def point_biserial(item: Sequence[float], rest: Sequence[float]) -> float | None:
    """r_pb = (M1 - M0) / s_n * sqrt(p * q), see the module's docstring. `item`: 0/1 per
    student; `rest`: the student's total score minus this item's score. None when undefined
    (fewer than two students, p = 0 or 1, or no spread in the rest score)."""
    n = len(item)
    if n < 2 or len(rest) != n:
        return None
    ones = [r for i, r in zip(item, rest, strict=False) if i]
    zeros = [r for i, r in zip(item, rest, strict=False) if not i]
    if not ones or not zeros:
        return None
    p = len(ones) / n
    mean = sum(rest) / n
    s_n = math.sqrt(sum((r - mean) ** 2 for r in rest) / n)   # population SD: divide by n
    if s_n < 1e-12:
        return None
    m1, m0 = sum(ones) / len(ones), sum(zeros) / len(zeros)
    return (m1 - m0) / s_n * math.sqrt(p * (1 - p))


def quiz_flags(p: float | None, r: float | None, options: dict[str, int], correct: str) -> list[str]:
    """The reasons to look at a quiz question again (see the module's docstring)."""
    flags = []
    if p is not None and p > TOO_EASY:
        flags.append(f"too easy (p > {TOO_EASY:g})")
    if p is not None and p < TOO_HARD:
        flags.append(f"too hard (p < {TOO_HARD:g})")
    if r is not None and r < 0:
        flags.append("negatively discriminating (r < 0): strong students got it wrong more often")
    unchosen = [letter for letter in LETTERS if letter != correct and options.get(letter, 0) == 0]
    if unchosen and sum(options.values()):
        flags.append(f"distractor{'s' if len(unchosen) > 1 else ''} nobody chose: {', '.join(unchosen)}")
    return flags
