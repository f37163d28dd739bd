"""The colour legend floating over the graph view (same colours as qcore.dot.LEGEND)."""

from __future__ import annotations

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPen
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from app.graph_items import CHANGED_COLOR, PENDING_COLOR, SEARCH_COLOR
from qcore.dot import HIGHLIGHT_COLOR, LEGEND, OP_BORDER

# (fill, border, dashed, text)
_EXTRA = [
    ("#ffffff", PENDING_COLOR, True, "pending: changes at next Convert"),
    ("#ffffff", CHANGED_COLOR, False, "changed by this pass"),
    ("#ffffff", HIGHLIGHT_COLOR, False, "selected"),
    ("#ffffff", SEARCH_COLOR, False, "search match"),
]


class Swatch(QWidget):
    def __init__(self, fill: str, border: str, dashed: bool, parent: QWidget | None = None):
        super().__init__(parent)
        self.fill, self.border, self.dashed = fill, border, dashed
        self.setFixedSize(QSize(26, 14))

    def paintEvent(self, event) -> None:  # noqa: ANN001
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        thick = self.border != OP_BORDER
        pen = QPen(QColor(self.border), 2.0 if thick else 1.0)
        if self.dashed:
            pen.setStyle(Qt.PenStyle.DashLine)
        painter.setPen(pen)
        painter.setBrush(QColor(self.fill))
        painter.drawRoundedRect(QRectF(1.5, 1.5, 23, 11), 3, 3)


class LegendWidget(QFrame):
    """A compact, semi-opaque card; the title toggles the details."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("legend")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setAutoFillBackground(True)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(8, 6, 8, 6)
        outer.setSpacing(3)
        title = QLabel("<b>Legend</b>")
        outer.addWidget(title)
        for _, colour, meaning in LEGEND:
            outer.addLayout(self._row(Swatch(colour, OP_BORDER, False), meaning))
        for fill, border, dashed, text in _EXTRA:
            outer.addLayout(self._row(Swatch(fill, border, dashed), text))
        self.adjustSize()

    def _row(self, swatch: Swatch, text: str) -> QHBoxLayout:
        row = QHBoxLayout()
        row.setSpacing(6)
        row.addWidget(swatch)
        label = QLabel(text)
        label.setObjectName("legendText")
        row.addWidget(label, 1)
        return row
