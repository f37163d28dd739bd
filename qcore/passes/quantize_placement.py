"""Decide which ops run in INT8, and record why every other op stays FP32."""

from __future__ import annotations

from qcore.emit.onnxruntime import exact_constant
from qcore.ir import Graph, Node, QParams
from qcore.ops import ONEDNN, ONNXRUNTIME, QDQ_OPS, Form, OpSpec, is_movement, spec_of
from qcore.passes.base import Context, Fact, Pass, PassResult
from qcore.status import NO_REASON, OpStatus, Reason, ReasonKind

#: Readers that use only a tensor's shape, never its values.
SHAPE_READERS = frozenset({"Shape", "Size"})

# No static engine-cost rule keeps an op FP32: ONNX Runtime runs every Conv of a QDQ file
# INT8, and measured in the model (benchmarks/bench_zoo.py), keeping its 5x5 depthwise and
# 3-channel stem convolutions FP32 (slower alone, 2-4x) made EfficientNet-Lite0 1.12x slower
# than ONNX Runtime on the same QDQ file (each island pays a DequantizeLinear, a
# QuantizeLinear and layout reorders); with them INT8 it is 0.99x.


def _linear_reason(g: Graph, node: Node) -> Reason | None:
    """Why a linear op's weight or bias rules out its INT8 form."""
    def unsupported(detail: str) -> Reason:
        return Reason(ReasonKind.UNSUPPORTED_FORM, detail)

    if node.op_type == "Gemm" and (node.attrs.get("transA", 0) or g.rank(node.inputs[0]) != 2):
        return unsupported("Gemm with transposed or non-2-D input")
    if len(node.inputs) < 2 or node.inputs[1] not in g.initializers:
        return unsupported(f"weight {node.inputs[1]} is not constant")
    if node.op_type not in ("Conv", "ConvTranspose") and g.initializers[node.inputs[1]].ndim != 2:
        return unsupported(f"weight {node.inputs[1]} is not 2-D")
    bias = node.inputs[2] if len(node.inputs) > 2 else ""
    if bias and bias not in g.initializers:
        return unsupported(f"bias {bias} is not constant")
    return None


def _needed_scales(node: Node, spec: OpSpec, acts: list[str]) -> list[str]:
    """The tensors whose scales the INT8 form of ``node`` (activation inputs ``acts``)
    needs. Linear ops and MatMul need no output scale (their output then stays float)."""
    if spec.form is Form.LINEAR or spec.form is Form.MOVEMENT:
        return [node.inputs[0]]
    if spec.form is Form.MATMUL:
        return acts
    if spec.form in (Form.BINARY, Form.CONCAT):
        return acts + [node.outputs[0]]
    return [node.inputs[0], node.outputs[0]]


def _scale_reason(g: Graph, node: Node, spec: OpSpec, target: str) -> Reason | None:
    """Why a missing or per-channel scale rules out the INT8 form. On ``onednn`` no op needs
    an output scale when the source quantized each of its activation inputs itself (NNCF's
    placement: OpenVINO reads those Q/DQ pairs as they are), and there an input the source
    quantized per channel (NNCF does before depthwise convolutions) keeps its Q/DQ."""
    acts = [n for n in node.inputs if n and n not in g.initializers]
    needed = _needed_scales(node, spec, acts)
    if target == ONEDNN and acts and all(g.source_quantized(node, name) for name in acts):
        needed = [name for name in needed if name in node.inputs]
    for name in needed:
        params: QParams | None = g.qparams_for(node, name) if name in node.inputs else \
            g.act_qparams.get(name)
        if params is None:
            return Reason(ReasonKind.MISSING_SCALE, f"no scale for tensor {name}")
        if params.per_channel and not (target == ONEDNN and g.source_quantized(node, name)):
            return Reason(ReasonKind.MISSING_SCALE, f"per-channel activation scale on {name}")
    return None


