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
class ViewGraph:
    """What one view draws: ops, tensors and collapsed blocks, roughly in topological order."""

    nodes: list[ViewNode]
    edges: list[tuple[str, str]]
    blocks: dict[str, list[int]] = field(default_factory=dict)  # collapsed block -> op ids


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
    return ViewGraph(nodes, sorted(edges, key=lambda e: (order[e[0]], order[e[1]])), collapsed)


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
