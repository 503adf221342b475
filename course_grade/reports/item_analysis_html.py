"""The item-analysis page (course_grade/reports/item_analysis.py): one self-contained HTML file.

No script, no external stylesheet, font or image: the style is inline and every plot is an
SVG drawn here, with a <title> and <desc> for screen readers (role="img"). Colours keep a
contrast of at least 4.5:1 on white. The only link out of the page is to the lesson
notebook beside the course (a relative path), at the heading of the step a mistake belongs to.
"""
from __future__ import annotations

import html
import math
import os
import re
import statistics
from pathlib import Path

from course_grade.late import late_by, points
from course_grade.reports.item_analysis import LETTERS, QUIZ_STEP, UNANSWERED, Analysis, Item
from course_grade.reports.items import TEACH_TOP

INK, MUTED, BAR, AXIS = "#1a1a1a", "#4a4a4a", "#1f4e79", "#333333"
DASH = "—"

STYLE = f"""
body {{ font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: {INK}; background: #fff;
       max-width: 72rem; margin: 0 auto; padding: 1rem 1.5rem 3rem; line-height: 1.45; }}
h1 {{ font-size: 1.6rem; }} h2 {{ margin-top: 2.2rem; border-bottom: 2px solid #d0d7de; padding-bottom: .2rem; }}
table {{ border-collapse: collapse; margin: .6rem 0 1rem; max-width: 100%; }}
td, th {{ overflow-wrap: anywhere; }} table.quiz th[scope="row"] {{ min-width: 14rem; }}
th, td {{ border: 1px solid #c8c8c8; padding: .25rem .5rem; text-align: left; vertical-align: top; }}
th {{ background: #eef2f6; }} td.num {{ text-align: right; font-variant-numeric: tabular-nums; }}
caption {{ text-align: left; font-weight: 600; padding: .3rem 0; }}
code {{ background: #f2f2f2; padding: 0 .2rem; border-radius: 3px; font-size: .92em; }}
.muted {{ color: {MUTED}; }} .flag {{ background: #fde2e1; color: #7a1010; padding: 0 .35rem; border-radius: 3px; }}
.ok {{ background: #e3f1e6; color: #1b5e20; padding: 0 .35rem; border-radius: 3px; }}
.plots {{ display: flex; flex-wrap: wrap; gap: 1rem 2rem; }} figure {{ margin: 0; }}
figcaption {{ font-weight: 600; }} a {{ color: #0b57a8; }} details {{ margin: .3rem 0 .6rem; }}
ul.groups li {{ margin: .25rem 0; }} .right {{ font-weight: 700; }}
"""


def esc(text) -> str:
    return html.escape(str(text), quote=True)


