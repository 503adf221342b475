"""nbgrader preprocessors the course adds (enabled in nbgrader_config.py)."""
from __future__ import annotations

import json

from nbformat.v4 import new_output
from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Integer


def _json_size(value) -> int:
    """The bytes `value` takes in the notebook file, as nbformat writes it (UTF-8 JSON, one
    value a line, indented by a space a level), or a little more: each separator counts as a
    new line indented as deep as an output's text (the C encoder, without indenting, is fast)."""
    text = json.dumps(value, ensure_ascii=False)
    return len(text.encode("utf-8", "surrogatepass")) + 8 * (1 + text.count(",") + text.count("{") + text.count("["))


def _as_written(mime: str, value):
    """nbformat writes a text of several lines as a list of lines (JSON data as it is), so a
    text of newlines takes about ten times its length."""
    return value.splitlines(True) if isinstance(value, str) and not mime.endswith("json") else value


def _size(output) -> int:
    """About the bytes `output` takes in the notebook file."""
    view = dict(output)
    if isinstance(view.get("text"), str):
        view["text"] = view["text"].splitlines(True)
    if isinstance(view.get("data"), dict):
        view["data"] = {mime: _as_written(mime, value) for mime, value in view["data"].items()}
    return _json_size(view)


def _text(value) -> str:
    return "".join(value) if isinstance(value, list) else value if isinstance(value, str) else str(value)


def _decides_grade(output) -> bool:
    """nbgrader's determine_grade scores a test cell by its first output of these kinds."""
    kind = output.get("output_type")
    return kind in ("error", "execute_result") or (kind == "stream" and output.get("name") == "stderr")


