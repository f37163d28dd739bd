"""The colour legend: one slim row under the graph (same colours as qcore.dot.LEGEND)."""

from __future__ import annotations

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPen, QResizeEvent
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QSizePolicy, QWidget

from app.graph_items import CHANGED_COLOR, PENDING_COLOR, SEARCH_COLOR, SQNR_COLOURS
from qcore.dot import HIGHLIGHT_COLOR, LEGEND, OP_BORDER

SHORT = {"int8": "INT8", "fp32": "FP32", "skipped": "skipped", "fake": "Q/DQ",
         "undecided": "undecided"}
# (fill, border, dashed, text, tooltip)
EXTRA = [
    ("#ffffff", PENDING_COLOR, True, "pending", "Changed in the configuration: takes effect at "
     "the next Convert (Ctrl+R)"),
    ("#ffffff", CHANGED_COLOR, False, "changed", "Ops this pass created or rewrote"),
    ("#ffffff", HIGHLIGHT_COLOR, False, "selected", "The selected op"),
    ("#ffffff", SEARCH_COLOR, False, "match", "Ops matching the search (Ctrl+F)"),
]


class Swatch(QWidget):
    def __init__(self, fill: str, border: str, dashed: bool, parent: QWidget | None = None):
        super().__init__(parent)
        self.fill, self.border, self.dashed = fill, border, dashed
        self.setFixedSize(QSize(22, 13))

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        pen = QPen(QColor(self.border), 1.0 if self.border == OP_BORDER else 2.0)
        if self.dashed:
            pen.setStyle(Qt.PenStyle.DashLine)
        painter.setPen(pen)
        painter.setBrush(QColor(self.fill))
        painter.drawRoundedRect(QRectF(1.5, 1.5, 19, 10), 3, 3)


class LegendWidget(QFrame):
    """Swatches with short names; each tooltip has the full meaning."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("legend")
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)  # may clip
        row = QHBoxLayout(self)
        row.setContentsMargins(10, 3, 10, 3)
        row.setSpacing(4)
        for name, colour, meaning in LEGEND:
            self._add(row, Swatch(colour, OP_BORDER, False), SHORT.get(name, meaning), meaning)
        self.core_width = row.sizeHint().width()  # the statuses: always shown
        row.addSpacing(10)
        self.extras: list[QWidget] = []  # the outlines and the SQNR note: hidden when narrow
        for fill, border, dashed, text, tip in EXTRA:
            self.extras += self._add(row, Swatch(fill, border, dashed), text, tip)
        row.addSpacing(10)
        sqnr = "SQNR badge: " + ", ".join(f"< {limit:.0f} dB" for limit, _ in SQNR_COLOURS)
        label = QLabel("dB = SQNR")
        label.setObjectName("legendText")
        label.setToolTip(sqnr + " are red, orange, yellow; green is fine (after Benchmark)")
        label.setMinimumWidth(label.sizeHint().width())
        row.addWidget(label)
        self.extras.append(label)
        row.addStretch(1)
        self.full_width = row.sizeHint().width()

    @staticmethod
    def _add(row: QHBoxLayout, swatch: Swatch, text: str, tip: str) -> list[QWidget]:
        label = QLabel(text)
        label.setObjectName("legendText")
        label.setMinimumWidth(label.sizeHint().width())
        for widget in (swatch, label):
            widget.setToolTip(tip)
            row.addWidget(widget)
        row.addSpacing(8)
        return [swatch, label]

    def resizeEvent(self, event: QResizeEvent) -> None:
        """Too narrow for every swatch: keep the statuses, never draw labels over others."""
        super().resizeEvent(event)
        narrow = event.size().width() < self.full_width
        for widget in self.extras:
            widget.setHidden(narrow)
