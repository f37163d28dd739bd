"""The graph canvas: a QGraphicsView that draws a laid-out snapshot as items.

It hit-tests, selects, hovers and highlights; zooms (wheel, keys, fit) and pans (drag on the
background). It knows nothing of sessions or workers: callers hand it a layout and a graph.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from PySide6.QtCore import QPoint, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QDragEnterEvent,
    QDragMoveEvent,
    QDropEvent,
    QFont,
    QMouseEvent,
    QPainter,
    QWheelEvent,
)
from PySide6.QtWidgets import (
    QGraphicsScene,
    QGraphicsSimpleTextItem,
    QGraphicsView,
    QMenu,
    QWidget,
)

from app.drops import dropped_path
from app.frame_items import FrameItem
from app.graph_items import BlockItem, NodeItem, OpItem, TensorItem
from app.headless.layout import GraphLayout
from app.headless.search import match_ops
from app.headless.view_graph import ViewFrame
from app.label_block import use_app_font
from app.scene_builder import SceneBuilder, StatusFn
from qcore.ir import Graph

MIN_SCALE, MAX_SCALE = 0.02, 6.0
MARGIN = 40.0
HOME_SCALE = 0.92  # the starting zoom of a graph too big to fit: 11 px tensor text is 10 px


class GraphView(QGraphicsView):
    op_selected = Signal(int)
    tensor_selected = Signal(str)
    selection_cleared = Signal()
    op_context_menu = Signal(int, QPoint)  # op id, global position
    op_activated = Signal(int)  # double click
    zoom_changed = Signal(float)
    block_activated = Signal(str)  # double click (or "Expand") on a collapsed block
    block_fold_parent = Signal(str)  # "Collapse the enclosing block" on a collapsed block
    frame_folded = Signal(str)  # double click on an expanded block's frame label
    path_dropped = Signal(str)  # a model, Paddle folder or config dropped on the graph

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        use_app_font()
        self.setScene(QGraphicsScene(self))
        self.setRenderHints(QPainter.RenderHint.Antialiasing
                            | QPainter.RenderHint.TextAntialiasing)
        self.setDragMode(QGraphicsView.DragMode.NoDrag)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.SmartViewportUpdate)
        self.setBackgroundBrush(QColor("#fbfbfc"))
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.ops: dict[int, OpItem] = {}
        self.tensors: dict[str, TensorItem] = {}
        self.graph: Graph | None = None
        self._quiet = False
        self._pan_from: QPoint | None = None
        self._pan_moved = False
        self.blocks: dict[str, BlockItem] = {}
        self.block_of: dict[int, str] = {}  # op id -> the collapsed block drawn for it
        self.frames: dict[str, FrameItem] = {}  # expanded block -> its frame
        self.parent_of: dict[str, str] = {}  # block -> the block holding it (set by the panel)
        self.builder = SceneBuilder(self)
        self.scene().selectionChanged.connect(self._on_selection)

    # ---- content ------------------------------------------------------------------------
    def clear(self) -> None:
        self.builder.stop()
        self._quiet = True
        self.scene().clear()
        self._quiet = False
        self.ops, self.tensors, self.graph = {}, {}, None
        self.blocks, self.block_of, self.frames = {}, {}, {}

    def show_message(self, text: str) -> None:
        """Replace the graph with a centred message (no layout, Graphviz missing, ...)."""
        self.clear()
        item = QGraphicsSimpleTextItem(text)
        font = QFont()
        font.setPointSize(12)
        item.setFont(font)
        item.setBrush(QColor("#555555"))
        self.scene().addItem(item)
        rect = item.boundingRect()
        self.scene().setSceneRect(rect.adjusted(-200, -200, 200, 200))
        self.resetTransform()
        self.centerOn(rect.center())

    def show_layout(self, layout: GraphLayout, graph: Graph, status: StatusFn,
                    blocks: dict[str, list[int]] | None = None,
                    done: Callable[[], None] | None = None,
                    frames: dict[str, ViewFrame] | None = None) -> None:
        """Draw ``layout``; ``blocks`` maps collapsed block keys to their op ids, ``frames``
        are the expanded blocks to draw a frame around. Small layouts are built at once;
        big ones in time slices (see ``SceneBuilder``), then ``done`` is called."""
        self.clear()
        self.graph = graph
        self.scene().setSceneRect(QRectF(-MARGIN, -MARGIN, layout.width + 2 * MARGIN,
                                         layout.height + 2 * MARGIN))
        self.builder.start(layout, graph, status, blocks or {}, done, frames)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if dropped_path(event.mimeData()) is not None:
            event.acceptProposedAction()
        else:
            super().dragEnterEvent(event)

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:
        if dropped_path(event.mimeData()) is not None:
            event.acceptProposedAction()
        else:
            super().dragMoveEvent(event)

    def dropEvent(self, event: QDropEvent) -> None:
        path = dropped_path(event.mimeData())
        if path is None:
            super().dropEvent(event)
            return
        event.acceptProposedAction()
        self.path_dropped.emit(path)

    def items_ready(self) -> bool:
        return self.builder.ready

    def refresh_status(self, status: StatusFn) -> None:
        for item in self.ops.values():
            item.set_status(*status(item.node))
        self.refresh_blocks(status)

    def refresh_blocks(self, status: StatusFn) -> None:
        for block in self.blocks.values():
            kinds = [status(n)[0] for n in block.nodes]
            block.set_int8(kinds.count("int8"), len(kinds) - kinds.count("fake"))

    def set_sqnr(self, sqnr: dict[int, float]) -> None:
        for op_id, item in self.ops.items():
            item.set_sqnr(sqnr.get(op_id))

    def mark_changed(self, ids: Iterable[int]) -> None:
        ids = set(ids)
        for op_id, item in self.ops.items():
            if item.changed != (op_id in ids):
                item.changed = op_id in ids
                item.update()

    # ---- selection ------------------------------------------------------------------------
    def selected_op(self) -> int | None:
        for item in self.scene().selectedItems():
            if isinstance(item, OpItem):
                return item.op_id
        return None

    def select_op(self, op_id: int | None, centre: bool = True, quiet: bool = False) -> bool:
        self._quiet = quiet
        try:
            self.scene().clearSelection()
            item = self.ops.get(op_id) if op_id is not None else None
            if item is None:
                block = self.blocks.get(self.block_of.get(op_id, ""))  # type: ignore[arg-type]
                if block is not None:  # shown inside a collapsed block: select the block
                    block.setSelected(True)
                    if centre:
                        self.centre_on(block)
                return False
            item.setSelected(True)
            if centre:
                self.centre_on(item)
            return True
        finally:
            self._quiet = False

    def centre_on(self, item: NodeItem) -> None:
        self.centerOn(item)

    def _on_selection(self) -> None:
        if self._quiet:
            return
        selected = self.scene().selectedItems()
        if not selected:
            self.selection_cleared.emit()
        elif isinstance(selected[0], OpItem):
            self.op_selected.emit(selected[0].op_id)
        elif isinstance(selected[0], TensorItem):
            self.tensor_selected.emit(selected[0].tensor)

    # ---- search ---------------------------------------------------------------------------
    def find(self, text: str) -> list[int]:
        """Ops of the shown graph matching ``text`` (see :func:`match_ops`), top to bottom;
        every match gets an orange border."""
        hits = set(match_ops([item.node for item in self.ops.values()], text))
        for op_id, item in self.ops.items():
            if item.search_hit != (op_id in hits):
                item.search_hit = op_id in hits
                item.update()
        inside = match_ops([n for b in self.blocks.values() for n in b.nodes], text)
        hit_blocks = {self.block_of[i] for i in inside}
        for key, block in self.blocks.items():
            if block.search_hit != (key in hit_blocks):
                block.search_hit = key in hit_blocks
                block.update()
        return sorted(hits, key=lambda i: (self.ops[i].pos().y(), self.ops[i].pos().x()))

    # ---- zoom and pan ---------------------------------------------------------------------
    def scale_factor(self) -> float:
        return self.transform().m11()

    def set_scale(self, scale: float) -> None:
        scale = max(MIN_SCALE, min(MAX_SCALE, scale))
        factor = scale / self.scale_factor()
        if abs(factor - 1) > 1e-6:
            self.scale(factor, factor)
            self.zoom_changed.emit(self.scale_factor())

    def zoom_by(self, factor: float) -> None:
        self.set_scale(self.scale_factor() * factor)

    def zoom_in(self) -> None:
        anchor = self.transformationAnchor()
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.zoom_by(1.25)
        self.setTransformationAnchor(anchor)

    def zoom_out(self) -> None:
        anchor = self.transformationAnchor()
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.zoom_by(0.8)
        self.setTransformationAnchor(anchor)

    def actual_size(self) -> None:
        self.set_scale(1.0)

    def fit(self, max_scale: float = 1.5) -> None:
        rect = self.scene().itemsBoundingRect().adjusted(-20, -20, 20, 20)
        if rect.isEmpty():
            return
        self.fitInView(rect, Qt.AspectRatioMode.KeepAspectRatio)
        if self.scale_factor() > max_scale:
            self.set_scale(max_scale)
        self.zoom_changed.emit(self.scale_factor())

    def home(self) -> None:
        """A readable start: fit if that stays legible (tensor labels ~10 px and more),
        else ``HOME_SCALE`` at the graph's first input."""
        rect = self.scene().itemsBoundingRect()
        if rect.isEmpty():
            return
        view = self.viewport().rect()
        fit = min(view.width() / max(rect.width() + 40, 1), view.height() / max(rect.height(), 1))
        if fit >= HOME_SCALE:
            self.fit(max_scale=1.2)
            return
        self.set_scale(HOME_SCALE)
        half_w = view.width() / 2 / self.scale_factor()
        half_h = view.height() / 2 / self.scale_factor()
        nodes = [*self.tensors.values(), *self.ops.values(), *self.blocks.values()]
        first = min(nodes, key=lambda item: (item.pos().y(), item.pos().x()), default=None)
        x = first.pos().x() if first is not None else rect.center().x()
        x = max(rect.left() + half_w - 20, min(x, rect.right() - half_w + 20))
        self.centerOn(QPointF(x, rect.top() + half_h - 10))

    def wheelEvent(self, event: QWheelEvent) -> None:
        scroll = Qt.KeyboardModifier.ShiftModifier | Qt.KeyboardModifier.AltModifier
        if event.modifiers() & scroll:
            super().wheelEvent(event)
            return
        delta = event.angleDelta().y() or event.angleDelta().x()
        if delta:
            self.zoom_by(1.0015 ** delta)
        event.accept()

    def mousePressEvent(self, event: QMouseEvent) -> None:
        on_node = isinstance(self.itemAt(event.position().toPoint()), NodeItem)
        left = event.button() == Qt.MouseButton.LeftButton
        if (left and not on_node) or event.button() == Qt.MouseButton.MiddleButton:
            self._pan_from, self._pan_moved = event.position().toPoint(), False
            self.viewport().setCursor(Qt.CursorShape.ClosedHandCursor)
            event.accept()
            return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if self._pan_from is not None:
            pos = event.position().toPoint()
            delta = pos - self._pan_from
            if delta.manhattanLength() > 2:
                self._pan_moved = True
            self._pan_from = pos
            self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() - delta.x())
            self.verticalScrollBar().setValue(self.verticalScrollBar().value() - delta.y())
            event.accept()
            return
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._pan_from is not None:
            if not self._pan_moved and event.button() == Qt.MouseButton.LeftButton:
                self.scene().clearSelection()  # a plain click on the background
            self._pan_from = None
            self.viewport().unsetCursor()
            event.accept()
            return
        super().mouseReleaseEvent(event)

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:
        item = self.itemAt(event.position().toPoint())
        if isinstance(item, OpItem):
            self.op_activated.emit(item.op_id)
        elif isinstance(item, BlockItem):
            self.block_activated.emit(item.key)
            event.accept()
            return
        elif isinstance(item, FrameItem):
            self.frame_folded.emit(item.key)
            event.accept()
            return
        super().mouseDoubleClickEvent(event)

    def contextMenuEvent(self, event) -> None:
        item = self.itemAt(event.pos())
        if isinstance(item, OpItem):
            if not item.isSelected():
                self.scene().clearSelection()
                item.setSelected(True)
            self.op_context_menu.emit(item.op_id, event.globalPos())
            event.accept()
            return
        if isinstance(item, BlockItem):
            self.block_menu(item).popup(event.globalPos())
            event.accept()
            return
        super().contextMenuEvent(event)

    def block_menu(self, item: BlockItem) -> QMenu:
        """A collapsed block's menu: expand it, or collapse the block holding it."""
        menu = QMenu(self)
        menu.addAction("Expand", lambda: self.block_activated.emit(item.key))
        parent = self.parent_of.get(item.key, "")
        if parent:
            menu.addAction(f"Collapse {parent}",
                           lambda: self.block_fold_parent.emit(item.key))
        return menu
