"""INT8 islands: connected INT8 ops, and what entering and leaving them costs."""

from __future__ import annotations

from dataclasses import dataclass, field

from qcore.ir import Node
from qcore.passes.quantize_placement import MOVEMENT_OPS


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
    islands = []
    for members in groups.values():
        ids = {n.id for n in members}
        island = Island(sorted(ids), sorted(n.id for n in members
                                            if n.op_type not in MOVEMENT_OPS))
        for node in members:
            for name in node.inputs[:1] if node.op_type in MOVEMENT_OPS else node.inputs:
                src = producers.get(name)
                if (src is None and name in graph_inputs) or (src is not None and
                                                              src.id not in ids):
                    island.entries.append(name)
            for name in node.outputs:
                readers = consumers.get(name, [])
                if name in graph_outputs or any(r.id not in ids for r in readers):
                    island.exits.append(name)
        island.entries = sorted(set(island.entries))
        island.exits = sorted(set(island.exits))
        islands.append(island)
    islands.sort(key=lambda i: (-i.conversions / max(1, len(i.compute_ids)), i.op_ids))
    return islands
