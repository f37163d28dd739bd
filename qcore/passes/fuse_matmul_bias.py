"""Fuse MatMul with a constant weight and the Add of a constant bias that follows it."""

from __future__ import annotations

from qcore.ir import Node
from qcore.passes.base import Context, Fact, Pass, PassResult
from qcore.passes.util import absorb, single_consumer


class FuseMatMulBias(Pass):
    """Paddle ``fc_fuse_pass``: MatMul(x, W) + b becomes one linear op with a bias input.

    The fused op keeps type MatMul with a third input; the FP32 writer splits it again.
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
            if add is None or add.op_type != "Add" or add.domain:
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
