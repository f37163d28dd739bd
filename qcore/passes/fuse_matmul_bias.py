"""Fuse MatMul with a constant weight and the Add of a constant bias that follows it."""

from __future__ import annotations

from qcore.ir import Node
from qcore.passes.base import Context, Fact, Pass, PassResult
from qcore.passes.util import absorb, single_consumer


def _quantized_between(ctx: Context, mm: Node, add: Node) -> bool:
    """True when the source quantizes the MatMul's output (for the Add or at all)."""
    out = mm.outputs[0]
    return out in ctx.graph.act_qparams or ctx.graph.source_quantized(add, out)


class FuseMatMulBias(Pass):
    """Paddle ``fc_fuse_pass``: MatMul(x, W) + b becomes one linear op with a bias input.

    The fused op keeps type MatMul with a third input; the FP32 writer splits it again.
    Where the source quantizes the MatMul's output before the Add (ONNX Runtime's
    ``quantize_static`` with MatMul in its op types), the two stay apart: the Add reads the
    rounded, clamped product, and a fused op would add the bias to the exact one (MiniLM-L6:
    cosine to the source 0.9941).
    """

    name = "fuse_matmul_bias"
    requires = frozenset({Fact.FLOAT_WEIGHTS})

    def apply(self, ctx: Context) -> PassResult:
        g = ctx.graph
        fused = 0
        consumers = g.consumers()
        done: list[Node] = []  # the ops merged into others, removed once at the end
        for mm in list(g.nodes):
            if mm.op_type != "MatMul" or mm.domain or len(mm.inputs) != 2:
                continue
            weight = g.initializers.get(mm.inputs[1])
            if weight is None or weight.ndim != 2:
                continue
            add = single_consumer(g, consumers, mm.outputs[0])
            if add is None or add.op_type != "Add" or add.domain or _quantized_between(
                    ctx, mm, add):
                continue
            other = [name for name in add.inputs if name != mm.outputs[0]]
            if len(other) != 1 or other[0] not in g.initializers:
                continue
            bias = g.initializers[other[0]]
            if bias.size != weight.shape[1] or bias.shape[-1:] != (weight.shape[1],):
                continue
            mm.inputs = [mm.inputs[0], mm.inputs[1], other[0]]
            absorb(g, consumers, mm, add)
            mm.bias_add = add.id
            done.append(add)
            fused += 1
        g.remove_nodes(done)
        return PassResult(modified=fused > 0, summary=f"fused {fused} MatMul+Add")
