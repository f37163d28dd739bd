"""Emit INT8 ops for every op the placement marked ``int8``."""

from __future__ import annotations

from qcore.emit.onednn import QdqEmitter
from qcore.emit.onnxruntime import OrtEmitter, keep_float_islands_float
from qcore.ir import Node
from qcore.ops import ONNXRUNTIME, is_movement
from qcore.passes.base import Context, Fact, Pass, PassResult
from qcore.status import OpStatus


def _keeps_source_qdq(node: Node, skip: set[int], target: str) -> bool:
    """An FP32 compute op that no user choice made FP32 (nor named in ``skip``, even when it
    has no INT8 form anyway): it keeps the Q/DQ the source put on its inputs, so it computes
    with the values the quant model computes with. On ``onnxruntime`` an FP32 data-movement
    op too: NNCF on YOLOv8 rounds a SiLU's output for a Resize, then again on the Concat's
    coarser grid after it (ONNX Runtime runs DQ -> Resize -> Q in float)."""
    return (node.status is OpStatus.FP32
            and (not is_movement(node) or target == ONNXRUNTIME)
            and not node.reason.kind.user_choice and node.id not in skip)


class Quantize(Pass):
    """Paddle ``cpu_quantize_pass``: each INT8 op gets QuantizeLinear on its inputs and
    DequantizeLinear on its outputs, in the form of the chosen target. FP32 ops keep the
    Q/DQ pairs the source put on their inputs unless the user chose FP32 (measured on
    EfficientNet-Lite0 from NNCF on ONNX Runtime: without them our INT8 was at cosine 0.64
    against the quant model, which ``qcore verify`` flags; with them 14 % slower, and as far
    from float as the quant model). On ``onnxruntime``, FP32 Conv / Gemm ops between INT8
    ops are kept float (see ``keep_float_islands_float``)."""

    name = "quantize"
    requires = frozenset({Fact.DECIDED, Fact.WEIGHT_SCALES})

    def apply(self, ctx: Context) -> PassResult:
        g = ctx.graph
        emitter = OrtEmitter(g) if ctx.config.target == ONNXRUNTIME else QdqEmitter(g)
        nodes = []
        count = 0
        skip = set(ctx.config.op_ids_to_skip)
        for node in g.nodes:
            if node.status is OpStatus.INT8:
                nodes.extend(emitter.emit(node))
                count += 1
            elif _keeps_source_qdq(node, skip, ctx.config.target):
                nodes.extend(emitter.keep_source_qdq(node))
            else:
                nodes.append(node)
        g.nodes = nodes
        kept = keep_float_islands_float(g) if isinstance(emitter, OrtEmitter) else 0
        g.toposort()
        summary = f"quantized {count} ops" + (f", {kept} FP32 ops kept float" if kept else "")
        return PassResult(modified=count > 0 or kept > 0, summary=summary)
