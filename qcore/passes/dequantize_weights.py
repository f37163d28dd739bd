"""Turn integer weights read through DequantizeLinear into float initializers."""

from __future__ import annotations

import numpy as np

from qcore.ir import Graph, Node
from qcore.passes.base import Context, Fact, Pass, PassResult
from qcore.passes.util import const_scalar
from qcore.status import OpStatus


class DequantizeWeights(Pass):
    """int8 weight + DequantizeLinear -> float weight; int32 biases too; a float constant
    read through QuantizeLinear -> DequantizeLinear (NNCF) -> its dequantized values. The
    integer values and their params stay recorded under the float name so they can be
    reused exactly."""

    name = "dequantize_weights"
    ensures = frozenset({Fact.FLOAT_WEIGHTS})

    def apply(self, ctx: Context) -> PassResult:
        g = ctx.graph
        done = []
        quantized = _quantized_constants(g)
        for node in g.nodes:
            out = node.outputs[0] if node.outputs else ""
            if node.op_type != "DequantizeLinear":
                continue
            if node.inputs[0] in quantized and out in g.weight_qparams:
                g.initializers[out] = g.weight_qparams[out].dequantize(g.weight_ints[out])
                done.append(node)
                continue
            if node.inputs[0] not in g.initializers:
                continue
            params = g.weight_qparams.get(out)
            if params is not None:
                g.initializers[out] = params.dequantize(g.initializers[node.inputs[0]])
            else:
                value = _dequantize_int32(g, node)
                if value is None:
                    continue
                g.initializers[out] = value
            done.append(node)
        g.remove_nodes(done)
        read = {name for n in g.nodes for name in n.inputs} | set(g.output_names)
        g.remove_nodes([q for q in quantized.values() if q.outputs[0] not in read])
        return PassResult(modified=bool(done), summary=f"dequantized {len(done)} weights")


def _quantized_constants(g: Graph) -> dict[str, Node]:
    """QuantizeLinear output -> the fake QuantizeLinear of a float constant (a weight that
    gather_scales recorded with its integer values)."""
    return {n.outputs[0]: n for n in g.nodes if n.op_type == "QuantizeLinear"
            and n.status is OpStatus.FAKE and n.inputs[0] in g.initializers}


def _dequantize_int32(g: Graph, node: Node) -> np.ndarray | None:
    values = g.initializers[node.inputs[0]]
    scale_name = node.inputs[1] if len(node.inputs) > 1 else ""
    if scale_name not in g.initializers:
        return None
    scale = g.initializers[scale_name].astype(np.float32)
    zp_name = node.inputs[2] if len(node.inputs) > 2 else ""
    zp = g.initializers[zp_name] if zp_name in g.initializers else np.zeros_like(scale)
    if scale.size > 1:
        axis = node.attrs.get("axis", 1) % values.ndim
        shape = [1] * values.ndim
        shape[axis] = -1
        scale, zp = scale.reshape(shape), np.asarray(zp).reshape(shape)
    elif const_scalar(g, scale_name) is None:
        return None
    real: np.ndarray = ((values.astype(np.int64) - zp.astype(np.int64)) * scale).astype(np.float32)
    return real
