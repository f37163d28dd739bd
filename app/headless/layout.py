"""Graphviz does the layout; this module turns ``dot -Tjson`` into plain positions and splines.

Everything here is pure Python (no Qt) so it runs in a worker thread: :func:`compute_layout`
runs Graphviz on a snapshot, stopping it when the user cancels.
Scene coordinates have y down.
"""

from __future__ import annotations

import math
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from qcore.dot import tensor_keys
from qcore.ir import Graph
from qcore.render import RenderCancelled

POINTS_PER_INCH = 72.0
FAST_ABOVE_OPS = 800
FAST_FLAGS = ("-Gnslimit=1", "-Gnslimit1=1", "-Gmclimit=0.3", "-Gremincross=false",
              "-Gsplines=line")
Point = tuple[float, float]


@dataclass
class NodeBox:
    key: str  # "op_<id>" or "t_<k>"
    x: float  # centre
    y: float
    w: float
    h: float
    op_id: int | None = None
    tensor: str = ""
    graph_io: bool = False
    block: str = ""  # a collapsed repeated block (see app.headless.blocks)


@dataclass
class EdgePath:
    tail: str
    head: str
    points: list[Point]  # start, then (control, control, end) per cubic segment
    arrow: list[Point] = field(default_factory=list)


@dataclass
class GraphLayout:
    width: float
    height: float
    nodes: list[NodeBox]
    edges: list[EdgePath]
    op_ids: set[int] = field(default_factory=set)  # ops in this (maybe partial) view
    quick: bool = False  # the provisional layout of app.headless.fast_layout, not Graphviz's


def _floats(text: str) -> list[float]:
    return [float(v) for v in text.replace(",", " ").split()]


def _spline_from_pos(pos: str, flip: float) -> tuple[list[Point], list[Point]]:
    """Parse an edge ``pos`` ('e,x,y p0 p1 ...'); the arrow is a line to the end point."""
    end: Point | None = None
    points: list[Point] = []
    for token in pos.split():
        parts = token.split(",")
        if parts[0] == "e":
            end = (float(parts[1]), flip - float(parts[2]))
        elif parts[0] == "s":
            continue
        else:
            points.append((float(parts[0]), flip - float(parts[1])))
    arrow = [points[-1], end] if end and points else []
    return points, arrow


def _draw_points(ops: list[dict[str, Any]], kinds: str, flip: float) -> list[Point]:
    for op in ops or []:
        if op.get("op") in kinds and op.get("points"):
            return [(float(x), flip - float(y)) for x, y in op["points"]]
    return []


def parse_layout(data: dict[str, Any], graph: Graph | None = None) -> GraphLayout:
    """Positions and splines from Graphviz JSON (``-Tjson``); y is flipped to point down."""
    bb = _floats(data.get("bb", "0,0,0,0"))
    width, height = bb[2] - bb[0], bb[3] - bb[1]
    flip = bb[3]
    names = {v: k for k, v in tensor_keys(graph).items()} if graph is not None else {}
    io = (set(graph.input_names) | set(graph.output_names)) if graph is not None else set()
    nodes: list[NodeBox] = []
    by_gvid: dict[int, str] = {}
    op_ids: set[int] = set()
    for obj in data.get("objects", []):
        name = obj.get("name", "")
        if "pos" not in obj or not (name.startswith("op_") or name.startswith("t_")):
            continue
        x, y = _floats(obj["pos"])[:2]
        box = NodeBox(name, x - bb[0], flip - y, float(obj.get("width", 0.75)) * POINTS_PER_INCH,
                      float(obj.get("height", 0.5)) * POINTS_PER_INCH)
        if name.startswith("op_"):
            box.op_id = int(name[3:])
            op_ids.add(box.op_id)
        else:
            box.tensor = names.get(name, name)
            box.graph_io = box.tensor in io
        by_gvid[obj.get("_gvid", -1)] = name
        nodes.append(box)
    edges: list[EdgePath] = []
    for edge in data.get("edges", []):
        tail, head = by_gvid.get(edge.get("tail", -1)), by_gvid.get(edge.get("head", -1))
        if tail is None or head is None:
            continue
        points = _draw_points(edge.get("_draw_", []), "b", flip)
        arrow = _draw_points(edge.get("_hdraw_", []), "Pp", flip)
        if not points and "pos" in edge:
            points, arrow = _spline_from_pos(edge["pos"], flip)
        if points:
            edges.append(EdgePath(tail, head, points, arrow))
    return GraphLayout(width, height, nodes, edges, op_ids)


def run_dot_json(dot_text: str, timeout: float | None = 600,
                 cancelled: Callable[[], bool] | None = None,
                 flags: tuple[str, ...] = ()) -> dict[str, Any]:
    """``dot -Tjson`` through ``qcore.render``; a Cancel kills Graphviz at once."""
    from qcore import render  # looked up at call time so tests can patch find_dot

    return render.layout_json(dot_text, timeout, cancelled, flags)


