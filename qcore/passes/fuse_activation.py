"""Fuse Relu / Clip into the Conv, Gemm, MatMul, Add or Mul that feeds it."""

from __future__ import annotations

from qcore.ir import FusedActivation, Graph, Node
from qcore.ops import spec_of
from qcore.passes.base import Context, Pass, PassResult
from qcore.passes.util import absorb, const_scalar, single_consumer


def activation_bounds(g: Graph, node: Node) -> tuple[float, float] | None:
    """(low, high) of a Relu or Clip node with constant bounds, else None."""
    inf = float("inf")
    if node.op_type == "Relu":
        return 0.0, inf
    if node.op_type != "Clip":
        return None
    if "min" in node.attrs or "max" in node.attrs:
        return node.attrs.get("min", -inf), node.attrs.get("max", inf)
    low = const_scalar(g, node.inputs[1]) if len(node.inputs) > 1 and node.inputs[1] else -inf
    high = const_scalar(g, node.inputs[2]) if len(node.inputs) > 2 and node.inputs[2] else inf
    if low is None or high is None:
        return None
    return low, high


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
