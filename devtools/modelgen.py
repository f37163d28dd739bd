"""Deterministic builders of small FP32 ONNX models and a QDQ quantization helper.

The models are built with ``onnx.helper`` and seeded numpy generators, so the same
arguments always give the same weights. They serve as test fixtures, samples and
benchmark inputs for the QDQ -> INT8 conversion.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quant_pre_process,
    quantize_static,
)

__all__ = [
    "bert_like",
    "cnn",
    "fp32_reference",
    "quantize_qdq",
    "random_inputs",
    "resnet_like",
    "transformer",
]

IR_VERSION = 8
# The name the committed samples carry (it was qcore.modelgen before the move to devtools/);
# kept so that make_samples.py still writes byte-identical files.
PRODUCER = "qcore.modelgen"


class _GraphBuilder:
    """Small helper accumulating nodes and initializers with unique, readable names."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._names: dict[str, int] = {}

    def name(self, base: str) -> str:
        """Returns a unique name derived from ``base``."""
        count = self._names.get(base, 0)
        self._names[base] = count + 1
        return base if count == 0 else f"{base}_{count}"

    def const(self, base: str, value: np.ndarray) -> str:
        """Adds an initializer and returns its name."""
        name = self.name(base)
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def op(self, op_type: str, inputs: Sequence[str], base: str | None = None, **attrs) -> str:
        """Adds a single-output node and returns its output name."""
        node_name = self.name(base or op_type.lower())
        self.nodes.append(
            helper.make_node(op_type, list(inputs), [node_name], name=node_name, **attrs)
        )
        return node_name

    def he(self, shape: tuple[int, ...], fan_in: int, gain: float = 1.0) -> np.ndarray:
        """He-normal initialised float32 tensor."""
        std = gain * math.sqrt(2.0 / fan_in)
        return (self.rng.standard_normal(shape) * std).astype(np.float32)

    def small(self, shape: tuple[int, ...], std: float) -> np.ndarray:
        """Normal float32 tensor with the given standard deviation."""
        return (self.rng.standard_normal(shape) * std).astype(np.float32)


def _make_model(
    b: _GraphBuilder,
    name: str,
    inputs: list[onnx.ValueInfoProto],
    outputs: list[onnx.ValueInfoProto],
    opset: int,
) -> onnx.ModelProto:
    graph = helper.make_graph(b.nodes, name, inputs, outputs, initializer=b.initializers)
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", opset)],
        producer_name=PRODUCER,
        producer_version="1",
    )
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model, full_check=True)
    return model


# --------------------------------------------------------------------------- CNN


