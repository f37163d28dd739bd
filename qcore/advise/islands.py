"""INT8 islands: connected INT8 ops, and what entering and leaving them costs."""

from __future__ import annotations

from dataclasses import dataclass, field

from qcore.ir import Node
from qcore.ops import is_movement


@dataclass
class Island:
    """Connected INT8 ops; ``entries`` / ``exits`` are the float tensors crossing its border,
    each paying a QuantizeLinear (entry) or a DequantizeLinear (exit)."""

    op_ids: list[int]
    compute_ids: list[int]
    entries: list[str] = field(default_factory=list)
    exits: list[str] = field(default_factory=list)

    @property
    def conversions(self) -> int:
        return len(self.entries) + len(self.exits)

    @property
    def lone(self) -> bool:
        """One compute op alone between FP32 ops: it pays for its own Q and DQ."""
        return len(self.compute_ids) == 1


def find_islands(decisions: list[Node], graph_inputs: list[str], graph_outputs: list[str],
                 ) -> list[Island]:
    """The INT8 islands of a placement, largest conversion cost per compute op first."""
    int8 = {n.id: n for n in decisions if n.status == "int8"}
    producers = {o: n for n in decisions for o in n.outputs if o}
    consumers: dict[str, list[Node]] = {}
    for node in decisions:
        for name in node.inputs:
            consumers.setdefault(name, []).append(node)
    islands = [_island(members, producers, consumers, graph_inputs, graph_outputs)
               for members in _connected(int8, producers)]
    islands.sort(key=lambda i: (-i.conversions / max(1, len(i.compute_ids)), i.op_ids))
    return islands


def _connected(int8: dict[int, Node], producers: dict[str, Node]) -> list[list[Node]]:
    """The INT8 ops grouped into connected sets (union-find over producer -> reader edges)."""
    parent = {i: i for i in int8}

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for node in int8.values():
        for name in node.inputs:
            src = producers.get(name)
            if src is not None and src.id in int8:
                parent[root(src.id)] = root(node.id)
    groups: dict[int, list[Node]] = {}
    for node in int8.values():
        groups.setdefault(root(node.id), []).append(node)
    return list(groups.values())


def _island(members: list[Node], producers: dict[str, Node], consumers: dict[str, list[Node]],
            graph_inputs: list[str], graph_outputs: list[str]) -> Island:
    """One connected set of INT8 ops with the float tensors that enter and leave it (a
    movement op is entered through its data input only)."""
    ids = {n.id for n in members}
    entries: set[str] = set()
    exits: set[str] = set()
    for node in members:
        for name in node.inputs[:1] if is_movement(node) else node.inputs:
            src = producers.get(name)
            if (src is None and name in graph_inputs) or (src is not None and src.id not in ids):
                entries.add(name)
        for name in node.outputs:
            if name in graph_outputs or any(r.id not in ids for r in consumers.get(name, [])):
                exits.add(name)
    compute = sorted(n.id for n in members if not is_movement(n))
    return Island(sorted(ids), compute, sorted(entries), sorted(exits))
