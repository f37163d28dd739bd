"""Final tidy-up: dead ops and initializers, topological order, ONNX checks."""

from __future__ import annotations

from qcore.passes.base import Context, Pass, PassResult
from qcore.passes.squash import remove_dead_nodes, unused_initializers


class Cleanup(Pass):
    """Paddle ``_cleanup``: drop what nothing reads and sort the ops."""

    name = "cleanup"

    def apply(self, ctx: Context) -> PassResult:
        g = ctx.graph
        removed = remove_dead_nodes(g)
        unused = unused_initializers(g)
        for name in unused:
            del g.initializers[name]
        g.toposort()
        return PassResult(
            modified=bool(removed or unused),
            summary=f"removed {removed} dead ops, {len(unused)} unused initializers",
        )
