"""Progress and cancel plumbing shared by the benchmark and the accuracy runs."""

from __future__ import annotations

import time
from collections.abc import Callable

from qcore.bench.errors import BenchCancelled

ProgressFn = Callable[[int, int, str], None]
CancelCheck = Callable[[], bool]


class Progress:
    """Counts work units and forwards them to ``progress`` at most every 50 ms."""

    def __init__(self, fn: ProgressFn | None, cancelled: CancelCheck | None, total: int) -> None:
        self.fn, self.cancelled, self.total = fn, cancelled, max(1, total)
        self.done, self._last, self.message = 0, 0.0, ""

    def check(self) -> None:
        if self.cancelled is not None and self.cancelled():
            raise BenchCancelled(f"benchmark cancelled ({self.message or 'starting'})")

    def advance(self, units: int = 1, message: str = "") -> None:
        self.done = min(self.total, self.done + units)
        changed = bool(message) and message != self.message
        self.message = message or self.message
        now = time.perf_counter()
        if self.fn is not None and (changed or now - self._last >= 0.05):
            self._last = now
            self.fn(self.done, self.total, self.message)

    def finish(self, message: str = "done") -> None:
        self.done = self.total
        if self.fn is not None:
            self.fn(self.total, self.total, message)
