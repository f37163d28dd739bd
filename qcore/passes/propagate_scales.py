"""Give scales to tensors on either side of ops that do not change values."""

from __future__ import annotations

from qcore.passes.base import Context, Pass, PassResult

SCALE_KEEPING = {
    "Reshape",
    "Transpose",
    "Flatten",
    "Squeeze",
    "Unsqueeze",
    "MaxPool",
    "Slice",
    "Split",
    "Resize",
    "Gather",
}


def keeps_scale(node) -> bool:  # noqa: ANN001
    if node.domain or node.op_type not in SCALE_KEEPING:
        return False
    if node.op_type == "Resize":
        return node.attrs.get("mode", b"nearest") in (b"nearest", "nearest")
    if node.op_type == "MaxPool":
        return len(node.outputs) == 1 or not node.outputs[1]
    return True


class PropagateScales(Pass):
    """Paddle ``_propagate_scales``: through scale-keeping ops the output takes the input's
    scale (or the input the output's), and Concat inputs without a scale take the output's.
    Repeats until nothing changes."""

    name = "propagate_scales"

    def apply(self, ctx: Context) -> PassResult:
        g = ctx.graph
        params = g.act_qparams
        filled = 0
        changed = True
        while changed:
            changed = False
            for node in g.nodes:
                if keeps_scale(node):
                    src = node.inputs[0]
                    outs = [o for o in node.outputs if o]
                    if src in g.initializers:
                        continue
                    if src in params:
                        given = g.qparams_for(node, src)
                        for out in outs:
                            if out not in params and _carries(node, given):
                                params[out] = given
                                filled += 1
                                changed = True
                    elif outs and outs[0] in params and _carries(node, params[outs[0]]):
                        params[src] = params[outs[0]]
                        filled += 1
                        changed = True
                elif (node.op_type == "Concat" and not node.domain and node.outputs[0] in params
                      and not params[node.outputs[0]].per_channel):
                    for name in node.inputs:
                        if name not in params and name not in g.initializers:
                            params[name] = params[node.outputs[0]]
                            filled += 1
                            changed = True
        return PassResult(modified=filled > 0, summary=f"propagated {filled} scales")


def _carries(node, params) -> bool:  # noqa: ANN001
    """Per-channel params stay valid only through ops that keep the channel layout."""
    return not params.per_channel or node.op_type in CHANNEL_KEEPING


CHANNEL_KEEPING = {"MaxPool", "Resize"}
