"""What one graph view draws: its ops, tensors and collapsed blocks (``build_view``), in
topological order. Pure Python (no Qt) so it runs in a worker."""

from __future__ import annotations

import heapq
from collections import defaultdict
from dataclasses import dataclass, field

from app.headless.blocks import Block, split_constants
from app.headless.politeness import Politeness
from qcore.ir import Graph, Node
from qcore.labels import op_label_lines, tensor_label_lines


@dataclass
class ViewNode:
    key: str  # "op_<id>", "t_<k>" or "b_<i>"
    kind: str  # "op" | "tensor" | "block"
    lines: list[str]
    op_id: int | None = None
    tensor: str = ""
    block: str = ""
    graph_io: bool = False


@dataclass
class ViewFrame:
    """An expanded block drawn as a labelled frame around its nodes (a Graphviz cluster)."""

    key: str  # the block ("/encoder/layer.3/attention")
    parent: str  # the enclosing expanded block ("" at the top)
    label: str  # its own name level ("attention" inside "/encoder/layer.3")
    members: list[str] = field(default_factory=list)  # view node keys directly inside


@dataclass
class ViewGraph:
    """What one view draws: ops, tensors and collapsed blocks, roughly in topological order."""

    nodes: list[ViewNode]
    edges: list[tuple[str, str]]
    blocks: dict[str, list[int]] = field(default_factory=dict)  # collapsed block -> op ids
    frames: dict[str, ViewFrame] = field(default_factory=dict)  # expanded block -> frame

    def frame_nodes(self, key: str) -> set[str]:
        """The view nodes inside frame ``key``, nested frames included."""
        out = set(self.frames[key].members)
        for frame in self.frames.values():
            if frame.parent == key:
                out |= self.frame_nodes(frame.key)
        return out


def block_label(key: str, count: int) -> list[str]:
    return [key, f"{count} ops", "double-click to expand"]


def is_open(key: str, blocks: dict[str, Block], expanded: set[str] | frozenset[str]) -> bool:
    """Block ``key`` ("" for the whole graph) and every block holding it are expanded."""
    while key:
        if key not in expanded or key not in blocks:
            return False
        key = blocks[key].parent
    return True


def build_view(graph: Graph, blocks: dict[str, Block], expanded: set[str],
               tensor_keys: dict[str, str]) -> ViewGraph:
    """The view of ``graph`` with every block not in ``expanded`` drawn as one node."""
    unit: dict[int, str] = {n.id: f"op_{n.id}" for n in graph.nodes}
    collapsed: dict[str, list[int]] = {}
    block_key: dict[str, str] = {}
    for i, (key, block) in enumerate(blocks.items()):
        if key in expanded or not is_open(block.parent, blocks, expanded):
            continue  # open, or inside a collapsed block
        collapsed[key] = list(block.op_ids)
        block_key[f"b_{i}"] = key
        for op_id in block.op_ids:
            unit[op_id] = f"b_{i}"
    io = set(graph.input_names) | set(graph.output_names)
    nodes: list[ViewNode] = []
    seen: set[str] = set()

    def add_tensor(name: str) -> None:
        key = tensor_keys.get(name)
        if key is not None and key not in seen:
            seen.add(key)
            nodes.append(ViewNode(key, "tensor", tensor_label_lines(graph, name),
                                  tensor=name, graph_io=name in io))

    producers = graph.producers()
    consumers = graph.consumers()
    hidden = _shared_constants(graph, unit, consumers)
    for name in graph.input_names:
        add_tensor(name)
    edges: set[tuple[str, str]] = set()
    polite = Politeness()
    for node in graph.nodes:
        polite()
        if node.id in hidden:
            continue
        me = unit[node.id]
        if me not in seen:
            seen.add(me)
            if me.startswith("b_"):
                key = block_key[me]
                nodes.append(ViewNode(me, "block", block_label(key, len(collapsed[key])),
                                      block=key))
            else:
                nodes.append(ViewNode(me, "op", op_label_lines(graph, node), op_id=node.id))
        for name in node.outputs:
            if name not in tensor_keys:
                continue
            users = {unit[c.id] for c in consumers.get(name, [])}
            if users == {me} and me.startswith("b_") and name not in io:
                continue  # internal to a collapsed block
            add_tensor(name)
            edges.add((me, tensor_keys[name]))
        for name in node.inputs:
            if name not in tensor_keys:
                continue
            maker = producers.get(name)
            if maker is not None and (maker.id in hidden or (
                    unit[maker.id] == me and me.startswith("b_"))):
                continue
            add_tensor(name)
            edges.add((tensor_keys[name], me))
    for name in graph.output_names:
        add_tensor(name)
    nodes = _toposort(nodes, edges)
    order = {n.key: i for i, n in enumerate(nodes)}
    frames = _frames(blocks, expanded, nodes, edges, unit)
    return ViewGraph(nodes, sorted(edges, key=lambda e: (order[e[0]], order[e[1]])), collapsed,
                     frames)


