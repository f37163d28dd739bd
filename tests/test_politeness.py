"""Workers pause now and then so the UI thread finds the GIL free (app.headless.politeness)."""

from __future__ import annotations

import threading

import pytest

from app.headless import politeness
from app.headless.politeness import Politeness


def test_a_worker_pauses_and_the_ui_thread_never(monkeypatch: pytest.MonkeyPatch) -> None:
    pauses: list[tuple[str, float]] = []
    monkeypatch.setattr(politeness.time, "sleep",
                        lambda s: pauses.append((threading.current_thread().name, s)))

    def loop() -> None:
        polite = Politeness(work_s=0.0, pause_s=0.001)
        for _ in range(5):
            polite()

    loop()  # the main (UI) thread: pausing would only slow it down
    assert pauses == []
    worker = threading.Thread(target=loop, name="worker")
    worker.start()
    worker.join()
    assert pauses and all(p == ("worker", 0.001) for p in pauses)