def _conv(
    b: _GraphBuilder,
    x: str,
    cin: int,
    cout: int,
    k: int,
    *,
    stride: int = 1,
    group: int = 1,
    bias: bool = True,
    base: str = "conv",
    gain: float = 1.0,
) -> str:
    fan_in = (cin // group) * k * k
    w = b.const(f"{base}.weight", b.he((cout, cin // group, k, k), fan_in, gain))
    inputs = [x, w]
    if bias:
        inputs.append(b.const(f"{base}.bias", b.small((cout,), 0.05)))
    pad = k // 2
    return b.op(
        "Conv",
        inputs,
        base,
        kernel_shape=[k, k],
        strides=[stride, stride],
        pads=[pad, pad, pad, pad],
        dilations=[1, 1],
        group=group,
    )


def _bn(b: _GraphBuilder, x: str, channels: int, base: str = "bn") -> str:
    rng = b.rng
    gamma = rng.uniform(0.5, 1.5, channels).astype(np.float32)
    beta = (rng.standard_normal(channels) * 0.1).astype(np.float32)
    mean = (rng.standard_normal(channels) * 0.1).astype(np.float32)
    var = rng.uniform(0.5, 2.0, channels).astype(np.float32)
    ins = [
        x,
        b.const(f"{base}.gamma", gamma),
        b.const(f"{base}.beta", beta),
        b.const(f"{base}.mean", mean),
        b.const(f"{base}.var", var),
    ]
    return b.op("BatchNormalization", ins, base, epsilon=1e-5)


def cnn(seed: int = 0, image: int = 32, classes: int = 10) -> onnx.ModelProto:
    """Builds a small CNN covering the common quantizable vision ops (opset 13).

    Stem Conv+BN+Relu, depthwise Conv+BN+Clip(0, 6), pointwise Conv+Relu, a residual
    Add of two conv branches + Relu, MaxPool, a channel Concat of two branches,
    GlobalAveragePool, Flatten and a Gemm (transB=1) classifier.

    Args:
        seed: Seed of the weight generator.
        image: Spatial input size (height = width), a multiple of 4.
        classes: Number of output logits.

    Returns:
        The FP32 model with input ``image`` [batch, 3, image, image] and output
        ``logits`` [batch, classes].
    """
    b = _GraphBuilder(np.random.default_rng(seed))
    c1, c2 = 16, 32

    x = _conv(b, "image", 3, c1, 3, bias=False, base="stem.conv")
    x = _bn(b, x, c1, "stem.bn")
    x = b.op("Relu", [x], "stem.relu")

    x = _conv(b, x, c1, c1, 3, stride=2, group=c1, bias=False, base="dw.conv")
    x = _bn(b, x, c1, "dw.bn")
    lo = b.const("dw.clip_min", np.array(0.0, dtype=np.float32))
    hi = b.const("dw.clip_max", np.array(6.0, dtype=np.float32))
    x = b.op("Clip", [x, lo, hi], "dw.clip")

    x = _conv(b, x, c1, c2, 1, base="pw.conv")
    x = b.op("Relu", [x], "pw.relu")

    a = _conv(b, x, c2, c2, 3, base="res.a1.conv")
    a = b.op("Relu", [a], "res.a1.relu")
    a = _conv(b, a, c2, c2, 3, base="res.a2.conv", gain=0.5)
    s = _conv(b, x, c2, c2, 1, base="res.short.conv")
    x = b.op("Add", [a, s], "res.add")
    x = b.op("Relu", [x], "res.relu")

    x = b.op("MaxPool", [x], "pool", kernel_shape=[2, 2], strides=[2, 2])

    left = _conv(b, x, c2, c1, 1, base="cat.left.conv")
    left = b.op("Relu", [left], "cat.left.relu")
    right = _conv(b, x, c2, c1, 3, base="cat.right.conv")
    right = b.op("Relu", [right], "cat.right.relu")
    x = b.op("Concat", [left, right], "cat", axis=1)

    x = b.op("GlobalAveragePool", [x], "gap")
    x = b.op("Flatten", [x], "flatten", axis=1)
    w = b.const("fc.weight", b.small((classes, 2 * c1), 1.0 / math.sqrt(2 * c1)))
    bias = b.const("fc.bias", b.small((classes,), 0.05))
    x = b.op("Gemm", [x, w, bias], "fc", transB=1)
    b.nodes[-1].output[0] = "logits"

    inp = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, image, image])
    out = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", classes])
    return _make_model(b, "cnn", [inp], [out], 13)


# ------------------------------------------------------------------- transformer


def _linear(b: _GraphBuilder, x: str, fan_in: int, fan_out: int, base: str) -> str:
    w = b.const(f"{base}.weight", b.small((fan_in, fan_out), 1.0 / math.sqrt(fan_in)))
    bias = b.const(f"{base}.bias", b.small((fan_out,), 0.02))
    y = b.op("MatMul", [x, w], f"{base}.matmul")
    return b.op("Add", [y, bias], f"{base}.add")


def _layer_norm(b: _GraphBuilder, x: str, hidden: int, base: str) -> str:
    gamma = (1.0 + b.rng.standard_normal(hidden) * 0.1).astype(np.float32)
    beta = (b.rng.standard_normal(hidden) * 0.05).astype(np.float32)
    ins = [x, b.const(f"{base}.gamma", gamma), b.const(f"{base}.beta", beta)]
    return b.op("LayerNormalization", ins, base, axis=-1, epsilon=1e-5)


def transformer(
    seed: int = 0,
    seq: int = 16,
    hidden: int = 64,
    heads: int = 4,
    ffn: int = 128,
    layers: int = 1,
    vocab: int | None = None,
    batch: int | str = "batch",
) -> onnx.ModelProto:
    """Builds a BERT-like post-norm encoder of plain ONNX ops (opset 17).

    Each layer: Q/K/V MatMul+Add, Reshape+Transpose into heads, MatMul Q.K^T, Mul by
    1/sqrt(head_dim), Softmax, MatMul with V, Transpose+Reshape, output projection,
    residual Add, LayerNormalization, FFN with Erf-based Gelu, residual Add and
    LayerNormalization.

    Args:
        seed: Seed of the weight generator.
        seq: Sequence length (static).
        hidden: Hidden size, divisible by ``heads``.
        heads: Number of attention heads.
        ffn: Inner size of the feed-forward block.
        layers: Number of encoder layers.
        vocab: Unused; reserved for an embedding front end.
        batch: Batch dimension of the input/output, an int or a symbolic name.

    Returns:
        The FP32 model with input ``x`` and output ``y``, both [batch, seq, hidden].
    """
    del vocab  # Reserved, the model consumes embeddings directly.
    if hidden % heads:
        raise ValueError(f"hidden={hidden} is not divisible by heads={heads}")
    head_dim = hidden // heads
    b = _GraphBuilder(np.random.default_rng(seed))

    split_shape = b.const("shape.split_heads", np.array([0, seq, heads, head_dim], np.int64))
    merge_shape = b.const("shape.merge_heads", np.array([0, seq, hidden], np.int64))
    scale = b.const("attn.scale", np.array(1.0 / math.sqrt(head_dim), np.float32))
    sqrt2 = b.const("gelu.sqrt2", np.array(math.sqrt(2.0), np.float32))
    one = b.const("gelu.one", np.array(1.0, np.float32))
    half = b.const("gelu.half", np.array(0.5, np.float32))

    x = "x"
    for i in range(layers):
        p = f"layer{i}"

        def heads_of(t: str, perm: list[int], name: str, p: str = p) -> str:
            t = b.op("Reshape", [t, split_shape], f"{p}.{name}.reshape")
            return b.op("Transpose", [t], f"{p}.{name}.transpose", perm=perm)

        q = heads_of(_linear(b, x, hidden, hidden, f"{p}.q"), [0, 2, 1, 3], "q")
        k = heads_of(_linear(b, x, hidden, hidden, f"{p}.k"), [0, 2, 3, 1], "k")
        v = heads_of(_linear(b, x, hidden, hidden, f"{p}.v"), [0, 2, 1, 3], "v")

        s = b.op("MatMul", [q, k], f"{p}.attn.qk")
        s = b.op("Mul", [s, scale], f"{p}.attn.scale")
        s = b.op("Softmax", [s], f"{p}.attn.softmax", axis=-1)
        ctx = b.op("MatMul", [s, v], f"{p}.attn.av")
        ctx = b.op("Transpose", [ctx], f"{p}.attn.transpose", perm=[0, 2, 1, 3])
        ctx = b.op("Reshape", [ctx, merge_shape], f"{p}.attn.reshape")
        o = _linear(b, ctx, hidden, hidden, f"{p}.o")
        x = b.op("Add", [o, x], f"{p}.attn.residual")
        x = _layer_norm(b, x, hidden, f"{p}.attn.ln")

        h = _linear(b, x, hidden, ffn, f"{p}.ffn1")
        g = b.op("Div", [h, sqrt2], f"{p}.gelu.div")
        g = b.op("Erf", [g], f"{p}.gelu.erf")
        g = b.op("Add", [g, one], f"{p}.gelu.add")
        g = b.op("Mul", [h, g], f"{p}.gelu.mul")
        g = b.op("Mul", [g, half], f"{p}.gelu.mul_half")
        f = _linear(b, g, ffn, hidden, f"{p}.ffn2")
        x = b.op("Add", [f, x], f"{p}.ffn.residual")
        x = _layer_norm(b, x, hidden, f"{p}.ffn.ln")
    b.nodes[-1].output[0] = "y"

    inp = helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, seq, hidden])
    out = helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, seq, hidden])
    return _make_model(b, "transformer", [inp], [out], 17)


