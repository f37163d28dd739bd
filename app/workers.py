"""Background jobs: a QRunnable with progress, cancel and result signals.

A job function is called as ``fn(*args, progress=cb, cancelled=cb, **kwargs)``: ``progress(done,
total, message)`` may be called from the worker thread at any time and ``cancelled()`` returns True
once the user pressed Cancel. The signals are delivered on the UI thread (queued connections).
"""

from __future__ import annotations

import contextlib
import threading
import traceback
import warnings
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, QTimer, Signal


class JobSignals(QObject):
    started = Signal()
    progress = Signal(int, int, str)
    result = Signal(object)
    partial = Signal(object)  # an early part of the result (see qcore.child)
    error = Signal(object)
    cancelled = Signal()
    finished = Signal()


class Job(QRunnable):
    """Run ``fn`` on a thread pool; exactly one of result/error/cancelled, then finished.

    An exception raised after Cancel counts as cancelled; a value returned is a result.
    """

    def __init__(self, fn: Callable[..., Any], *args: Any, name: str = "", **kwargs: Any) -> None:
        super().__init__()
        self.setAutoDelete(False)
        self.fn, self.args, self.kwargs = fn, args, kwargs
        self.name = name or getattr(fn, "__name__", "job")
        self.signals = JobSignals()
        self._cancel = threading.Event()
        self.done = threading.Event()
        self.traceback = ""

    def cancel(self) -> None:
        self._cancel.set()

    def release(self) -> None:
        """Drop the slots and arguments (lambdas that hold the job) so no cycle outlives it."""
        with warnings.catch_warnings():  # PySide warns about signals nobody connected
            warnings.simplefilter("ignore", RuntimeWarning)
            for signal in (self.signals.started, self.signals.progress, self.signals.result,
                           self.signals.partial,
                           self.signals.error, self.signals.cancelled, self.signals.finished):
                with contextlib.suppress(RuntimeError, TypeError):
                    signal.disconnect()
        self.fn, self.args, self.kwargs = None, (), {}

    def is_cancelled(self) -> bool:
        return self._cancel.is_set()

    def _progress(self, done: int, total: int, message: str = "") -> None:
        self.signals.progress.emit(int(done), int(total), str(message))

    def run(self) -> None:
        self.signals.started.emit()
        try:
            value = self.fn(*self.args, progress=self._progress, cancelled=self.is_cancelled,
                            **self.kwargs)
        except BaseException as exc:  # noqa: BLE001 - every failure becomes a message
            if self._cancel.is_set():
                self.signals.cancelled.emit()
            else:
                self.traceback = traceback.format_exc()
                self.signals.error.emit(exc)
        else:  # a function that returns after a cancel returns partial results on purpose
            self.signals.result.emit(value)
        finally:
            self.done.set()
            self.signals.finished.emit()


_ABANDONED: list[tuple[QThreadPool, list[Job]]] = []  # still running when their window closed


class JobPool(QObject):
    """Starts jobs on a private thread pool and keeps them alive until they finish.

    The thread pool has no Qt parent: deleting the window does not wait in the pool's
    destructor for a job that has not answered Cancel yet; ``shutdown`` keeps such jobs (and
    their pool) alive until the end of the app, their signals disconnected."""

    def __init__(self, parent: QObject | None = None, threads: int = 3) -> None:
        super().__init__(parent)
        self.pool = QThreadPool()
        self.pool.setMaxThreadCount(threads)
        self._running: set[Job] = set()

    def start(self, job: Job) -> Job:
        self._running.add(job)
        job.signals.finished.connect(lambda: self._finished(job))
        self.pool.start(job)
        return job

    def _finished(self, job: Job) -> None:
        self._running.discard(job)
        QTimer.singleShot(0, job.release)

    @property
    def running(self) -> list[Job]:
        return list(self._running)

    def shutdown(self, msecs: int = 10000) -> bool:
        """Cancel every job and wait up to ``msecs`` for the threads (called when the window
        closes); then no job's signal reaches a slot any more (a job still running ends
        later, into nothing). False if some job was still running."""
        self.pool.clear()  # queued, not started: never run
        for job in list(self._running):
            job.cancel()
        done = self.pool.waitForDone(msecs)
        for job in self._running:
            job.release()
        if not done:
            _ABANDONED.append((self.pool, [j for j in self._running if not j.done.is_set()]))
        self._running.clear()
        return done
