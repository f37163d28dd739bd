"""Emit INT8 ops for every op the placement marked ``int8``."""

from __future__ import annotations

from qcore.emit.onednn import QdqEmitter
from qcore.emit.onnxruntime import OrtEmitter
from qcore.passes.base import Context, Pass, PassResult


class Quantize(Pass):
    """Paddle ``cpu_quantize_pass``: each INT8 op gets QuantizeLinear on its inputs and
    DequantizeLinear on its outputs, in the form of the chosen target."""

    name = "quantize"

    def apply(self, ctx: Context) -> PassResult:
        g = ctx.graph
        emitter = OrtEmitter(g) if ctx.config.target == "onnxruntime" else QdqEmitter(g)
        nodes = []
        count = 0
        for node in g.nodes:
            if node.status == "int8":
                nodes.extend(emitter.emit(node))
                count += 1
            else:
                nodes.append(node)
        g.nodes = nodes
        g.toposort()
        return PassResult(modified=count > 0, summary=f"quantized {count} ops")
