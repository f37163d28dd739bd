"""The items of the graph scene: ops (rounded boxes), tensors (ellipses) and edges (splines)."""

from __future__ import annotations

from html import escape

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import (
    QBrush,
    QColor,
    QFontMetricsF,
    QPainter,
    QPainterPath,
    QPainterPathStroker,
    QPen,
    QPolygonF,
)
from PySide6.QtWidgets import QGraphicsItem, QStyleOptionGraphicsItem, QWidget

from app.headless.label_metrics import BLOCK_BAR, BLOCK_PX, OP_PX, TENSOR_PAD, TENSOR_PX
from app.headless.layout import EdgePath, NodeBox
from app.headless.per_op_view import FLAG_COLOUR, OpMark
from app.label_block import LabelBlock
from app.label_block import font as _font
from qcore.ir import Graph, Node
from qcore.labels import (
    COLORS,
    EDGE_COLOR,
    HIGHLIGHT_COLOR,
    OP_BORDER,
    describe_status,
    op_label_lines,
    tensor_fill,
    tensor_label_lines,
)

SEARCH_COLOR = "#e07b00"
CHANGED_COLOR = "#2a7fd4"
PENDING_COLOR = "#b3261e"
# Per-tensor SQNR thresholds (dB), as in Model Explorer's node data: redder = worse.
SQNR_COLOURS = [(10.0, "#f4a6a0"), (20.0, "#fbc99a"), (30.0, "#fdeaa0")]
SQNR_GOOD = "#d5ecd2"


def sqnr_colour(value: float) -> str:
    """Background for an SQNR value; '' when it is good (>= 30 dB)."""
    for limit, colour in SQNR_COLOURS:
        if value < limit:
            return colour
    return ""


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
        self.mark: OpMark | None = None  # what ran for it, from a per-op profile
        self.label = LabelBlock(op_label_lines(graph, node), self.rect, OP_PX, True)
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
        if self.mark is not None:
            lines += [f"<span style='color:{FLAG_COLOUR}'><b>{t}</b></span>"
                      if t.startswith("FLAG") else t for t in map(escape, self.mark.tip)]
        self.setToolTip("<br>".join(lines))

    def set_mark(self, mark: OpMark | None) -> None:
        """What ran for this op (its fill, time badge and flag), or None."""
        if mark != self.mark:
            self.mark = mark
            self._tooltip()
            self.update()

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
        fill = QColor(self.mark.fill if self.mark and self.mark.fill else
                      COLORS.get(self.status, COLORS["undecided"]))
        painter.setBrush(QBrush(fill))
        normal = QColor(CHANGED_COLOR) if self.changed else QColor(OP_BORDER)
        pen = self._border(normal, 2.2 if self.changed else 1.0)
        if self.pending:
            pen = QPen(QColor(PENDING_COLOR), max(pen.widthF(), 2.0), Qt.PenStyle.DashLine)
        painter.setPen(pen)
        painter.drawPath(self.path)
        dark = fill.lightnessF() < 0.45
        self.label.paint(painter, QColor("#ffffff" if dark else "#111111"), lod)
        if lod <= 0.25:
            return
        if self.mark is not None and self.mark.badge:
            self._pill(painter, self.mark.badge, "#ffffff")
        elif self.sqnr is not None:
            self._pill(painter, f"{self.sqnr:.0f} dB", sqnr_colour(self.sqnr) or SQNR_GOOD)
        if self.mark is not None and self.mark.flag:
            self._paint_flag(painter)

    def _pill(self, painter: QPainter, text: str, fill: str) -> None:
        """A small rounded badge on the box's top right corner."""
        font = _font(9, True)
        width = QFontMetricsF(font).horizontalAdvance(text) + 8
        pill = QRectF(self.rect.right() - width + 4, self.rect.top() - 8, width, 14)
        painter.setPen(QPen(QColor("#7a7a7a"), 0.8))
        painter.setBrush(QColor(fill))
        painter.drawRoundedRect(pill, 6, 6)
        painter.setFont(font)
        painter.setPen(QColor("#222222"))
        painter.drawText(pill, Qt.AlignmentFlag.AlignCenter, text)

    def _paint_flag(self, painter: QPainter) -> None:
        """A '!' on the top left corner: what ran contradicts the conversion's decision."""
        disc = QRectF(self.rect.left() - 7, self.rect.top() - 7, 15, 15)
        painter.setPen(QPen(QColor("#ffffff"), 1.2))
        painter.setBrush(QColor(FLAG_COLOUR))
        painter.drawEllipse(disc)
        painter.setFont(_font(11, True))
        painter.drawText(disc, Qt.AlignmentFlag.AlignCenter, "!")


class TensorItem(NodeItem):
    """An activation tensor or a graph input / output: an ellipse with name, shape, scale."""

    def __init__(self, box: NodeBox, graph: Graph) -> None:
        super().__init__(box)
        self.tensor = box.tensor
        self.fill = QColor(tensor_fill(graph, box.tensor))
        self.label = LabelBlock(tensor_label_lines(graph, box.tensor), self.rect, TENSOR_PX,
                                False, ellipse=True, pad_x=TENSOR_PAD, pad_y=TENSOR_PAD / 2)
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
        self.label.paint(painter, QColor("#333333"), lod)


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
        self.label = self._label()
        self.path = QPainterPath()
        self.path.addRoundedRect(self.rect, 10, 10)

    def _lines(self) -> list[str]:
        share = 100 * self.int8 / max(self.real, 1)
        return [self.key, f"{len(self.nodes)} ops \u00b7 {share:.0f}% INT8",
                "double-click to expand"]

    def _label(self) -> LabelBlock:
        text = self.rect.adjusted(0, 0, 0, -BLOCK_BAR)
        return LabelBlock(self._lines(), text, BLOCK_PX, True)

    def set_int8(self, count: int, real: int) -> None:
        """``count`` INT8 ops among the ``real`` (not Q/DQ) ones."""
        if (count, real) != (self.int8, self.real):
            self.int8, self.real = count, real
            self.label = self._label()
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
        self.label.paint(painter, QColor("#111111"), lod)
