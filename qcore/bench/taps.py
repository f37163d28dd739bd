"""Model surgery for per-tensor error: expose intermediate tensors, find who produced them.

Follows ONNX Runtime's ``qdq_loss_debug``: a copy of the model lists every intermediate
tensor as a graph output, so one run returns them all. Integer tensors of an INT8 model
(``<float name>_quantized``) are dequantized with the scale / zero point the graph gives them,
so they can be matched with the float tensor of the same name in the reference model.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import numpy_helper

from qcore.bench.engines import op_id_of
from qcore.ops import ENGINE_MOVEMENT_OPS, KERNELS, QDQ_OPS

#: Activations re-created after a fused op: their error is reported on the op before them.
ACTIVATIONS = frozenset({"Relu", "Clip", "LeakyRelu", "HardSigmoid", "HardSwish", "Sigmoid"})
#: (scale, zero point) input positions of the output of integer ops.
OUTPUT_QPARAMS = {k.op_type: k.output for k in KERNELS.values() if k.output is not None}
_QUANTIZED = re.compile(r"^(?P<base>.+)_quantized(_\d+)?$")


@dataclass
class Producer:
    """The op a tensor's error is charged to."""

    op_type: str
    op_id: int | None
    name: str


class Taps:
    """One model, with lookups for producers, constants and quantization parameters."""

    def __init__(self, model: onnx.ModelProto) -> None:
        self.model = model
        graph = model.graph
        self.inits = {t.name: t for t in graph.initializer}
        self.producers = {o: (i, n) for i, n in enumerate(graph.node) for o in n.output if o}
        self.consumers: dict[str, list[onnx.NodeProto]] = {}
        for node in graph.node:
            for name in node.input:
                self.consumers.setdefault(name, []).append(node)
        self.has_ids = any(op_id_of(n.name) is not None for n in graph.node)
        self.constants = self._constant_tensors()
        self.requantized = self._requantized()

    def _requantized(self) -> dict[str, str]:
        """Float tensor -> the DequantizeLinear output of its QuantizeLinear -> DQ pair: the
        value the next op really reads (Q's saturation also applies a dropped Relu / Clip)."""
        found: dict[str, str] = {}
        for node in self.model.graph.node:
            if node.op_type != "QuantizeLinear" or node.input[0] in found:
                continue
            for dq in self.consumers.get(node.output[0], []):
                if dq.op_type == "DequantizeLinear" and dq.input[0] == node.output[0]:
                    found[node.input[0]] = dq.output[0]
                    break
        return found

    def _constant_tensors(self) -> set[str]:
        const = set(self.inits)
        for node in self.model.graph.node:
            inputs = [i for i in node.input if i]
            if node.op_type == "Constant" or (inputs and all(i in const for i in inputs)):
                const.update(o for o in node.output if o)
        return const

    def exposed(self) -> onnx.ModelProto:
        """A copy whose graph outputs are every non-constant tensor an op produces."""
        model = onnx.ModelProto()
        model.CopyFrom(self.model)
        have = {o.name for o in model.graph.output}
        for node in model.graph.node:
            for name in node.output:
                if name and name not in have and name not in self.constants:
                    model.graph.output.append(onnx.ValueInfoProto(name=name))
                    have.add(name)
        return model

    def constant(self, name: str) -> np.ndarray | None:
        if name in self.inits:
            return numpy_helper.to_array(self.inits[name])
        entry = self.producers.get(name)
        if entry and entry[1].op_type == "Constant":
            for attr in entry[1].attribute:
                if attr.name == "value":
                    return numpy_helper.to_array(attr.t)
        return None

    def qparams(self, tensor: str, depth: int = 0) -> tuple[np.ndarray, np.ndarray, int] | None:
        """(scale, zero point, axis) of an integer activation tensor, when the graph says."""
        if depth > 16:
            return None
        for node in self.consumers.get(tensor, []):
            if node.op_type == "DequantizeLinear" and node.input[0] == tensor:
                return self._params(node, 1, 2)
        entry = self.producers.get(tensor)
        if entry is None:
            return None
        node = entry[1]
        if node.op_type in OUTPUT_QPARAMS:
            return self._params(node, *OUTPUT_QPARAMS[node.op_type])
        if node.op_type in ENGINE_MOVEMENT_OPS and node.input:
            return self.qparams(node.input[0], depth + 1)
        return None

    def _params(self, node: onnx.NodeProto, si: int, zi: int
                ) -> tuple[np.ndarray, np.ndarray, int] | None:
        if len(node.input) <= si:
            return None
        scale = self.constant(node.input[si])
        if scale is None:
            return None
        zp = self.constant(node.input[zi]) if len(node.input) > zi and node.input[zi] else None
        axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
        return scale, (zp if zp is not None else np.zeros_like(scale, np.int32)), axis

    def float_name(self, tensor: str) -> str | None:
        """``x_quantized`` / ``x_quantized_2`` -> ``x``; None for other names."""
        match = _QUANTIZED.match(tensor)
        return match.group("base") if match else None

    def producer(self, tensor: str) -> Producer | None:
        """The op to blame for ``tensor``: through Q/DQ and re-created activations."""
        entry = self.producers.get(tensor)
        if entry is None:
            return None
        index, node = entry
        while node.op_type in QDQ_OPS and node.input and node.input[0] in self.producers:
            index, node = self.producers[node.input[0]]
        label = node.op_type
        if node.op_type in ACTIVATIONS and node.input and node.input[0] in self.producers:
            prev_index, prev = self.producers[node.input[0]]
            if prev.op_type not in QDQ_OPS and len(self.consumers.get(node.input[0], [])) == 1:
                label = f"{prev.op_type}+{node.op_type}"
                index, node = prev_index, prev
        op_id = op_id_of(node.name) if self.has_ids else index
        return Producer(label, op_id, node.name)


def dequantize(values: np.ndarray, params: tuple[np.ndarray, np.ndarray, int]) -> np.ndarray:
    """Integer tensor -> float with per-tensor or per-axis scale and zero point."""
    scale, zp, axis = params
    scale = scale.astype(np.float64)
    zp = zp.astype(np.float64)
    if scale.size > 1 and values.ndim:
        shape = [1] * values.ndim
        shape[axis % values.ndim] = scale.size
        scale, zp = scale.reshape(shape), zp.reshape(shape)
    result: np.ndarray = (values.astype(np.float64) - zp) * scale
    return result
