"""The bottom-right tabs: log, placement decisions, benchmark, what ran per op, accuracy and
the advisor."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QHeaderView, QTableWidget, QTableWidgetItem, QTabWidget, QWidget

from app.accuracy_panel import AccuracyPanel
from app.advisor_panel import AdvisorPanel
from app.bench_panel import BenchPanel
from app.headless.bench_task import run_bench
from app.log_panel import LogPanel
from app.per_op_panel import PerOpPanel
from app.state import Session
from app.workers import Job
from qcore.convert import ConversionResult
from qcore.labels import COLORS, status_key

DECISION_COLUMNS = ["Id", "Op", "Name", "Fused", "Decision", "Reason"]


class DecisionsTable(QTableWidget):
    """Every op after fusion with INT8 / FP32 and why (what `qcore convert` prints)."""

    op_requested = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(0, len(DECISION_COLUMNS), parent)
        self.setObjectName("decisionsTable")
        self.setHorizontalHeaderLabels(DECISION_COLUMNS)
        self.verticalHeader().hide()
        self.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.setSelectionMode(QTableWidget.SelectionMode.SingleSelection)
        self.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.horizontalHeader().setStretchLastSection(True)
        self.verticalHeader().setDefaultSectionSize(22)
        self.setWordWrap(False)
        self.setAlternatingRowColors(True)
        self.setSortingEnabled(True)
        self.cellClicked.connect(lambda r, _c: self.op_requested.emit(
            int(self.item(r, 0).data(Qt.ItemDataRole.UserRole))))

    def set_result(self, result: ConversionResult) -> None:
        self.setSortingEnabled(False)
        self.setUpdatesEnabled(False)
        self.setRowCount(0)
        self.setRowCount(len(result.decisions))
        for row, node in enumerate(result.decisions):
            key = status_key(node)
            decision = {"int8": "INT8", "skipped": "FP32 (skipped)", "fake": "Q/DQ"}.get(
                key, "FP32")
            values = [str(node.id), node.op_type, node.name, ", ".join(node.fused), decision,
                      node.reason]
            for col, text in enumerate(values):
                item = QTableWidgetItem(text)
                item.setToolTip(text)
                if col == 0:
                    item.setData(Qt.ItemDataRole.DisplayRole, node.id)
                    item.setData(Qt.ItemDataRole.UserRole, node.id)
                if col == 4:
                    item.setBackground(QColor(COLORS[key]))
                    item.setForeground(QColor("#111111"))
                self.setItem(row, col, item)
        self.setUpdatesEnabled(True)
        self.setSortingEnabled(True)
        self.sortByColumn(0, Qt.SortOrder.AscendingOrder)


class ResultsPanel(QTabWidget):
    op_requested = Signal(int)

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.log_panel = LogPanel()
        self.decisions = DecisionsTable()
        self.bench = BenchPanel()
        self.accuracy = AccuracyPanel()
        self.addTab(self.log_panel, "Log")
        self.addTab(self.decisions, "Decisions")
        self.addTab(self.bench, "Benchmark")
        self.per_op = PerOpPanel()
        self.addTab(self.per_op, "What ran")
        self.advisor = AdvisorPanel(session)
        self.addTab(self.accuracy, "Accuracy")
        self.addTab(self.advisor, "Advisor")
        self.setDocumentMode(True)
        self.decisions.op_requested.connect(self.op_requested)
        self.accuracy.op_requested.connect(self.op_requested)
        self.per_op.op_requested.connect(self.op_requested)
        self.advisor.op_requested.connect(self.op_requested)
        self.advisor.message.connect(self.log_panel.log)
        self.advisor.fallback_sqnr = lambda: dict(self.accuracy.sqnr_by_op)
        self.bench.inputs_row.changed.connect(session.set_inputs)
        session.inputs_changed.connect(lambda: self.bench.inputs_row.show_source(session.inputs))

    @property
    def report(self) -> Any:
        return self.bench.report

    def show_tab(self, title: str) -> None:
        for i in range(self.count()):
            if self.tabText(i) == title:
                self.setCurrentIndex(i)

    def clear(self) -> None:
        self.bench.clear()
        self.per_op.clear()
        self.accuracy.clear()
        self.advisor.clear()

    def set_decisions(self, result: ConversionResult) -> None:
        self.decisions.set_result(result)

    def settings_text(self) -> str:
        return self.bench.settings_text()

    def make_bench_job(self) -> Job | None:
        session = self.session
        if session.result is None or session.path is None:
            return None
        try:
            settings = self.bench.settings()
        except (ValueError, ImportError) as exc:
            self.log_panel.log(f"Cannot start the benchmark: {exc}", "error")
            return None
        roles = self.bench.roles()
        if not roles:
            self.log_panel.log("Tick at least one model to benchmark", "warn")
            return None
        return Job(run_bench, session.path, session.result, roles, settings, session.inputs,
                   name="benchmark")

    def show_report(self, report: Any) -> None:
        self.bench.show_report(report)
        target = self.session.result.config.target if self.session.result else "onnxruntime"
        self.accuracy.show_report(report, "int8" if target == "onnxruntime" else "int8-onednn",
                                  self.session.inputs)
        self.per_op.show_report(report, "onnxruntime" if target == "onnxruntime" else "openvino")
        try:
            self.log_panel.log(report.text(), "ok")
        except Exception as exc:  # noqa: BLE001 - the tables already show the numbers
            self.log_panel.log(f"(no text report: {exc})", "warn")
        self.show_tab("Benchmark")
