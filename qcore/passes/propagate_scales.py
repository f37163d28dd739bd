"""Give scales to tensors on either side of ops that do not change values."""

from __future__ import annotations

from qcore.ir import Graph, Node, QParams
from qcore.ops import keeps_scale, spec_of
from qcore.passes.base import Context, Pass, PassResult


class PropagateScales(Pass):
    """Paddle ``_propagate_scales``: through scale-keeping ops the output takes the input's
    scale (or the input the output's), Concat inputs without a scale take the output's, and
    a Concat output without one takes its inputs' when they all read the same per-tensor
    params. Repeats until nothing changes."""

    name = "propagate_scales"

    def apply(self, ctx: Context) -> PassResult:
        g = ctx.graph
        filled = 0
        while True:
            found = sum(_through_movement(g, node) if keeps_scale(node) else
                        _into_concat(g, node) + _out_of_concat(g, node) for node in g.nodes)
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


def _out_of_concat(g: Graph, node: Node) -> int:
    """A Concat output without a scale takes its inputs' when they all read one per-tensor
    scale and zero point: the output then holds exactly values of that grid. NNCF unifies
    the scales of a Concat's inputs and quantizes only the inputs of the op after it (YOLOv8's
    C2f / SPPF blocks: Concat -> Conv); OpenVINO runs that Conv INT8 on the source."""
    if node.op_type != "Concat" or node.domain or node.outputs[0] in g.act_qparams:
        return 0
    acts = [n for n in node.inputs if n and n not in g.initializers]
    read = [g.qparams_for(node, name) for name in acts]
    first = read[0] if read else None
    if first is None or first.per_channel or not all(first.same_as(p) for p in read[1:]):
        return 0
    g.act_qparams[node.outputs[0]] = first
    return 1


def _carries(node: Node, params: QParams) -> bool:
    """Per-channel params stay valid only through ops that keep the channel layout."""
    if not params.per_channel:
        return True
    spec = spec_of(node)
    return spec is not None and spec.keeps_channels
