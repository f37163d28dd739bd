"""Remove the DequantizeLinear -> QuantizeLinear pairs between INT8 ops."""

from __future__ import annotations

import numpy as np

from qcore.ir import Graph, Node, QParams
from qcore.ops import DEQUANTIZE, QDQ_OPS, QUANTIZE, QSlot, kernel_of
from qcore.passes.base import Context, Pass, PassResult
from qcore.passes.util import qparams_of, remove_dead_nodes


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
            if quant.op_type != QUANTIZE or quant.outputs[0] in outputs:
                continue
            dq = producers.get(quant.inputs[0])
            if dq is None or dq.op_type != DEQUANTIZE:
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
                        reader.inputs[slot.tensor] = dq.inputs[0]
                        reader.inputs[slot.scale] = dq.inputs[1]
                        reader.inputs[slot.zero_point] = dq.inputs[2]
                changed += 1
        return changed

    def _merge_duplicates(self, g: Graph) -> int:
        seen: dict[tuple[object, ...], str] = {}
        alias: dict[str, str] = {}
        doomed: list[Node] = []
        outputs = set(g.output_names)
        for node in g.nodes:
            if node.op_type not in QDQ_OPS or node.domain:
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


def _rescale_int32_bias(g: Graph, reader: Node, slot: QSlot, ratio: float) -> None:
    """The input scale of ``reader`` changes by 1/ratio: its int32 bias (quantized with input
    scale x weight scale) must follow."""
    kernel = kernel_of(reader)
    index = kernel.int32_bias if kernel is not None else None
    if index is None or slot.tensor != 0 or len(reader.inputs) <= index or \
            not reader.inputs[index]:
        return
    old = g.initializers[reader.inputs[index]].astype(np.float64)
    new = np.clip(np.rint(old * ratio), -(2**31), 2**31 - 1).astype(np.int32)
    name = g.unique_name(f"{reader.inputs[index]}_rescaled")
    g.initializers[name] = new
    reader.inputs[index] = name


def _slot_of(reader: Node, tensor: str) -> list[QSlot]:
    """The free-scale input slots of ``reader`` that read ``tensor`` (a per-axis
    DequantizeLinear's scale is not free: it must match the tensor's channels)."""
    kernel = kernel_of(reader)
    if kernel is None or (reader.op_type == DEQUANTIZE and "axis" in reader.attrs):
        return []
    return [slot for slot in kernel.input_slots(reader) if reader.inputs[slot.tensor] == tensor]