def bert_like(
    seed: int = 0,
    seq: int = 128,
    hidden: int = 768,
    heads: int = 12,
    ffn: int = 3072,
    layers: int = 12,
    batch: int | str = "batch",
) -> onnx.ModelProto:
    """BERT-base sized :func:`transformer` for benchmarks (about 85M weights).

    The batch dimension stays symbolic by default: with a fixed batch, the ORT optimizer
    run by :func:`quantize_qdq` rewrites some MatMul+Add pairs into Reshape+Gemm+Reshape.

    Args:
        seed: Seed of the weight generator.
        seq: Sequence length.
        hidden: Hidden size.
        heads: Number of attention heads.
        ffn: Inner size of the feed-forward block.
        layers: Number of encoder layers.
        batch: Batch dimension, an int or a symbolic name.

    Returns:
        The FP32 model.
    """
    return transformer(
        seed=seed, seq=seq, hidden=hidden, heads=heads, ffn=ffn, layers=layers, batch=batch
    )


# ------------------------------------------------------------------------ ResNet


def resnet_like(
    seed: int = 0,
    image: int = 224,
    classes: int = 1000,
    blocks: Sequence[int] = (3, 4, 6, 3),
    width: int = 64,
) -> onnx.ModelProto:
    """Builds a ResNet-50 shaped bottleneck network with BN folded into the convs (opset 13).

    Args:
        seed: Seed of the weight generator.
        image: Spatial input size (height = width).
        classes: Number of output logits.
        blocks: Bottleneck blocks per stage.
        width: Channels of the stem and of the first stage's bottleneck.

    Returns:
        The FP32 model with input ``image`` [1, 3, image, image] and output
        ``logits`` [1, classes].
    """
    b = _GraphBuilder(np.random.default_rng(seed))
    x = _conv(b, "image", 3, width, 7, stride=2, base="stem.conv")
    x = b.op("Relu", [x], "stem.relu")
    x = b.op("MaxPool", [x], "stem.pool", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])

    cin = width
    for si, count in enumerate(blocks):
        mid = width * 2**si
        cout = mid * 4
        for bi in range(count):
            p = f"stage{si + 1}.block{bi}"
            stride = 2 if bi == 0 and si > 0 else 1
            y = _conv(b, x, cin, mid, 1, base=f"{p}.conv1")
            y = b.op("Relu", [y], f"{p}.relu1")
            y = _conv(b, y, mid, mid, 3, stride=stride, base=f"{p}.conv2")
            y = b.op("Relu", [y], f"{p}.relu2")
            y = _conv(b, y, mid, cout, 1, base=f"{p}.conv3", gain=0.3)
            short = x
            if bi == 0:
                short = _conv(b, x, cin, cout, 1, stride=stride, base=f"{p}.downsample")
            x = b.op("Add", [y, short], f"{p}.add")
            x = b.op("Relu", [x], f"{p}.relu")
            cin = cout

    x = b.op("GlobalAveragePool", [x], "gap")
    x = b.op("Flatten", [x], "flatten", axis=1)
    w = b.const("fc.weight", b.small((classes, cin), 1.0 / math.sqrt(cin)))
    bias = b.const("fc.bias", b.small((classes,), 0.05))
    b.op("Gemm", [x, w, bias], "fc", transB=1)
    b.nodes[-1].output[0] = "logits"

    inp = helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, image, image])
    out = helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, classes])
    return _make_model(b, "resnet_like", [inp], [out], 13)


