"""Benchmark settings, the results table (model x engine) and a bar chart of p50 latency."""

from __future__ import annotations

import os
from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QCheckBox,
    QFormLayout,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QSpinBox,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.bench_task import MODEL_ROLES

ENGINES = {"onnxruntime": "ONNX Runtime (CPU)", "openvino": "OpenVINO (oneDNN CPU)"}
MODEL_COLOURS = {"fp32": "#f0a04b", "qdq": "#9b7fd4", "int8": "#4caf50",
                 "int8-onednn": "#26a69a"}
COLUMNS = ["Model", "Engine", "Threads", "p50 ms", "p90 ms", "p99 ms", "Throughput /s",
           "Speedup", "What ran"]

pg.setConfigOptions(antialias=True, background="w", foreground="#333333")


def _fmt(value: float | None, digits: int = 3) -> str:
    return "" if value is None else f"{value:.{digits}g}" if value < 100 else f"{value:.0f}"


class BenchPanel(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.report: Any = None
        row = QHBoxLayout(self)
        row.setContentsMargins(4, 4, 4, 4)
        row.addWidget(self._settings_form())
        split = QSplitter(Qt.Orientation.Horizontal)
        column = QWidget()
        col = QVBoxLayout(column)
        col.setContentsMargins(0, 0, 0, 0)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setObjectName("benchTable")
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setAlternatingRowColors(True)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.horizontalHeader().setSectionResizeMode(
            QHeaderView.ResizeMode.ResizeToContents)
        self.notes = QLabel("Run Benchmark (Ctrl+B) to time the models.")
        self.notes.setObjectName("hint")
        self.notes.setWordWrap(True)
        col.addWidget(self.table, 1)
        col.addWidget(self.notes)
        self.chart = pg.PlotWidget()
        self.chart.setMinimumWidth(220)
        self.chart.setMenuEnabled(False)
        self.chart.setMouseEnabled(x=False, y=False)
        self.chart.setTitle("p50 latency (ms)", size="9pt")
        self.chart.showGrid(y=True, alpha=0.25)
        split.addWidget(column)
        split.addWidget(self.chart)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        row.addWidget(split, 1)

    def _settings_form(self) -> QWidget:
        box = QWidget()
        box.setMaximumWidth(250)
        form = QFormLayout(box)
        form.setContentsMargins(0, 0, 6, 0)
        grid = QGridLayout()
        self.model_boxes = {}
        for i, (role, text) in enumerate(MODEL_ROLES.items()):
            check = QCheckBox(role)
            check.setToolTip(text)
            check.setChecked(True)
            self.model_boxes[role] = check
            grid.addWidget(check, i // 2, i % 2)
        form.addRow(grid)
        self.engine_boxes = {}
        engines = QHBoxLayout()
        for name, text in ENGINES.items():
            check = QCheckBox("ORT" if name == "onnxruntime" else "OpenVINO")
            check.setToolTip(text)
            check.setChecked(True)
            self.engine_boxes[name] = check
            engines.addWidget(check)
        form.addRow("Engines", engines)
        self.threads = self._spin(1, os.cpu_count() or 1, 1, "intra-op threads")
        self.iters = self._spin(1, 100000, 50, "measured runs per model")
        self.warmup = self._spin(0, 10000, 5, "unmeasured runs first")
        self.batch = self._spin(1, 1024, 1, "value of batch-like dynamic dimensions")
        for label, spin in (("Threads", self.threads), ("Iterations", self.iters),
                            ("Warm-up", self.warmup), ("Batch", self.batch)):
            form.addRow(label, spin)
        self.accuracy = QCheckBox("Accuracy vs FP32")
        self.accuracy.setChecked(True)
        self.per_tensor = QCheckBox("Per-tensor SQNR")
        self.per_tensor.setChecked(True)
        form.addRow(self.accuracy)
        form.addRow(self.per_tensor)
        return box

    @staticmethod
    def _spin(low: int, high: int, value: int, tip: str) -> QSpinBox:
        spin = QSpinBox()
        spin.setRange(low, high)
        spin.setValue(value)
        spin.setToolTip(tip)
        return spin

    # ---- settings ---------------------------------------------------------------------------
    def roles(self) -> list[str]:
        return [role for role, check in self.model_boxes.items() if check.isChecked()]

    def settings(self) -> Any:
        from qcore.bench.runner import BenchSettings

        engines = [name for name, check in self.engine_boxes.items() if check.isChecked()]
        return BenchSettings(engines=engines, threads=[self.threads.value()],
                             batch=self.batch.value(), warmup=self.warmup.value(),
                             iters=self.iters.value(), accuracy=self.accuracy.isChecked(),
                             per_tensor=self.per_tensor.isChecked())

    def settings_text(self) -> str:
        return (f"models {', '.join(self.roles())}; engines "
                f"{', '.join(n for n, c in self.engine_boxes.items() if c.isChecked())}; "
                f"{self.threads.value()} thread(s), {self.warmup.value()} warm-up, "
                f"{self.iters.value()} iterations, batch {self.batch.value()}")

    # ---- results ----------------------------------------------------------------------------
    def clear(self) -> None:
        self.report = None
        self.table.setRowCount(0)
        self.chart.clear()
        self.notes.setText("Run Benchmark (Ctrl+B) to time the models.")

    def show_report(self, report: Any) -> None:
        self.report = report
        self.table.setRowCount(0)
        for r in report.results:
            lat = r.latency_ms
            row = self.table.rowCount()
            self.table.insertRow(row)
            speed = f"{r.speedup_vs_fp32:.2f}x" if r.speedup_vs_fp32 else ""
            ran = r.what_ran.summary if r.what_ran else ""
            values = [r.model, r.engine, str(r.threads),
                      _fmt(lat and lat.p50), _fmt(lat and lat.p90), _fmt(lat and lat.p99),
                      _fmt(r.throughput_per_s, 4), speed,
                      ran if r.status == "ok" else f"{r.status}: {r.reason}"]
            for col, text in enumerate(values):
                item = QTableWidgetItem(text)
                item.setToolTip(text)
                if 3 <= col <= 7:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight
                                          | Qt.AlignmentFlag.AlignVCenter)
                if col == 0:
                    item.setForeground(QColor(MODEL_COLOURS.get(r.model, "#333333")).darker(140))
                if r.status != "ok":
                    item.setForeground(QColor("#999999"))
                self.table.setItem(row, col, item)
        notes = list(report.notes)
        notes += [f"{e.name}: not available ({e.reason})" for e in report.engines
                  if not e.available]
        if report.cancelled:
            notes.insert(0, "Cancelled: partial results.")
        versions = ", ".join(f"{e.name} {e.version}" for e in report.engines if e.available)
        cpu = report.system.get("cpu", "")
        self.notes.setText(" ".join(notes + [f"[{versions}; {cpu}]"]))
        self._chart(report)

    def _chart(self, report: Any) -> None:
        self.chart.clear()
        ok = [r for r in report.results if r.latency_ms is not None]
        if not ok:
            return
        engines = list(dict.fromkeys(r.engine for r in ok))
        x, ticks = 0.0, []
        for engine in engines:
            short = "ORT" if engine == "onnxruntime" else "OV" if engine == "openvino" else engine
            for r in [r for r in ok if r.engine == engine]:
                colour = MODEL_COLOURS.get(r.model, "#888888")
                bar = pg.BarGraphItem(x=[x], height=[r.latency_ms.p50], width=0.7,
                                      brush=colour, pen=pg.mkPen(QColor(colour).darker(130)))
                self.chart.addItem(bar)
                text = pg.TextItem(_fmt(r.latency_ms.p50), color="#333333", anchor=(0.5, 1))
                text.setPos(x, r.latency_ms.p50)
                self.chart.addItem(text)
                threads = f" {r.threads}T" if len(report.settings.get("threads", [])) > 1 else ""
                ticks.append((x, f"{r.model}\n{short}{threads}"))
                x += 1
            x += 0.6
        axis = self.chart.getAxis("bottom")
        axis.setTicks([ticks])
        top = max(r.latency_ms.p50 for r in ok)
        self.chart.setYRange(0, top * 1.18, padding=0)
        self.chart.setXRange(-0.6, x - 0.4, padding=0)
