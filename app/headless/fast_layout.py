"""An immediate layered layout in pure Python, and the DOT text Graphviz refines it from.

:func:`quick_layout` is linear in nodes + edges (longest-path layers, one barycentre sweep,
straight edges), so the first view of a 5,000-op graph is ready in well under a second while
Graphviz works in the background. Node sizes fit the labels the app draws
(:mod:`app.headless.label_metrics`); both :func:`quick_layout` and :func:`view_dot` use them, so
Graphviz places the very boxes the app draws.
"""

from __future__ import annotations

import math
from collections import defaultdict

from app.headless.label_metrics import block_size, op_size, tensor_size
from app.headless.layout import EdgePath, GraphLayout, NodeBox
from app.headless.politeness import Politeness
from app.headless.view_graph import ViewGraph, ViewNode

RANK_GAP = 34.0
NODE_GAP = 22.0
ARROW = 9.0
FRAME_PT = 13  # the frame label's font size for Graphviz: it keeps room for the app's label
FRAME_MARGIN = 10.0  # points between a frame's nodes and its edge (Graphviz's cluster margin)


def node_size(node: ViewNode) -> tuple[float, float]:
    if node.kind == "block":
        return block_size(node.lines)
    if node.kind == "op":
        return op_size(node.lines)
    return tensor_size(node.lines)


def _box(node: ViewNode, x: float, y: float, w: float, h: float) -> NodeBox:
    return NodeBox(node.key, x, y, w, h, op_id=node.op_id, tensor=node.tensor,
                   graph_io=node.graph_io, block=node.block)


def arrow_head(tip_from: tuple[float, float], end: tuple[float, float],
               size: float = ARROW) -> list[tuple[float, float]]:
    """A triangle pointing from ``tip_from`` towards ``end``, its tip at ``end``."""
    dx, dy = end[0] - tip_from[0], end[1] - tip_from[1]
    norm = math.hypot(dx, dy) or 1.0
    ux, uy = dx / norm, dy / norm
    bx, by = end[0] - ux * size, end[1] - uy * size
    return [(bx - uy * size * 0.38, by + ux * size * 0.38), end,
            (bx + uy * size * 0.38, by - ux * size * 0.38)]


def quick_layout(view: ViewGraph) -> GraphLayout:
    polite = Politeness()
    order = {n.key: i for i, n in enumerate(view.nodes)}
    preds: dict[str, list[str]] = defaultdict(list)
    for tail, head in view.edges:
        if order[tail] < order[head]:  # back edges (cycles of collapsed blocks) do not rank
            preds[head].append(tail)
    succs: dict[str, list[str]] = defaultdict(list)
    for head, tails in preds.items():
        for tail in tails:
            succs[tail].append(head)
    rank: dict[str, int] = {}
    for node in view.nodes:
        rank[node.key] = max((rank[p] + 1 for p in preds[node.key]), default=0)
    for node in view.nodes:  # sources (weights' DQ, inputs) sit right above their first user
        if not preds[node.key] and succs[node.key]:
            rank[node.key] = max(0, min(rank[s] for s in succs[node.key]) - 1)
    rows: dict[int, list[ViewNode]] = defaultdict(list)
    for node in view.nodes:
        rows[rank[node.key]].append(node)
    sizes = {n.key: node_size(n) for n in view.nodes}
    xs: dict[str, float] = {}
    boxes: dict[str, NodeBox] = {}
    y = 0.0
    for r in sorted(rows):
        polite()
        row = rows[r]
        want = {n.key: (sum(xs[p] for p in preds[n.key]) / len(preds[n.key])
                        if preds[n.key] else 0.0) for n in row}
        row.sort(key=lambda n: (want[n.key], order[n.key]))
        height = max(sizes[n.key][1] for n in row)
        right = -math.inf
        for node in row:
            w, h = sizes[node.key]
            x = max(want[node.key], right + NODE_GAP + w / 2)
            right = x + w / 2
            xs[node.key] = x
            boxes[node.key] = _box(node, x, y + height / 2, w, h)
        y += height + RANK_GAP
    left = min((b.x - b.w / 2 for b in boxes.values()), default=0.0)
    width = max((b.x + b.w / 2 for b in boxes.values()), default=0.0) - left
    for box in boxes.values():
        box.x -= left
    edges = []
    for tail, head in view.edges:
        polite()
        a, b = boxes[tail], boxes[head]
        start = (a.x, a.y + a.h / 2)
        end = (b.x, b.y - b.h / 2)
        edges.append(EdgePath(tail, head, [start, end], arrow_head(start, end)))
    layout = GraphLayout(width, max(y - RANK_GAP, 0.0), list(boxes.values()), edges)
    layout.op_ids = {b.op_id for b in layout.nodes if b.op_id is not None}
    layout.quick = True
    return layout


def view_dot(view: ViewGraph, clusters: bool = True) -> str:
    """DOT text for Graphviz with fixed node sizes (the labels are drawn by the app); each
    expanded block is a cluster, so Graphviz keeps its nodes together and every other node
    outside the frame drawn around them."""
    out = ["digraph G {", '  graph [rankdir="TB" nodesep="0.3" ranksep="0.35"];',
           '  node [fixedsize="true" label=""];', '  edge [arrowsize="0.6"];']
    sizes = {n.key: node_size(n) for n in view.nodes}
    kinds = {n.key: n.kind for n in view.nodes}

    def node_line(key: str, indent: str) -> str:
        w, h = sizes[key]
        shape = "ellipse" if kinds[key] == "tensor" else "box"
        return f'{indent}{key} [shape="{shape}" width="{w / 72:.3f}" height="{h / 72:.3f}"];'

    framed: set[str] = set()
    if clusters and view.frames:
        index = {key: i for i, key in enumerate(view.frames)}

        def cluster(key: str, indent: str) -> None:
            frame = view.frames[key]
            label = frame.label.replace("\\", "\\\\").replace('"', '\\"')
            out.append(f"{indent}subgraph cluster_{index[key]} {{")
            out.append(f'{indent}  graph [label="{label}" labeljust="l" fontsize="{FRAME_PT}" '
                       f'fontname="Helvetica" margin="{FRAME_MARGIN:g}"];')
            for member in frame.members:
                out.append(node_line(member, indent + "  "))
                framed.add(member)
            for child in view.frames.values():
                if child.parent == key:
                    cluster(child.key, indent + "  ")
            out.append(f"{indent}}}")

        for frame in view.frames.values():
            if not frame.parent:
                cluster(frame.key, "  ")
    out.extend(node_line(n.key, "  ") for n in view.nodes if n.key not in framed)
    out.extend(f"  {tail} -> {head};" for tail, head in view.edges)
    out.append("}")
    return "\n".join(out) + "\n"