def qdq_chain(blocks: int) -> onnx.ModelProto:
    """A QDQ model of ``blocks`` repeated 6-op blocks (Q, DQ, Relu, Q, DQ, residual Add),
    named ``block<i>.*``: a big graph (834 blocks = 5,004 ops) that converts in a second."""
    inits = [numpy_helper.from_array(np.array(0.05, np.float32), "s"),
             numpy_helper.from_array(np.array(0, np.uint8), "z")]
    nodes, x = [], "x"
    for i in range(blocks):
        p = f"block{i}"
        nodes += [helper.make_node("QuantizeLinear", [x, "s", "z"], [f"{p}.q"], f"{p}.q"),
                  helper.make_node("DequantizeLinear", [f"{p}.q", "s", "z"], [f"{p}.dq"],
                                   f"{p}.dq"),
                  helper.make_node("Relu", [f"{p}.dq"], [f"{p}.relu"], f"{p}.relu"),
                  helper.make_node("QuantizeLinear", [f"{p}.relu", "s", "z"], [f"{p}.q2"],
                                   f"{p}.q2"),
                  helper.make_node("DequantizeLinear", [f"{p}.q2", "s", "z"], [f"{p}.dq2"],
                                   f"{p}.dq2"),
                  helper.make_node("Add", [f"{p}.dq2", f"{p}.dq"], [f"{p}.out"], f"{p}.add")]
        x = f"{p}.out"
    graph = helper.make_graph(nodes, "big", [helper.make_tensor_value_info("x", 1, [1, 8])],
                              [helper.make_tensor_value_info(x, TensorProto.FLOAT, [1, 8])],
                              inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def conv_chain(blocks: int) -> onnx.ModelProto:
    """``blocks`` x (Q, DQ, weight DQ, Conv, BatchNormalization, Relu, Identity)."""
    arrays = {"s": np.array(0.05, np.float32), "z": np.array(0, np.uint8),
              "ws": np.array(0.01, np.float32), "wz": np.array(0, np.int8),
              "w": np.ones((4, 4, 1, 1), np.int8), "g": np.ones(4, np.float32),
              "b": np.zeros(4, np.float32), "m": np.zeros(4, np.float32),
              "v": np.ones(4, np.float32)}
    nodes, x = [], "x"
    for i in range(blocks):
        p = f"blk{i}"
        nodes += [helper.make_node("QuantizeLinear", [x, "s", "z"], [f"{p}.q"]),
                  helper.make_node("DequantizeLinear", [f"{p}.q", "s", "z"], [f"{p}.dq"]),
                  helper.make_node("DequantizeLinear", ["w", "ws", "wz"], [f"{p}.w"]),
                  helper.make_node("Conv", [f"{p}.dq", f"{p}.w"], [f"{p}.c"]),
                  helper.make_node("BatchNormalization", [f"{p}.c", "g", "b", "m", "v"],
                                   [f"{p}.bn"]),
                  helper.make_node("Relu", [f"{p}.bn"], [f"{p}.r"]),
                  helper.make_node("Identity", [f"{p}.r"], [f"{p}.out"])]
        x = f"{p}.out"
    value = helper.make_tensor_value_info
    graph = helper.make_graph(nodes, "conv_chain", [value("x", TensorProto.FLOAT, [1, 4, 4, 4])],
                              [value(x, TensorProto.FLOAT, [1, 4, 4, 4])],
                              [numpy_helper.from_array(a, k) for k, a in arrays.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


# ------------------------------------------------------------------------ inputs


def random_inputs(
    model: onnx.ModelProto, count: int, seed: int = 0, batch: int = 1
) -> list[dict[str, np.ndarray]]:
    """Draws N(0, 1) feeds for the model's graph inputs.

    Args:
        model: The model whose (non-initializer) graph inputs are fed.
        count: Number of feed dicts.
        seed: Seed of the generator.
        batch: Value used for symbolic or unknown dimensions.

    Returns:
        ``count`` dicts mapping input name to array.
    """
    rng = np.random.default_rng(seed)
    init_names = {t.name for t in model.graph.initializer}
    specs: list[tuple[str, list[int], np.dtype]] = []
    for vi in model.graph.input:
        if vi.name in init_names:
            continue
        tt = vi.type.tensor_type
        shape = [d.dim_value if d.HasField("dim_value") else batch for d in tt.shape.dim]
        specs.append((vi.name, shape, helper.tensor_dtype_to_np_dtype(tt.elem_type)))
    return [
        {name: rng.standard_normal(shape).astype(dtype) for name, shape, dtype in specs}
        for _ in range(count)
    ]


def fp32_reference(model: onnx.ModelProto, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
    """Runs the model with onnxruntime on CPU, graph optimizations off, one thread.

    Args:
        model: The model to run.
        inputs: One feed dict.

    Returns:
        The graph outputs in declaration order.
    """
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    return sess.run(None, inputs)


# ------------------------------------------------------------------ quantization


def _weights_to_constants(model: onnx.ModelProto) -> None:
    """Moves every initializer consumed by a DequantizeLinear into a Constant node."""
    graph = model.graph
    dq_inputs = {name for n in graph.node if n.op_type == "DequantizeLinear" for name in n.input}
    moved = [t for t in graph.initializer if t.name in dq_inputs]
    if not moved:
        return
    moved_names = {t.name for t in moved}
    keep = [t for t in graph.initializer if t.name not in moved_names]
    constants = [
        helper.make_node("Constant", [], [t.name], name=f"{t.name}_Constant", value=t)
        for t in moved
    ]
    nodes = constants + list(graph.node)
    inputs = [vi for vi in graph.input if vi.name not in moved_names]
    del graph.initializer[:]
    graph.initializer.extend(keep)
    del graph.node[:]
    graph.node.extend(nodes)
    del graph.input[:]
    graph.input.extend(inputs)


def quantize_qdq(
    model: onnx.ModelProto,
    *,
    per_channel: bool = True,
    activation_type: str = "uint8",
    weight_type: str = "int8",
    symmetric_activations: bool = False,
    op_types: list[str] | None = None,
    calibration: list[dict[str, np.ndarray]] | None = None,
    weights_as_constants: bool = False,
    seed: int = 0,
    preprocess: bool = True,
) -> onnx.ModelProto:
    """Quantizes an FP32 model to QDQ format with onnxruntime's static MinMax quantizer.

    Runs ``quant_pre_process`` (ONNX shape inference plus ORT basic optimizations, which
    fold BatchNormalization into Conv; skipped if it fails), then ``quantize_static``.

    Args:
        model: The FP32 model.
        per_channel: Per-channel weight quantization.
        activation_type: ``"uint8"`` or ``"int8"``.
        weight_type: ``"int8"`` or ``"uint8"``.
        symmetric_activations: Symmetric activation ranges (``ActivationSymmetric``).
        op_types: Op types to quantize; all supported ops when None.
        calibration: Calibration feeds; 8 N(0, 1) feeds drawn with ``seed`` when None.
        weights_as_constants: Store DequantizeLinear inputs (quantized weights, biases,
            scales and zero points) as Constant nodes instead of initializers.
        seed: Seed of the default calibration feeds.
        preprocess: Run ``quant_pre_process``; False keeps e.g. BatchNormalization nodes.

    Returns:
        The QDQ model.
    """
    types = {"uint8": QuantType.QUInt8, "int8": QuantType.QInt8}
    if activation_type not in types or weight_type not in types:
        raise ValueError(f"unsupported types {activation_type!r}/{weight_type!r}")
    feeds = calibration if calibration is not None else random_inputs(model, 8, seed=seed)

    class _Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._it: Iterator[dict[str, np.ndarray]] = iter(feeds)

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self._it, None)

        def rewind(self) -> None:
            self._it = iter(feeds)

    with tempfile.TemporaryDirectory(prefix="qcore_modelgen_") as tmp:
        src = Path(tmp) / "fp32.onnx"
        pre = Path(tmp) / "fp32_pre.onnx"
        dst = Path(tmp) / "qdq.onnx"
        onnx.save(model, src)
        inp = src
        if preprocess:
            try:
                # Symbolic shape inference needs sympy; ONNX shape inference suffices here
                # and keeps the result independent of optional packages.
                quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
                onnx.load(pre)
                inp = pre
            except Exception:  # noqa: BLE001 - preprocessing is best effort
                inp = src
        quantize_static(
            str(inp),
            str(dst),
            _Reader(),
            quant_format=QuantFormat.QDQ,
            op_types_to_quantize=op_types,
            per_channel=per_channel,
            activation_type=types[activation_type],
            weight_type=types[weight_type],
            calibrate_method=CalibrationMethod.MinMax,
            extra_options={
                "ActivationSymmetric": symmetric_activations,
                "WeightSymmetric": True,
            },
        )
        qdq = onnx.load(dst)

    if weights_as_constants:
        _weights_to_constants(qdq)
    return qdq
