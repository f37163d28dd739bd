"""Benchmark settings, the results table (model x engine) and a bar chart of p50 latency."""

from __future__ import annotations

import os
from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QCheckBox,
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

from app.headless.bench_task import MODEL_ROLES
from app.inputs_row import InputsRow
from qcore.status import RunStatus

ENGINES = {"onnxruntime": ("ORT", "ONNX Runtime (CPU)"),
           "openvino": ("OpenVINO", "OpenVINO CPU plugin (oneDNN)")}
MODEL_COLOURS = {"fp32": "#f0a04b", "qdq": "#9b7fd4", "int8": "#4caf50",
                 "int8-onednn": "#26a69a"}
COLUMNS = ["Model", "Engine", "Thr", "p50 ms", "p90 ms", "p99 ms", "Runs/s", "Speedup",
           "What ran"]

PER_OP_RUNS = 10  # profiled inferences per engine

pg.setConfigOptions(antialias=True, background="w", foreground="#333333")


def _fmt(value: float | None, digits: int = 3) -> str:
    if value is None:
        return ""
    return f"{value:.{digits}g}" if value < 100 else f"{value:.0f}"


def _spin(low: int, high: int, value: int, tip: str) -> QSpinBox:
    spin = QSpinBox()
    spin.setRange(low, high)
    spin.setValue(value)
    spin.setToolTip(tip)
    return spin


