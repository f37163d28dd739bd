"""Give scales to tensors on either side of ops that do not change values."""

from __future__ import annotations

from qcore.ir import Graph, Node, QParams
from qcore.ops import keeps_scale, spec_of
from qcore.passes.base import Context, Pass, PassResult


class PropagateScales(Pass):
    """Paddle ``_propagate_scales``: through scale-keeping ops the output takes the input's
    scale (or the input the output's), and Concat inputs without a scale take the output's.
    Repeats until nothing changes."""

    name = "propagate_scales"

    def apply(self, ctx: Context) -> PassResult:
        g = ctx.graph
        filled = 0
        while True:
            found = sum(_through_movement(g, node) if keeps_scale(node) else
                        _into_concat(g, node) for node in g.nodes)
            if not found:
                break
            filled += found
        return PassResult(modified=filled > 0, summary=f"propagated {filled} scales")


def _through_movement(g: Graph, node: Node) -> int:
    """Scales given across one scale-keeping op (input -> outputs, else output -> input)."""
    params = g.act_qparams
    src = node.inputs[0]
    outs = [o for o in node.outputs if o]
    if src in g.initializers:
        return 0
    if src in params:
        given = g.qparams_for(node, src) or params[src]
        missing = [out for out in outs if out not in params and _carries(node, given)]
        for out in missing:
            params[out] = given
        return len(missing)
    if outs and outs[0] in params and _carries(node, params[outs[0]]):
        params[src] = params[outs[0]]
        return 1
    return 0


def _into_concat(g: Graph, node: Node) -> int:
    """Concat inputs without a scale take the Concat's per-tensor output scale."""
    params = g.act_qparams
    if node.op_type != "Concat" or node.domain or node.outputs[0] not in params or \
            params[node.outputs[0]].per_channel:
        return 0
    missing = [n for n in node.inputs if n not in params and n not in g.initializers]
    for name in missing:
        params[name] = params[node.outputs[0]]
    return len(missing)


def _carries(node: Node, params: QParams) -> bool:
    """Per-channel params stay valid only through ops that keep the channel layout."""
    if not params.per_channel:
        return True
    spec = spec_of(node)
    return spec is not None and spec.keeps_channels
