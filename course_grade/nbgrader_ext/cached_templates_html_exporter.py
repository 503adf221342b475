"""nbconvert's HTMLExporter with its compiled Jinja templates kept per process, for the grading
workers' feedback pages.

Each `nbgrader generate_feedback` call builds a new exporter, and each exporter a new Jinja
environment that lexes, parses and compiles the feedback template and the templates it extends
again: about a fifth of the cost of one student's feedback page on a worker, which makes one
page per submission. `CachedTemplatesHTMLExporter` gives every environment it creates one
process-wide in-memory Jinja bytecode cache: Jinja still reads each template's source, and
reuses the compiled code only when the source is the same (its checksum), so the page is the
one HTMLExporter renders (tests/course_grade/commands/test_merge.py compares them).

`use_cached_feedback_templates` puts it in a loaded course config (course_grade/engine/task.py) when
the course leaves nbgrader's exporter for feedback as it is; stock `nbgrader` commands keep
nbconvert's own.
"""
from __future__ import annotations

import base64
import threading

import jinja2
from nbconvert.exporters import HTMLExporter


class _MemoryBytecodeCache(jinja2.BytecodeCache):
    """Compiled templates by Jinja's key (template name and file); Jinja checks the source's
    checksum against the one stored and compiles again when it differs."""

    def __init__(self):
        self.store: dict[str, bytes] = {}
        self.lock = threading.Lock()

    def load_bytecode(self, bucket) -> None:
        with self.lock:
            data = self.store.get(bucket.key)
        if data is not None:
            bucket.bytecode_from_string(data)

    def dump_bytecode(self, bucket) -> None:
        data = bucket.bytecode_to_string()
        with self.lock:
            self.store[bucket.key] = data


_CACHE = _MemoryBytecodeCache()


def compiled_templates() -> dict[str, str]:
    """This process's compiled templates, as JSON-ready text (to send to another process)."""
    with _CACHE.lock:
        return {key: base64.b64encode(data).decode() for key, data in _CACHE.store.items()}


def add_compiled_templates(sent: dict[str, str]) -> None:
    """Keep templates another process compiled (`compiled_templates()`'s result)."""
    decoded = {key: base64.b64decode(data) for key, data in sent.items()}
    with _CACHE.lock:
        _CACHE.store.update(decoded)


class CachedTemplatesHTMLExporter(HTMLExporter):
    """HTMLExporter whose Jinja environments share this process's compiled templates."""

    def _create_environment(self):
        environment = super()._create_environment()
        environment.bytecode_cache = _CACHE
        return environment


def use_cached_feedback_templates(config) -> None:
    """Make nbgrader's feedback with CachedTemplatesHTMLExporter, in a loaded course config,
    unless the course chose an exporter of its own."""
    if "exporter_class" not in config.GenerateFeedback:
        config.GenerateFeedback.exporter_class = CachedTemplatesHTMLExporter