def prose(text: str) -> str:
    """Escaped text with `code` spans shown as code."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", esc(text))


def pct(p: float | None) -> str:
    return DASH if p is None or not math.isfinite(p) else f"{100 * p:.0f}%"


def num(x: float | None, digits: int = 2) -> str:
    return DASH if x is None or not math.isfinite(x) else f"{x:.{digits}f}"


def students(n: int) -> str:
    return f"{n} student{'' if n == 1 else 's'}"


# ----------------------------------------------------------------------------------- plots

_ids = iter(range(1, 10**9))


def svg_bars(counts: list[int], labels: list[str], title: str, desc: str, xlabel: str, ylabel: str = "students",
             width: int | None = None) -> str:
    """A bar chart (a histogram once the bins are made) as inline SVG, with a <title> and a
    <desc> listing every bar for screen readers."""
    n = max(len(counts), 1)
    width = width or max(260, min(720, 60 + 34 * n))
    height, left, right, top, bottom = 210, 44, 12, 22, 44
    plot_w, plot_h = width - left - right, height - top - bottom
    top_count = max(counts + [1])
    step = plot_w / n
    uid = next(_ids)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" aria-labelledby="t{uid} d{uid}">',
             f'<title id="t{uid}">{esc(title)}</title>',
             f'<desc id="d{uid}">{esc(desc)}: '
             + esc(", ".join(f"{label}: {count}" for label, count in zip(labels, counts, strict=False))) + "</desc>",
             f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="{AXIS}"/>',
             f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" stroke="{AXIS}"/>',
             f'<text x="{left - 6}" y="{top + plot_h}" text-anchor="end" font-size="11" fill="{INK}">0</text>',
             f'<text x="{left - 6}" y="{top + 9}" text-anchor="end" font-size="11" fill="{INK}">{top_count}</text>']
    every = max(1, math.ceil(n / 16))  # at most ~16 tick labels
    for k, (count, label) in enumerate(zip(counts, labels, strict=False)):
        h = plot_h * count / top_count
        x = left + k * step + step * 0.1
        parts.append(f'<rect x="{x:.1f}" y="{top + plot_h - h:.1f}" width="{step * 0.8:.1f}" height="{h:.1f}" '
                     f'fill="{BAR}"/>')
        if count:
            parts.append(f'<text x="{x + step * 0.4:.1f}" y="{top + plot_h - h - 3:.1f}" text-anchor="middle" '
                         f'font-size="10" fill="{INK}">{count}</text>')
        if k % every == 0 or k == n - 1:
            parts.append(f'<text x="{x + step * 0.4:.1f}" y="{top + plot_h + 14}" text-anchor="middle" '
                         f'font-size="11" fill="{INK}">{esc(label)}</text>')
    parts.append(f'<text x="{left + plot_w / 2:.1f}" y="{height - 6}" text-anchor="middle" font-size="12" '
                 f'fill="{INK}">{esc(xlabel)}</text>')
    parts.append(f'<text x="12" y="{top + plot_h / 2:.1f}" text-anchor="middle" font-size="12" fill="{INK}" '
                 f'transform="rotate(-90 12 {top + plot_h / 2:.1f})">{esc(ylabel)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def score_histogram(scores: list[float], max_points: float, title: str) -> str:
    """One bar per whole point, 0 .. max (a partial score falls in the bar below it)."""
    top = max(1, math.ceil(max_points))
    counts = [0] * (top + 1)
    for v in scores:
        counts[min(top, max(0, int(math.floor(v + 1e-9))))] += 1
    return svg_bars(counts, [str(k) for k in range(top + 1)], title,
                    f"number of students per score out of {max_points:g}", f"score (of {max_points:g})")


def time_histogram(seconds: list[float]) -> str:
    top = max(seconds) if seconds else 1.0
    nbins = 10
    width = max(top / nbins, 1e-9)
    counts = [0] * nbins
    for s in seconds:
        counts[min(nbins - 1, int(s / width))] += 1
    labels = [f"{k * width:.0f}" for k in range(nbins)]
    return svg_bars(counts, labels, "Time to grade each submission", "submissions per time bin (seconds, bin start)",
                    "seconds to grade (bin start)", "submissions")


# ---------------------------------------------------------------------------------- page

def _lesson_link(analysis: Analysis, out_dir: Path, heading: str, step) -> str:
    """(step 4: see “Step 4: ...” in the lesson), linked to the lesson notebook's heading."""
    where = "the quiz" if step == QUIZ_STEP else f"step {step}"
    if not heading:
        return f"({esc(where)})"
    if analysis.lesson_notebook is None:
        return f"({esc(where)}: see “{prose(heading)}” in the lesson)"
    href = os.path.relpath(analysis.lesson_notebook, out_dir).replace(os.sep, "/") + "#" + heading.replace(" ", "-")
    return f'({esc(where)}: see <a href="{esc(href)}">“{prose(heading)}”</a> in the lesson)'


