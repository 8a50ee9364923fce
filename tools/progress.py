"""Progress of long tool runs: done/total, elapsed and an estimate of the time left.

One plain line per finished step on stderr, so CI logs read well; on a terminal, a live line
also shows which step is running and for how long (rewritten in place, cleared before each plain
line). The estimate assumes the remaining steps take the mean time of the finished ones.
"""

from __future__ import annotations

import sys
import time


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return (
        f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
        if seconds >= 3600
        else f"{seconds // 60}:{seconds % 60:02d}"
    )


class Progress:
    def __init__(self, total: int, *, stream=None, clock=time.monotonic):
        self.total, self.done = total, 0
        self.stream = stream or sys.stderr
        self.clock = clock
        self.start = clock()
        self.live = bool(getattr(self.stream, "isatty", lambda: False)())

    def status(self) -> str:
        elapsed = self.clock() - self.start
        left = f", about {_clock(elapsed / self.done * (self.total - self.done))} left" if self.done else ""
        return f"[{self.done}/{self.total}] {_clock(elapsed)} elapsed{left}"

    def starting(self, what: str) -> None:
        """On a terminal: a live line naming the step now running."""
        if self.live:
            self.stream.write(f"\r\033[K{self.status()}: running {what}")
            self.stream.flush()

    def finished(self, what: str) -> None:
        """One plain line: the step that finished, with done/total, elapsed and time left."""
        self.done += 1
        self.stream.write(("\r\033[K" if self.live else "") + f"{self.status()}  {what}\n")
        self.stream.flush()
