"""The items of the graph scene: ops (rounded boxes), tensors (ellipses) and edges (splines)."""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import (
    QBrush,
    QColor,
    QFont,
    QFontMetricsF,
    QPainter,
    QPainterPath,
    QPainterPathStroker,
    QPen,
    QPolygonF,
)
from PySide6.QtWidgets import QGraphicsItem, QStyleOptionGraphicsItem, QWidget

from app.headless.layout import EdgePath, NodeBox
from qcore.dot import (
    COLORS,
    EDGE_COLOR,
    HIGHLIGHT_COLOR,
    OP_BORDER,
    describe_status,
    op_label_lines,
    tensor_fill,
    tensor_label_lines,
)
from qcore.ir import Graph, Node

SEARCH_COLOR = "#e07b00"
CHANGED_COLOR = "#2a7fd4"
PENDING_COLOR = "#b3261e"
FONT_FAMILY = "Helvetica"
# Per-tensor SQNR thresholds (dB), as in Model Explorer's node data: redder = worse.
SQNR_COLOURS = [(10.0, "#f4a6a0"), (20.0, "#fbc99a"), (30.0, "#fdeaa0")]
SQNR_GOOD = "#d5ecd2"
MIN_READABLE_PX = 4.5  # below this on screen, labels become grey bars


def sqnr_colour(value: float) -> str:
    """Background for an SQNR value; '' when it is good (>= 30 dB)."""
    for limit, colour in SQNR_COLOURS:
        if value < limit:
            return colour
    return ""


def _font(px: float, bold: bool = False) -> QFont:
    font = QFont(FONT_FAMILY)
    font.setStyleHint(QFont.StyleHint.SansSerif)
    font.setPixelSize(max(1, round(px)))
    font.setBold(bold)
    return font


class LabelBlock:
    """Centred lines of text that shrink to fit a width; bars when zoomed far out."""

    def __init__(self, lines: list[str], width: float, px: float, bold_first: bool) -> None:
        self.lines = lines
        fonts = [_font(px, bold_first and i == 0) for i in range(len(lines))]
        pairs = zip(fonts, lines, strict=True)
        widest = max((QFontMetricsF(f).horizontalAdvance(t) for f, t in pairs), default=1.0)
        scale = min(1.0, (width - 10) / widest) if widest > 0 else 1.0
        self.px = max(5.0, px * scale)
        self.fonts = [_font(self.px, bold_first and i == 0) for i in range(len(lines))]
        self.line_h = QFontMetricsF(self.fonts[0]).height() if lines else 0.0
        self.widths = [QFontMetricsF(f).horizontalAdvance(t)
                       for f, t in zip(self.fonts, lines, strict=True)]

    def paint(self, painter: QPainter, centre: QPointF, color: QColor, lod: float) -> None:
        top = centre.y() - self.line_h * len(self.lines) / 2
        if self.px * lod < MIN_READABLE_PX:
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(QColor(0, 0, 0, 60))
            for i, w in enumerate(self.widths[:3]):
                y = top + self.line_h * (i + 0.3)
                painter.drawRect(QRectF(centre.x() - w / 2, y, w, self.line_h * 0.4))
            return
        painter.setPen(color)
        for i, (line, font) in enumerate(zip(self.lines, self.fonts, strict=True)):
            painter.setFont(font)
            rect = QRectF(centre.x() - 2000, top + i * self.line_h, 4000, self.line_h)
            painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, line)


class NodeItem(QGraphicsItem):
    """Shared behaviour of op and tensor items: geometry, hover, connected edges."""

    def __init__(self, box: NodeBox) -> None:
        super().__init__()
        self.box = box
        self.rect = QRectF(-box.w / 2, -box.h / 2, box.w, box.h)
        self.edges: list[EdgeItem] = []
        self.hovered = False
        self.search_hit = False
        self.setPos(box.x, box.y)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIsSelectable, True)
        self.setAcceptHoverEvents(True)
        self.setZValue(1)
        self.setCursor(Qt.CursorShape.PointingHandCursor)

    def boundingRect(self) -> QRectF:
        return self.rect.adjusted(-6, -9, 6, 6)

    def hoverEnterEvent(self, event) -> None:
        self.hovered = True
        self._light_edges()
        super().hoverEnterEvent(event)

    def hoverLeaveEvent(self, event) -> None:
        self.hovered = False
        self._light_edges()
        super().hoverLeaveEvent(event)

    def itemChange(self, change, value):
        if change == QGraphicsItem.GraphicsItemChange.ItemSelectedHasChanged:
            self._light_edges()
        return super().itemChange(change, value)

    def _light_edges(self) -> None:
        lit = self.hovered or self.isSelected()
        for edge in self.edges:
            edge.set_lit(lit or edge.other_end_lit(self))
        self.update()

    def _border(self, normal: QColor, width: float) -> QPen:
        if self.isSelected():
            return QPen(QColor(HIGHLIGHT_COLOR), 3.2)
        if self.search_hit:
            return QPen(QColor(SEARCH_COLOR), 3.0)
        if self.hovered:
            return QPen(QColor("#222222"), width + 1.0)
        return QPen(normal, width)

    def _halo(self, painter: QPainter, path: QPainterPath) -> None:
        if self.isSelected() or self.search_hit:
            color = QColor(HIGHLIGHT_COLOR if self.isSelected() else SEARCH_COLOR)
            color.setAlpha(60)
            painter.setPen(QPen(color, 9))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawPath(path)


