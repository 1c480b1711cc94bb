"""Progress for long commands, on stderr so stdout stays parseable (CSV/JSON)."""

from __future__ import annotations

from typing import Any, TextIO

from tqdm import tqdm


class Progress:
    """A `progress(done, total)` callback: a tqdm bar on a terminal, a few plain lines otherwise.

    It writes to the stream under Django's OutputWrapper: the wrapper styles stderr as an error (bold
    red on a terminal) and ends every write with a newline, which turned one redrawn line into many.
    Off a terminal (CI logs, pipes) it prints `label: done/total (pct)` about every tenth of the way.
    """

    def __init__(self, stream: Any, label: str, *, enabled: bool = True, min_total: int = 0, lines: int = 10) -> None:
        self.stream: TextIO = getattr(stream, "_out", stream)
        self.label = label
        self.enabled = enabled
        self.min_total = min_total  # small jobs finish before anyone needs a progress line
        self.lines = max(lines, 1)
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._bar: tqdm | None = None
        self._next_line = 0

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled or total < self.min_total:
            return
        if self._tty:
            self._draw(done, total)
        else:
            self._print(done, total)

    def _draw(self, done: int, total: int) -> None:
        if self._bar is None:
            self._bar = tqdm(total=total, desc=self.label, file=self.stream, unit="", dynamic_ncols=True)
        self._bar.update(done - self._bar.n)
        if done >= total:
            self._bar.close()

    def _print(self, done: int, total: int) -> None:
        step = max(total // self.lines, 1)
        if done < total and done < max(self._next_line, step):
            return
        self._next_line = done + step
        pct = 100.0 * done / total if total else 100.0
        self.stream.write(f"{self.label}: {done:,}/{total:,} ({pct:.0f}%)\n")
        self.stream.flush()
