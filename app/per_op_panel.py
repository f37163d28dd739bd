"""What ran, per op: the per-op profile of the last benchmark, one engine at a time.

A summary line (ops by precision, Q/DQ and reorder counts and time, the CPU's VNNI / AMX
flags) over a sortable table: op id, op type, our decision, the precision and kernel the
engine ran, time, and the flag where the two disagree. Clicking a row selects the op in the
graph; the chosen profile also colours the graph (View > Colour ops by).
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.headless.per_op_view import (
    FLAG_COLOUR,
    FLAG_FILL,
    RAN_FILL,
    label,
    row_texts,
    summary_text,
)
from app.tables import read_only_table
from qcore.status import RunStatus

COLUMNS = ["Op id", "Op type", "Ours", "Ran", "Kernel", "Time ms", "Flag"]
SORT_ROLE = Qt.ItemDataRole.UserRole + 1
KERNEL_WIDTH = 190
HINT = ("Tick 'Per op' in Benchmark and run it (Ctrl+B) to see the precision, kernel and time "
        "of every op on each engine.")


class SortItem(QTableWidgetItem):
    """A cell that sorts by its ``SORT_ROLE`` value (numbers as numbers)."""

    def __lt__(self, other: QTableWidgetItem) -> bool:
        a, b = self.data(SORT_ROLE), other.data(SORT_ROLE)
        if a is None or b is None or type(a) is not type(b):
            return super().__lt__(other)
        return a < b


class PerOpPanel(QWidget):
    op_requested = Signal(int)
    per_op_changed = Signal(object)  # the chosen PerOpResult, or None

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.results: list[Any] = []
        head = QHBoxLayout()
        head.addWidget(QLabel("<b>What ran, per op</b> (a click selects the op; View \u203a "
                              "Colour ops by colours the graph) on"))
        self.chooser = QComboBox()
        self.chooser.setToolTip("Which model and engine's profile to show (and colour the "
                                "graph with)")
        self.chooser.currentIndexChanged.connect(self._chosen)
        head.addWidget(self.chooser, 1)
        self.summary = QLabel(HINT)
        self.summary.setObjectName("hint")
        self.summary.setWordWrap(True)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.table = read_only_table(COLUMNS, "perOpTable")
        self.table.setSortingEnabled(True)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(COLUMNS.index("Kernel"), QHeaderView.ResizeMode.Interactive)
        self.table.setColumnWidth(COLUMNS.index("Kernel"), KERNEL_WIDTH)  # long names: tips
        self.table.cellClicked.connect(self._clicked)
        column = QVBoxLayout(self)
        column.setContentsMargins(4, 4, 4, 4)
        column.addLayout(head)
        column.addWidget(self.summary)
        column.addWidget(self.table, 1)

    @property
    def result(self) -> Any:
        """The profile shown, or None."""
        index = self.chooser.currentIndex()
        return self.results[index] if 0 <= index < len(self.results) else None

    def clear(self) -> None:
        self.results = []
        self.chooser.blockSignals(True)
        self.chooser.clear()
        self.chooser.blockSignals(False)
        self.table.setRowCount(0)
        self.summary.setText(HINT)
        self.per_op_changed.emit(None)

    def show_report(self, report: Any, prefer_engine: str = "") -> None:
        """The profiles of ``report`` (none: the hint); ``prefer_engine``'s is shown first."""
        self.clear()
        self.results = list(getattr(report, "per_op", []) or [])
        if not self.results:
            return
        self.chooser.blockSignals(True)
        for r in self.results:
            self.chooser.addItem(label(r))
        self.chooser.blockSignals(False)
        ok = [i for i, r in enumerate(self.results) if r.status is RunStatus.OK]
        best = [i for i in ok if self.results[i].engine == prefer_engine] + ok + [0]
        self.chooser.setCurrentIndex(best[0])
        self._chosen(best[0])

    def _chosen(self, index: int) -> None:
        result = self.result
        self.table.setSortingEnabled(False)
        self.table.setRowCount(0)
        if result is None:
            return
        self.summary.setText(summary_text(result))
        rows = result.ops if result.status is RunStatus.OK else []
        self.table.setRowCount(len(rows))
        for row, run in enumerate(rows):
            self._fill(row, run)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(5, Qt.SortOrder.DescendingOrder)
        self.per_op_changed.emit(result)

    def _fill(self, row: int, run: Any) -> None:
        keys = [run.op_id, run.op_type, run.decided, run.precision, run.kernel,
                run.time_ms if run.fused_into is None else -1.0, run.flag]
        for col, (text, key) in enumerate(zip(row_texts(run), keys, strict=True)):
            item = SortItem(text)
            item.setToolTip(f"{text}\n{run.detail}" if col == 4 else text)
            item.setData(SORT_ROLE, key)
            item.setData(Qt.ItemDataRole.UserRole, run.op_id)
            if col in (0, 5):
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            if col == 3:
                item.setBackground(QColor(RAN_FILL.get(run.precision, "#ffffff")))
                item.setForeground(QColor("#111111"))
            if col == 6 and run.flag:  # legible in light and dark palettes
                item.setBackground(QColor(FLAG_FILL))
                item.setForeground(QColor(FLAG_COLOUR).darker(130))
            self.table.setItem(row, col, item)

    def _clicked(self, row: int, _column: int) -> None:
        item = self.table.item(row, 0)
        op_id = item.data(Qt.ItemDataRole.UserRole) if item is not None else None
        if op_id is not None:
            self.op_requested.emit(int(op_id))