def _cell_section(item: Item) -> str:
    out = [f'<h3 id="{esc(item.grade_id)}"><code>{esc(item.grade_id)}</code>: {prose(item.title)}</h3>',
           f'<p>Pass rate {pct(item.p)} ({item.passed} of {students(item.n)} full marks, {item.points:g} '
           f'point{"" if item.points == 1 else "s"}); discrimination {num(item.r)}.</p>']
    if not item.groups:
        out.append('<p><span class="ok">No failures.</span></p>')
        return "".join(out)
    out.append('<ul class="groups">')
    for g in item.groups:
        name = g.key.split(":", 1)[-1]
        tag = {"named": f' <span class="muted">(named mistake <code>{esc(name)}</code>)</span>',
               "pointer": ' <span class="muted">(points up: not a new mistake)</span>',
               "gate": ' <span class="muted">(gate: not a new mistake)</span>',
               "silent": ' <span class="muted">(no message)</span>',
               "absent": ' <span class="muted">(not answered: on the attention list, not a mistake)</span>'}.get(
            g.kind, "")
        out.append(f"<li><strong>{students(g.count)}</strong>: {prose(g.label)}{tag}")
        if g.example and g.example != g.label:
            out.append(f"<details><summary>What they read</summary><p>{prose(g.example)}</p></details>")
        out.append("</li>")
    out.append("</ul>")
    return "".join(out)


