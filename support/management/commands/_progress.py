"""A progress line for long commands, written to stderr so stdout stays parseable (CSV/JSON)."""

from __future__ import annotations

import time
from typing import Any, TextIO


class Progress:
    """Prints `label: done/total (pct)` at most every `interval` seconds, and once at the end.

    On a terminal it redraws one line; otherwise (CI logs, pipes) it prints one line per update.
    """

    def __init__(
        self, stream: Any, label: str, *, interval: float = 0.5, enabled: bool = True, min_total: int = 0
    ) -> None:
        self.stream: TextIO = stream
        self.label = label
        self.interval = interval
        self.enabled = enabled
        self.min_total = min_total  # small jobs finish before anyone needs a progress line
        self._last = 0.0
        self._tty = bool(getattr(stream, "isatty", lambda: False)())

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled or total < self.min_total:
            return
        now = time.monotonic()
        finished = done >= total
        if not finished and now - self._last < self.interval:
            return
        self._last = now
        pct = 100.0 * done / total if total else 100.0
        line = f"{self.label}: {done:,}/{total:,} ({pct:.0f}%)"
        if self._tty:
            self.stream.write("\r" + line + ("\n" if finished else ""))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()