class BenchPanel(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.report: Any = None
        column = QVBoxLayout(self)
        column.setContentsMargins(4, 4, 4, 4)
        column.setSpacing(4)
        column.addLayout(self._settings_rows())
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setObjectName("benchTable")
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        self.table.verticalHeader().setDefaultSectionSize(22)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.chart = pg.PlotWidget()
        self.chart.setMinimumWidth(200)
        self.chart.setMenuEnabled(False)
        self.chart.setMouseEnabled(x=False, y=False)
        self.chart.hideButtons()
        self.chart.setLabel("bottom", "p50 latency (ms)")
        self.chart.getAxis("bottom").enableAutoSIPrefix(False)
        self.chart.showGrid(x=True, alpha=0.25)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.table)
        split.addWidget(self.chart)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        column.addWidget(split, 1)
        self.notes = QLabel("Run Benchmark (Ctrl+B) to time the models.")
        self.notes.setObjectName("hint")
        self.notes.setWordWrap(True)
        self.notes.setMaximumHeight(44)
        column.addWidget(self.notes)

    def _settings_rows(self) -> QVBoxLayout:
        rows = QVBoxLayout()
        first, second = QHBoxLayout(), QHBoxLayout()
        first.addWidget(QLabel("Models"))
        self.model_boxes = _ticks(first, {role: (role, text) for role, text in MODEL_ROLES.items()})
        first.addSpacing(10)
        first.addWidget(QLabel("Engines"))
        self.engine_boxes = _ticks(first, ENGINES)
        first.addStretch(1)
        self.threads = _spin(1, os.cpu_count() or 1, 1, "intra-op threads")
        self.iters = _spin(1, 100000, 50, "measured runs per model")
        self.warmup = _spin(0, 10000, 5, "unmeasured runs first")
        self.batch = _spin(1, 1024, 1, "value of batch-like dynamic dimensions")
        for label, spin in (("Threads", self.threads), ("Runs", self.iters),
                            ("Warm-up", self.warmup), ("Batch", self.batch)):
            second.addWidget(QLabel(label))
            second.addWidget(spin)
            second.addSpacing(4)
        self.accuracy = QCheckBox("Accuracy")
        self.accuracy.setToolTip("Compare every model's outputs with the FP32 model")
        self.accuracy.setChecked(True)
        self.per_tensor = QCheckBox("SQNR")
        self.per_tensor.setToolTip("Per-tensor SQNR against the FP32 model (ONNX Runtime)")
        self.per_tensor.setChecked(True)
        self.per_op = QCheckBox("Per op")
        self.per_op.setToolTip("Profile per op: the precision, kernel and time of every op of "
                               "the INT8 model on each engine (Results \u203a What ran)")
        self.per_op_runs = PER_OP_RUNS
        second.addWidget(self.accuracy)
        second.addWidget(self.per_tensor)
        second.addWidget(self.per_op)
        second.addStretch(1)
        rows.addLayout(first)
        rows.addLayout(second)
        self.inputs_row = InputsRow()
        rows.addWidget(self.inputs_row)
        return rows

    # ---- settings ---------------------------------------------------------------------------
    def roles(self) -> list[str]:
        return [role for role, check in self.model_boxes.items() if check.isChecked()]

    def engines(self) -> list[str]:
        return [name for name, check in self.engine_boxes.items() if check.isChecked()]

    def settings(self) -> Any:
        from qcore.bench.runner import BenchSettings

        return BenchSettings(engines=self.engines(), threads=[self.threads.value()],
                             batch=self.batch.value(), warmup=self.warmup.value(),
                             iters=self.iters.value(), accuracy=self.accuracy.isChecked(),
                             per_tensor=self.per_tensor.isChecked(),
                             per_op=self.per_op.isChecked(), per_op_runs=self.per_op_runs)

    def settings_text(self) -> str:
        return (f"models {', '.join(self.roles())}; engines {', '.join(self.engines())}; "
                f"{self.threads.value()} thread(s), {self.warmup.value()} warm-up, "
                f"{self.iters.value()} iterations, batch {self.batch.value()}"
                + ("; then a per-op profile of the INT8 model" if self.per_op.isChecked()
                   else ""))

    # ---- results ----------------------------------------------------------------------------
    def clear(self) -> None:
        self.report = None
        self.table.setRowCount(0)
        self.chart.clear()
        self.notes.setText("Run Benchmark (Ctrl+B) to time the models.")

    def show_running(self) -> None:
        """While a benchmark runs: what it measures, not the hint to start one (the last
        report is forgotten)."""
        self.report = None
        self.notes.setText(f"Benchmarking ({self.settings_text()})\u2026 the table fills in "
                           "when every model is measured; Cancel (Ctrl+.) keeps what was.")

    def show_stopped(self) -> None:
        """The run ended without a report (failed, or cancelled before any result)."""
        if self.report is None:
            self.notes.setText("No results: the benchmark stopped (see the Log). Run "
                               "Benchmark (Ctrl+B) to try again.")

    def show_report(self, report: Any) -> None:
        self.report = report
        self.table.setRowCount(0)
        for r in report.results:
            self._add_row(r)
        notes = list(report.notes)
        notes += [f"{e.name}: not available ({e.reason})" for e in report.engines
                  if not e.available]
        if report.cancelled:
            notes.insert(0, "Cancelled: partial results.")
        versions = ", ".join(f"{e.name} {e.version}" for e in report.engines if e.available)
        cpu = report.system.get("cpu", "")
        self.notes.setText(" ".join(notes + [f"[{versions}; {cpu}]"]))
        self._chart(report)

    def _add_row(self, r: Any) -> None:
        lat = r.latency_ms
        row = self.table.rowCount()
        self.table.insertRow(row)
        speed = f"{r.speedup_vs_fp32:.2f}x" if r.speedup_vs_fp32 else ""
        ran = r.what_ran.summary if r.what_ran else ""
        values = [r.model, ENGINES.get(r.engine, (r.engine,))[0], str(r.threads),
                  _fmt(lat and lat.p50), _fmt(lat and lat.p90), _fmt(lat and lat.p99),
                  _fmt(r.throughput_per_s, 4), speed,
                  ran if r.status is RunStatus.OK else f"{r.status}: {r.reason}"]
        for col, text in enumerate(values):
            item = QTableWidgetItem(text)
            item.setToolTip(text)
            if 2 <= col <= 7:
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            if r.status is not RunStatus.OK:
                item.setForeground(QColor("#999999"))
            elif col == 0:
                item.setForeground(QColor(MODEL_COLOURS.get(r.model, "#333333")).darker(150))
            if col == 7 and r.speedup_vs_fp32:
                good = r.speedup_vs_fp32 >= 1.0
                item.setForeground(QColor("#1b6e20" if good else "#b3261e"))
            self.table.setItem(row, col, item)

    def _chart(self, report: Any) -> None:
        """Horizontal bars, one per (engine, model), grouped by engine, labels on the left."""
        self.chart.clear()
        ok = [r for r in report.results if r.latency_ms is not None]
        if not ok:
            return
        several = len(report.settings.get("threads", [])) > 1
        y, ticks = 0.0, []
        for engine in dict.fromkeys(r.engine for r in ok):
            short = ENGINES.get(engine, (engine,))[0]
            for r in [r for r in ok if r.engine == engine]:
                colour = MODEL_COLOURS.get(r.model, "#888888")
                p50 = r.latency_ms.p50
                self.chart.addItem(pg.BarGraphItem(x0=[0], y=[y], width=[p50], height=0.7,
                                                   brush=colour,
                                                   pen=pg.mkPen(QColor(colour).darker(130))))
                label = pg.TextItem(_fmt(p50), color="#333333", anchor=(0, 0.5))
                label.setPos(p50, y)
                self.chart.addItem(label)
                ticks.append((y, f"{r.model} \u00b7 {short}" + (f" {r.threads}T" if several
                                                                 else "")))
                y -= 1
            y -= 0.5
        self.chart.getAxis("left").setTicks([ticks])
        top = max(r.latency_ms.p50 for r in ok)
        self.chart.setXRange(0, top * 1.25, padding=0)
        self.chart.setYRange(y + 0.6, 0.6, padding=0)


def _ticks(row: QHBoxLayout, choices: dict[str, tuple[str, str]]) -> dict[str, QCheckBox]:
    """A ticked checkbox per choice (key -> (label, tooltip)), added to ``row``."""
    boxes = {}
    for key, (label, tip) in choices.items():
        check = QCheckBox(label)
        check.setToolTip(tip)
        check.setChecked(True)
        boxes[key] = check
        row.addWidget(check)
    return boxes
