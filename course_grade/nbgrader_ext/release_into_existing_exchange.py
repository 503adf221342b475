"""`nbgrader release_assignment` (and the formgrader's release button) into an exchange that
exists, never one it makes: stock nbgrader makes a missing exchange folder as whoever runs it,
with a one-line log warning. Enabled in nbgrader_config.py (c.ExchangeFactory.release_assignment)."""
from __future__ import annotations

import os

from nbgrader.exchange.default import ExchangeReleaseAssignment


class ReleaseIntoExistingExchange(ExchangeReleaseAssignment):
    def ensure_root(self):
        if not os.path.lexists(self.root):
            self.fail(f"The exchange folder {self.root} does not exist: make it once with `course-grade setup "
                      f"exchange` (as root on a shared machine), then release again.")
        super().ensure_root()
