"""Turning a layout into graph items: at once for small layouts, in time slices for big ones
(the event loop runs between the slices, so the window stays responsive while 20,000 items
are made)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QGraphicsItem, QGraphicsRectItem

from app.frame_items import FrameItem, frame_rects
from app.graph_items import BlockItem, EdgeItem, NodeItem, OpItem, TensorItem
from app.headless.layout import GraphLayout
from app.headless.view_graph import ViewFrame
from qcore.ir import Graph, Node

if TYPE_CHECKING:
    from app.graph_view import GraphView

SYNC_ITEMS = 300  # layouts with more nodes + edges are built in time slices
SLICE_MS = 25
StatusFn = Callable[[Node], tuple[str, bool]]


class SceneBuilder:
    """Fills a view's scene and its ``ops`` / ``tensors`` / ``blocks`` / ``block_of``."""

    def __init__(self, view: GraphView) -> None:
        self.view = view
        self._steps: Iterator[None] | None = None
        self._status: StatusFn = lambda node: ("undecided", False)
        self._done: Callable[[], None] | None = None
        self._frames: dict[str, ViewFrame] = {}
        self._timer = QTimer(view, interval=0)
        self._timer.timeout.connect(self._slice)

    @property
    def ready(self) -> bool:
        return self._steps is None

    def stop(self) -> None:
        self._timer.stop()
        self._steps, self._done = None, None

    def start(self, layout: GraphLayout, graph: Graph, status: StatusFn,
              blocks: dict[str, list[int]], done: Callable[[], None] | None,
              frames: dict[str, ViewFrame] | None = None) -> None:
        """Build the items of ``layout`` (and the ``frames`` of its expanded blocks), then
        call ``done``; ``status`` colours the ops."""
        self._status, self._done = status, done
        # a quick layout does not keep other nodes out of a frame: only Graphviz's gets them
        self._frames = {} if layout.quick else dict(frames or {})
        self._steps = self._items(layout, graph, blocks)
        if len(layout.nodes) + len(layout.edges) <= SYNC_ITEMS:
            for _ in self._steps:
                pass
            self._finish()
        else:
            self._timer.start()

    def _slice(self) -> None:
        if self._steps is None:
            self._timer.stop()
            return
        end = time.perf_counter() + SLICE_MS / 1000
        for _ in self._steps:
            if time.perf_counter() > end:
                return
        self._finish()

    def _finish(self) -> None:
        self._timer.stop()
        self._steps = None
        self._add_frames()
        self.view.refresh_blocks(self._status)
        done, self._done = self._done, None
        if done is not None:
            done()

    def _add_frames(self) -> None:
        """A frame behind the nodes of each expanded block."""
        view, frames = self.view, self._frames
        if not frames:
            return
        boxes = {item.box.key: item.mapRectToScene(item.rect)
                 for item in (*view.ops.values(), *view.tensors.values(), *view.blocks.values())}
        for key, (rect, depth) in frame_rects(frames, boxes).items():
            item = FrameItem(frames[key], rect, depth)
            view.scene().addItem(item)
            view.frames[key] = item

    def _items(self, layout: GraphLayout, graph: Graph,
               blocks: dict[str, list[int]]) -> Iterator[None]:
        view = self.view
        # Every item hangs under one root: Qt then walks one top-level item, not 20,000,
        # each time it looks for changed items (measured: the longest stall while a
        # 5,000-op graph is built fell from 190 ms to 40-60 ms)
        root = QGraphicsRectItem()
        root.setFlag(QGraphicsItem.GraphicsItemFlag.ItemHasNoContents, True)
        view.scene().addItem(root)
        nodes = {n.id: n for n in graph.nodes}
        items: dict[str, NodeItem] = {}
        for box in layout.nodes:
            if box.block:
                block = BlockItem(box, [nodes[i] for i in blocks.get(box.block, [])
                                        if i in nodes])
                view.blocks[box.block] = block
                for op_id in block.op_ids:
                    view.block_of[op_id] = box.block
                item: NodeItem = block
            elif box.op_id is not None and box.op_id in nodes:
                op = OpItem(box, nodes[box.op_id], graph)
                op.set_status(*self._status(op.node))  # statuses as we go: no lump at the end
                view.ops[box.op_id] = op
                item = op
            else:
                item = TensorItem(box, graph)
                view.tensors[box.tensor] = item  # type: ignore[assignment]
            items[box.key] = item
            item.setParentItem(root)
            yield
        for path in layout.edges:
            edge = EdgeItem(path)
            edge.ends = [i for i in (items.get(path.tail), items.get(path.head)) if i]
            for end in edge.ends:
                end.edges.append(edge)
            edge.setParentItem(root)
            yield
