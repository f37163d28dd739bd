"""What a graph view shows, worked out in a worker: the neighbourhood / collapsed-block view
of a snapshot, its quick layout for the first paint, and the Graphviz layout that follows."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from app.headless.blocks import Block, detect_blocks
from app.headless.fast_layout import quick_layout, view_dot
from app.headless.layout import (
    FAST_ABOVE_OPS,
    FAST_FLAGS,
    GraphLayout,
    LayoutCancelled,
    NodeBox,
    neighbourhood,
    parse_layout,
    parse_plain,
    run_dot,
    run_dot_json,
    tensor_keys,
)
from app.headless.view_graph import ViewGraph, build_view
from qcore.ir import Graph
from qcore.render import GraphvizMissing

QUICK_ABOVE_NODES = 200  # views with more drawn nodes get a quick layout first


@dataclass(frozen=True)
class ViewSpec:
    kind: str = "all"  # "all" | "near" | "blocks" | "changes"
    centre: int = -1
    depth: int = 6
    expanded: frozenset[str] = frozenset()
    ops: frozenset[int] = frozenset()  # "changes": the ops a pass added or rewrote

    def key(self) -> tuple:
        if self.kind == "near":
            return ("near", self.centre, self.depth)
        if self.kind == "changes":
            return ("changes", tuple(sorted(self.ops)), self.depth)
        if self.kind == "blocks":
            return ("blocks", tuple(sorted(self.expanded)))
        return ("all",)


@dataclass
class ViewPlan:
    spec: ViewSpec
    graph: Graph  # what is drawn: the snapshot or its neighbourhood
    view: ViewGraph
    blocks: dict[str, Block]  # every repeated block of the snapshot
    quick: GraphLayout | None = None
    collapsed: dict[str, list[int]] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return len(self.view.nodes)


def plan_view(graph: Graph, spec: ViewSpec, blocks: dict[str, Block] | None = None,
              **_: Any) -> ViewPlan:
    """Blocks, the drawn sub-graph and (for big views) a quick layout. Pure Python."""
    if blocks is None:
        blocks = detect_blocks(graph)
    shown = graph
    if spec.kind == "near":
        centre = spec.centre
        if graph.node_by_id(centre) is None:
            centre = graph.nodes[0].id if graph.nodes else -1
        shown = neighbourhood(graph, centre, spec.depth)
    elif spec.kind == "changes":
        shown = neighbourhood(graph, spec.ops, spec.depth)
    use = blocks if spec.kind == "blocks" else {}
    view = build_view(shown, use, set(spec.expanded), tensor_keys(shown))
    plan = ViewPlan(spec, shown, view, blocks, collapsed=view.blocks)
    if plan.size > QUICK_ABOVE_NODES:
        plan.quick = quick_layout(view)
    return plan


def graphviz_layout(plan: ViewPlan, timeout: float | None = 600,
                    cancelled: Callable[[], bool] | None = None, **_: Any) -> GraphLayout:
    """Graphviz's layout of a plan (blocking: call it from a worker), with the node sizes of
    the app's labels (``view_dot``)."""
    return lay_out_view(plan.view, plan.graph, timeout, cancelled)


def lay_out_view(view: ViewGraph, graph: Graph, timeout: float | None = 600,
                 cancelled: Callable[[], bool] | None = None) -> GraphLayout:
    """Graphviz's layout of ``view`` (of ``graph``). Big views get Graphviz's effort limits
    and are read back from ``-Tplain`` (a few lines per node, parsed in small steps) rather
    than JSON, whose single ``json.loads`` of tens of MB would hold the GIL and freeze the UI
    thread (on a 2,700-op QDQ transformer the default layout ran for over 10 minutes, these
    flags made it about 2 minutes)."""
    try:
        return _lay_out(view, graph, timeout, cancelled, clusters=True)
    except RuntimeError as exc:  # Graphviz gave up on the clusters ("trouble in init_rank")
        if not view.frames or isinstance(exc, (LayoutCancelled, GraphvizMissing)) \
                or "failed" not in str(exc):
            raise
        return _lay_out(view, graph, timeout, cancelled, clusters=False)


def _lay_out(view: ViewGraph, graph: Graph, timeout: float | None,
             cancelled: Callable[[], bool] | None, clusters: bool) -> GraphLayout:
    text = view_dot(view, clusters)
    big = (len(view.nodes) if view.blocks else len(graph.nodes)) > FAST_ABOVE_OPS
    if not big and not view.blocks:
        return parse_layout(run_dot_json(text, timeout, cancelled), graph)
    nodes = {n.key: n for n in view.nodes}
    text = run_dot(text, "plain", timeout, cancelled, FAST_FLAGS if big else ())

    def make(key: str) -> NodeBox | None:
        node = nodes.get(key)
        if node is None:
            return None
        return NodeBox(key, 0, 0, 0, 0, op_id=node.op_id, tensor=node.tensor,
                       graph_io=node.graph_io, block=node.block)

    return parse_plain(text, make)
