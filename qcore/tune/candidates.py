"""What ``--tune`` tries: the INT8 choices the pipeline is unsure of.

A *unit* is a set of op ids tried FP32 together:

- a small INT8 island (at most ``island_ops`` compute ops between FP32 ops or the graph's
  inputs and outputs): it pays a QuantizeLinear on the way in and a DequantizeLinear (and
  the engine's reorders) on the way out, which FP32 would not;
- one compute op at the border of a larger island: made FP32, it moves the border by one op
  (the conversions stay, the op's own INT8 and float kernels differ).
"""

from __future__ import annotations

from dataclasses import dataclass

from qcore.advise.islands import Island, find_islands
from qcore.ir import Node
from qcore.ops import is_movement
from qcore.status import OpStatus

#: Islands of at most this many compute ops are tried FP32 as one unit.
ISLAND_OPS = 3


@dataclass(frozen=True)
class Unit:
    """Ops tried FP32 together; ``kind`` is ``island`` or ``border``."""

    op_ids: tuple[int, ...]
    kind: str
    label: str


def find_units(decisions: list[Node], graph_inputs: list[str], graph_outputs: list[str],
               island_ops: int = ISLAND_OPS) -> list[Unit]:
    """The units of a placement, in graph order (op ids follow the file's node order), so
    that halving the list keeps neighbouring ops together."""
    by_id = {n.id: n for n in decisions}
    units = []
    for island in find_islands(decisions, graph_inputs, graph_outputs):
        if not island.compute_ids:
            continue
        if len(island.compute_ids) <= island_ops:
            label = "island " + "+".join(by_id[i].label for i in island.compute_ids)
            units.append(Unit(tuple(island.op_ids), "island", label))
            continue
        for op_id in border_ops(island, decisions):
            units.append(Unit((op_id,), "border", f"border {by_id[op_id].label}"))
    units.sort(key=lambda u: u.op_ids)
    return units


def border_ops(island: Island, decisions: list[Node]) -> list[int]:
    """Compute ops of ``island`` that read a float tensor entering it, or whose output
    leaves it (directly or through INT8 movement ops)."""
    members = {n.id: n for n in decisions if n.id in set(island.op_ids)}
    readers: dict[str, list[Node]] = {}
    for node in members.values():
        for name in node.inputs:
            readers.setdefault(name, []).append(node)
    entries, exits = set(island.entries), set(island.exits)
    found = []
    for op_id in island.compute_ids:
        node = members[op_id]
        if entries & set(node.inputs) or _reaches_exit(node, readers, exits):
            found.append(op_id)
    return found


def _reaches_exit(node: Node, readers: dict[str, list[Node]], exits: set[str]) -> bool:
    todo, seen = list(node.outputs), set()
    while todo:
        name = todo.pop()
        if name in exits:
            return True
        if name in seen:
            continue
        seen.add(name)
        for reader in readers.get(name, []):
            if is_movement(reader) and reader.status is OpStatus.INT8:
                todo.extend(reader.outputs)
    return False