class OpItem(NodeItem):
    """An op: a rounded box filled by its (possibly pending) quantization status."""

    def __init__(self, box: NodeBox, node: Node, graph: Graph) -> None:
        super().__init__(box)
        self.node = node
        self.op_id = node.id
        self.status = "undecided"
        self.pending = False
        self.changed = False  # created or rewritten by the pass being shown
        self.sqnr: float | None = None  # worst SQNR (dB) of the op's outputs, if measured
        self.label = LabelBlock(op_label_lines(graph, node), box.w, 11, True)
        self.path = QPainterPath()
        self.path.addRoundedRect(self.rect, 6, 6)
        self._tooltip()

    def _tooltip(self) -> None:
        lines = [f"<b>{self.node.label}</b>"]
        if self.node.name:
            lines.append(self.node.name)
        lines.append(describe_status(self.node))
        if self.pending:
            lines.append(f"<i>after the next Convert: {self.status}</i>")
        if self.node.fused:
            lines.append("fused: " + ", ".join(self.node.fused))
        if self.sqnr is not None:
            lines.append(f"worst output SQNR: {self.sqnr:.1f} dB")
        self.setToolTip("<br>".join(lines))

    def set_sqnr(self, value: float | None) -> None:
        if value != self.sqnr:
            self.sqnr = value
            self._tooltip()
            self.update()

    def set_status(self, status: str, pending: bool) -> None:
        if (status, pending) != (self.status, self.pending):
            self.status, self.pending = status, pending
            self._tooltip()
            self.update()

    def shape(self) -> QPainterPath:
        return self.path

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem,
              widget: QWidget | None = None) -> None:
        lod = option.levelOfDetailFromTransform(painter.worldTransform())
        self._halo(painter, self.path)
        painter.setBrush(QBrush(QColor(COLORS.get(self.status, COLORS["undecided"]))))
        normal = QColor(CHANGED_COLOR) if self.changed else QColor(OP_BORDER)
        pen = self._border(normal, 2.2 if self.changed else 1.0)
        if self.pending:
            pen = QPen(QColor(PENDING_COLOR), max(pen.widthF(), 2.0), Qt.PenStyle.DashLine)
        painter.setPen(pen)
        painter.drawPath(self.path)
        self.label.paint(painter, QPointF(0, 0), QColor("#111111"), lod)
        if self.sqnr is not None and lod > 0.25:
            self._paint_sqnr(painter)

    def _paint_sqnr(self, painter: QPainter) -> None:
        text = f"{self.sqnr:.0f} dB"
        font = _font(8, True)
        width = QFontMetricsF(font).horizontalAdvance(text) + 8
        pill = QRectF(self.rect.right() - width + 4, self.rect.top() - 7, width, 13)
        painter.setPen(QPen(QColor("#7a7a7a"), 0.8))
        painter.setBrush(QColor(sqnr_colour(self.sqnr) or SQNR_GOOD))
        painter.drawRoundedRect(pill, 6, 6)
        painter.setFont(font)
        painter.setPen(QColor("#222222"))
        painter.drawText(pill, Qt.AlignmentFlag.AlignCenter, text)


class TensorItem(NodeItem):
    """An activation tensor or a graph input / output: an ellipse with name, shape, scale."""

    def __init__(self, box: NodeBox, graph: Graph) -> None:
        super().__init__(box)
        self.tensor = box.tensor
        self.fill = QColor(tensor_fill(graph, box.tensor))
        self.label = LabelBlock(tensor_label_lines(graph, box.tensor), box.w * 0.92, 9, False)
        self.path = QPainterPath()
        self.path.addEllipse(self.rect)
        self.setToolTip(box.tensor + (" (graph input/output)" if box.graph_io else ""))

    def shape(self) -> QPainterPath:
        return self.path

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem,
              widget: QWidget | None = None) -> None:
        lod = option.levelOfDetailFromTransform(painter.worldTransform())
        self._halo(painter, self.path)
        painter.setBrush(self.fill)
        painter.setPen(self._border(QColor("#8a8a8a"), 2.0 if self.box.graph_io else 1.0))
        painter.drawPath(self.path)
        self.label.paint(painter, QPointF(0, 0), QColor("#333333"), lod)


