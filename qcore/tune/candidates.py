"""What ``--tune`` tries: sets of INT8 ops made FP32 together, largest first.

A *unit* is a set of op ids tried FP32 together, with smaller *parts* tried after it. The
search (:mod:`qcore.tune.search`) walks three levels, each found on the placement the level
before left:

1. **the whole model**: every op FP32, as in the float model (a model INT8 does not pay on
   ends here, in one trial); its parts, tried back in INT8 when everything FP32 paid and
   FP32 alone when it did not, are the regions (see 2.) and the kinds:

   - the *float-output* INT8 ops (no output scale: on ONNX Runtime a ConvInteger /
     MatMulInteger plus float rescaling, often no faster than the float op);
   - the INT8 compute ops of each op type (when there are two types or more);

   each bisected in graph order down to single ops (tried when the group's answer was
   close: a group whose switch lost much is not split);

2. **regions**: each INT8 island of more than ``island_ops`` compute ops, tried FP32 alone,
   and each connected set of the ops tuned FP32 so far, tried back in INT8 alone (after
   everything FP32 paid, the regions where INT8 pays come back);
3. **small units**, bisected (all at once, then halves): small INT8 islands (at most
   ``island_ops`` compute ops, each paying a QuantizeLinear in and a DequantizeLinear out that
   FP32 would not) and single compute ops at the border of a larger island (made FP32, the
   border moves by one op).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from qcore.advise.islands import Island, find_islands
from qcore.convert import ConversionResult
from qcore.ir import Node
from qcore.ops import is_movement
from qcore.status import OpStatus

#: Islands of at most this many compute ops are tried FP32 as one unit.
ISLAND_OPS = 3


@dataclass(frozen=True)
class Unit:
    """Ops tried FP32 together; ``kind`` is ``everything``, ``float-output``, ``type``,
    ``region``, ``group`` (a bisection), ``op``, ``island`` or ``border``."""

    op_ids: tuple[int, ...]
    kind: str
    label: str
    parts: tuple[Unit, ...] = ()


def _int8(result: ConversionResult) -> list[Node]:
    return [n for n in result.decisions if n.status is OpStatus.INT8]


def float_output_ids(result: ConversionResult) -> list[int]:
    """INT8 compute ops whose output has no scale (their output is float)."""
    scales = result.fp32.act_qparams
    return [n.id for n in _int8(result)
            if not is_movement(n) and n.outputs and n.outputs[0] not in scales]


def whole_model(result: ConversionResult, island_ops: int = ISLAND_OPS) -> list[Unit]:
    """Level 1: everything FP32; its parts the regions, the float-output ops and the op
    types."""
    int8 = _int8(result)
    if not int8:
        return []
    float_out = set(float_output_ids(result))
    by_id = {n.id: n for n in int8}
    parts = regions(result, island_ops)
    if float_out and len(float_out) < len(int8):
        parts.append(_kind(sorted(float_out), "float-output",
                           f"the {len(float_out)} float-output INT8 ops", by_id))
    types = Counter(n.op_type for n in int8 if not is_movement(n))
    if len(types) > 1:
        for op_type, count in types.most_common():
            ids = [n.id for n in int8 if n.op_type == op_type and not is_movement(n)]
            if set(ids) != float_out:
                label = f"the {count} INT8 {op_type} ops" if count > 1 else \
                    f"the INT8 {op_type} op"
                parts.append(_kind(ids, "type", label, by_id))
    # every op, the FP32 ones too: named in op_ids_to_skip, they drop the source's Q/DQ
    # that an FP32 op keeps otherwise, so everything FP32 is the plain float model
    every = tuple(n.id for n in result.decisions)
    return [Unit(every, "everything", f"everything ({len(int8)} INT8 ops)", tuple(parts))]


def _kind(ids: list[int], kind: str, label: str, by_id: dict[int, Node]) -> Unit:
    """A group of ops by kind; its parts bisect it in graph order down to single ops."""
    ops = [Unit((i,), "op", by_id[i].label) for i in ids]
    parts = bisection(ops).parts if len(ops) > 1 else ()
    return Unit(tuple(ids), kind, label, parts)


def regions(result: ConversionResult, island_ops: int = ISLAND_OPS,
            tuned: set[int] | None = None) -> list[Unit]:
    """Level 2: each INT8 island larger than ``island_ops`` compute ops (none when one
    island holds every INT8 op: level 1 tried that), and each connected set of the ops
    ``tuned`` FP32 so far (to be tried back in INT8; none when one set holds them all)."""
    graph = result.snapshots[0].graph
    islands = [i for i in find_islands(result.decisions, graph.input_names, graph.output_names)
               if len(i.compute_ids) > island_ops]
    if len(islands) == 1 and len(islands[0].op_ids) == len(_int8(result)):
        islands = []
    by_id = {n.id: n for n in result.decisions}
    units = [Unit(tuple(i.op_ids), "region", f"region {by_id[i.compute_ids[0]].label}.."
                  f"{by_id[i.compute_ids[-1]].label} ({len(i.compute_ids)} compute ops)")
             for i in islands]
    sets = connected(result.decisions, tuned or set())
    if len(sets) > 1:
        units += [Unit(tuple(ids), "region", f"FP32 region {by_id[ids[0]].label}.."
                       f"{by_id[ids[-1]].label} ({len(ids)} ops)") for ids in sets]
    return sorted(units, key=lambda u: u.op_ids)


def connected(decisions: list[Node], ids: set[int]) -> list[list[int]]:
    """The ops of ``ids`` grouped into sets connected by producer -> reader edges."""
    producers = {o: n.id for n in decisions for o in n.outputs if o}
    parent = {i: i for i in ids}

    def root(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    for node in decisions:
        if node.id not in ids:
            continue
        for name in node.inputs:
            src = producers.get(name)
            if src in parent:
                parent[root(src)] = root(node.id)
    groups: dict[int, list[int]] = {}
    for i in sorted(ids):
        groups.setdefault(root(i), []).append(i)
    return list(groups.values())


def small_units(result: ConversionResult, island_ops: int = ISLAND_OPS,
                tuned: set[int] | None = None) -> list[Unit]:
    """Level 3: small islands and border ops as one bisection tree (empty: none)."""
    graph = result.snapshots[0].graph
    units = find_units(result.decisions, graph.input_names, graph.output_names, island_ops)
    return [bisection(units)] if units else []


def bisection(units: list[Unit]) -> Unit:
    """``units`` as one unit whose parts are its halves, recursively (one unit: itself)."""
    if len(units) == 1:
        return units[0]
    middle = len(units) // 2
    ids = tuple(sorted({i for u in units for i in u.op_ids}))
    label = ", ".join(u.label for u in units)
    return Unit(ids, "group", label, (bisection(units[:middle]), bisection(units[middle:])))


def leaves(unit: Unit) -> list[Unit]:
    """The smallest units inside ``unit`` (itself when it has no parts)."""
    return [leaf for part in unit.parts for leaf in leaves(part)] if unit.parts else [unit]


def find_units(decisions: list[Node], graph_inputs: list[str], graph_outputs: list[str],
               island_ops: int = ISLAND_OPS) -> list[Unit]:
    """The small islands and border ops of a placement, in graph order (op ids follow the
    file's node order), so that halving the list keeps neighbouring ops together."""
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


#: A level's units on a placement, its ``island_ops`` and the ops tuned FP32 so far.
LevelFn = Callable[[ConversionResult, int, set[int]], list[Unit]]

#: The levels, in search order: each finds its units on the placement the last one left.
LEVELS: dict[str, LevelFn] = {"whole model": lambda result, ops, _: whole_model(result, ops),
                              "regions": regions, "small units": small_units}
