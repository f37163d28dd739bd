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
        consumers = g.consumers()
        rewire: dict[str, str] = {}  # readers of the key read the value instead
        doomed = []
        for node in list(g.nodes):
            if node.domain or node.op_type not in ("Identity", "Dropout"):
                continue
            if node.op_type == "Dropout" and any(consumers.get(name)
                                                 for name in node.outputs[1:] if name):
                continue
            src, dst = rewire.get(node.inputs[0], node.inputs[0]), node.outputs[0]
            if src in g.act_qparams and dst not in g.act_qparams:
                g.act_qparams[dst] = g.act_qparams[src]
            own = g.input_qparams.get((node.id, node.inputs[0]))
            if own is not None:  # its readers read what it read: the source's Q/DQ'd value
                for reader in consumers.get(dst, []):
                    g.input_qparams.setdefault((reader.id, dst), own)
            if dst in g.output_names:  # the producer is renamed instead: the rare, slow path
                g.replace_inputs(rewire)
                rewire.clear()
                removed += bypass(g, node, src, dst)
                continue
            rewire[dst] = src
            doomed.append(node)
        g.remove_nodes(doomed)  # once, and one pass to rewire the readers
        g.replace_inputs(rewire)
        removed += len(doomed)
        return PassResult(modified=removed > 0, summary=f"removed {removed} ops")
