"""Choose the 8-bit type of every activation: uint8, which integer CPU kernels are fast with."""

from __future__ import annotations

import numpy as np

from qcore.ir import QParams
from qcore.passes.base import Context, Pass, PassResult
from qcore.passes.fuse_activation import activation_bounds


def _non_negative_outputs(g) -> set[str]:  # noqa: ANN001
    result = set()
    for node in g.nodes:
        act = node.attrs.get("_act")
        low = act[1] if act else None
        if low is None:
            bounds = activation_bounds(g, node)
            low = bounds[0] if bounds else None
        if low is not None and low >= 0:
            result.update(node.outputs)
    return result


class ActivationSignedness(Pass):
    """Outputs of Relu / Clip(>=0) become uint8 with zero point 0 and the same scale. For ONNX
    Runtime, whose fast integer kernels take uint8 activations, other signed int8 activations
    become uint8 with the zero point shifted by 128; oneDNN runs signed symmetric int8 natively,
    so they stay as they are there (a zero point would cost it extra element-wise work). Both
    rewrites keep every value the quant model could represent, so results are unchanged."""

    name = "activation_signedness"

    def apply(self, ctx: Context) -> PassResult:
        g = ctx.graph
        non_negative = _non_negative_outputs(g)
        shift = ctx.config.target == "onnxruntime"
        unsigned = shifted = 0
        for tensor, params in list(g.act_qparams.items()):
            if params.dtype != np.int8 or params.per_channel:
                continue
            if tensor in non_negative and int(params.zero_point) == 0:
                new = QParams(params.scale, np.zeros_like(params.zero_point, np.uint8))
                unsigned += 1
            elif not shift:
                continue
            else:
                zp = params.zero_point.astype(np.int32) + 128
                new = QParams(params.scale, zp.astype(np.uint8))
                shifted += 1
            g.act_qparams[tensor] = new
        return PassResult(
            modified=bool(unsigned or shifted),
            summary=f"{unsigned} unsigned after activation, {shifted} shifted s8->u8",
        )
