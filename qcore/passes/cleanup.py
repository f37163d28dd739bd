"""Final tidy-up: dead ops and initializers, topological order, ONNX checks."""

from __future__ import annotations

import hashlib

from qcore.ir import Graph
from qcore.passes.base import Context, Pass, PassResult
from qcore.passes.util import remove_dead_nodes, unused_initializers


class Cleanup(Pass):
    """Paddle ``_cleanup``: drop what nothing reads and sort the ops."""

    name = "cleanup"

    def apply(self, ctx: Context) -> PassResult:
        g = ctx.graph
        removed = remove_dead_nodes(g)
        unused = unused_initializers(g)
        for name in unused:
            del g.initializers[name]
        merged = merge_equal_initializers(g)
        g.toposort()
        return PassResult(
            modified=bool(removed or unused or merged),
            summary=f"removed {removed} dead ops, {len(unused)} unused initializers, "
            f"merged {merged} equal ones",
        )


def merge_equal_initializers(g: Graph) -> int:
    """Initializers with equal dtype, shape and bytes become one (the first by name), except
    the zero points of weight DequantizeLinear ops: OpenVINO 2026.4 runs a Conv in f32 when
    its weight's zero-point constant is shared with other weights (PP-OCRv4 det from NNCF: 37
    of 62 Convs INT8 with shared zero points, 41 with one each, as in the source)."""
    keep: dict[tuple[object, ...], str] = {}
    alias: dict[str, str] = {}
    outputs = set(g.output_names)
    own = {n.inputs[2] for n in g.nodes if n.op_type == "DequantizeLinear" and not n.domain
           and len(n.inputs) > 2 and n.inputs[0] in g.initializers}
    for name in sorted(g.initializers):
        value = g.initializers[name]
        if name in outputs or name in own:
            continue
        key = (value.dtype.str, value.shape, hashlib.sha1(value.tobytes()).hexdigest())
        if key in keep:
            alias[name] = keep[key]
        else:
            keep[key] = name
    for node in g.nodes:
        node.inputs = [alias.get(n, n) for n in node.inputs]
    for name in alias:
        del g.initializers[name]
    return len(alias)
