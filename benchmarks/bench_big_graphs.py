"""Big models in the app: conversion time, time to the first graph view, and UI stalls.

    QT_QPA_PLATFORM=offscreen python benchmarks/bench_big_graphs.py [--models bert,resnet]

Generates (once, cached in ~/.cache/quant_inspector) a BERT-base-size QDQ model (12 layers,
hidden 768, ``quantize_static``), a ResNet-50-size one and the 5,004-op Q/DQ/Relu/Add chain of
tests/test_app_big.py (whose tests check behaviour only: the stall figures are measured here),
then drives the real MainWindow:
open (one window for all models, as a user opens one model after another; the first open
comes right after start-up, while the conversion process is still cold; the open phase lasts
until the converted snapshots are shown), pass switching back and forth, and the whole graph
view. Conversion alone is timed last, in this process, as the CLI runs it. A QTimer ticking
every 10 ms
records the longest gap of the UI event loop in each phase.
Acceptance (issue 5): conversion < 10 s, first view < 2 s, no stall > 100 ms.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import onnx
from PySide6.QtCore import QSettings, QTimer
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QWidget

from devtools import modelgen
from qcore.convert import convert

if TYPE_CHECKING:
    from app.main_window import MainWindow

CACHE = Path(os.environ.get("QI_BENCH_CACHE", Path.home() / ".cache" / "quant_inspector"))


def model_path(kind: str) -> Path:
    """The cached QDQ model of ``kind`` ('bert', 'resnet' or 'chain'), made on first use."""
    path = CACHE / f"{kind}_qdq.onnx"
    if not path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        print(f"generating {kind} with quantize_static (once)...", flush=True)
        if kind == "bert":
            model = modelgen.quantize_qdq(modelgen.bert_like(layers=12, hidden=768),
                                          activation_type="uint8")
        elif kind == "chain":
            model = modelgen.qdq_chain(834)  # 5,004 ops, as tests/test_app_big.py
        else:
            model = modelgen.quantize_qdq(modelgen.resnet_like(), activation_type="int8",
                                          symmetric_activations=True)
        onnx.save(model, str(path))
    return path


class StallMeter:
    """The longest gap between ticks of a 10 ms QTimer, per phase."""

    def __init__(self) -> None:
        self.timer = QTimer(interval=10)
        self.timer.timeout.connect(self._tick)
        self.last = time.perf_counter()
        self.worst = 0.0

    def _tick(self) -> None:
        now = time.perf_counter()
        self.worst = max(self.worst, now - self.last)
        self.last = now

    def start(self) -> None:
        self.last, self.worst = time.perf_counter(), 0.0
        self.timer.start()

    def stop(self) -> float:
        self._tick()
        self.timer.stop()
        return self.worst * 1000


def user_input(widget: QWidget) -> None:
    """A mouse move over ``widget``, as the click that starts each step would be: the app
    defers costly garbage collection while the user is active (app.compat.MainThreadGC)."""
    QTest.mouseMove(widget)


def wait(app: QApplication, done: Callable[[], bool], limit: float) -> float:
    """Run the event loop until ``done()``; returns the seconds waited (inf on timeout)."""
    start = time.perf_counter()
    while not done():
        if time.perf_counter() - start > limit:
            return float("inf")
        app.processEvents()
        time.sleep(0.002)
    return time.perf_counter() - start


def new_window() -> MainWindow:
    from app.main_window import MainWindow
    from app.settings import AppSettings

    tmp = tempfile.mkdtemp()
    settings = AppSettings(QSettings(str(Path(tmp) / "s.ini"), QSettings.Format.IniFormat))
    window = MainWindow(settings)
    window.resize(1560, 980)
    window.show()
    return window


def bench_app(app: QApplication, window: MainWindow, path: Path,
              layout_wait: float) -> dict[str, float]:
    """Open ``path`` in ``window`` and time it, then pass switching and the whole graph."""
    panel = window.graph_panel
    shown: list[float] = []
    panel.snapshot_shown.connect(lambda: shown.append(time.perf_counter()))
    meter = StallMeter()
    out: dict[str, float] = {}

    meter.start()
    start = time.perf_counter()
    user_input(window.menuBar())  # File > Open
    window.open_model(path)
    out["first_view_s"] = wait(app, lambda: bool(shown) and bool(panel.view.items_ready()), 60)
    out["first_view_items"] = len(panel.view.scene().items())
    wait(app, lambda: not window.runner.busy and panel.view.items_ready(), 60)
    out["converted_s"] = time.perf_counter() - start
    out["ops"] = len(panel.graph().nodes) if panel.graph() else 0
    out["open_stall_ms"] = meter.stop()

    meter.start()
    wait(app, lambda: panel.view_job is None and not window.runner.busy, layout_wait)
    panel.cancel_layout()
    out["layout_stall_ms"] = meter.stop()

    snaps = len(window.session.snapshots)
    rows = [snaps - 1, snaps // 2, 0, snaps - 1, snaps // 2, 0, snaps - 1, 0]
    times: list[float] = []
    meter.start()
    for row in rows:
        shown.clear()
        t = time.perf_counter()
        user_input(window.pass_list)
        window.pass_list.setCurrentRow(row)
        wait(app, lambda: bool(shown) and panel.view.items_ready(), 60)
        times.append(time.perf_counter() - t)
    wait(app, lambda: panel.view_job is None, layout_wait)
    out["switch_stall_ms"] = meter.stop()
    out["switch_first_s"] = max(times[:3])
    out["switch_again_s"] = max(times[3:])

    meter.start()
    shown.clear()
    t = time.perf_counter()
    user_input(panel.banner)  # its "Show every op" link
    panel.set_view_mode("all")
    out["whole_view_s"] = wait(app, lambda: bool(shown) and panel.view.items_ready(), 60)
    wait(app, lambda: panel.view_job is None, layout_wait)
    panel.cancel_layout()
    out["whole_stall_ms"] = meter.stop()
    out["whole_total_s"] = time.perf_counter() - t
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="bert,resnet,chain")
    parser.add_argument("--layout-wait", type=float, default=20.0,
                        help="seconds to let Graphviz run before cancelling it")
    args = parser.parse_args()
    app = QApplication.instance() or QApplication(sys.argv)
    kinds = args.models.split(",")
    paths = {kind: model_path(kind) for kind in kinds}
    window = new_window()  # the first open comes right after start-up: a cold child process
    figures = {kind: bench_app(app, window, paths[kind], args.layout_wait) for kind in kinds}
    window.close()
    ok = True
    for kind in kinds:  # conversion alone, after the app runs (its memory is not theirs)
        start = time.perf_counter()
        result = convert(model_path(kind))
        conv = time.perf_counter() - start
        f = figures[kind]
        stall = max(f[k] for k in f if k.endswith("stall_ms"))
        print(f"\n== {kind}: {len(result.snapshots[0].graph.nodes)} ops loaded, "
              f"{len(result.snapshots)} snapshots")
        del result
        print(f"conversion wall time         {conv:6.2f} s   (< 10 s)")
        print(f"open -> first graph view     {f['first_view_s']:6.2f} s   (< 2 s), "
              f"{f['first_view_items']:.0f} scene items")
        print(f"open -> converted, all shown {f['converted_s']:6.2f} s")
        print(f"longest stall: open          {f['open_stall_ms']:6.0f} ms  (< 100 ms)")
        print(f"longest stall: layout        {f['layout_stall_ms']:6.0f} ms")
        print(f"pass switch: first / cached  {f['switch_first_s']:6.2f} s / "
              f"{f['switch_again_s']:.3f} s, stall {f['switch_stall_ms']:.0f} ms")
        print(f"whole graph: first view      {f['whole_view_s']:6.2f} s, "
              f"stall {f['whole_stall_ms']:.0f} ms")
        good = conv < 10 and f["first_view_s"] < 2 and stall < 100
        print("PASS" if good else "FAIL")
        ok = ok and good
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
