"""Fuse Relu / Clip into the Conv, Gemm, MatMul, Add or Mul that feeds it."""

from __future__ import annotations

from qcore.ir import FusedActivation, Node
from qcore.ops import spec_of
from qcore.passes.base import Context, Pass, PassResult
from qcore.passes.util import absorb, activation_bounds, single_consumer


class FuseActivation(Pass):
    """Paddle ``conv_activation_*_fuse_pass``: the producer takes the activation's output and
    records the clamp in its ``act``."""

    name = "fuse_activation"

    def apply(self, ctx: Context) -> PassResult:
        g = ctx.graph
        fused: list[Node] = []  # the activations now inside their producers
        consumers = g.consumers()  # kept up to date below: one map for the whole pass
        for node in list(g.nodes):
            spec = spec_of(node)
            if spec is None or not spec.fuses_activation or node.act is not None:
                continue
            act = single_consumer(g, consumers, node.outputs[0])
            if act is None or act.domain:
                continue
            bounds = activation_bounds(g, act)
            if bounds is None:
                continue
            node.act = FusedActivation(act.op_type, bounds[0], bounds[1], act.id)
            absorb(g, consumers, node, act)
            fused.append(act)
        g.remove_nodes(fused)  # once: removing them one by one made the pass quadratic
        return PassResult(modified=bool(fused), summary=f"fused {len(fused)} activations")