class LimitOutputSize(NbGraderPreprocessor):
    """Cut what cells output to a size, every kind of output: nbgrader's LimitOutput counts
    lines only, so one enormous line (`print("x" * 10**8)`, `raise ValueError("x" * 10**7)`),
    a large image or many small outputs would otherwise land whole in the graded notebook
    and the feedback page.

    Each text is cut to `max_chars` (a stream; an error's evalue, each traceback line and the
    traceback as a whole; the text/plain of a result), and says so in one note. A rich
    output's other representations (HTML, images, JSON, ...) are left out whole when larger
    (cutting HTML or a script could break the feedback page), and so is output metadata; the
    text/plain says what was left out. A cell keeps `max_cell_bytes` of outputs, the notebook
    `max_notebook_bytes`; the outputs past either limit are replaced by one note, except the
    output nbgrader grades the cell by (its first error, stderr or result), which is kept,
    shortened to `max_chars_past_limit`, so a cut never changes a score."""

    max_chars = Integer(20_000, help="Characters kept of each text in an output (-1: no limit)").tag(config=True)
    max_cell_bytes = Integer(60_000, help="Bytes of outputs kept per cell (-1: no limit)").tag(config=True)
    max_notebook_bytes = Integer(
        500_000, help="Bytes of outputs kept in the whole notebook (-1: no limit)").tag(config=True)
    max_chars_past_limit = Integer(
        1_000, help="Characters kept of each text of the output a cell is graded by, once its cell's or the "
                    "notebook's limit is reached, and of an error's name").tag(config=True)

    def preprocess(self, nb, resources):
        self._notebook_used = 0
        return super().preprocess(nb, resources)

    # --------------------------------------------------------------------------- one text

    def _cut(self, text, limit: int | None = None) -> str:
        text = _text(text)
        limit = self.max_chars if limit is None else limit
        if limit < 0 or len(text) <= limit:
            return text
        return text[:limit] + f"\n... [output cut: {len(text):,} characters in all]\n"

    def _cut_traceback(self, lines: list, limit: int) -> list[str]:
        """The traceback's first and last lines within `limit` characters in all, one note
        line between them saying how much was left out."""
        lines = [self._cut(line, limit) for line in lines]
        total = sum(len(line) for line in lines)
        if limit < 0 or total <= limit:
            return lines
        tail, used = [], 0
        for line in reversed(lines):  # the end says what was raised: keep it first
            if tail and used + len(line) > limit // 2:
                break
            tail.insert(0, line)
            used += len(line)
        head = []
        for line in lines[: len(lines) - len(tail)]:
            if used + len(line) > limit:
                break
            head.append(line)
            used += len(line)
        note = (f"... [traceback cut: {len(lines) - len(head) - len(tail):,} of {len(lines):,} lines left out, "
                f"{total:,} characters in all]")
        return head + [note] + tail

    # ------------------------------------------------------------------------- one output

    def _cut_output(self, output, limit: int):
        """`output` with each of its texts cut to `limit` characters (a valid output still)."""
        kind = output.get("output_type")
        if kind == "stream":
            text = self._cut(output.get("text", ""), limit)
            if text is not output.get("text"):
                output.text = text
        elif kind == "error":
            output.ename = self._cut(output.get("ename", ""), min(limit, self.max_chars_past_limit))
            output.evalue = self._cut(output.get("evalue", ""), limit)
            traceback = output.get("traceback", [])
            output.traceback = self._cut_traceback(traceback if isinstance(traceback, list) else [traceback], limit)
        elif kind in ("execute_result", "display_data"):
            left_out = []
            data = output.get("data", {})
            for mime in list(data):
                if mime == "text/plain":
                    data[mime] = self._cut(data[mime], limit)
                elif limit >= 0 and _json_size(_as_written(mime, data[mime])) > limit:
                    left_out.append(f"{mime} ({_json_size(_as_written(mime, data[mime])):,} bytes)")
                    del data[mime]
            metadata = output.get("metadata", {})
            if limit >= 0 and _json_size(metadata) > limit:
                left_out.append(f"its metadata ({_json_size(metadata):,} bytes)")
                output.metadata = {}
            if left_out:
                note = f"[output cut: {', '.join(left_out)} left out]"
                data["text/plain"] = (_text(data["text/plain"]) + "\n" + note) if "text/plain" in data else note
                output.data = data
        return output

    def _past_limit(self, output):
        """The short form of the output a cell is graded by: same kind, so the same score."""
        kind, short = output.get("output_type"), self.max_chars_past_limit
        if kind == "execute_result":
            plain = self._cut(output.get("data", {}).get("text/plain", ""), short)
            return new_output("execute_result", data={"text/plain": plain},
                              execution_count=output.get("execution_count"))
        if kind == "error":
            traceback = output.get("traceback") or [""]
            output.traceback = traceback[-1:]  # the line saying what was raised
        return self._cut_output(output, short)

    # --------------------------------------------------------------------------- one cell

    def preprocess_cell(self, cell, resources, cell_index):
        if cell.cell_type != "code" or not cell.get("outputs"):
            return cell, resources
        cell_limit, notebook_limit = self.max_cell_bytes, self.max_notebook_bytes
        kept, cell_used, graded_by = [], 0, None
        cut_at, dropped, shortened, cut_bytes = None, 0, 0, 0
        for output in cell.outputs:
            output = self._cut_output(output, self.max_chars)
            size = _size(output)
            decides = graded_by is None and _decides_grade(output)
            if decides:
                graded_by = output
            if ((cell_limit >= 0 and cell_used + size > cell_limit)
                    or (notebook_limit >= 0 and self._notebook_used + size > notebook_limit)):
                cut_at = len(kept) if cut_at is None else cut_at
                cut_bytes += size
                if not decides:
                    dropped += 1
                    continue
                output, shortened = self._past_limit(output), shortened + 1
                size = _size(output)
            kept.append(output)
            cell_used += size
            self._notebook_used += size
        if cut_at is not None:
            what = f"{dropped:,} outputs left out" + (", the one it is graded by shortened" if shortened else "")
            note = new_output("stream", name="stdout", text=(
                f"... [output cut: {what} ({cut_bytes:,} bytes); a cell keeps {_bytes(cell_limit)} of output, "
                f"a notebook {_bytes(notebook_limit)}]\n"))
            kept.insert(cut_at, note)
            self._notebook_used += _size(note)
        cell.outputs = kept
        return cell, resources


def _bytes(limit: int) -> str:
    return "any size" if limit < 0 else f"{limit:,} bytes"
