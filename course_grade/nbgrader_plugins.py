"""nbgrader preprocessors the course adds (enabled in nbgrader_config.py)."""
from __future__ import annotations

from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Integer


class LimitOutputSize(NbGraderPreprocessor):
    """Cut each cell's text output to a size: nbgrader's LimitOutput counts lines only, so
    one enormous line (print("x" * 10**8)) would otherwise land whole in the graded notebook
    and the feedback page."""

    max_chars = Integer(20_000, help="Characters kept of each stream or text output (-1: no limit)").tag(config=True)

    def _cut(self, text: str) -> str:
        if self.max_chars < 0 or len(text) <= self.max_chars:
            return text
        return text[: self.max_chars] + f"\n... [output cut: {len(text):,} characters in all]\n"

    def preprocess_cell(self, cell, resources, cell_index):
        if cell.cell_type == "code":
            for output in cell.get("outputs", []):
                if output.output_type == "stream":
                    output.text = self._cut(output.text)
                elif output.output_type in ("execute_result", "display_data"):
                    for mime in ("text/plain", "text/html"):
                        if isinstance(output.get("data", {}).get(mime), str):
                            output.data[mime] = self._cut(output.data[mime])
        return cell, resources