def _quiz_table(analysis: Analysis) -> str:
    head = "".join(f'<th scope="col">{h}</th>' for h in
                   ["Question", "Key", "Difficulty p", "Discrimination r", *LETTERS, "Unanswered", "Flags"])
    rows = []
    for q in analysis.quiz:
        cells = [f'<th scope="row">{prose(q.title)}</th>', f"<td>{esc(q.correct) or DASH}</td>",
                 f'<td class="num">{num(q.p)}</td>', f'<td class="num">{num(q.r)}</td>']
        for letter in LETTERS:
            count = q.options.get(letter, 0)
            mark = ' class="num right"' if letter == q.correct else ' class="num"'
            label = f"{count} (key)" if letter == q.correct else str(count)
            cells.append(f"<td{mark}>{label}</td>")
        cells.append(f'<td class="num">{q.options.get(UNANSWERED, 0)}</td>')
        flags = "<br>".join(f'<span class="flag">{esc(f)}</span>' for f in q.flags) or '<span class="muted">none</span>'
        cells.append(f"<td>{flags}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return (f"<table class=\"quiz\"><caption>Graded quiz: {students(len(analysis.students))}; "
            "options chosen, the key's in bold</caption>"
            f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>")


def _score(s) -> str:
    """The submission's score after nbgrader's late penalty (the gradebook export's figure)."""
    if s.score is None:
        return DASH
    if s.late is not None and s.late.penalty:
        return f"{max(0.0, s.score - s.late.penalty):g} (late penalty {points(s.late.penalty)})"
    return f"{s.score:g}"


def _submissions(analysis: Analysis) -> str:
    subs = analysis.submissions
    secs = [s.seconds for s in subs if s.seconds is not None]
    out = []
    if secs:
        out.append(f"<p>Time to grade: median {statistics.median(secs):.1f} s, longest {max(secs):.1f} s, "
                   f"total {sum(secs) / 60:.1f} min of grading time over {len(secs)} submissions.</p>")
        out.append(f"<figure>{time_histogram(secs)}<figcaption>Time to grade</figcaption></figure>")
    elif not analysis.has_grading_report:
        out.append('<p class="muted">No grading-report.csv (graded with stock nbgrader): no times, statuses or sandbox '
                   "notes; flags come from the gradebook alone.</p>")
    late = analysis.late
    out.append(f"<h3>Late submissions ({len(late)})</h3>")
    if late:
        out.append("<table><caption>Submitted after the due date (extensions counted): nbgrader's late penalty, "
                   "as the gradebook, grades.csv and the LMS export give it</caption><thead><tr>"
                   + "".join(f'<th scope="col">{h}</th>' for h in ["Student", "Late by", "Penalty", "Score before",
                                                                    "Score after", "Why"])
                   + "</tr></thead><tbody>")
        for s in late:
            x = s.late
            out.append(f'<tr><th scope="row">{esc(s.student)}</th><td>{esc(late_by(x.seconds))}</td>'
                       f'<td class="num">{points(x.penalty)}</td>'
                       f'<td class="num">{points(x.score)}/{points(x.max_score)}</td>'
                       f'<td class="num">{points(x.after)}/{points(x.max_score)}</td>'
                       f"<td>{esc(x.sentence())}</td></tr>")
        out.append("</tbody></table>")
    else:
        out.append('<p><span class="ok">None late.</span></p>')
    out.append(f"<details><summary>Every submission ({len(subs)})</summary>"
               "<table><caption>Every submission</caption>"
               "<thead><tr>" + "".join(f'<th scope="col">{h}</th>' for h in
                                       ["Student", "Status", "Score", "Seconds", "Sandbox", "Note"])
               + "</tr></thead><tbody>")
    for s in subs:
        out.append(f'<tr><th scope="row">{esc(s.student)}</th><td>{esc(s.status)}</td><td class="num">{_score(s)}</td>'
                   f'<td class="num">{num(s.seconds, 1)}</td><td>{esc(s.sandbox) or DASH}</td>'
                   f'<td>{esc(s.note)}</td></tr>')
    out.append("</tbody></table></details>")
    return "".join(out)


def _attention(analysis: Analysis) -> str:
    """The attention list: every submission that needs a human look, why, and what to do."""
    look = analysis.to_look_at
    if not look:
        return '<p><span class="ok">Nothing needs a look: every submission was graded, answered, on time and ' \
               'unflagged.</span></p>'
    by_student = {s.student: s for s in analysis.submissions}
    out = [f"<p>{students(len(look))} to look at; each is flagged in the formgrader. The same list is in "
           f"<code>{esc(analysis.assignment)}-students.csv</code> (the <code>attention</code> column).</p>",
           "<table><caption>Submissions to look at: why, and what to do</caption><thead><tr>"
           + "".join(f'<th scope="col">{h}</th>' for h in ["Student", "Score", "Why", "What to do"])
           + "</tr></thead><tbody>"]
    for student, items in look.items():
        sub = by_student.get(student)
        score = DASH
        if sub is not None and sub.score is not None:
            score = _score(sub) + (f"/{sub.max_score:g}" if sub.max_score else "")
        span = f' rowspan="{len(items)}"' if len(items) > 1 else ""
        for k, a in enumerate(items):
            head = (f'<th scope="row"{span}>{esc(analysis.name(student))}</th><td class="num"{span}>{score}</td>'
                    if k == 0 else "")
            out.append(f'<tr>{head}<td><span class="flag">{esc(a.code)}</span>: {prose(a.found)}</td>'
                       f"<td>{prose(a.to_do)}</td></tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _teach_list(analysis: Analysis, out_dir: Path) -> str:
    if not analysis.teach:
        return '<p><span class="ok">Nobody made a mistake.</span></p>'
    out = ["<p>The mistakes that cost the class most points, build steps and quiz together (each student counted "
           "once per mistake, with every cell it cost them), with who made them and the part of the lesson to "
           f"teach again. All {len(analysis.teach)} are in <code>{esc(analysis.assignment)}-teach.csv</code>.</p><ol>"]
    for t in analysis.teach[:TEACH_TOP]:
        who = ", ".join(analysis.name(s) for s in t.students)
        out.append(f"<li><strong>{t.points_lost:g} points</strong> lost by <strong>{students(t.count)}</strong>: "
                   f"{prose(t.label.rstrip('.'))}. {_lesson_link(analysis, out_dir, t.heading, t.step)}"
                   f"<br><span class=\"muted\">Who: {esc(who)}</span></li>")
    out.append("</ol>")
    return "".join(out)


def render(analysis: Analysis, out_dir: Path) -> str:
    a = analysis
    n = len(a.students)
    totals = [sum(st.scores[k] for st in a.steps) for k in range(n)]
    mean = sum(totals) / n if n else None
    body = [f"<h1>What did the class get wrong? Item analysis of <code>{esc(a.assignment)}</code></h1>",
            f'<p class="muted">{students(n)} graded; mean score {num(mean, 1)} of {a.max_score:g}; '
            f"generated {esc(a.generated)} from the gradebook, the autograded notebooks, the quiz answers as collected"
            f"{' and grading-report.csv' if a.has_grading_report else ''}.</p>"]

    body.append("<h2>Submissions to look at</h2>")
    body.append(_attention(a))
    body.append("<h2>What to teach again</h2>")
    body.append(_teach_list(a, out_dir))

    body.append('<h2>Scores by step</h2><div class="plots">')
    for st in a.steps:
        title = f"{st.label}: {st.heading or st.name}, score distribution"
        body.append(f"<figure>{score_histogram(st.scores, st.max_points, title)}"
                    f"<figcaption>{esc(st.label)}: {prose(st.name)} "
                    f"({st.max_points:g} point{'' if st.max_points == 1 else 's'})</figcaption></figure>")
    body.append(f"<figure>{score_histogram(totals, a.max_score, 'Total score distribution')}"
                f"<figcaption>Total ({a.max_score:g} points)</figcaption></figure></div>")

    body.append("<h2>Graded cells</h2><table><caption>Pass rate per graded cell (full marks)</caption><thead><tr>"
                + "".join(f'<th scope="col">{h}</th>' for h in ["Cell", "Step", "Points", "Pass rate", "Failed",
                                                                 "Discrimination r", "Most common mistake"])
                + "</tr></thead><tbody>")
    for i in a.cells:
        top = next((g for g in i.groups if g.is_mistake), None)
        top_text = f"{prose(top.label)} ({top.count})" if top else DASH
        body.append(f'<tr><th scope="row"><a href="#{esc(i.grade_id)}"><code>{esc(i.grade_id)}</code></a></th>'
                    f'<td>{esc(i.step)}</td><td class="num">{i.points:g}</td><td class="num">{pct(i.p)}</td>'
                    f'<td class="num">{i.failed}</td><td class="num">{num(i.r)}</td><td>{top_text}</td></tr>')
    body.append("</tbody></table>")
    body += [_cell_section(i) for i in a.cells]

    if a.quiz:
        body.append("<h2>Quiz questions</h2>")
        body.append(_quiz_table(a))
        body.append("<details><summary>Why each wrong answer was wrong (what students read)</summary>")
        body += [_cell_section(i) for i in a.quiz]
        body.append("</details>")

    body.append("<h2>Submissions</h2>")
    body.append(_submissions(a))

    body.append("<h2>How these numbers are made</h2><p>Pass rate and difficulty <em>p</em>: the share of students "
                "with full marks on the item. Discrimination: the point-biserial correlation between the item (1 full "
                "marks, 0 not) and the rest score (the total minus this item): "
                "<em>r</em> = (M1 − M0) / s<sub>n</sub> · √(p·q), "
                "s<sub>n</sub> the population standard deviation of the rest score; " + DASH + " when everyone or "
                "nobody got the item, or the rest scores are all equal. Flags: too easy p &gt; 0.9, too hard "
                "p &lt; 0.2, r &lt; 0, a wrong option nobody chose. Messages are grouped by the named mistake of "
                "<code>autograder/explain.py</code> they contain, otherwise by their first sentence; a message "
                "pointing to a cell above, or a hidden check's gate, is not counted as a new mistake.</p>")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>Item analysis: {esc(a.assignment)}</title><style>{STYLE}</style></head>"
            f"<body><main>{''.join(body)}</main></body></html>\n")
