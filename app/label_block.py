"""Labels of the graph's items: centred lines of text that fit inside their box at every zoom.

The boxes are sized for their labels (``app.headless.label_metrics``), so a label is normally
drawn at its full size. Where it still does not fit (another font, a quick layout), it shrinks
to ``MIN_PX``, then elides: lines end in an ellipsis and the lines that find no room are left
out (the item's tooltip has the whole text). Text is drawn in item coordinates, so the fit
holds at any zoom; zoomed far out, the lines become grey bars in the same places.
"""

from __future__ import annotations

import math

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QPainter

from app.headless import label_metrics
from app.headless.label_metrics import OP_PAD_X, OP_PAD_Y, TextMetrics

FONT_FAMILY = "Helvetica"
MIN_PX = 6
MIN_READABLE_PX = 4.5  # below this on screen, labels become grey bars
ELLIPSIS = "\u2026"


def font(px: float, bold: bool = False) -> QFont:
    f = QFont(FONT_FAMILY)
    f.setStyleHint(QFont.StyleHint.SansSerif)
    f.setPixelSize(max(1, round(px)))
    f.setBold(bold)
    return f


def measure_metrics() -> TextMetrics:
    """The advance widths of the font labels are drawn with, for the layout's box sizes."""
    size = 100.0
    regular, bold = QFontMetricsF(font(size)), QFontMetricsF(font(size, True))
    chars = [chr(c) for c in range(32, 127)]
    return TextMetrics(tuple(regular.horizontalAdvance(c) / size for c in chars),
                       tuple(bold.horizontalAdvance(c) / size for c in chars),
                       regular.height() / size,
                       regular.horizontalAdvance("W") / size)


def use_app_font() -> None:
    """Size the layout's boxes for the font really used (once, from the UI thread)."""
    label_metrics.use_metrics(measure_metrics())


class LabelBlock:
    """Lines of text centred in ``rect`` (a rectangle, or with ``ellipse`` the ellipse inside
    it), at ``px`` or smaller so that they fit; ``elided`` when some text had to go."""

    def __init__(self, lines: list[str], rect: QRectF, px: float, bold_first: bool,
                 ellipse: bool = False, pad_x: float = OP_PAD_X,
                 pad_y: float = OP_PAD_Y) -> None:
        self.rect, self.ellipse = QRectF(rect), ellipse
        self.pad_x, self.pad_y, self.bold_first = pad_x, pad_y, bold_first
        self.elided = False
        size = max(MIN_PX, math.floor(px))
        while True:
            self._set(lines, size)
            if self._fits() or size <= MIN_PX:
                break
            size -= 1
        if not self._fits():
            self._elide(lines)

    # ---- fitting --------------------------------------------------------------------------
    def _set(self, lines: list[str], px: float) -> None:
        self.px = px
        self.lines = list(lines)
        self.fonts = [font(px, self.bold_first and i == 0) for i in range(len(lines))]
        self.line_h = QFontMetricsF(font(px)).height()
        self.widths = [QFontMetricsF(f).horizontalAdvance(t)
                       for f, t in zip(self.fonts, self.lines, strict=True)]

    def _top(self, count: int | None = None) -> float:
        n = len(self.lines) if count is None else count
        return self.rect.center().y() - self.line_h * n / 2

    def room(self, i: int, count: int | None = None) -> float:
        """The width line ``i`` (of ``count`` lines) may take."""
        if not self.ellipse:
            return self.rect.width() - 2 * self.pad_x
        a, b = self.rect.width() / 2, self.rect.height() / 2
        top = self._top(count) - self.rect.center().y()
        far = max(abs(top + i * self.line_h), abs(top + (i + 1) * self.line_h))
        return 2 * a * math.sqrt(max(0.0, 1 - (far / b) ** 2)) - self.pad_x

    def _height_room(self) -> float:
        return self.rect.height() - 2 * self.pad_y

    def _fits(self) -> bool:
        if self.line_h * len(self.lines) > self._height_room() + 0.01:
            return False
        return all(w <= self.room(i) + 0.01 for i, w in enumerate(self.widths))

    def _elide(self, lines: list[str]) -> None:
        """At ``MIN_PX``: keep the lines that fit in height, cut each to its room."""
        self.elided = True
        keep = max(1, min(len(lines), int(self._height_room() // self.line_h)))
        kept = list(lines[:keep])
        if keep < len(lines):
            kept[-1] = kept[-1] + " " + ELLIPSIS
        self._set(kept, self.px)
        for i, (line, f) in enumerate(zip(self.lines, self.fonts, strict=True)):
            room = max(0.0, self.room(i))
            text = QFontMetricsF(f).elidedText(line, Qt.TextElideMode.ElideRight, room)
            if text != line:
                self.lines[i] = text
        self.widths = [QFontMetricsF(f).horizontalAdvance(t)
                       for f, t in zip(self.fonts, self.lines, strict=True)]

    # ---- geometry and drawing -------------------------------------------------------------
    def rects(self) -> list[QRectF]:
        """Where each line is drawn: its advance width by the line height, centred."""
        top, cx = self._top(), self.rect.center().x()
        return [QRectF(cx - w / 2, top + i * self.line_h, w, self.line_h)
                for i, w in enumerate(self.widths)]

    def bounds(self) -> QRectF:
        """The union of the lines' rectangles (what a test checks against the box)."""
        out = QRectF()
        for r in self.rects():
            out = out.united(r)
        return out

    def paint(self, painter: QPainter, color: QColor, lod: float) -> None:
        rects = self.rects()
        if self.px * lod < MIN_READABLE_PX:
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(QColor(0, 0, 0, 60))
            for r in rects[:3]:
                painter.drawRect(QRectF(r.left(), r.top() + r.height() * 0.3, r.width(),
                                        r.height() * 0.4))
            return
        painter.setPen(color)
        for r, line, f in zip(rects, self.lines, self.fonts, strict=True):
            painter.setFont(f)
            painter.drawText(r.adjusted(-40, -2, 40, 2), Qt.AlignmentFlag.AlignCenter, line)