class EdgeItem(QGraphicsItem):
    """A Graphviz spline with its arrowhead; lit when an end is hovered or selected."""

    def __init__(self, edge: EdgePath) -> None:
        super().__init__()
        self.edge = edge
        self.ends: list[NodeItem] = []
        self.lit = False
        self.path = QPainterPath(QPointF(*edge.points[0]))
        pts = edge.points
        for i in range(1, len(pts) - 2, 3):
            self.path.cubicTo(QPointF(*pts[i]), QPointF(*pts[i + 1]), QPointF(*pts[i + 2]))
        if len(pts) % 3 != 1:  # not a bezier list: plain polyline
            self.path = QPainterPath(QPointF(*pts[0]))
            for p in pts[1:]:
                self.path.lineTo(QPointF(*p))
        self.arrow = QPolygonF([QPointF(*p) for p in edge.arrow])
        stroker = QPainterPathStroker()
        stroker.setWidth(6)
        self._shape = stroker.createStroke(self.path)
        self._bounds = self.path.boundingRect().united(self.arrow.boundingRect()).adjusted(
            -4, -4, 4, 4)
        self.setZValue(0)

    def other_end_lit(self, item: NodeItem) -> bool:
        return any(e is not item and (e.hovered or e.isSelected()) for e in self.ends)

    def set_lit(self, lit: bool) -> None:
        if lit != self.lit:
            self.lit = lit
            self.setZValue(0.5 if lit else 0)
            self.update()

    def boundingRect(self) -> QRectF:
        return self._bounds

    def shape(self) -> QPainterPath:
        return self._shape

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem,
              widget: QWidget | None = None) -> None:
        color = QColor(HIGHLIGHT_COLOR if self.lit else EDGE_COLOR)
        painter.setPen(QPen(color, 2.2 if self.lit else 1.1))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawPath(self.path)
        if len(self.arrow) >= 3:
            painter.setBrush(color)
            painter.drawPolygon(self.arrow)
        elif len(self.arrow) == 2:
            painter.drawLine(self.arrow[0], self.arrow[1])


class BlockItem(NodeItem):
    """A collapsed repeated block: name, op count and INT8 share; double-click expands it."""

    def __init__(self, box: NodeBox, nodes: list[Node]) -> None:
        super().__init__(box)
        self.key = box.block
        self.nodes = nodes
        self.op_ids = {n.id for n in nodes}
        self.int8, self.real = 0, len(nodes)
        self.label = LabelBlock(self._lines(), box.w, 12, True)
        self.path = QPainterPath()
        self.path.addRoundedRect(self.rect, 10, 10)

    def _lines(self) -> list[str]:
        share = 100 * self.int8 / max(self.real, 1)
        return [self.key, f"{len(self.nodes)} ops \u00b7 {share:.0f}% INT8",
                "double-click to expand"]

    def set_int8(self, count: int, real: int) -> None:
        """``count`` INT8 ops among the ``real`` (not Q/DQ) ones."""
        if (count, real) != (self.int8, self.real):
            self.int8, self.real = count, real
            self.label = LabelBlock(self._lines(), self.box.w, 12, True)
            self.setToolTip(f"<b>{self.key}</b><br>{len(self.nodes)} ops, {count} INT8"
                            "<br>double-click to expand")
            self.update()

    def shape(self) -> QPainterPath:
        return self.path

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem,
              widget: QWidget | None = None) -> None:
        lod = option.levelOfDetailFromTransform(painter.worldTransform())
        self._halo(painter, self.path)
        painter.setBrush(QColor("#f3f1ea"))
        painter.setPen(self._border(QColor(OP_BORDER), 1.6))
        painter.drawPath(self.path)
        bar = QRectF(self.rect.left() + 10, self.rect.bottom() - 12, self.rect.width() - 20, 6)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(COLORS["fp32"]))
        painter.drawRect(bar)
        painter.setBrush(QColor(COLORS["int8"]))
        share = self.int8 / max(self.real, 1)
        painter.drawRect(QRectF(bar.left(), bar.top(), bar.width() * share, bar.height()))
        self.label.paint(painter, QPointF(0, -5), QColor("#111111"), lod)
