"""Work-arounds for the Python / PySide6 pair: a refcount bug, and GC on worker threads.

PySide6-6.12 and Python < 3.12
-------------------------------

PySide6-Essentials 6.12.0 returns ``None`` from every void method (``QFont.setBold``,
``QPainter.setPen``, ...) without taking a reference, as if ``None`` were immortal, which it
is only from Python 3.12 on. On Python 3.11 each call drops one reference, and after a few
thousand calls CPython aborts with "none_dealloc: deallocating None" (PySide6 6.11 is not
affected). Until the project pins a fixed PySide6, :func:`guard_singletons` detects the leak
and gives ``None`` (and the two bools, for the same reason at exit) a reference reserve so
large it cannot run out; the singletons are never freed anyway.
"""

from __future__ import annotations

import ctypes
import gc
import sys

RESERVE = 1 << 40  # ~10^12 calls: decades of painting
_applied = False


def leaks_none() -> bool:
    """True when a void Qt call drops a reference to None (measured, not guessed)."""
    from PySide6.QtCore import QRectF

    rect = QRectF()
    before = sys.getrefcount(None)
    for _ in range(64):
        rect.setWidth(1.0)
    return sys.getrefcount(None) <= before - 32


def guard_singletons() -> bool:
    """Apply the reserve once if this PySide6 / Python pair leaks; returns True if applied."""
    global _applied
    if _applied or sys.version_info >= (3, 12) or sys.implementation.name != "cpython":
        return _applied
    if not leaks_none():
        return False
    for obj in (None, True, False):
        ctypes.c_ssize_t.from_address(id(obj)).value += RESERVE
    _applied = True
    return True


class MainThreadGC:
    """Run Python's cyclic garbage collector on the GUI thread only.

    With automatic collection, a worker thread (conversion, layout) can trigger a collection
    that frees Qt wrappers caught in reference cycles, running C++ destructors on the wrong
    thread and crashing (seen here as a segfault inside ``Graph.copy``). The usual Qt remedy
    (pyqtgraph and Orange do the same): disable automatic collection and collect from a timer.
    """

    _active = 0

    def __init__(self, parent: object, interval_ms: int = 500) -> None:
        from PySide6.QtCore import QTimer

        self.threshold = gc.get_threshold()
        self.timer = QTimer(parent)  # type: ignore[arg-type]
        self.timer.timeout.connect(self.check)
        self.timer.start(interval_ms)
        MainThreadGC._active += 1
        gc.disable()

    def check(self) -> None:
        counts = gc.get_count()
        for generation in (2, 1, 0):
            if counts[generation] > self.threshold[generation]:
                gc.collect(generation)
                return

    def stop(self) -> None:
        if self.timer.isActive():
            self.timer.stop()
            MainThreadGC._active -= 1
            gc.collect()
            if MainThreadGC._active == 0:
                gc.enable()
