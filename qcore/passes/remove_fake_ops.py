"""Drop activation QuantizeLinear -> DequantizeLinear pairs; the scales stay by tensor."""

from __future__ import annotations

import numpy as np

from qcore.ir import Graph, Node, QParams
from qcore.passes.base import Context, Pass, PassResult
from qcore.passes.util import bypass, qparams_of
from qcore.status import OpStatus, Reason, ReasonKind

# Ops whose output has no bound of its own: a quantizer right after one that clamps like an
# activation stands for the activation an exporter dropped.
CLAMPING_PRODUCERS = ("Conv", "Gemm", "MatMul", "Add", "Mul", "BatchNormalization")


def _is_round(value: float) -> bool:
    """True for a nonzero whole number (6, 1, -1, ...) up to float32 rounding: a bound an
    activation sets (ReLU6, hard tanh), never one a calibration happens to find."""
    return value != 0 and abs(value - round(value)) <= 1e-5 * max(1.0, abs(value))


def implied_clamp(params: QParams) -> tuple[float, float | None] | None:
    """The activation a quantizer's range stands for: (0, None) for a Relu (the range starts
    at 0), (low, high) for a Clip (both ends are activation bounds), None for a calibrated
    range. The bounds are the range's exact float32 ends, ``(q - zp) * scale``."""
    if params.per_channel:
        return None
    scale = np.float32(params.scale)
    zp = int(params.zero_point)
    low = float(np.float32(params.qmin - zp) * scale)
    high = float(np.float32(params.qmax - zp) * scale)
    if (low == 0 or _is_round(low)) and _is_round(high):
        return low, high
    if low == 0:
        return 0.0, None
    return None


def restore_clamps(g: Graph) -> int:
    """Put back, as Relu or Clip, the activation each fake quantizer after a Conv, Gemm,
    MatMul, Add, Mul or BatchNormalization stands for. When every reader of the tensor is
    such a quantizer the clamp takes the tensor's name; otherwise only the quantizers read
    the clamped copy."""
    producers, consumers = g.producers(), g.consumers()
    restored = 0
    after: dict[int, list[Node]] = {}  # producer id -> the clamps to place right after it
    touched: list[str] = []
    for tensor in list(dict.fromkeys(n.inputs[0] for n in g.nodes if _fake_q(n))):
        producer = producers.get(tensor)
        if producer is None or producer.op_type not in CLAMPING_PRODUCERS or producer.domain:
            continue
        readers = consumers.get(tensor, [])
        by_params: dict[tuple[object, ...], tuple[QParams, list[Node]]] = {}
        for quant in (r for r in readers if _fake_q(r)):
            params = qparams_of(g, quant)
            if params is None or implied_clamp(params) is None:
                continue
            key = (params.scale.tobytes(), params.zero_point.tobytes())
            by_params.setdefault(key, (params, []))[1].append(quant)
        only = len(by_params) == 1 and tensor not in g.output_names
        for params, quants in by_params.values():
            if only and len(quants) == len(readers):
                clamp = _clamp_in_place(g, producer, tensor, params)
            else:
                clamp, clamped = _clamp_copy(g, producer, tensor, params)
                for quant in quants:
                    quant.inputs[0] = clamped
            after.setdefault(producer.id, []).append(clamp)
            restored += 1
        touched.append(tensor)
    _place(g, after)
    _rescale_sources(g, touched)
    return restored


def _place(g: Graph, after: dict[int, list[Node]]) -> None:
    """Move each new clamp right after its producer, in one pass over the ops (inserting
    them one at a time made the pass quadratic in the graph's size)."""
    if not after:
        return
    new = {n.id for clamps in after.values() for n in clamps}
    order: list[Node] = []
    for node in g.nodes:
        if node.id not in new:
            order.append(node)
            order.extend(reversed(after.get(node.id, [])))  # the newest first, as before
    g.nodes = order


def _rescale_sources(g: Graph, tensors: list[str]) -> None:
    """Each tensor's scale is that of the first fake quantizer still reading it, if any."""
    first: dict[str, Node] = {}
    for node in g.nodes:
        if _fake_q(node):
            first.setdefault(node.inputs[0], node)
    for tensor in tensors:
        quant = first.get(tensor)
        params = qparams_of(g, quant) if quant is not None else None
        if params is None:
            g.act_qparams.pop(tensor, None)
        else:
            g.act_qparams[tensor] = params


def _fake_q(node: Node) -> bool:
    return node.op_type == "QuantizeLinear" and node.status is OpStatus.FAKE


