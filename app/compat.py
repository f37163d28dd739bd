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
import time
from collections.abc import Callable

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


UI_SWITCH_INTERVAL_S = 0.0002


def prefer_ui_thread() -> None:
    """Hand the GIL over every 0.2 ms instead of Python's 5 ms.

    Painting calls Python for each visible item; while a worker thread runs Python (a view
    plan, a benchmark's bookkeeping), each of those calls may wait a whole switch interval
    for the GIL (measured: a 160 ms paint while a view plan ran; 1 ms still left 100-150 ms
    stalls). A shorter interval costs the workers a few percent.
    """
    if sys.getswitchinterval() > UI_SWITCH_INTERVAL_S:
        sys.setswitchinterval(UI_SWITCH_INTERVAL_S)


class MainThreadGC:
    """Run Python's cyclic garbage collector on the GUI thread only.

    With automatic collection, a worker thread (conversion, layout) can trigger a collection
    that frees Qt wrappers caught in reference cycles, running C++ destructors on the wrong
    thread and crashing (seen here as a segfault inside ``Graph.copy``). The usual Qt remedy
    (pyqtgraph and Orange do the same): disable automatic collection and collect from a timer.

    Collecting generation 1 or 2 walks tens of thousands of objects once a big model is
    drawn (100 ms or more), so only generation 0 is collected while the user works: the
    others wait until ``idle()`` (no job, no view being built) and no key or mouse event for
    ``quiet_s`` seconds, generation 2 also at most every ``full_every_s`` seconds (CPython
    itself delays it until the long-lived objects grew by a quarter, which a timer cannot
    see). Waiting only delays freeing garbage caught in reference cycles.
    """

    _active = 0

    def __init__(self, parent: object, interval_ms: int = 50,
                 idle: Callable[[], bool] | None = None, full_every_s: float = 20.0,
                 quiet_s: float = 1.0) -> None:
        from PySide6.QtCore import QTimer
        from PySide6.QtWidgets import QApplication

        self.idle = idle or (lambda: True)
        self.full_every_s, self.quiet_s = full_every_s, quiet_s
        self.last_full = self.last_input = time.monotonic()
        self._watch = _input_watch(self._touched)
        QApplication.instance().installEventFilter(self._watch)
        self.threshold = gc.get_threshold()
        self.timer = QTimer(parent)  # type: ignore[arg-type]
        self.timer.timeout.connect(self.check)
        self.timer.start(interval_ms)
        MainThreadGC._active += 1
        gc.disable()

    def _touched(self) -> None:
        self.last_input = time.monotonic()

    def check(self) -> None:
        counts, now = gc.get_count(), time.monotonic()
        if (counts[1] > self.threshold[1] or counts[2] > self.threshold[2]) \
                and now - self.last_input > self.quiet_s and self.idle():
            full = counts[2] > self.threshold[2] and now - self.last_full > self.full_every_s
            gc.collect(2 if full else 1)
            if full:
                self.last_full = time.monotonic()
        elif counts[0] > self.threshold[0]:
            gc.collect(0)

    def stop(self) -> None:
        if self.timer.isActive():
            self.timer.stop()
            self._watch.deleteLater()
            MainThreadGC._active -= 1
            gc.collect()
            if MainThreadGC._active == 0:
                gc.enable()


def _input_watch(touched: Callable[[], None]) -> object:
    """An application event filter calling ``touched()`` on every key and mouse event."""
    from PySide6.QtCore import QEvent, QObject

    kinds = {QEvent.Type.KeyPress, QEvent.Type.MouseButtonPress, QEvent.Type.MouseMove,
             QEvent.Type.Wheel}

    class InputWatch(QObject):
        def eventFilter(self, watched: QObject, event: QEvent) -> bool:
            if event.type() in kinds:
                touched()
            return False

    return InputWatch()