def placement_reason(ctx: Context, node: Node) -> Reason:
    """Why ``node`` cannot be INT8 whatever its neighbours do (``NO_REASON`` if it can)."""
    g, cfg = ctx.graph, ctx.config
    spec = spec_of(node, g)
    if spec is None:
        return Reason(ReasonKind.NO_KERNEL)
    if cfg.target not in spec.targets:
        return Reason(ReasonKind.NO_KERNEL_ON_TARGET, cfg.target)
    if spec.form is Form.MOVEMENT and not spec.keeps_scale(node):
        return Reason(ReasonKind.CHANGES_VALUES)
    if cfg.ops_to_quantize and node.op_type not in cfg.ops_to_quantize:
        return Reason(ReasonKind.NOT_SELECTED)
    if node.id in cfg.op_ids_to_skip:
        return Reason(ReasonKind.SKIPPED)
    if spec.form is Form.LINEAR:
        reason = _linear_reason(g, node)
        if reason is not None:
            return reason
    if cfg.target == ONNXRUNTIME:
        reason = _float_values_reason(g, node, spec) or _float_output_conv_reason(g, node)
        if reason is not None:
            return reason
    return _scale_reason(g, node, spec, cfg.target) or NO_REASON


def _float_output_conv_reason(g: Graph, node: Node) -> Reason | None:
    """On ``onnxruntime``: a Conv whose output has no per-tensor scale (Paddle's PTQ and
    NNCF put no QuantizeLinear on a Conv's output; NNCF quantizes an expand Conv's output
    per channel) stays FP32, reading its input through the source's Q/DQ pair. ONNX Runtime
    fuses DequantizeLinear -> Conv into an integer op only when a QuantizeLinear takes the
    output (checked on 1.32: DQ -> Conv without Q stays a float Conv), so on the source file
    it runs this Conv float, and our float Conv computes what it computes, from float weights
    it need not dequantize on every run. The INT8 form was ConvInteger + Cast / Mul / Add,
    which ONNX Runtime runs without a depthwise or NCHWc kernel: measured interleaved
    (benchmarks/bench_zoo.py, ours / the source QDQ on ONNX Runtime), PP-LCNet from Paddle's
    PTQ 1.04x -> 0.42x, PP-LCNet NNCF 0.45x -> 0.40x, PP-OCRv4 det NNCF 0.85x -> 0.55x;
    YOLOv8n NNCF (dense 3x3 Convs, where ConvInteger's u8u8 kernel is fast) 0.70x -> 0.76x,
    1.02x -> 1.08x the float model. DQ -> MatMul without Q becomes MatMulIntegerToFloat on
    ONNX Runtime: MatMul keeps its float-output INT8 form (Gemm, QGemm, too)."""
    if node.op_type != "Conv" or _quantized_output(g, node.outputs[0]):
        return None
    out = node.outputs[0]
    what = "per-channel scale" if out in g.act_qparams else "no scale"
    return Reason(ReasonKind.MISSING_SCALE, f"{what} for output {out}: ONNX Runtime runs the "
                  "source's Conv float (it runs a Conv INT8 only when a per-tensor "
                  "QuantizeLinear takes its output)")


def _float_values_reason(g: Graph, node: Node, spec: OpSpec) -> Reason | None:
    """On ``onnxruntime``: why the INT8 form would compute with values the source keeps
    float (ONNX Runtime runs the source's op float there too)."""
    if spec.form is Form.BINARY:
        inexact = next((n for n in node.inputs if n in g.initializers and not exact_constant(
            g.initializers[n])), None)
        if inexact is not None:  # MiniLM's bias Adds after a quantized MatMul output
            return Reason(ReasonKind.UNSUPPORTED_FORM, f"constant {inexact} has no exact "
                          "8-bit form: the source computes with its float values")
    raw = None if is_movement(node) else next(
        (n for n in node.inputs if _read_raw_here(g, node, n)), None)
    if raw is not None:  # Paddle's legacy PTQ: PP-OCR cls's residual Adds
        return Reason(ReasonKind.UNSUPPORTED_FORM, f"the source reads {raw} without a Q/DQ "
                      "pair here (other readers quantize it): it computes with the float value")
    return None


def _read_raw_here(g: Graph, node: Node, name: str) -> bool:
    """True when the source quantizes activation ``name`` for another reader but ``node``
    reads it raw: ONNX Runtime then runs ``node`` on the float value."""
    if not name or name in g.initializers or g.source_quantized(node, name):
        return False
    return any(tensor == name for _, tensor in g.input_qparams)