def _clamp_node(g: Graph, src: str, dst: str, params: QParams) -> Node:
    """The clamp, appended to the ops (``_place`` moves it after its producer)."""
    low, high = implied_clamp(params)  # type: ignore[misc]
    if high is None:
        node = g.add_node("Relu", [src], [dst])
        node.reason = Reason(ReasonKind.RESTORED_CLAMP, "the quantizer's range starts at 0")
        return node
    if g.opsets.get("", 13) < 11:
        node = g.add_node("Clip", [src], [dst], {"min": low, "max": high})
    else:
        lo = g.unique_name(f"{dst}_clip_min")
        hi = g.unique_name(f"{dst}_clip_max")
        g.initializers[lo] = np.array(low, np.float32)
        g.initializers[hi] = np.array(high, np.float32)
        node = g.add_node("Clip", [src, lo, hi], [dst])
    node.reason = Reason(ReasonKind.RESTORED_CLAMP,
                         f"the quantizer's range is exactly [{low:g}, {high:g}]")
    return node


def _clamp_in_place(g: Graph, producer: Node, tensor: str, params: QParams) -> Node:
    """producer -> clamp -> ``tensor``: every reader (all quantizers) sees the clamp."""
    pre = g.unique_name(f"{tensor}_before_clamp")
    producer.outputs = [pre if o == tensor else o for o in producer.outputs]
    if tensor in g.tensors:
        g.tensors[pre] = g.tensors[tensor]
    return _clamp_node(g, pre, tensor, params)


def _clamp_copy(g: Graph, producer: Node, tensor: str, params: QParams) -> tuple[Node, str]:
    """A clamped copy of ``tensor`` for some of its readers; its scale is ``params``."""
    clamped = g.unique_name(f"{tensor}_clamped")
    if tensor in g.tensors:
        g.tensors[clamped] = g.tensors[tensor]
    clamp = _clamp_node(g, tensor, clamped, params)
    g.act_qparams[clamped] = params
    return clamp, clamped


def tightest(chain: list[QParams]) -> QParams:
    """What a chain of Q/DQ pairs (last applied first) leaves: the clamp of the narrowest
    range, on its grid (the last pair of that width when several are equally narrow)."""
    return min(enumerate(chain), key=lambda item: (_width(item[1]), item[0]))[1]


def _width(params: QParams) -> float:
    low, high = params.real_range() if not params.per_channel else (0.0, float("inf"))
    return high - low


Pairs = dict[str, tuple[str, QParams]]  # DQ output -> (Q input, its params)


def _activation_pairs(g: Graph) -> tuple[Pairs, list[Node], list[tuple[Node, Node]]]:
    """The fake activation Q/DQ pairs: the pairs to bypass and their DequantizeLinears, and
    the (DQ, Q) pairs that write a graph output. A pair on a weight (a float constant that
    gather_scales recorded with its integer values) is left to dequantize_weights."""
    producers = g.producers()
    outputs = set(g.output_names)
    pairs: Pairs = {}
    doomed = []
    at_outputs = []
    for dq in g.nodes:
        if dq.op_type != "DequantizeLinear" or dq.status is not OpStatus.FAKE:
            continue
        quant = producers.get(dq.inputs[0])
        params = qparams_of(g, quant) if quant is not None else None
        if quant is None or quant.op_type != "QuantizeLinear" or params is None or \
                dq.outputs[0] in g.weight_qparams:
            continue
        if dq.outputs[0] in outputs:
            at_outputs.append((dq, quant))
        else:
            pairs[dq.outputs[0]] = (quant.inputs[0], params)
            doomed.append(dq)
    return pairs, doomed, at_outputs


class RemoveFakeOps(Pass):
    """Readers of the DequantizeLinear output read the QuantizeLinear input instead, and
    ``input_qparams`` keeps, per reader, the params that pair quantized it with (a tensor
    quantized two ways stays so: each reader keeps its own).

    A quantizer clamps to its range. Where that range stands for an activation an exporter
    dropped (ONNX Runtime drops Relu and Clip in front of an asymmetric quantizer: its range
    starts at 0, and ends at 6 for a saturating ReLU6), the clamp is restored first as Relu or
    Clip(low, high) with the range's exact ends, so the FP32 graph computes what the quant
    model computes (see ``implied_clamp``). A calibrated range is not restored.
    """

    name = "remove_fake_ops"

    def apply(self, ctx: Context) -> PassResult:
        g = ctx.graph
        restored = restore_clamps(g)
        pairs, doomed, at_outputs = _activation_pairs(g)
        for node in g.nodes:
            for index, name in enumerate(node.inputs):
                chain = []
                while name in pairs:
                    name, params = pairs[name]
                    chain.append(params)
                if chain:
                    node.inputs[index] = name
                    g.input_qparams.setdefault((node.id, name), tightest(chain))
        g.remove_nodes(doomed)
        removed = len(doomed)
        for dq, quant in at_outputs:
            removed += bypass(g, dq, quant.inputs[0], dq.outputs[0])
        consumers = g.consumers()
        dead = [
            n
            for n in g.nodes
            if n.op_type == "QuantizeLinear"
            and n.status is OpStatus.FAKE
            and not consumers.get(n.outputs[0])
            and n.outputs[0] not in g.output_names
        ]
        g.remove_nodes(dead)
        removed += len(dead)
        return PassResult(
            modified=removed > 0,
            summary=f"removed {removed} Q/DQ ops, restored {restored} clamps",
        )
