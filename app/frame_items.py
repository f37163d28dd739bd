"""Frames around expanded blocks: a labelled rectangle behind the ops of each open name level
(``/encoder/layer.3``, and inside it ``attention``, ...), nested like the levels.

Graphviz lays each expanded block out as a cluster, so no other node falls inside its frame;
the frame is the bounding box of its nodes (and inner frames) plus a margin and the label's
height, which stays inside the room Graphviz kept (``fast_layout.FRAME_MARGIN``, ``FRAME_PT``).
Colours come from the application palette (its highlight), the label's text is black or
white, whichever reads better on it, so frames stay legible on light and dark desktops.
"""

from __future__ import annotations

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QFontMetricsF, QGuiApplication, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import QGraphicsItem, QStyleOptionGraphicsItem, QWidget

from app.headless.view_graph import ViewFrame
from app.label_block import font

PAD = 6.0  # around the nodes (Graphviz keeps FRAME_MARGIN = 10 pt)
LABEL_H = 16.0  # the label tab's height (Graphviz keeps ~17 pt for a 13 pt label)
LABEL_PX = 11
Z_FRAME = -2.0  # behind edges (0) and nodes (1); inner frames a little higher


def _luminance(colour: QColor) -> float:
    def channel(c: float) -> float:
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    return (0.2126 * channel(colour.redF()) + 0.7152 * channel(colour.greenF())
            + 0.0722 * channel(colour.blueF()))


def contrast(a: QColor, b: QColor) -> float:
    """WCAG contrast ratio of two colours."""
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def text_on(fill: QColor) -> QColor:
    """Black or white, whichever reads better on ``fill``."""
    black, white = QColor("#000000"), QColor("#ffffff")
    return black if contrast(fill, black) >= contrast(fill, white) else white


class FrameItem(QGraphicsItem):
    """An expanded block's frame; a double click on its label folds the block back."""

    def __init__(self, frame: ViewFrame, rect: QRectF, depth: int) -> None:
        super().__init__()
        self.key, self.parent_key, self.label = frame.key, frame.parent, frame.label
        self.members = set(frame.members)
        self.rect = rect
        palette = QGuiApplication.palette()
        self.colour = QColor(palette.color(palette.ColorRole.Highlight))
        self.text_colour = text_on(self.colour)
        label_font = font(LABEL_PX, True)
        width = QFontMetricsF(label_font).horizontalAdvance(self.label) + 12
        self.tab = QRectF(rect.left(), rect.top(), min(width, rect.width()), LABEL_H)
        self._font = label_font
        self.setZValue(Z_FRAME + 0.01 * depth)
        self.setToolTip(f"<b>{frame.key}</b><br>double-click the label to collapse it")

    def boundingRect(self) -> QRectF:
        return self.rect.adjusted(-1, -1, 1, 1)

    def shape(self) -> QPainterPath:
        path = QPainterPath()  # only the label answers the mouse: the inside pans as usual
        path.addRect(self.tab)
        return path

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem,
              widget: QWidget | None = None) -> None:
        lod = option.levelOfDetailFromTransform(painter.worldTransform())
        tint = QColor(self.colour)
        tint.setAlpha(16)
        painter.setBrush(tint)
        painter.setPen(QPen(self.colour, 1.4))
        painter.drawRoundedRect(self.rect, 6, 6)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(self.colour)
        painter.drawRoundedRect(self.tab, 4, 4)
        if lod * LABEL_PX < 4:
            return
        painter.setFont(self._font)
        painter.setPen(self.text_colour)
        painter.drawText(self.tab.adjusted(6, 0, -4, 0),
                         Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft,
                         QFontMetricsF(self._font).elidedText(
                             self.label, Qt.TextElideMode.ElideRight, self.tab.width() - 10))


def frame_rects(frames: dict[str, ViewFrame],
                boxes: dict[str, QRectF]) -> dict[str, tuple[QRectF, int]]:
    """Each frame's rectangle (around its members' ``boxes`` and its inner frames) and
    depth; frames with nothing drawn inside are left out."""
    depth: dict[str, int] = {}
    for key in frames:
        d, up = 0, frames[key].parent
        while up:
            d, up = d + 1, frames[up].parent if up in frames else ""
        depth[key] = d
    rects: dict[str, tuple[QRectF, int]] = {}
    for key in sorted(frames, key=lambda k: -depth[k]):  # inner frames first
        inside = [boxes[m] for m in frames[key].members if m in boxes]
        inside += [rects[c][0] for c, f in frames.items() if f.parent == key and c in rects]
        if not inside:
            continue
        rect = QRectF(inside[0])
        for other in inside[1:]:
            rect = rect.united(other)
        rects[key] = (rect.adjusted(-PAD, -PAD - LABEL_H, PAD, PAD), depth[key])
    return rects
