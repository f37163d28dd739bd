"""Repeated blocks (transformer layers, residual blocks) of a graph (their collapsed view is
``view_graph``).

Pure Python (no Qt) so it runs in a worker. Blocks are found first by node-name prefixes that
end in a number (``layer3.attn.q`` -> ``layer3``, ``/encoder/layer.3/...`` ->
``/encoder/layer.3``, torchvision's ``layer3.1.conv2`` -> ``layer3`` and ``layer3.1``): of the
families of prefixes (digits replaced by ``#``) that cover nearly the most ops, the outermost
(fewest numbers) wins, and the finer ones nest inside it. A name with a "/" is split at "/"
only when it starts with one (torch.onnx's ``/layer3/layer3.1/conv2/Conv``: ``layer3.1`` is
one level). Unnamed ops
(Q/DQ pairs made by passes) join a block when every already-placed neighbour is in that block.

When names say nothing (Paddle2ONNX's ``p2o.MatMul.12``, ops made by passes), blocks are found
from the structure alone: the ops, in topological order, are cut where a single op's outputs
are all that flows on (constant-only ops such as weight DequantizeLinear, graph inputs and
tensors read across a third of the graph do not count); the run of segments whose op types
repeat with some period, covering the most ops, gives the blocks (keys ``block0``, ...).

Blocks found by name nest along the name hierarchy, as Model Explorer shows it:
``/encoder/layer.3`` holds ``/encoder/layer.3/attention``, which holds
``/encoder/layer.3/attention/self``... (``Block.parent``; a level holding all of its parent's
ops is skipped, one of fewer than ``MIN_LEVEL_OPS`` computing ops besides Q/DQ is not a
block: torch.onnx's ``/layer3/layer3.1/conv2`` is just the Conv and its Q/DQ). Each level
opens on its own; ``detect_blocks`` lists a block's levels right after it.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from qcore.ir import Graph, Node
from qcore.status import ReasonKind

_PREFIX_END = re.compile(r"\d+(?=[./_:\-]|$)")
_SCOPE_END = re.compile(r"\d+(?=/|$)")  # ... in a "/"-scoped name
MIN_INSTANCES = 3
MIN_BLOCK_OPS = 4
MAX_PERIOD = 50  # segments per block found by structure
STRUCTURE_FAMILY = "<structure>"  # blocks found by structure (no name makes this family)
MIN_NAME_SHARE = 0.2  # of the computing ops, covered by the blocks of a name family
MIN_LEVEL_OPS = 2  # computing ops (not Q/DQ) of a nested level
_QDQ = ("QuantizeLinear", "DequantizeLinear")
MAX_LEVELS = 6
_LEVEL = re.compile(r"[/.]?([^/.]+)(?=[/.])")
_SCOPE_LEVEL = re.compile(r"/?([^/]+)(?=/)")


@dataclass
class Block:
    key: str  # "layer3"
    family: str  # "layer#"
    op_ids: list[int] = field(default_factory=list)
    parent: str = ""  # the enclosing block ("" for a top-level one)


def _family(prefix: str) -> str:
    return re.sub(r"\d+", "#", prefix)


def _scoped(name: str) -> bool:
    """A name whose levels are split by "/" only, as torch.onnx writes them
    (``/layer3/layer3.1/conv2/Conv``, ``/encoder/layer.3/attention``): a "." inside a level
    is part of that level's name (not so in ORT's ``encoder.layer.0.dense/MatMulAddFusion``)."""
    return name.startswith("/")


def _candidates(name: str) -> list[str]:
    pattern = _SCOPE_END if _scoped(name) else _PREFIX_END
    return [name[:m.end()] for m in pattern.finditer(name)]


def detect_blocks(graph: Graph) -> dict[str, Block]:
    """The repeated blocks of ``graph`` in graph order: by name prefix, else by structure
    ({} if none)."""
    named = _blocks_by_name(graph)
    return nest_levels(graph, named) if named else _blocks_by_structure(graph)


def top_level(blocks: dict[str, Block]) -> list[str]:
    """The keys of the blocks that no other block holds."""
    return [key for key, block in blocks.items() if not block.parent]


def nest_levels(graph: Graph, blocks: dict[str, Block]) -> dict[str, Block]:
    """``blocks`` with their nested name levels, each listed right after its parent."""
    ops, const_ops = split_constants(graph)
    ctx = _Context({n.id: n for n in graph.nodes}, {n.id for n in const_ops},
                   graph.producers(), graph.consumers())
    out: dict[str, Block] = {}
    for block in blocks.values():
        _nest(block, block.key, ctx, out, 0)
    return out


@dataclass
class _Context:
    nodes: dict[int, Node]
    const: set[int]
    producers: dict[str, Node]
    consumers: dict[str, list[Node]]


def _level(name: str, prefix: str) -> str | None:
    """The level of ``name`` right below ``prefix`` (``prefix/attention`` for
    ``prefix/attention/self/MatMul``); None when what follows is the op's own name."""
    if not name.startswith(prefix) or len(name) == len(prefix) or name[len(prefix)] not in (
            "/" if _scoped(name) else "/."):
        return None
    m = (_SCOPE_LEVEL if _scoped(name) else _LEVEL).match(name, len(prefix))
    return None if m is None else name[:m.end()]


