"""Read the scale and zero point of every activation Q/DQ pair and every weight DQ."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto

from qcore.ir import Graph, Node, QParams
from qcore.passes.base import Context, Pass, PassResult
from qcore.passes.util import qparams_of
from qcore.status import OpStatus

FLOAT_TYPES = (TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.BFLOAT16, TensorProto.DOUBLE)


class GatherScales(Pass):
    """Paddle ``_gather_*_scales``: activation params are keyed by the float tensor that the
    QuantizeLinear reads; weight params by the DequantizeLinear output. First writer wins.

    A Q/DQ pair on a float constant (NNCF's weights in ``Constant`` nodes: paddle2onnx
    graphs) quantizes a weight, not an activation: its params and integer values (the
    constant quantized as that QuantizeLinear does) are recorded as the weight's, so the
    FP32 graph keeps the dequantized values the quant model computes with (NNCF tunes the
    biases for them)."""

    name = "gather_scales"

    def apply(self, ctx: Context) -> PassResult:
        g = ctx.graph
        producers = g.producers()
        acts = weights = 0
        for node in g.nodes:
            if node.op_type != "DequantizeLinear" or node.domain:
                continue
            params = qparams_of(g, node)
            source = node.inputs[0]
            if params is None:
                continue
            if source in g.initializers:
                node.status = OpStatus.FAKE
                weights += _record_weight(g, node.outputs[0], params, g.initializers[source])
                continue
            quant = _matching_quantizer(g, producers.get(source), node, params)
            if quant is None:
                continue
            q_params = qparams_of(g, quant)
            assert q_params is not None  # _matching_quantizer read them
            node.status = quant.status = OpStatus.FAKE
            tensor = quant.inputs[0]
            if _quantized_constant(g, quant):
                weights += _record_weight(g, node.outputs[0], q_params,
                                          q_params.quantize(g.initializers[tensor]))
            elif tensor not in g.act_qparams:
                g.act_qparams[tensor] = q_params
                acts += 1
        return PassResult(
            modified=bool(acts or weights),
            summary=f"{acts} activation scales, {weights} weight scales",
        )


def _record_weight(g: Graph, name: str, params: QParams, ints: np.ndarray) -> int:
    """Record a weight's params and integer values under its float name (first writer wins);
    1 when recorded."""
    if name in g.weight_qparams:
        return 0
    g.weight_qparams[name] = params
    g.weight_ints[name] = ints
    return 1


def _matching_quantizer(g: Graph, quant: Node | None, dq: Node,
                        params: QParams) -> Node | None:
    """The QuantizeLinear of a fake Q/DQ pair ending in ``dq``: same params, float input."""
    if quant is None or quant.op_type != "QuantizeLinear":
        return None
    q_params = qparams_of(g, quant)
    if q_params is None or not (q_params.same_as(params) or (
            _both_implicit(quant, dq) and np.array_equal(q_params.scale, params.scale))):
        return None
    info = g.tensors.get(quant.inputs[0])
    if info is not None and info.elem_type not in FLOAT_TYPES:
        return None  # quantizing integers is real work, not fake quantization
    return quant


def _quantized_constant(g: Graph, quant: Node) -> bool:
    """The QuantizeLinear reads a float constant: a weight quantized in the graph."""
    value = g.initializers.get(quant.inputs[0])
    return value is not None and value.dtype in (np.float32, np.float64)


def _both_implicit(quant: Node, dq: Node) -> bool:
    """Neither op has a zero-point input: with equal scales the DequantizeLinear reads the
    QuantizeLinear's own type (whatever shape inference could tell), so the pair matches."""
    return all(len(n.inputs) < 3 or not n.inputs[2] for n in (quant, dq))
