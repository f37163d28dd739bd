"""Workers that leave the GIL to the UI thread now and then (no Qt)."""

from __future__ import annotations

import threading
import time


class Politeness:
    """Called often from a worker's loop: every ``work_s`` it sleeps ``pause_s``, so the UI
    thread finds the GIL free instead of waiting for it once per item it paints."""

    def __init__(self, work_s: float = 0.004, pause_s: float = 0.001) -> None:
        self.work_s, self.pause_s = work_s, pause_s
        self.active = threading.current_thread() is not threading.main_thread()
        self.next = time.perf_counter() + work_s

    def __call__(self) -> None:
        if self.active and time.perf_counter() > self.next:
            time.sleep(self.pause_s)
            self.next = time.perf_counter() + self.work_s