def _nest(block: Block, prefix: str, ctx: _Context, out: dict[str, Block], depth: int) -> None:
    """Add ``block`` and its levels below ``prefix`` to ``out``."""
    out.setdefault(block.key, block)
    if depth >= MAX_LEVELS:
        return
    members = [ctx.nodes[i] for i in block.op_ids]
    owner: dict[int, str] = {}
    for node in members:
        level = None if node.id in ctx.const else _level(node.name, prefix)
        if level is not None:
            owner[node.id] = level
    if not owner:
        return
    named = {n.id for n in members if n.name.startswith(prefix)}  # at this level: stay
    _adopt_unnamed(members, owner, ctx.producers, ctx.consumers, skip=ctx.const | named)
    _attach_constants([n for n in members if n.id in ctx.const], owner, ctx.consumers)
    groups: dict[str, list[int]] = {}
    for node in sorted(members, key=lambda n: n.id in ctx.const):  # by first computing op
        if node.id in owner:
            groups.setdefault(owner[node.id], [])
    for node in members:  # each level's ops in graph order
        if node.id in owner:
            groups[owner[node.id]].append(node.id)
    groups = {k: v for k, v in groups.items()
              if sum(i not in ctx.const and ctx.nodes[i].op_type not in _QDQ
                     for i in v) >= MIN_LEVEL_OPS}
    if len(groups) == 1 and len(next(iter(groups.values()))) == len(members):
        _nest(block, next(iter(groups)), ctx, out, depth + 1)  # a level that says nothing
        return
    for key in groups:  # in graph order
        child = Block(key, _family(key), groups[key], parent=block.key)
        _nest(child, key, ctx, out, depth + 1)


def split_constants(graph: Graph) -> tuple[list[Node], list[Node]]:
    """The ops that compute something, and the constant-only ops (weight DequantizeLinear,
    Constant): these are named after their weights, not after the block that uses them."""
    const = set(graph.initializers)
    ops: list[Node] = []
    const_ops: list[Node] = []
    for node in graph.nodes:
        if all(not t or t in const for t in node.inputs):
            const.update(node.outputs)
            const_ops.append(node)
        else:
            ops.append(node)
    return ops, const_ops


def _attach_constants(const_ops: list[Node], owner: dict[int, str],
                      consumers: dict[str, list[Node]]) -> None:
    """Weights and their DequantizeLinear join the block whose ops read them."""
    for node in reversed(const_ops):
        readers = {owner.get(c.id) for t in node.outputs for c in consumers.get(t, [])}
        if len(readers) == 1 and None not in readers:
            owner[node.id] = readers.pop()


