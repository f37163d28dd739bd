"""Repeated blocks (transformer layers, residual blocks) and the collapsed view of a graph.

Pure Python (no Qt) so it runs in a worker. Blocks are found by node-name prefixes that end in
a number (``layer3.attn.q`` -> ``layer3``, ``/encoder/layer.3/...`` -> ``/encoder/layer.3``,
``stage2.block1.conv1`` -> ``stage2.block1``): the family of prefixes (digits replaced by ``#``)
covering the most ops with the most instances wins. Unnamed ops (Q/DQ pairs made by passes)
join a block when every already-placed neighbour is in that block.
"""

from __future__ import annotations

import heapq
import re
from collections import defaultdict
from dataclasses import dataclass, field

from qcore.dot import op_label_lines, tensor_label_lines
from qcore.ir import Graph

_PREFIX_END = re.compile(r"\d+(?=[./_:\-]|$)")
MIN_INSTANCES = 3
MIN_BLOCK_OPS = 4


@dataclass
class Block:
    key: str  # "layer3"
    family: str  # "layer#"
    op_ids: list[int] = field(default_factory=list)


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


def _family(prefix: str) -> str:
    return re.sub(r"\d+", "#", prefix)


def _candidates(name: str) -> list[str]:
    return [name[:m.end()] for m in _PREFIX_END.finditer(name)]


def detect_blocks(graph: Graph) -> dict[str, Block]:
    """The repeated blocks of ``graph`` by name prefix, in graph order ({} if none)."""
    covered: dict[str, set[int]] = defaultdict(set)
    instances: dict[str, set[str]] = defaultdict(set)
    for node in graph.nodes:
        for prefix in _candidates(node.name):
            fam = _family(prefix)
            covered[fam].add(node.id)
            instances[fam].add(prefix)
    good = [f for f in covered if len(instances[f]) >= MIN_INSTANCES
            and len(covered[f]) >= MIN_BLOCK_OPS * len(instances[f])]
    if not good:
        return {}
    best_cover = max(len(covered[f]) for f in good)
    family = max((f for f in good if len(covered[f]) >= 0.8 * best_cover),
                 key=lambda f: (len(instances[f]), len(covered[f])))
    owner: dict[int, str] = {}
    for node in graph.nodes:
        for prefix in _candidates(node.name):
            if _family(prefix) == family:
                owner[node.id] = prefix
                break
    _adopt_unnamed(graph, owner)
    blocks: dict[str, Block] = {}
    for node in graph.nodes:
        key = owner.get(node.id)
        if key is not None:
            blocks.setdefault(key, Block(key, family)).op_ids.append(node.id)
    blocks = {k: blocks[k] for k in sorted(blocks, key=natural_key)
              if len(blocks[k].op_ids) >= MIN_BLOCK_OPS}
    return blocks if len(blocks) >= MIN_INSTANCES else {}


def _adopt_unnamed(graph: Graph, owner: dict[int, str], rounds: int = 4) -> None:
    """Ops without a block join one when all their placed neighbours share it."""
    producers = graph.producers()
    consumers = graph.consumers()
    for _ in range(rounds):
        changed = False
        for node in graph.nodes:
            if node.id in owner:
                continue
            near = [producers[t].id for t in node.inputs if t in producers]
            near += [c.id for t in node.outputs for c in consumers.get(t, [])]
            keys = {owner[i] for i in near if i in owner}
            if len(keys) == 1:
                owner[node.id] = keys.pop()
                changed = True
        if not changed:
            return


def block_label(key: str, count: int) -> list[str]:
    return [key, f"{count} ops", "double-click to expand"]


def build_view(graph: Graph, blocks: dict[str, Block], expanded: set[str],
               tensor_keys: dict[str, str]) -> ViewGraph:
    """The view of ``graph`` with every block not in ``expanded`` drawn as one node."""
    unit: dict[int, str] = {n.id: f"op_{n.id}" for n in graph.nodes}
    collapsed: dict[str, list[int]] = {}
    block_key: dict[str, str] = {}
    for i, (key, block) in enumerate(blocks.items()):
        if key in expanded:
            continue
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
    for name in graph.input_names:
        add_tensor(name)
    edges: set[tuple[str, str]] = set()
    for node in graph.nodes:
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
            if maker is not None and unit[maker.id] == me and me.startswith("b_"):
                continue
            add_tensor(name)
            edges.add((tensor_keys[name], me))
    for name in graph.output_names:
        add_tensor(name)
    nodes = _toposort(nodes, edges)
    order = {n.key: i for i, n in enumerate(nodes)}
    return ViewGraph(nodes, sorted(edges, key=lambda e: (order[e[0]], order[e[1]])), collapsed)


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


def natural_key(text: str) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", text)]


def plain_view(graph: Graph, tensor_keys: dict[str, str]) -> ViewGraph:
    """The view of every op (nothing collapsed)."""
    return build_view(graph, {}, set(), tensor_keys)
