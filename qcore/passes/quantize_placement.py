"""Decide which ops run in INT8, and record why every other op stays FP32."""

from __future__ import annotations

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
# No static engine-cost rule keeps an op FP32: ONNX Runtime runs every Conv of a QDQ file
# INT8, and measured in the model (benchmarks/bench_zoo.py), keeping its 5x5 depthwise and
# 3-channel stem convolutions FP32 (slower alone, 2-4x) made EfficientNet-Lite0 1.12x slower
# than ONNX Runtime on the same QDQ file (each island pays a DequantizeLinear, a
# QuantizeLinear and layout reorders); with them INT8 it is 0.99x.


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
    return _input_reason(g, node, cfg.target) or ""


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
