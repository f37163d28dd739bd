"""Closing the window while a graph layout runs (issue 16: "QTimer already deleted" was seen
once): the layout job is cancelled, Graphviz is stopped, no late callback reaches a deleted
widget, and no child process is left.

Graphviz is replaced by a program that never answers, so the layout is surely still running
when the window closes (a real ``dot`` on the 5,004-op model runs for tens of seconds).
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import contextlib
import sys
from pathlib import Path

import psutil
import pytest
from PySide6.QtCore import QCoreApplication, QEvent
from test_app_big import TIMEOUT, _open, big_model_file

from qcore import child

NOISE = ("propagateSizeHints",)  # the offscreen platform's, not ours


@pytest.fixture(scope="module")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return big_model_file(tmp_path_factory)


@pytest.fixture
def excepthook(monkeypatch: pytest.MonkeyPatch) -> list[BaseException]:
    """Exceptions that reach ``sys.excepthook`` (PySide sends a slot's exception there)."""
    seen: list[BaseException] = []
    monkeypatch.setattr(sys, "excepthook", lambda _t, value, _tb: seen.append(value))
    return seen


def _children() -> list[psutil.Process]:
    """Child processes but the warm conversion process, which is shared by every window of
    the app (and the tests), idle between calls, and ended at exit (``qcore.child``)."""
    out = []
    for proc in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if proc.status() != psutil.STATUS_ZOMBIE and "qcore.child" not in proc.cmdline():
                out.append(proc)
    return out


def _conversion_busy() -> bool:
    pool = child.shared_runner()
    return any(runner.busy for runner in pool.runners)


def _close_and_delete(qtbot, window) -> None:
    gone: list[bool] = []
    window.destroyed.connect(lambda: gone.append(True))
    window.close()
    window.deleteLater()
    qtbot.waitUntil(lambda: bool(gone), timeout=TIMEOUT)


def _assert_job_ends_cleanly(qtbot, qtlog, job, before: int, excepthook: list) -> None:
    """Once ``job`` has ended and its queued events are delivered, no child process is left,
    and nothing was logged (past record ``before``) or raised."""
    qtbot.waitUntil(job.done.is_set, timeout=TIMEOUT)
    for _ in range(3):  # deliver whatever the worker queued before it ended
        QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
        QCoreApplication.processEvents()
    qtbot.waitUntil(lambda: not _children() and not _conversion_busy(), timeout=TIMEOUT)
    warnings = [r.message for r in qtlog.records[before:]
                if not any(n in r.message for n in NOISE)]
    assert warnings == [] and excepthook == []


def test_closing_while_the_layout_runs_is_clean(qtbot, qtlog, tmp_path: Path, model_path: Path,
                                                silent_dot: None, excepthook: list,
                                                messages: list) -> None:
    from PySide6.QtCore import QSettings

    from app.main_window import MainWindow
    from app.settings import AppSettings

    # not qtbot.addWidget: the window is deleted here, as the app's end deletes it
    window = MainWindow(AppSettings(QSettings(str(tmp_path / "s.ini"),
                                              QSettings.Format.IniFormat)))
    window.show()
    _open(qtbot, window, model_path)
    panel = window.graph_panel
    job = panel.view_job
    assert job is not None and not job.done.is_set()  # Graphviz is still "running"
    qtbot.waitUntil(lambda: any(p.name() in ("dot", "tail", "sh") for p in _children()),
                    timeout=TIMEOUT)
    before = len(qtlog.records)
    _close_and_delete(qtbot, window)
    _assert_job_ends_cleanly(qtbot, qtlog, job, before, excepthook)


def test_a_layout_that_ends_after_the_window_is_gone_reaches_nothing(
        qtbot, qtlog, tmp_path: Path, model_path: Path, excepthook: list, messages: list,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A layout job that does not answer Cancel in time (Graphviz output being parsed)
    returns after the window was closed and deleted: its result, and the "finished" that
    stops the busy card's timer, reach no deleted widget."""
    import threading

    from PySide6.QtCore import QSettings

    from app import main_window, view_loader
    from app.headless.fast_layout import quick_layout
    from app.settings import AppSettings

    release, entered = threading.Event(), threading.Event()

    def stubborn(plan, **_):
        entered.set()
        release.wait(TIMEOUT / 1000)
        layout = quick_layout(plan.view)
        layout.quick = False
        return layout

    monkeypatch.setattr(view_loader, "graphviz_layout", stubborn)
    monkeypatch.setattr(main_window.MainWindow, "CLOSE_WAIT_MS", 100)
    window = main_window.MainWindow(AppSettings(QSettings(str(tmp_path / "s.ini"),
                                                          QSettings.Format.IniFormat)))
    window.show()
    _open(qtbot, window, model_path)
    job = window.graph_panel.view_job
    assert job is not None
    qtbot.waitUntil(entered.is_set, timeout=TIMEOUT)
    before = len(qtlog.records)
    _close_and_delete(qtbot, window)
    release.set()  # the job returns its layout now, to a window that is gone
    _assert_job_ends_cleanly(qtbot, qtlog, job, before, excepthook)
