"""Running jobs from the window: one convert / benchmark at a time with progress and Cancel in
the status bar, plus short side jobs (saving, exporting). Errors become message boxes."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QFontMetrics
from PySide6.QtWidgets import QProgressBar, QPushButton

from app.headless.errors import describe_error
from app.workers import Job, JobPool

if TYPE_CHECKING:
    from app.main_window import MainWindow


class RunBar(QObject):
    finished = Signal(str, bool)  # job name, succeeded
    busy_changed = Signal(bool)

    def __init__(self, window: MainWindow, jobs: JobPool) -> None:
        super().__init__(window)
        self.window, self.jobs = window, jobs
        self.job: Job | None = None
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(260)
        self.progress.setTextVisible(True)
        self.progress.hide()
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop the running job (Ctrl+.)")
        self.cancel_button.clicked.connect(self.cancel)
        self.cancel_button.hide()
        window.statusBar().addPermanentWidget(self.progress)
        window.statusBar().addPermanentWidget(self.cancel_button)

    @property
    def busy(self) -> bool:
        return self.job is not None

    def run(self, job: Job, text: str) -> Job | None:
        """Start the job unless another convert / benchmark is running."""
        if self.job is not None:
            self.window.status("Wait for the running job to finish, or cancel it")
            return None
        self.job = job
        job.signals.progress.connect(self._progress)
        job.signals.error.connect(lambda exc: self.report_error(job, exc))
        job.signals.cancelled.connect(lambda: self.window.log(f"{job.name} cancelled", "warn"))
        job.signals.finished.connect(lambda: self._done(job))
        self.progress.setRange(0, 0)
        self._set_text(text)
        self.progress.show()
        self.cancel_button.show()
        self.window.status(text + "\u2026", 0)
        self.busy_changed.emit(True)
        return self.jobs.start(job)

    def side(self, work: Callable[..., Any], name: str, done_text: str) -> Job:
        """A short job that may run beside a conversion; ``done_text`` gets the result."""
        job = Job(work, name=name)
        job.signals.result.connect(lambda value: self.window.log(done_text.format(value), "ok"))
        job.signals.result.connect(lambda value: self.window.status(done_text.format(value)))
        job.signals.error.connect(lambda exc: self.report_error(job, exc))
        job.signals.finished.connect(lambda: self.finished.emit(name, not job.traceback))
        return self.jobs.start(job)

    def cancel(self) -> bool:
        if self.job is None:
            return False
        self.job.cancel()
        self.window.status("Cancelling\u2026", 0)
        return True

    def _set_text(self, text: str) -> None:
        """One line in the bar, shortened in the middle to fit; the whole text in its tip."""
        shown = self.progress.width() if self.progress.isVisible() else 0
        room = max(40, (shown or self.progress.maximumWidth()) - 24)
        metrics = QFontMetrics(self.progress.font())
        self.progress.setFormat(metrics.elidedText(text, Qt.TextElideMode.ElideMiddle, room))
        self.progress.setToolTip(text)

    def _progress(self, done: int, total: int, message: str) -> None:
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)
        self._set_text(f"{message}  {done}/{total}" if message else f"{done}/{total}")
        if message:
            self.window.status(message, 0)

    def report_error(self, job: Job, exc: BaseException) -> None:
        title, text = describe_error(job.name, exc)
        if job.traceback and (title.startswith("Unexpected") or "log has" in text):
            self.window.log(job.traceback, "error")
        self.window.show_error(title, text)

    def _done(self, job: Job) -> None:
        ok = not job.is_cancelled() and not job.traceback
        if job is self.job:
            self.job = None
            self.progress.hide()
            self.cancel_button.hide()
            self.window.statusBar().clearMessage()
            self.busy_changed.emit(False)
        self.finished.emit(job.name, ok)
