"""Read the scale and zero point of every activation Q/DQ pair and every weight DQ."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto

from qcore.ir import Node, QParams
from qcore.passes.base import Context, Pass, PassResult
from qcore.passes.util import qparams_of
from qcore.status import OpStatus

FLOAT_TYPES = (TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.BFLOAT16, TensorProto.DOUBLE)


class GatherScales(Pass):
    """Paddle ``_gather_*_scales``: activation params are keyed by the float tensor that the
    QuantizeLinear reads; weight params by the DequantizeLinear output. First writer wins."""

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
                if node.outputs[0] not in g.weight_qparams:
                    g.weight_qparams[node.outputs[0]] = params
                    g.weight_ints[node.outputs[0]] = g.initializers[source]
                    weights += 1
                continue
            quant = producers.get(source)
            if quant is None or quant.op_type != "QuantizeLinear":
                continue
            q_params = qparams_of(g, quant)
            if q_params is None or not (q_params.same_as(params) or _both_implicit(
                    quant, node, q_params, params)):
                continue
            info = g.tensors.get(quant.inputs[0])
            if info is not None and info.elem_type not in FLOAT_TYPES:
                continue  # quantizing integers is real work, not fake quantization
            node.status = quant.status = OpStatus.FAKE
            tensor = quant.inputs[0]
            if tensor not in g.act_qparams:
                g.act_qparams[tensor] = q_params
                acts += 1
        return PassResult(
            modified=bool(acts or weights),
            summary=f"{acts} activation scales, {weights} weight scales",
        )


def _both_implicit(quant: Node, dq: Node, q_params: QParams, dq_params: QParams) -> bool:
    """Neither op has a zero-point input and the scales are equal: the DequantizeLinear reads
    the QuantizeLinear's own type (whatever shape inference could tell), so the pair matches."""
    no_zp = all(len(n.inputs) < 3 or not n.inputs[2] for n in (quant, dq))
    return no_zp and bool(np.array_equal(q_params.scale, dq_params.scale))