def _balanced(blocks: dict[str, Block], ops: int) -> bool:
    """Blocks that describe the model: none holds most of it, none dwarfs the typical one
    (a family of three weight names once made one 'block' of 1,178 of 1,213 ops)."""
    sizes = sorted(len(b.op_ids) for b in blocks.values())
    return sizes[-1] <= ops / 2 and sizes[-1] <= 4 * sizes[len(sizes) // 2]


def _blocks_by_name(graph: Graph) -> dict[str, Block]:
    """The repeated blocks of ``graph`` by name prefix, in graph order ({} if none)."""
    covered: dict[str, set[int]] = defaultdict(set)
    instances: dict[str, set[str]] = defaultdict(set)
    real: dict[str, set[str]] = defaultdict(set)  # instances named by an op, not a Q/DQ
    ops, const_ops = split_constants(graph)
    for node in ops:
        for prefix in _candidates(node.name):
            fam = _family(prefix)
            covered[fam].add(node.id)
            instances[fam].add(prefix)
            if node.op_type not in _QDQ:
                real[fam].add(prefix)
    # A quantizer names its Q/DQ ops after their tensors: paddle2onnx's ``softmax_9.tmp_0``
    # once made three 5-op "blocks" of a 1,302-op PP-OCR recogniser; a family needs ops of
    # its own in every instance, and to cover a good part of the graph
    good = [f for f in covered if len(real[f]) >= MIN_INSTANCES
            and len(instances[f]) >= MIN_INSTANCES
            and len(covered[f]) >= MIN_BLOCK_OPS * len(instances[f])
            and len(covered[f]) >= MIN_NAME_SHARE * len(ops)]
    if not good:
        return {}
    best_cover = max(len(covered[f]) for f in good)
    # The outermost level that repeats: torchvision's ``layer3`` rather than ``layer3.1``
    # (which nests inside it), whatever the Q/DQ ops a quantizer added do to the counts
    ranked = sorted((f for f in good if len(covered[f]) >= 0.8 * best_cover),
                    key=lambda f: (f.count("#"), -len(instances[f]), -len(covered[f])))
    for family in ranked:
        blocks = _family_blocks(graph, family, ops, const_ops)
        if blocks:
            return blocks
    return {}


def _family_blocks(graph: Graph, family: str, ops: list[Node],
                   const_ops: list[Node]) -> dict[str, Block]:
    """The blocks of name family ``family`` ({} if too few or unbalanced)."""
    owner: dict[int, str] = {}
    for node in ops:
        for prefix in _candidates(node.name):
            if _family(prefix) == family:
                owner[node.id] = prefix
                break
    _adopt_enclosed(graph, ops, owner)
    _attach_constants(const_ops, owner, graph.consumers())
    blocks: dict[str, Block] = {}
    for node in graph.nodes:
        key = owner.get(node.id)
        if key is not None:
            blocks.setdefault(key, Block(key, family)).op_ids.append(node.id)
    blocks = {k: blocks[k] for k in sorted(blocks, key=natural_key)
              if len(blocks[k].op_ids) >= MIN_BLOCK_OPS}
    if len(blocks) < MIN_INSTANCES or not _balanced(blocks, len(graph.nodes)):
        return {}
    return blocks


def _adopt_enclosed(graph: Graph, ops: list[Node], owner: dict[int, str]) -> None:
    """Ops outside every block join one when they lie inside it: each connected run of such
    ops (ORT's ``gemm_output_reshape``, Q/DQ pairs) that is fed by one block and feeds that
    same block only. A stem before the first block or a head after the last one (fed by the
    graph input, feeding the graph output) stays outside."""
    producers, consumers = graph.producers(), graph.consumers()
    inputs = set(graph.input_names) - set(graph.initializers)
    loose = {n.id: n for n in ops if n.id not in owner}
    const = {n.id for n in graph.nodes} - {n.id for n in ops}
    seen: set[int] = set()
    for start in loose:
        if start in seen:
            continue
        run, todo, above, below = [], [start], set(), set()
        seen.add(start)
        while todo:
            node = loose[todo.pop()]
            run.append(node.id)
            ups = [producers.get(t) for t in node.inputs if t in producers or t in inputs]
            downs = [c for t in node.outputs for c in consumers.get(t, [])]
            for near, side in ((ups, above), (downs, below)):
                for other in near:
                    if other is None:  # a graph input: not inside any block
                        side.add("")
                    elif other.id in const:
                        continue
                    elif other.id in loose:
                        if other.id not in seen:
                            seen.add(other.id)
                            todo.append(other.id)
                    elif other.id in owner:
                        side.add(owner[other.id])
            if not downs and any(t for t in node.outputs):
                below.add("")  # a graph output
        if len(above) == 1 and above == below and "" not in above:
            for op_id in run:
                owner[op_id] = next(iter(above))


def _adopt_unnamed(nodes: list[Node], owner: dict[int, str], producers: dict[str, Node],
                   consumers: dict[str, list[Node]], rounds: int = 4,
                   skip: set[int] | frozenset[int] = frozenset()) -> None:
    """Ops (of ``nodes``) without a block join one when all their placed neighbours share
    it."""
    for _ in range(rounds):
        changed = False
        for node in nodes:
            if node.id in owner or node.id in skip:
                continue
            near = [producers[t].id for t in node.inputs if t in producers]
            near += [c.id for t in node.outputs for c in consumers.get(t, [])]
            keys = {owner[i] for i in near if i in owner}
            if len(keys) == 1:
                owner[node.id] = keys.pop()
                changed = True
        if not changed:
            return


@dataclass
class _Segments:
    """The non-constant ops of a graph in order, cut where one op's outputs are all that
    flows on: segment ``k`` is ``ops[starts[k]:starts[k + 1]]``."""

    ops: list[Node]
    const_ops: list[Node]
    starts: list[int]  # plus len(ops) at the end
    fanout: list[int]  # readers of the tensors entering each segment (0 for the first)
    sigs: list[int]  # segment -> id of its op-type sequence


def _segments(graph: Graph) -> _Segments:
    """Cut the graph's ops into segments (linear in the graph's size).

    Constant-only ops (weight DequantizeLinear, Constant) are left out; graph inputs and
    tensors read across more than 1/MIN_INSTANCES of the ops (an attention mask used by every
    layer) do not count as flowing on: no such tensor can be inside one block. A graph input
    flows from just before its first reader."""
    ops, const_ops = split_constants(graph)
    const = set(graph.initializers) | {t for n in const_ops for t in n.outputs}
    made: dict[str, int] = {}  # a graph input is "made" just before its first reader
    last: dict[str, int] = {}
    uses: dict[str, int] = defaultdict(int)
    for i, node in enumerate(ops):
        for t in node.inputs:
            if t and t not in const:
                made.setdefault(t, i - 1)
                last[t] = i
                uses[t] += 1
        for t in node.outputs:
            if t:
                made[t] = i
    span = len(ops) / MIN_INSTANCES
    reach = list(range(len(ops)))  # the last op reading a tensor made by op i
    far = -1  # ... and by no op (graph inputs read by op 0)
    for t, end in last.items():
        start = made[t]
        if end - start > span:
            continue
        if start < 0:
            far = max(far, end)
        elif end > reach[start]:
            reach[start] = end
    starts, fanout = [0], [0]
    for i in range(len(ops) - 1):
        if far <= i:  # nothing made before op i is read after it
            starts.append(i + 1)
            fanout.append(sum(uses.get(t, 0) for t in ops[i].outputs))
        far = max(far, reach[i])
    starts.append(len(ops))
    ids: dict[tuple[str, ...], int] = {}
    sigs = [ids.setdefault(tuple(n.domain + n.op_type for n in ops[a:b] if not _restored(n)),
                           len(ids))
            for a, b in zip(starts, starts[1:], strict=False)]
    return _Segments(ops, const_ops, starts, fanout, sigs)


def _best_run(seg: _Segments) -> tuple[int, int, int] | None:
    """(first segment, period, instances) of the periodic run of segments covering the most
    ops; ties go to more instances, then to blocks entered by fanning-out tensors (a layer
    starts where its input branches), then to the earliest. O(segments * MAX_PERIOD)."""
    count = len(seg.sigs)
    sigs = np.asarray(seg.sigs, dtype=np.int64)
    fanout = np.asarray(seg.fanout, dtype=np.int64)
    cum = seg.starts  # ops before segment k
    best: tuple[tuple[int, int, int, int], tuple[int, int, int]] | None = None
    for period in range(1, min(MAX_PERIOD, count // MIN_INSTANCES) + 1):
        same = np.concatenate(([False], sigs[period:] == sigs[:-period], [False]))
        edges = np.flatnonzero(np.diff(same.astype(np.int8)))
        for lo, hi in zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True):
            if hi - lo < (MIN_INSTANCES - 1) * period:
                continue
            length = hi - lo + period  # segments lo .. hi + period - 1 repeat
            for phase in range(period):
                n = (length - phase) // period
                if n < MIN_INSTANCES:
                    break
                first = lo + phase
                size = cum[first + period] - cum[first]
                if size < MIN_BLOCK_OPS:
                    continue
                if best is not None and (n * size, n) < best[0][:2]:
                    continue
                fan = int(fanout[first:first + n * period:period].sum())
                score = (n * size, n, fan, -first)
                if best is None or score > best[0]:
                    best = (score, (first, period, n))
    return None if best is None else best[1]


def _restored(node: Node) -> bool:
    """A clamp the converter put back where a quantizer stood for it (remove_fake_ops): the
    same layer gets one or not depending on its calibrated range, so it is not structure."""
    return node.op_type in ("Relu", "Clip") and node.reason.kind is ReasonKind.RESTORED_CLAMP


def _blocks_by_structure(graph: Graph) -> dict[str, Block]:
    """Repeated blocks from the graph's structure alone ({} if none): the best periodic run
    of segments (see ``_segments``), plus the same block anywhere else in the graph."""
    seg = _segments(graph)
    run = _best_run(seg)
    if run is None:
        return {}
    first, period, n = run
    sigs = seg.sigs
    pattern = sigs[first:first + period]
    chosen = [first + k * period for k in range(n)]
    for lo, hi in ((0, first), (first + n * period, len(sigs))):
        k = lo
        while k + period <= hi:
            if sigs[k] == pattern[0] and sigs[k:k + period] == pattern:
                chosen.append(k)
                k += period
            else:
                k += 1
    owner: dict[int, str] = {}
    keys: list[str] = []
    for index, k in enumerate(sorted(chosen)):
        key = f"block{index}"
        keys.append(key)
        for node in seg.ops[seg.starts[k]:seg.starts[k + period]]:
            owner[node.id] = key
    _attach_constants(seg.const_ops, owner, graph.consumers())
    blocks = {key: Block(key, STRUCTURE_FAMILY) for key in keys}
    for node in graph.nodes:
        key = owner.get(node.id)
        if key is not None:
            blocks[key].op_ids.append(node.id)
    return blocks if _balanced(blocks, len(graph.nodes)) else {}


def natural_key(text: str) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", text)]
