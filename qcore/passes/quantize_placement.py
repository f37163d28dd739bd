"""Decide which ops run in INT8, and record why every other op stays FP32."""

from __future__ import annotations

import numpy as np

from qcore.ir import Graph, Node
from qcore.passes.base import Context, Pass, PassResult
from qcore.passes.propagate_scales import keeps_scale

# Ops with an integer kernel, and the inputs / outputs whose scales they need.
COMPUTE_OPS = {
    "Conv",
    "Gemm",
    "MatMul",
    "Add",
    "Mul",
    "Concat",
    "AveragePool",
    "GlobalAveragePool",
    "Sigmoid",
    "LeakyRelu",
}
# Ops that move int8 data unchanged; worth it only next to another INT8 op.
MOVEMENT_OPS = {"Reshape", "Transpose", "Flatten", "Squeeze", "Unsqueeze", "MaxPool", "Slice",
                "Split", "Resize", "Gather"}
SUPPORTED_OPS = COMPUTE_OPS | MOVEMENT_OPS

REASON_SKIPPED = "skipped by id (op_ids_to_skip)"
REASON_NOT_SELECTED = "type not in ops_to_quantize"
REASON_UNSUPPORTED = "no INT8 kernel for this op type"
REASON_NO_NEIGHBOUR = "input comes from FP32: quantizing before a data-movement op gains nothing"
# ONNX Runtime's int8 convolution is slower than its float one when each output sums few
# products (input channels per group x kernel area): measured 2-4x slower for 5x5 depthwise
# (25) and 3-channel 3x3 stems (27), about equal for 3x3 depthwise (9), faster from ~64 up
# and for every 1x1 convolution.
SLOW_INT8_CONV_REDUCTION = range(10, 33)


def _slow_on_target(g: Graph, node: Node, target: str) -> str:
    """Why the engine runs this op slower in INT8 than in float ('' if it does not)."""
    if target != "onnxruntime" or node.op_type != "Conv":
        return ""
    weight = g.initializers.get(node.inputs[1]) if len(node.inputs) > 1 else None
    if weight is None or weight.ndim < 3 or int(np.prod(weight.shape[2:])) == 1:
        return ""
    reduction = int(np.prod(weight.shape[1:]))
    if reduction in SLOW_INT8_CONV_REDUCTION:
        return (f"ONNX Runtime's int8 convolution is slower than float when each output sums "
                f"only {reduction} products (measured 2-4x)")
    return ""


def _input_reason(g: Graph, node: Node, target: str = "onnxruntime") -> str | None:
    """Why the inputs of ``node`` rule out its INT8 form: a weight or bias that is not
    constant, or a tensor whose scale the INT8 form needs but the model lacks. Conv, Gemm
    and MatMul need no output scale (their output then stays float); on ``onednn`` no op
    does when the source quantized each of its activation inputs itself (NNCF's placement:
    OpenVINO reads those Q/DQ pairs as they are), and there an input the source quantized per
    channel (NNCF does before depthwise convolutions) keeps its per-channel Q/DQ."""
    acts = [n for n in node.inputs if n and n not in g.initializers]
    if node.op_type in ("Conv", "Gemm") or (
        node.op_type == "MatMul" and node.inputs[1] in g.initializers
    ):
        if len(node.inputs) < 2 or node.inputs[1] not in g.initializers:
            return f"weight {node.inputs[1]} is not constant"
        if node.op_type != "Conv" and g.initializers[node.inputs[1]].ndim != 2:
            return f"weight {node.inputs[1]} is not 2-D"
        bias = node.inputs[2] if len(node.inputs) > 2 else ""
        if bias and bias not in g.initializers:
            return f"bias {bias} is not constant"
        needed = [node.inputs[0]]  # without an output scale the output stays float
    elif node.op_type == "MatMul":
        needed = acts
    elif node.op_type in ("Add", "Mul") or node.op_type == "Concat":
        needed = acts + [node.outputs[0]]
    elif node.op_type in MOVEMENT_OPS:
        needed = [node.inputs[0]]
    else:
        needed = [node.inputs[0], node.outputs[0]]
    outputs_optional = target == "onednn" and bool(acts) and all(
        g.source_quantized(node, name) for name in acts)
    if outputs_optional:
        needed = [name for name in needed if name in node.inputs]
    for name in needed:
        params = g.qparams_for(node, name) if name in node.inputs else g.act_qparams.get(name)
        if params is None:
            return f"missing scale: no scale for tensor {name}"
        if params.per_channel and not (target == "onednn" and g.source_quantized(node, name)):
            return f"missing scale: per-channel activation scale on {name}"
    return None


def _static_reason(ctx: Context, node: Node) -> str:
    """Why ``node`` cannot be INT8 whatever its neighbours do ('' if it can)."""
    g, cfg = ctx.graph, ctx.config
    if node.domain or node.op_type not in SUPPORTED_OPS:
        return REASON_UNSUPPORTED
    if node.op_type in MOVEMENT_OPS and not keeps_scale(node):
        return "changes values (only nearest Resize / single-output MaxPool keep int8)"
    if cfg.ops_to_quantize and node.op_type not in cfg.ops_to_quantize:
        return REASON_NOT_SELECTED
    if node.id in cfg.op_ids_to_skip:
        return REASON_SKIPPED
    if node.op_type == "Gemm" and (node.attrs.get("transA", 0) or g.rank(node.inputs[0]) != 2):
        return "Gemm with transposed or non-2-D input"
    missing = _input_reason(g, node, cfg.target)
    if missing:
        return missing
    return _slow_on_target(g, node, cfg.target)


class QuantizePlacement(Pass):
    """Paddle ``cpu_quantize_placement_pass``: mark ops ``int8`` or ``fp32`` with a reason."""

    name = "quantize_placement"

    def apply(self, ctx: Context) -> PassResult:
        g = ctx.graph
        for node in g.nodes:
            if node.status == "fake":
                node.reason = "quantization op left in place"
                continue
            reason = _static_reason(ctx, node)
            node.status, node.reason = ("fp32", reason) if reason else ("int8", "")
        self._drop_lonely_movement_ops(g)
        int8 = sum(n.status == "int8" for n in g.nodes)
        return PassResult(modified=True, summary=f"{int8} of {len(g.nodes)} ops INT8")

    @staticmethod
    def _drop_lonely_movement_ops(g: Graph) -> None:
        """A movement op stays INT8 only when its input comes from an INT8 op (directly or
        through other INT8 movement ops): then the data is already int8 and stays so."""
        producers = g.producers()
        movement = {n.id: n for n in g.nodes if n.status == "int8" and n.op_type in MOVEMENT_OPS}
        anchored: dict[int, bool] = {}

        def fed_by_int8(node: Node) -> bool:
            if node.id not in anchored:
                anchored[node.id] = False
                source = producers.get(node.inputs[0])
                anchored[node.id] = source is not None and source.status == "int8" and (
                    source.id not in movement or fed_by_int8(source)
                )
            return anchored[node.id]

        for node in movement.values():
            if not fed_by_int8(node):
                node.status, node.reason = "fp32", REASON_NO_NEIGHBOUR
