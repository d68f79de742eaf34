"""The command line's progress display for ``dmft grid``."""

from __future__ import annotations

import sys
import time
from typing import Any

from .runner import GridEvent
from .spec import format_coords
from .store import STATUS_FAILED


class GridProgress:
    """Progress for the command line: a bar with points done / total and time left on a
    terminal, one line per point otherwise (batch logs), nothing with ``quiet``."""

    def __init__(self, label: str, quiet: bool = False, stream: Any = None) -> None:
        self.stream = stream or sys.stderr
        self.label = label
        self.quiet = quiet
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.start = time.monotonic()
        self.width = 0

    def __call__(self, event: GridEvent) -> None:
        if self.quiet:
            return
        if event.index is None:
            self.start = time.monotonic()
            if event.message:
                self._line(f"{self.label}: {event.message}", final=True)
            if event.done and not event.to_compute:
                self._line(f"{self.label}: all {event.total} points already computed, nothing to do", final=True)
                return
            if event.done:
                self._line(f"{self.label}: {event.done} of {event.total} points already computed, "
                           f"{event.to_compute} to go", final=True)
            if self.tty:
                self._bar(event)
            return
        if self.tty:
            self._bar(event)
        else:
            what = "failed: " + event.message if event.status == STATUS_FAILED else f"done in {event.wall_time:.2f} s"
            self._line(f"{self.label}: point {event.index} ({format_coords(event.coords)}) {what} "
                       f"[{event.done}/{event.total}]", final=True)

    def _bar(self, event: GridEvent) -> None:
        fraction = event.done / event.total if event.total else 1.0
        filled = int(round(24 * fraction))
        elapsed = time.monotonic() - self.start
        remaining = event.to_compute - event.computed
        if event.computed and remaining:
            eta = f"{_clock(elapsed / event.computed * remaining)} left"
        elif remaining:
            eta = "--:-- left"
        else:
            eta = f"{_clock(elapsed)} total"
        failed = f", {event.failed} failed" if event.failed else ""
        self._line(f"{self.label} [{'#' * filled}{'-' * (24 - filled)}] {event.done}/{event.total} points{failed}  "
                   f"{eta}")

    def _line(self, text: str, final: bool = False) -> None:
        if self.tty:
            pad = max(0, self.width - len(text))
            self.stream.write("\r" + text + " " * pad + ("\n" if final else ""))
            self.width = 0 if final else len(text)
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty and self.width and not self.quiet:
            self.stream.write("\n")
            self.stream.flush()
            self.width = 0


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60:02d}:{rest % 60:02d}"
