"""The colour legend: one slim row under the graph (same colours as qcore.labels.LEGEND), or the
colours of a per-op profile when the ops are coloured by what ran or by time."""

from __future__ import annotations

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QLinearGradient, QPainter, QPen, QResizeEvent
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QSizePolicy, QWidget

from app.graph_items import CHANGED_COLOR, PENDING_COLOR, SEARCH_COLOR, SQNR_COLOURS
from app.headless.per_op_view import FLAG_COLOUR, NOT_RUN_FILL, RAN_FILL, ms_text
from qcore.bench.nodedata import TIME_GRADIENT
from qcore.labels import HIGHLIGHT_COLOR, LEGEND, OP_BORDER

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
RAN = [
    (RAN_FILL["int8"], "ran INT8", "The engine ran the op with an INT8 kernel"),
    (RAN_FILL["float"], "ran float", "The engine ran the op in float"),
    (RAN_FILL["q/dq"], "Q/DQ, other", "Quantize / Dequantize, or a kernel of no precision"),
    (NOT_RUN_FILL, "no kernel", "No kernel of its own: folded away, or not in the INT8 model"),
]
FLAG_TIP = ("Flagged: skipped by id but the engine ran it INT8, or made INT8 but the engine "
            "ran it in float (the engine's reason is in the op's tooltip)")


class Swatch(QWidget):
    def __init__(self, fill: str, border: str, dashed: bool, parent: QWidget | None = None,
                 gradient: bool = False):
        super().__init__(parent)
        self.fill, self.border, self.dashed, self.gradient = fill, border, dashed, gradient
        self.setFixedSize(QSize(44 if gradient else 22, 13))

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        pen = QPen(QColor(self.border), 1.0 if self.border == OP_BORDER else 2.0)
        if self.dashed:
            pen.setStyle(Qt.PenStyle.DashLine)
        painter.setPen(pen)
        box = QRectF(1.5, 1.5, self.width() - 3, 10)
        if self.gradient:
            ramp = QLinearGradient(box.left(), 0, box.right(), 0)
            for stop, colour in TIME_GRADIENT:
                ramp.setColorAt(stop, QColor(colour))
            painter.setBrush(ramp)
        else:
            painter.setBrush(QColor(self.fill))
        painter.drawRoundedRect(box, 3, 3)


class FlagSwatch(QWidget):
    """The '!' badge of a flagged op."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFixedSize(QSize(15, 15))

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(QPen(QColor("#ffffff"), 1.0))
        painter.setBrush(QColor(FLAG_COLOUR))
        painter.drawEllipse(QRectF(1, 1, 13, 13))
        font = painter.font()
        font.setBold(True)
        painter.setFont(font)
        painter.drawText(QRectF(1, 1, 13, 13), Qt.AlignmentFlag.AlignCenter, "!")


class LegendWidget(QFrame):
    """Swatches with short names; each tooltip has the full meaning. ``set_colour`` switches
    between the statuses and the per-op colours (what ran, time)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("legend")
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)  # may clip
        row = QHBoxLayout(self)
        row.setContentsMargins(10, 3, 10, 3)
        row.setSpacing(4)
        self.status: list[QWidget] = []
        for name, colour, meaning in LEGEND:
            self.status += self._add(row, Swatch(colour, OP_BORDER, False),
                                     SHORT.get(name, meaning), meaning)
        self.ran: list[QWidget] = []
        for colour, text, tip in RAN:
            self.ran += self._add(row, Swatch(colour, OP_BORDER, False), text, tip)
        self.time: list[QWidget] = self._add(row, Swatch("", OP_BORDER, False, gradient=True),
                                             "0 ms", "Time per op: white is none, red the "
                                             "longest op")
        self.time_label = self.time[-1]
        assert isinstance(self.time_label, QLabel)
        self.flag = self._add(row, FlagSwatch(), "flagged", FLAG_TIP)
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
        self.mode, self.profiled = "status", False
        self.set_colour("status", False)

    @staticmethod
    def _add(row: QHBoxLayout, swatch: QWidget, text: str, tip: str) -> list[QWidget]:
        """A swatch and its label; the gap after them is the label's (so a hidden pair
        leaves none)."""
        label = QLabel(text)
        label.setObjectName("legendText")
        label.setContentsMargins(0, 0, 8, 0)
        label.setMinimumWidth(label.sizeHint().width())
        for widget in (swatch, label):
            widget.setToolTip(tip)
            row.addWidget(widget)
        return [swatch, label]

    def set_colour(self, mode: str, profiled: bool, longest_ms: float = 0.0,
                   flagged: bool = False) -> None:
        """Show the swatches of ``mode``; ``profiled``: a per-op profile is shown, and
        ``flagged`` ops of it carry the flag badge; ``longest_ms`` labels the time ramp."""
        self.mode, self.profiled = mode, profiled
        shown = {"status": self.status, "ran": self.ran, "time": self.time}.get(mode, [])
        for group in (self.status, self.ran, self.time):
            for widget in group:
                widget.setVisible(group is shown)
        for widget in self.flag:
            widget.setVisible(profiled and flagged)
        label = self.time_label
        assert isinstance(label, QLabel)
        label.setText(f"0 \u2013 {ms_text(longest_ms)} ms per op" if longest_ms else "0 ms")
        label.setMinimumWidth(label.sizeHint().width())
        self._fit(self.width())

    @property
    def full_width(self) -> int:
        """The width the row needs with every swatch of the current mode and the extras: the
        widths of its shown items and spacers, and the spacing between them."""
        row = self.layout()
        widths = []
        for i in range(row.count()):
            item = row.itemAt(i)
            widget = item.widget()
            if widget is None:
                widths.append(item.sizeHint().width())
            elif widget in self.extras or not widget.isHidden():
                widths.append(max(widget.sizeHint().width(), widget.minimumWidth()))
        margins = row.contentsMargins()
        return margins.left() + margins.right() + sum(widths) + row.spacing() * len(widths)

    def _fit(self, width: int) -> None:
        narrow = width < self.full_width
        for widget in self.extras:
            widget.setHidden(narrow)

    def resizeEvent(self, event: QResizeEvent) -> None:
        """Too narrow for every swatch: keep the statuses, never draw labels over others."""
        super().resizeEvent(event)
        self._fit(event.size().width())