class QuantizePlacement(Pass):
    """Paddle ``cpu_quantize_placement_pass``: mark ops ``int8`` or ``fp32`` with a reason."""

    name = "quantize_placement"
    ensures = frozenset({Fact.DECIDED})

    def apply(self, ctx: Context) -> PassResult:
        g = ctx.graph
        for node in g.nodes:
            if node.status is OpStatus.FAKE:
                node.reason = Reason(ReasonKind.FAKE_LEFT)
                continue
            reason = placement_reason(ctx, node)
            node.decide(OpStatus.FP32 if reason else OpStatus.INT8, reason)
        if ctx.config.target == ONNXRUNTIME:
            self._keep_raw_read_outputs_float(g)
        self._drop_lonely_movement_ops(g, ctx.config.target)
        int8 = sum(n.status is OpStatus.INT8 for n in g.nodes)
        return PassResult(modified=True, summary=f"{int8} of {len(g.nodes)} ops INT8")

    @staticmethod
    def _keep_raw_read_outputs_float(g: Graph) -> None:
        """On ``onnxruntime`` an INT8 op writes its output quantized when the output has a
        per-tensor scale; it stays FP32 instead when an FP32 op reads that output without a
        Q/DQ pair in the source, which would otherwise get the clamped, rounded value (ONNX
        Runtime runs such an op float too: it fuses an op with its Q/DQ only when Q ops take
        all of its output). Silero VAD: an If reads the Sigmoid's output unquantized, whose
        calibrated range ends at 0.0017; quantized, the model's output was that constant."""
        consumers = g.consumers()
        changed = True
        while changed:  # an op kept FP32 may read its own input unquantized: go again
            changed = False
            for node in g.nodes:
                if node.status is not OpStatus.INT8 or is_movement(node):
                    continue  # an INT8 data-movement op's output is on its input's grid
                raw = next((reader for out in node.outputs if _quantized_output(g, out)
                            for reader in consumers.get(out, [])
                            if _reads_raw(g, reader, out)), None)
                if raw is not None:
                    node.decide(OpStatus.FP32, Reason(
                        ReasonKind.UNSUPPORTED_FORM, f"{raw.label} reads its output without a "
                        "Q/DQ pair in the source; the INT8 form would hand it quantized values"))
                    changed = True

    @staticmethod
    def _drop_lonely_movement_ops(g: Graph, target: str) -> None:
        """A movement op stays INT8 only when its input comes from an INT8 op (directly or
        through other INT8 movement ops): then the data is already int8 and stays so. On
        ``onednn`` also when the source quantized its input for it (NNCF: Q/DQ after a
        float SiLU, before Split / MaxPool / Resize): OpenVINO then runs it on int8 data, and
        the op's Q/DQ before it lets the producer's kernel fuse the quantization."""
        producers = g.producers()
        movement = {n.id: n for n in g.nodes if n.status is OpStatus.INT8 and is_movement(n)}
        anchored: dict[int, bool] = {}

        def fed_by_int8(node: Node) -> bool:
            if node.id not in anchored:
                anchored[node.id] = False
                source = producers.get(node.inputs[0])
                anchored[node.id] = (target == ONEDNN and g.source_quantized(
                    node, node.inputs[0])) or (source is not None and source.status is
                    OpStatus.INT8 and (source.id not in movement or fed_by_int8(source)))
            return anchored[node.id]

        for node in movement.values():
            if not fed_by_int8(node):
                node.decide(OpStatus.FP32, Reason(ReasonKind.NO_NEIGHBOUR))


def _quantized_output(g: Graph, name: str) -> bool:
    """True when an INT8 op writing ``name`` writes it quantized (``OrtEmitter``)."""
    params = g.act_qparams.get(name)
    return params is not None and not params.per_channel


def _reads_raw(g: Graph, reader: Node, name: str) -> bool:
    """True when FP32 ``reader`` uses the values of ``name`` as the source gave them, not
    through a Q/DQ pair of the source."""
    return (reader.status is OpStatus.FP32 and reader.op_type not in SHAPE_READERS
            and reader.op_type not in QDQ_OPS and not g.source_quantized(reader, name))