def frame_label(key: str, parent: str) -> str:
    """A frame's label: its own level below ``parent`` (``attention``), else the whole key."""
    if parent and key.startswith(parent) and len(key) > len(parent):
        return key[len(parent):].lstrip("/.") or key
    return key


def _frames(blocks: dict[str, Block], expanded: set[str], nodes: list[ViewNode],
            edges: set[tuple[str, str]], unit: dict[int, str]) -> dict[str, ViewFrame]:
    """A frame per open block; each drawn node sits in the innermost frame holding it (a
    tensor in the innermost one holding its producer and all its readers)."""
    open_keys = [k for k in blocks if k in expanded and is_open(k, blocks, expanded)]
    if not open_keys:
        return {}
    frames = {k: ViewFrame(k, blocks[k].parent if blocks[k].parent in expanded else "",
                           frame_label(k, blocks[k].parent)) for k in open_keys}
    depth = {k: _depth(k, frames) for k in frames}
    home: dict[str, str] = {}  # view node -> innermost frame
    for key in sorted(frames, key=lambda k: depth[k]):  # inner frames overwrite outer ones
        for op_id in blocks[key].op_ids:
            me = unit.get(op_id)
            if me is not None:
                home[me] = key
    for key, block in blocks.items():  # a collapsed block sits in its parent's frame
        if key not in frames and block.parent in frames:
            for op_id in block.op_ids[:1]:
                me = unit.get(op_id)
                if me is not None:
                    home[me] = block.parent
    ends: dict[str, list[str]] = {}
    for tail, head in edges:
        ends.setdefault(head if head.startswith("t_") else tail, []).append(
            tail if head.startswith("t_") else head)
    for node in nodes:
        if node.kind == "tensor" and not node.graph_io:
            around = [home.get(k, "") for k in ends.get(node.key, [])]
            common = _common(around, frames)
            if common:
                home[node.key] = common
    for node in nodes:  # members in drawing order
        key = home.get(node.key)
        if key is not None:
            frames[key].members.append(node.key)
    return frames


def _depth(key: str, frames: dict[str, ViewFrame]) -> int:
    depth = 0
    while frames[key].parent:
        key, depth = frames[key].parent, depth + 1
    return depth


def _common(keys: list[str], frames: dict[str, ViewFrame]) -> str:
    """The innermost frame holding every frame of ``keys`` ("" for none)."""
    if not keys:
        return ""

    def chain(key: str) -> list[str]:
        out = []
        while key:
            out.append(key)
            key = frames[key].parent
        return out[::-1]

    common = chain(keys[0])
    for key in keys[1:]:
        other = chain(key)
        n = 0
        while n < min(len(common), len(other)) and common[n] == other[n]:
            n += 1
        common = common[:n]
    return common[-1] if common else ""


def _shared_constants(graph: Graph, unit: dict[int, str],
                      consumers: dict[str, list[Node]]) -> set[int]:
    """Constant-only ops outside every block whose outputs only collapsed blocks read (the
    attention scale of every layer): drawn, they tie every block to one node."""
    _, const_ops = split_constants(graph)
    shared = set()
    for node in const_ops:
        if not unit[node.id].startswith("op_"):
            continue
        readers = {unit[c.id] for t in node.outputs for c in consumers.get(t, [])}
        if len(readers) > 1 and all(r.startswith("b_") for r in readers):
            shared.add(node.id)
    return shared


def _toposort(nodes: list[ViewNode], edges: set[tuple[str, str]]) -> list[ViewNode]:
    """Kahn's order, ties by the given order; nodes left in cycles keep their order."""
    index = {n.key: i for i, n in enumerate(nodes)}
    succ: dict[str, list[str]] = defaultdict(list)
    indeg = dict.fromkeys(index, 0)
    for tail, head in edges:
        succ[tail].append(head)
        indeg[head] += 1
    ready = [index[k] for k, d in indeg.items() if d == 0]
    heapq.heapify(ready)
    out: list[ViewNode] = []
    while ready:
        node = nodes[heapq.heappop(ready)]
        out.append(node)
        for head in succ[node.key]:
            indeg[head] -= 1
            if indeg[head] == 0:
                heapq.heappush(ready, index[head])
    if len(out) < len(nodes):
        done = {n.key for n in out}
        out.extend(n for n in nodes if n.key not in done)
    return out


def plain_view(graph: Graph, tensor_keys: dict[str, str]) -> ViewGraph:
    """The view of every op (nothing collapsed)."""
    return build_view(graph, {}, set(), tensor_keys)
