"""Read the scale and zero point of every activation Q/DQ pair and every weight DQ."""

from __future__ import annotations

from onnx import TensorProto

from qcore.passes.base import Context, Pass, PassResult
from qcore.passes.util import qparams_of

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
                node.status = "fake"
                if node.outputs[0] not in g.weight_qparams:
                    g.weight_qparams[node.outputs[0]] = params
                    g.weight_ints[node.outputs[0]] = g.initializers[source]
                    weights += 1
                continue
            quant = producers.get(source)
            if quant is None or quant.op_type != "QuantizeLinear":
                continue
            q_params = qparams_of(g, quant)
            if q_params is None or not q_params.same_as(params):
                continue
            info = g.tensors.get(quant.inputs[0])
            if info is not None and info.elem_type not in FLOAT_TYPES:
                continue  # quantizing integers is real work, not fake quantization
            node.status = quant.status = "fake"
            tensor = quant.inputs[0]
            if tensor not in g.act_qparams:
                g.act_qparams[tensor] = q_params
                acts += 1
        return PassResult(
            modified=bool(acts or weights),
            summary=f"{acts} activation scales, {weights} weight scales",
        )