LayoutCancelled = RenderCancelled  # the user cancelled a layout; Graphviz was stopped


def compute_layout(graph: Graph, timeout: float | None = 600,
                   cancelled: Callable[[], bool] | None = None, **_: Any) -> GraphLayout:
    """Graphviz's layout of every op of a snapshot, with the node sizes of the app's labels
    (blocking: call it from a worker)."""
    from app.headless.view_graph import plain_view
    from app.headless.view_plan import lay_out_view

    return lay_out_view(plain_view(graph, tensor_keys(graph)), graph, timeout, cancelled)


def parse_plain(text: str, make: Callable[[str], NodeBox | None]) -> GraphLayout:
    """Positions and splines from ``dot -Tplain`` (inches, y up); ``make(name)`` gives the
    box to fill in, or None to skip the node."""
    from app.headless.fast_layout import arrow_head

    boxes: dict[str, NodeBox] = {}
    edges: list[EdgePath] = []
    height = width = 0.0
    for line in text.splitlines():
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "graph":
            width, height = float(parts[2]) * POINTS_PER_INCH, float(parts[3]) * POINTS_PER_INCH
        elif parts[0] == "node":
            box = make(parts[1].strip('"'))
            if box is not None:
                box.x = float(parts[2]) * POINTS_PER_INCH
                box.y = height - float(parts[3]) * POINTS_PER_INCH
                box.w = float(parts[4]) * POINTS_PER_INCH
                box.h = float(parts[5]) * POINTS_PER_INCH
                boxes[box.key] = box
        elif parts[0] == "edge":
            tail, head, count = parts[1].strip('"'), parts[2].strip('"'), int(parts[3])
            if tail not in boxes or head not in boxes or count < 2:
                continue
            vals = parts[4:4 + 2 * count]
            points = [(float(vals[i]) * POINTS_PER_INCH,
                       height - float(vals[i + 1]) * POINTS_PER_INCH)
                      for i in range(0, len(vals), 2)]
            (px, py), (lx, ly) = points[-2], points[-1]
            norm = math.hypot(lx - px, ly - py) or 1.0
            tip = (lx + (lx - px) / norm * 10, ly + (ly - py) / norm * 10)
            edges.append(EdgePath(tail, head, points, arrow_head(points[-1], tip)))
    layout = GraphLayout(width, height, list(boxes.values()), edges)
    layout.op_ids = {b.op_id for b in layout.nodes if b.op_id is not None}
    return layout


def run_dot(dot_text: str, fmt: str, timeout: float | None,
            cancelled: Callable[[], bool] | None, flags: tuple[str, ...] = ()) -> str:
    """``dot -T<fmt>`` with graph attribute ``flags``; its output as text."""
    from qcore import render  # looked up at call time so tests can patch find_dot

    return render.render(dot_text, fmt, timeout, cancelled, flags).decode("utf-8", "replace")


def neighbourhood(graph: Graph, centre: int | Iterable[int], depth: int) -> Graph:
    """A copy of ``graph`` with only the ops within ``depth`` tensor hops of op ``centre``
    (or of any of several ops)."""
    producers = graph.producers()
    consumers = graph.consumers()
    by_id = {n.id: n for n in graph.nodes}
    centres = {centre} if isinstance(centre, int) else set(centre)
    keep = {c for c in centres if c in by_id}
    if not keep and isinstance(centre, int) and graph.nodes:
        keep = {graph.nodes[0].id}
    queue = deque((op_id, 0) for op_id in keep)
    while queue:
        op_id, dist = queue.popleft()
        node = by_id.get(op_id)
        if node is None or dist >= depth:
            continue
        near = [producers[t] for t in node.inputs if t in producers]
        near += [c for t in node.outputs for c in consumers.get(t, [])]
        for other in near:
            if other.id not in keep:
                keep.add(other.id)
                queue.append((other.id, dist + 1))
    part = graph.copy()
    part.nodes = [n for n in part.nodes if n.id in keep]
    used = {t for n in part.nodes for t in list(n.inputs) + list(n.outputs)}
    part.inputs = [v for v in part.inputs if v.name in used]
    part.outputs = [v for v in part.outputs if v.name in used]
    return part


class LayoutCache:
    """The most recent layouts, keyed by (result generation, snapshot index, view)."""

    def __init__(self, size: int = 48) -> None:
        self.size = size
        self._items: OrderedDict[tuple, GraphLayout] = OrderedDict()

    def get(self, key: tuple) -> GraphLayout | None:
        layout = self._items.get(key)
        if layout is not None:
            self._items.move_to_end(key)
        return layout

    def put(self, key: tuple, layout: GraphLayout) -> None:
        self._items[key] = layout
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)

    def clear(self) -> None:
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)
