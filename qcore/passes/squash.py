"""Remove the DequantizeLinear -> QuantizeLinear pairs between INT8 ops."""

from __future__ import annotations

import numpy as np

from qcore.emit.onnxruntime import quant_input_slots
from qcore.ir import Graph, Node, QParams
from qcore.passes.base import Context, Pass, PassResult
from qcore.passes.util import qparams_of


class Squash(Pass):
    """Paddle ``cpu_quantize_squash_pass``:

    * DequantizeLinear -> QuantizeLinear with equal params: readers use the int8 tensor.
    * With different params, when every reader takes its input scale as an input (QLinear ops,
      DequantizeLinear) and no value can saturate differently, the readers take the first
      params instead (requantization folded away).
    * QuantizeLinear ops of one tensor with equal params merge, and so do DequantizeLinear ops.
    """

    name = "squash"

    def apply(self, ctx: Context) -> PassResult:
        g = ctx.graph
        removed = self._squash_pairs(g) + self._merge_duplicates(g)
        removed += remove_dead_nodes(g)
        return PassResult(modified=removed > 0, summary=f"removed {removed} Q/DQ ops")

    def _squash_pairs(self, g: Graph) -> int:
        changed = 0
        producers = g.producers()
        consumers = g.consumers()
        outputs = set(g.output_names)
        for quant in list(g.nodes):
            if quant.op_type != "QuantizeLinear" or quant.outputs[0] in outputs:
                continue
            dq = producers.get(quant.inputs[0])
            if dq is None or dq.op_type != "DequantizeLinear":
                continue
            p_dq, p_q = qparams_of(g, dq), qparams_of(g, quant)
            if p_dq is None or p_q is None or p_dq.dtype != p_q.dtype:
                continue
            readers = consumers.get(quant.outputs[0], [])
            if p_dq.same_as(p_q):
                for reader in readers:
                    reader.inputs = [dq.inputs[0] if n == quant.outputs[0] else n
                                     for n in reader.inputs]
                changed += 1
            elif _can_fold(p_dq, p_q) and all(_slot_of(r, quant.outputs[0]) for r in readers):
                for reader in readers:
                    for slot in _slot_of(reader, quant.outputs[0]):
                        _rescale_int32_bias(g, reader, slot, float(p_q.scale / p_dq.scale))
                        reader.inputs[slot[0]] = dq.inputs[0]
                        reader.inputs[slot[1]] = dq.inputs[1]
                        reader.inputs[slot[2]] = dq.inputs[2]
                changed += 1
        return changed

    def _merge_duplicates(self, g: Graph) -> int:
        seen: dict[tuple, str] = {}
        alias: dict[str, str] = {}
        doomed: list[Node] = []
        outputs = set(g.output_names)
        for node in g.nodes:
            if node.op_type not in ("QuantizeLinear", "DequantizeLinear") or node.domain:
                continue
            node.inputs = [alias.get(n, n) for n in node.inputs]
            params = qparams_of(g, node)
            if params is None or node.outputs[0] in outputs:
                continue
            key = (node.op_type, node.inputs[0], params.scale.tobytes(),
                   params.zero_point.tobytes(), params.axis)
            if key in seen:
                alias[node.outputs[0]] = seen[key]
                doomed.append(node)
            else:
                seen[key] = node.outputs[0]
        for node in g.nodes:
            node.inputs = [alias.get(n, n) for n in node.inputs]
        g.remove_nodes(doomed)
        return len(doomed)


def _can_fold(src: QParams, dst: QParams) -> bool:
    """A requantization from ``src`` to ``dst`` can be skipped when both are per-tensor and
    every value ``src`` holds fits in ``dst`` (so ``dst`` would not clamp anything)."""
    if src.per_channel or dst.per_channel:
        return False
    low, high = src.real_range()
    d_low, d_high = dst.real_range()
    step = float(dst.scale)
    return low >= d_low - step / 2 and high <= d_high + step / 2


# Ops whose int32 bias is quantized with (input scale x weight scale): input index of the bias.
INT32_BIAS_INPUT = {"QLinearConv": 8, "QGemm": 6}


def _rescale_int32_bias(g: Graph, reader: Node, slot: tuple[int, int, int], ratio: float) -> None:
    """The input scale of ``reader`` changes by 1/ratio: its int32 bias must follow."""
    index = INT32_BIAS_INPUT.get(reader.op_type)
    if index is None or slot[0] != 0 or len(reader.inputs) <= index or not reader.inputs[index]:
        return
    old = g.initializers[reader.inputs[index]].astype(np.float64)
    new = np.clip(np.rint(old * ratio), -(2**31), 2**31 - 1).astype(np.int32)
    name = g.unique_name(f"{reader.inputs[index]}_rescaled")
    g.initializers[name] = new
    reader.inputs[index] = name


def _slot_of(reader: Node, tensor: str) -> list[tuple[int, int, int]]:
    return [slot for slot in quant_input_slots(reader) if reader.inputs[slot[0]] == tensor]


def remove_dead_nodes(g: Graph) -> int:
    """Remove ops none of whose outputs is read or is a graph output."""
    removed = 0
    outputs = set(g.output_names)
    while True:
        read = {name for node in g.nodes for name in node.inputs} | outputs
        dead = [n for n in g.nodes if not any(o in read for o in n.outputs if o)]
        if not dead:
            return removed
        g.remove_nodes(dead)
        removed += len(dead)


def unused_initializers(g: Graph) -> list[str]:
    read = {name for node in g.nodes for name in node.inputs} | set(g.output_names)
    return [name for name in g.initializers if name not in read]



