"""Drop Identity ops and inference-time Dropout."""

from __future__ import annotations

from qcore.passes.base import Context, Pass, PassResult
from qcore.passes.util import bypass


class RemoveIdentity(Pass):
    """Paddle ``simplify_with_basic_ops_pass``: Identity and Dropout pass data unchanged."""

    name = "remove_identity"

    def apply(self, ctx: Context) -> PassResult:
        g = ctx.graph
        removed = 0
        for node in list(g.nodes):
            if node.domain or node.op_type not in ("Identity", "Dropout"):
                continue
            if node.op_type == "Dropout" and any(node.outputs[1:]):
                consumers = g.consumers()
                if any(consumers.get(name) for name in node.outputs[1:]):
                    continue
            src, dst = node.inputs[0], node.outputs[0]
            if src in g.act_qparams and dst not in g.act_qparams:
                g.act_qparams[dst] = g.act_qparams[src]
            removed += bypass(g, node, src, dst)
        return PassResult(modified=removed > 0, summary=f"removed {removed} ops")
