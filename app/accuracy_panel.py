"""Accuracy: each model's outputs against the reference, and the per-tensor SQNR list."""

from __future__ import annotations

import math
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from app.graph_items import sqnr_colour
from app.headless.input_source import GENERATED_WARNING, InputSource
from app.tables import cell, read_only_table
from qcore.status import RunStatus

WARNING_STYLE = "background: #fff4d6; color: #5c4400; padding: 4px 8px; border-radius: 3px;"

OUTPUT_COLUMNS = ["Model", "vs", "Engine", "Output", "Cosine", "Max |diff|", "Top-1", "Status"]
SQNR_COLUMNS = ["SQNR dB", "Op", "Tensor", "Max |diff|", "Shape"]


class AccuracyPanel(QWidget):
    op_requested = Signal(int)
    sqnr_changed = Signal(object)  # {op id: worst SQNR dB} of the chosen comparison

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.outputs = read_only_table(OUTPUT_COLUMNS, "accuracyTable")
        self.sqnr = read_only_table(SQNR_COLUMNS, "sqnrTable")
        self.sqnr.setToolTip("Click a row to select the op that produced the tensor")
        self.sqnr.cellClicked.connect(self._clicked)
        self.note = QLabel("Run Benchmark with 'Accuracy' and 'Per-tensor SQNR' ticked.")
        self.note.setObjectName("hint")
        self.note.setWordWrap(True)
        self.note.setMaximumHeight(40)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.outputs)
        right = QWidget()
        col = QVBoxLayout(right)
        col.setContentsMargins(0, 0, 0, 0)
        head = QHBoxLayout()
        head.addWidget(QLabel("<b>Per-tensor SQNR</b> (worst first; click a row to select "
                              "the op) of"))
        self.source = QComboBox()
        self.source.setToolTip("Which model's tensors to compare with the reference")
        self.source.currentIndexChanged.connect(self._source_changed)
        head.addWidget(self.source, 1)
        col.addLayout(head)
        col.addWidget(self.sqnr, 1)
        split.addWidget(right)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        column = QVBoxLayout(self)
        column.setContentsMargins(4, 4, 4, 4)
        self.inputs_label = QLabel("")
        self.inputs_label.setObjectName("inputsNote")
        self.inputs_label.setWordWrap(True)
        self.inputs_label.hide()
        column.addWidget(self.inputs_label)
        column.addWidget(split, 1)
        column.addWidget(self.note)
        self.sqnr_by_op: dict[int, float] = {}
        self._sources: list[Any] = []

    def clear(self) -> None:
        self.outputs.setRowCount(0)
        self.sqnr.setRowCount(0)
        self.sqnr_by_op = {}
        self._sources = []
        self.source.blockSignals(True)
        self.source.clear()
        self.source.blockSignals(False)
        self.sqnr_changed.emit({})

    def show_report(self, report: Any, preferred_test: str = "int8",
                    inputs: InputSource | None = None) -> None:
        self.clear()
        self._show_inputs(report, inputs)
        for acc in report.accuracy:
            if not acc.outputs and acc.status is RunStatus.OK:
                continue  # nothing compared (e.g. an engine without that model): no empty row
            rows = acc.outputs or [None]
            for out in rows:
                r = self.outputs.rowCount()
                self.outputs.insertRow(r)
                top1 = "" if out is None or out.top1_agreement is None else \
                    f"{out.top1_agreement * 100:.1f}%"
                values = [acc.test, acc.reference, acc.engine, out.name if out else "",
                          f"{out.cosine:.6f}" if out else "",
                          f"{out.max_abs_diff:.4g}" if out else "", top1,
                          str(acc.status) if acc.status is RunStatus.OK
                          else f"{acc.status}: {acc.reason}"]
                for c, text in enumerate(values):
                    self.outputs.setItem(r, c, cell(text, 4 <= c <= 6))
            if acc.per_tensor:
                self._sources.append(acc)
        self.source.blockSignals(True)
        for acc in self._sources:
            self.source.addItem(f"{acc.test} vs {acc.reference}")
        self.source.blockSignals(False)
        prefer = [i for i, a in enumerate(self._sources) if a.test == preferred_test]
        if self._sources:
            self.source.setCurrentIndex(prefer[0] if prefer else 0)
            self._source_changed(self.source.currentIndex())
        if not self._sources:
            self.note.setText("No per-tensor SQNR in this run (tick SQNR before Benchmark).")

    def _show_inputs(self, report: Any, inputs: InputSource | None) -> None:
        """Say what the numbers were computed on; warn when that was random data."""
        source = str(getattr(report, "inputs", {}).get("source", ""))
        generated = source.startswith("generated") or (inputs is not None and inputs.generated)
        self.inputs_label.setProperty("warning", generated)
        self.inputs_label.setText(GENERATED_WARNING if generated else f"Inputs: {source}")
        self.inputs_label.setStyleSheet(WARNING_STYLE if generated else "")
        self.inputs_label.show()

    def _source_changed(self, index: int) -> None:
        if 0 <= index < len(self._sources):
            acc = self._sources[index]
            self._fill_sqnr(acc)
            self.note.setText(acc.per_tensor_note)

    def _fill_sqnr(self, acc: Any) -> None:
        self.sqnr.setRowCount(0)
        self.sqnr_by_op = {}
        for err in acc.per_tensor:
            r = self.sqnr.rowCount()
            self.sqnr.insertRow(r)
            value = err.sqnr_db
            text = "identical" if math.isinf(value) and value > 0 else f"{value:.1f}"
            op = f"{err.op_type}({err.op_id})" if err.op_id is not None else err.op_type
            cells = [cell(text, True), cell(op), cell(err.tensor),
                     cell(f"{err.max_abs_diff:.4g}", True),
                     cell("x".join(str(d) for d in err.shape))]
            colour = sqnr_colour(value) if math.isfinite(value) else ""
            for c, item in enumerate(cells):
                item.setData(Qt.ItemDataRole.UserRole, err.op_id)
                if colour and c == 0:
                    item.setBackground(QColor(colour))
                self.sqnr.setItem(r, c, item)
            if err.op_id is not None and math.isfinite(value):
                self.sqnr_by_op[err.op_id] = min(self.sqnr_by_op.get(err.op_id, value), value)
        self.sqnr_changed.emit(dict(self.sqnr_by_op))

    def _clicked(self, row: int, _column: int) -> None:
        op_id = self.sqnr.item(row, 0).data(Qt.ItemDataRole.UserRole)
        if op_id is not None:
            self.op_requested.emit(int(op_id))
