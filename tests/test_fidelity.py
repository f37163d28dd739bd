"""Fidelity on other producers' quant models, checked on real photos (scikit-image) against
ONNX Runtime running the source QDQ model: clamps an exporter folded into a quantizer's range,
NNCF's inputs-only placement, opset-21 output_dtype, and one tensor quantized two ways."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from conftest import checked_model, compile_openvino, cosine, photos, run_model
from onnx import TensorProto, helper, numpy_helper

from qcore.config import ConvertConfig
from qcore.convert import ConversionResult, convert
from qcore.status import ReasonKind

TARGETS = ("onnxruntime", "onednn")
IMAGE = 48


class _Builder:
    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []

    def const(self, name: str, value: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def op(self, op_type: str, inputs: list[str], name: str, **attrs) -> str:
        self.nodes.append(helper.make_node(op_type, inputs, [name], name=name, **attrs))
        return name

    def conv(self, x: str, cin: int, cout: int, k: int, name: str, stride: int = 1,
             gain: float = 3.0) -> str:
        std = gain * np.sqrt(2.0 / (cin * k * k))
        w = (self.rng.standard_normal((cout, cin, k, k)) * std).astype(np.float32)
        b = (self.rng.standard_normal(cout) * 0.5).astype(np.float32)
        return self.op("Conv", [x, self.const(f"{name}.w", w), self.const(f"{name}.b", b)], name,
                       pads=[k // 2] * 4, strides=[stride, stride])

    def relu6(self, x: str, name: str) -> str:
        lo = self.const(f"{name}.lo", np.array(0.0, np.float32))
        hi = self.const(f"{name}.hi", np.array(6.0, np.float32))
        return self.op("Clip", [x, lo, hi], name)

    def head(self, x: str, channels: int, classes: int = 10) -> None:
        x = self.op("GlobalAveragePool", [x], "gap")
        x = self.op("Flatten", [x], "flatten")
        w = (self.rng.standard_normal((classes, channels)) * 0.3).astype(np.float32)
        b = np.zeros(classes, np.float32)
        self.op("Gemm", [x, self.const("fc.w", w), self.const("fc.b", b)], "logits", transB=1)

    def model(self, opset: int = 13) -> onnx.ModelProto:
        return checked_model(
            self.nodes, "net",
            [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, IMAGE, IMAGE])],
            [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 10])], self.inits,
            opset)


def relu6_cnn() -> onnx.ModelProto:
    """Conv+ReLU6 (Clip(0, 6)) x3, strong enough that ReLU6 saturates on real photos."""
    b = _Builder(0)
    x = b.relu6(b.conv("image", 3, 16, 3, "c1", stride=2), "r1")
    x = b.relu6(b.conv(x, 16, 32, 3, "c2"), "r2")
    x = b.relu6(b.conv(x, 32, 32, 1, "c3"), "r3")
    b.head(x, 32)
    return b.model()


def ort_quantize(model: onnx.ModelProto, feeds: list[dict], tmp: Path,
                 symmetric_s8: bool = False) -> onnx.ModelProto:
    """``quantize_static`` (QDQ, per-channel s8 weights) on ``feeds``: u8 activations, or s8
    symmetric ones with ``symmetric_s8``."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.items = iter(feeds)

        def get_next(self) -> dict | None:
            return next(self.items, None)

    src, dst = tmp / "float.onnx", tmp / "qdq.onnx"
    onnx.save(model, str(src))
    quantize_static(str(src), str(dst), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QInt8 if symmetric_s8 else QuantType.QUInt8,
                    weight_type=QuantType.QInt8,
                    extra_options={"ActivationSymmetric": True} if symmetric_s8 else None)
    return onnx.load(str(dst))


def run_openvino(model: onnx.ModelProto, feeds: dict, tmp: Path) -> tuple[np.ndarray, dict]:
    """Output on OpenVINO's CPU plugin, and the runtime precision of each Convolution."""
    compiled = compile_openvino(model, tmp / "openvino.onnx")
    precisions = {}
    for op in compiled.get_runtime_model().get_ordered_ops():
        info = op.get_rt_info()
        if info["layerType"].astype(str) == "Convolution":
            precisions[op.get_friendly_name()] = info["runtimePrecision"].astype(str)
    return compiled(feeds)[0], precisions


def worst_cosine(reference: onnx.ModelProto, model: onnx.ModelProto, feeds: list[dict]) -> float:
    return min(cosine(run_model(reference, f)[0], run_model(model, f)[0]) for f in feeds)


# ---- clamps an exporter folded into the quantizer's range ---------------------------------


@pytest.fixture(scope="module")
def relu6(tmp_path_factory) -> tuple[onnx.ModelProto, list[dict], dict]:
    feeds = photos(IMAGE)
    quant = ort_quantize(relu6_cnn(), feeds, tmp_path_factory.mktemp("relu6"))
    results = {t: convert(quant, ConvertConfig(target=t)) for t in TARGETS}
    return quant, feeds, results


def _ids(result: ConversionResult, op_type: str) -> list[int]:
    return [n.id for n in result.decisions if n.op_type == op_type]


def test_relu6_dropped_by_quantize_static_is_restored_as_clip(relu6) -> None:
    quant, feeds, results = relu6
    assert "Clip" not in {n.op_type for n in quant.graph.node}  # the quantizer dropped them
    fp32 = results["onnxruntime"].fp32_model()
    clips = [n for n in fp32.graph.node if n.op_type == "Clip"]
    assert len(clips) == 3
    highs = {float(numpy_helper.to_array(i)) for i in fp32.graph.initializer
             if i.name in {c.input[2] for c in clips}}
    assert highs and all(abs(h - 6.0) < 1e-5 for h in highs)
    assert worst_cosine(quant, fp32, feeds) >= 0.9999


def test_int8_models_saturate_like_the_quant_model(relu6, tmp_path) -> None:
    quant, feeds, results = relu6
    ort_int8 = results["onnxruntime"].int8_model()
    types = [n.op_type for n in ort_int8.graph.node]
    assert types.count("QLinearConv") == 3 and "Conv" not in types
    assert "Clip" not in types  # INT8 convs clamp by saturating, no op
    assert worst_cosine(quant, ort_int8, feeds) >= 0.995
    dnn_int8 = results["onednn"].int8_model()
    for f in feeds[:3]:
        got, precisions = run_openvino(dnn_int8, f, tmp_path)
        assert cosine(run_model(quant, f)[0], got) >= 0.995
    assert precisions and all(p in ("u8", "i8") for p in precisions.values()), precisions


@pytest.mark.parametrize("target", TARGETS)
def test_fp32_islands_keep_the_clamp(relu6, target) -> None:
    """The last Conv and the pooling after it kept FP32: the island still clamps at 6."""
    quant, feeds, results = relu6
    skip = _ids(results[target], "Conv")[-1:] + _ids(results[target], "GlobalAveragePool")
    result = convert(quant, ConvertConfig(target=target, op_ids_to_skip=skip))
    assert all(n.status == "fp32" for n in result.decisions if n.id in skip)
    assert worst_cosine(quant, result.int8_model(), feeds) >= 0.995


def test_calibrated_ranges_are_not_turned_into_clips() -> None:
    from qcore.ir import QParams
    from qcore.passes.remove_fake_ops import implied_clamp

    def params(scale: float, zp: int, dtype: type = np.uint8) -> QParams:
        return QParams(np.array(scale, np.float32), np.array(zp, dtype))

    assert implied_clamp(params(6 / 255, 0)) == pytest.approx((0.0, 6.0))
    assert implied_clamp(params(0.0457, 0)) == (0.0, None)  # a Relu: range starts at 0
    assert implied_clamp(params(0.0457, -128, np.int8)) == (0.0, None)
    assert implied_clamp(params(0.0331, 136)) is None  # a calibrated range
    assert implied_clamp(params(0.02, 0, np.int8)) is None  # symmetric


# ---- NNCF: Q/DQ on op inputs only --------------------------------------------------------


def silu_cnn() -> onnx.ModelProto:
    """Conv+BN+Relu stem, Conv+SiLU, a residual Add, pointwise and depthwise Convs, head."""
    b = _Builder(1)
    x = b.conv("image", 3, 16, 3, "c1", stride=2, gain=1.0)
    ch = 16
    gamma, beta = b.rng.uniform(0.5, 1.5, ch), b.rng.normal(0, 0.2, ch)
    mean, var = b.rng.normal(0, 0.2, ch), b.rng.uniform(0.5, 1.5, ch)
    bn = [b.const(f"bn.{k}", v.astype(np.float32))
          for k, v in (("g", gamma), ("b", beta), ("m", mean), ("v", var))]
    x = b.op("Relu", [b.op("BatchNormalization", [x, *bn], "bn")], "r1")
    y = b.conv(x, 16, 16, 3, "c2", gain=1.0)
    y = b.op("Mul", [y, b.op("Sigmoid", [y], "c2.sig")], "c2.silu")
    x = b.op("Add", [x, y], "res")
    x = b.op("Relu", [b.conv(x, 16, 32, 1, "c3", gain=1.0)], "r3")
    x = b.op("Relu", [b.conv(x, 32, 32, 3, "c4", gain=1.0)], "r4")
    y = b.conv(x, 32, 32, 1, "c5", gain=1.0)
    x = b.op("Mul", [y, b.op("Sigmoid", [y], "c5.sig")], "c5.silu")
    b.head(x, 32)
    return b.model()


@pytest.fixture(scope="module")
def nncf_model() -> tuple[onnx.ModelProto, list[dict], dict]:
    nncf = pytest.importorskip("nncf")
    feeds = photos(IMAGE)
    quant = nncf.quantize(silu_cnn(), nncf.Dataset(feeds))
    results = {t: convert(quant, ConvertConfig(target=t)) for t in TARGETS}
    return quant, feeds, results


def _convs_with_quantized_input(quant: onnx.ModelProto) -> set[str]:
    """Names of the Convs whose activation input comes out of a DequantizeLinear."""
    weights = {i.name for i in quant.graph.initializer}
    dq_outs = {n.output[0] for n in quant.graph.node
               if n.op_type == "DequantizeLinear" and n.input[0] not in weights}
    return {n.name for n in quant.graph.node if n.op_type == "Conv" and n.input[0] in dq_outs}


def test_nncf_places_qdq_on_inputs_only_and_every_such_conv_is_int8(nncf_model) -> None:
    """On onednn every such Conv is INT8 (OpenVINO runs INT8 convolution with a float output);
    on onnxruntime one whose output has no scale stays FP32 behind the source's Q/DQ, as ONNX
    Runtime runs DQ -> Conv without a Q on its output float."""
    quant, _, results = nncf_model
    quantized = _convs_with_quantized_input(quant)
    assert len(quantized) == 5
    producers = {o for n in quant.graph.node if n.op_type == "Conv" for o in n.output}
    readers = {i for n in quant.graph.node if n.op_type == "QuantizeLinear" for i in n.input}
    assert not producers & readers  # NNCF never quantizes a Conv's output
    for target, result in results.items():
        for node in result.decisions:
            if node.op_type != "Conv" or node.name not in quantized:
                continue
            if target == "onednn":
                assert node.status == "int8", (target, node.name, node.reason)
            elif node.status != "int8":  # INT8 where a reader's Q takes the output raw
                assert node.reason.kind is ReasonKind.MISSING_SCALE, (node.name, node.reason)
    types = {n.op_type for n in results["onnxruntime"].int8_model().graph.node}
    assert "Conv" in types  # the float-output Convs, behind the source's Q/DQ


def test_nncf_int8_models_match_the_quant_model(nncf_model, tmp_path) -> None:
    quant, feeds, results = nncf_model
    ort_int8 = results["onnxruntime"].int8_model()
    assert worst_cosine(quant, ort_int8, feeds) >= 0.995
    dnn_int8 = results["onednn"].int8_model()
    assert worst_cosine(quant, dnn_int8, feeds) >= 0.995
    for f in feeds[:3]:
        got, precisions = run_openvino(dnn_int8, f, tmp_path)
        assert cosine(run_model(quant, f)[0], got) >= 0.995
    assert len(precisions) == 5 and all(p in ("u8", "i8") for p in precisions.values()), precisions


# ---- issue 15: opset-21 output_dtype; one tensor quantized two ways ---------------------


def _qdq_nodes(b: _Builder, x: str, name: str, scale: float, zp: int | None,
               dtype: type = np.uint8, **q_attrs) -> str:
    """x -> QuantizeLinear -> DequantizeLinear; without ``zp`` no zero-point input at all."""
    inputs = [x, b.const(f"{name}.s", np.array(scale, np.float32))]
    if zp is not None:
        inputs.append(b.const(f"{name}.z", np.array(zp, dtype)))
    q = b.op("QuantizeLinear", inputs, f"{name}.q", **q_attrs)
    return b.op("DequantizeLinear", [q, *inputs[1:]], f"{name}.dq")


def _weighted_conv(b: _Builder, x: str, name: str, cin: int = 3, cout: int = 16) -> str:
    """A 1x1 Conv (ONNX Runtime runs it INT8) with an int8 per-tensor weight through DQ."""
    w = b.rng.integers(-127, 128, (cout, cin, 1, 1)).astype(np.int8)
    wq = b.op("DequantizeLinear", [b.const(f"{name}.wq", w),
                                   b.const(f"{name}.ws", np.array(0.01, np.float32))],
              f"{name}.w")
    y = b.op("Conv", [x, wq], name)
    return _qdq_nodes(b, y, f"{name}.out", 0.08, 128)


def _two_way_model(kind: str) -> onnx.ModelProto:
    b = _Builder(3)
    if kind == "output_dtype":  # opset 21: signed int8 from output_dtype, no zero point
        y = _weighted_conv(b, _qdq_nodes(b, "image", "x", 0.02, None,
                                         output_dtype=TensorProto.INT8), "conv")
    elif kind == "two_consumers":  # a wide and a narrow pair on the same tensor
        a = _weighted_conv(b, _qdq_nodes(b, "image", "wide", 0.02, 128), "a")
        c = _weighted_conv(b, _qdq_nodes(b, "image", "narrow", 0.004, 128), "c")
        y = b.op("Add", [a, c], "sum")
    else:  # a chain: wide Q/DQ, then narrow Q/DQ of its output
        x = _qdq_nodes(b, _qdq_nodes(b, "image", "wide", 0.02, 128), "narrow", 0.004, 128)
        y = _weighted_conv(b, x, "conv")
    b.op("GlobalAveragePool", [y], "gap")
    b.nodes[-1].output[0] = "out"
    graph = helper.make_graph(
        b.nodes, kind,
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, IMAGE, IMAGE])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 16, 1, 1])], b.inits)
    opset = 21 if kind == "output_dtype" else 13
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 10 if opset == 21 else 8
    onnx.checker.check_model(model, full_check=True)
    return model


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("kind", ["output_dtype", "two_consumers", "chain"])
def test_each_reader_keeps_its_own_quantization(kind, target) -> None:
    quant = _two_way_model(kind)
    result = convert(quant, ConvertConfig(target=target))
    convs = [n for n in result.decisions if n.op_type == "Conv"]
    assert convs and all(n.status == "int8" for n in convs), [n.reason for n in convs]
    assert worst_cosine(quant, result.int8_model(), photos(IMAGE)) >= 0.9999
    assert worst_cosine(quant, result.fp32_model(), photos(IMAGE)[:1]) > 0.5  # runs


@pytest.mark.parametrize("kind", ["two_consumers", "chain"])
def test_verify_holds_on_a_tensor_quantized_two_ways(kind, tmp_path) -> None:
    """qcore verify fake-quantizes each reader with the params its own pair used, so the
    snapshots compute the source's function and no pass is blamed for it."""
    from qcore.bench.inputs import InputSet
    from qcore.verify import verify

    path = tmp_path / f"{kind}.onnx"
    onnx.save(_two_way_model(kind), str(path))
    report = verify(path, inputs=InputSet(photos(IMAGE)[:3], "skimage photos"))
    assert report.ok, report.failed


def test_output_dtype_int8_is_read_as_signed() -> None:
    result = convert(_two_way_model("output_dtype"), ConvertConfig(target="onednn"))
    params = result.snapshots[1].graph.act_qparams["image"]
    assert params.dtype == np.int8 and int(params.zero_point) == 0


# ---- FP32 islands between INT8 ops stay what they are --------------------------------------


def island_cnn() -> onnx.ModelProto:
    """1x1 Conv, a 5x5 depthwise Conv whose channels differ 100x in weight scale (FP32 for
    ONNX Runtime: 25 products), 1x1 Conv; then x * relu6(x + 3) / 6 as paddle2onnx writes it."""
    b = _Builder(5)
    x = b.op("Relu", [b.conv("image", 3, 16, 1, "c1", gain=1.0)], "r1")
    spread = np.logspace(-2, 0, 16, dtype=np.float32)
    w = b.rng.standard_normal((16, 1, 5, 5)).astype(np.float32) * spread.reshape(-1, 1, 1, 1)
    x = b.op("Conv", [x, b.const("dw.w", w), b.const("dw.b", np.zeros(16, np.float32))], "dw",
             group=16, pads=[2, 2, 2, 2])
    x = b.op("Relu", [x], "r2")
    w3 = b.rng.standard_normal((16, 16, 1, 1)).astype(np.float32) * 0.1
    w3 /= spread.reshape(1, -1, 1, 1)
    x = b.op("Conv", [x, b.const("c3.w", w3)], "c3")  # every channel of dw counts alike
    three = b.const("three", np.array(3.0, np.float32))
    six = b.const("six", np.array(6.0, np.float32))
    zero = b.const("zero", np.array(0.0, np.float32))
    gate = b.op("Clip", [b.op("Add", [x, three], "hs.add"), zero, six], "hs.clip")
    x = b.op("Div", [b.op("Mul", [x, gate], "hs.mul"), six], "hs")
    b.head(b.conv(x, 16, 16, 1, "c4", gain=1.0), 16)
    return b.model()


@pytest.fixture(scope="module")
def island(tmp_path_factory) -> tuple[onnx.ModelProto, list[dict]]:
    feeds = photos(IMAGE)
    return ort_quantize(island_cnn(), feeds, tmp_path_factory.mktemp("island")), feeds


def test_onnxruntime_keeps_an_fp32_conv_between_int8_ops_float(island) -> None:
    """ONNX Runtime quantizes a float-weight Conv between DequantizeLinear and QuantizeLinear
    per tensor (WeightBiasQuantization); the island reads a per-channel DQ so it stays float."""
    quant, feeds = island
    dw_id = next(n.id for n in convert(quant).decisions if n.name == "dw")
    result = convert(quant, ConvertConfig(target="onnxruntime", op_ids_to_skip=[dw_id]))
    dw = next(n for n in result.decisions if n.name == "dw")
    assert dw.status == "fp32"  # the user keeps it FP32: an island between INT8 ops
    int8 = result.int8_model()
    assert worst_cosine(quant, int8, feeds) >= 0.999


def test_onednn_hardswish_reads_its_input_quantized_as_the_source(island) -> None:
    """The hard-swish keeps the Q/DQ its source put inside it (see tests/test_hardswish.py):
    its product Mul (the HardSwish's id) reads x and the gate through DequantizeLinear."""
    quant, feeds = island
    result = convert(quant, ConvertConfig(target="onednn"))
    hardswish = [n for n in result.decisions if n.op_type == "HardSwish"]
    assert len(hardswish) == 1
    int8 = result.int8_model()
    producers = {o: n for n in int8.graph.node for o in n.output}
    mul = next(n for n in int8.graph.node if n.name.endswith(f"#{hardswish[0].id}"))
    assert mul.op_type == "Mul"
    assert all(producers[name].op_type == "DequantizeLinear" for name in mul.input)
    assert worst_cosine(quant, int8, feeds) >= 0.999


def signed_concat_model() -> onnx.ModelProto:
    """s8 symmetric QDQ: two 1x1 Convs, each upsampled (nearest Resize) with its own scale,
    a Concat, and a 3x3 Conv reading it (the PP-OCR DB neck's shape)."""
    b = _Builder(7)

    def weight(name: str, shape: tuple[int, ...], scale: float) -> str:
        w = b.rng.integers(-127, 128, shape).astype(np.int8)
        s = np.full(shape[0], scale, np.float32)
        return b.op("DequantizeLinear", [b.const(f"{name}.q", w), b.const(f"{name}.s", s),
                                         b.const(f"{name}.z", np.zeros(shape[0], np.int8))],
                    f"{name}.w", axis=0)

    x = _qdq_nodes(b, "image", "x", 0.02, 0, np.int8)
    roi = b.const("roi", np.zeros(0, np.float32))
    two = b.const("two", np.array([1, 1, 2, 2], np.float32))
    branches = []
    for name, scale in (("a", 8.0), ("c", 4.8)):
        y = _qdq_nodes(b, b.op("Conv", [x, weight(name, (48, 3, 1, 1), 1.0)], name), f"{name}.out",
                       scale, 0, np.int8)
        y = b.op("Resize", [y, roi, two], f"{name}.up", mode="nearest", nearest_mode="floor",
                 coordinate_transformation_mode="asymmetric")
        branches.append(_qdq_nodes(b, y, f"{name}.up.out", scale, 0, np.int8))
    y = _qdq_nodes(b, b.op("Concat", branches, "cat", axis=1), "cat.out", 8.0, 0, np.int8)
    y = b.op("Conv", [y, weight("head", (8, 96, 3, 3), 0.001)], "head", pads=[1, 1, 1, 1])
    b.nodes[-1].output[0] = "out"
    graph = helper.make_graph(
        b.nodes, "signed_concat",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, IMAGE, IMAGE])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 8, 2 * IMAGE, 2 * IMAGE])],
        b.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


def test_onednn_signed_concat_runs_right_on_openvino(tmp_path) -> None:
    """OpenVINO miscomputes a signed int8 Concat of inputs with different scales (its output
    is read as u8 with zero point 128 instead, the same values)."""
    quant = signed_concat_model()
    int8 = convert(quant, ConvertConfig(target="onednn")).int8_model()
    for feeds in photos(IMAGE)[:2]:
        got, precisions = run_openvino(int8, feeds, tmp_path)
        assert cosine(run_model(quant, feeds)[0], got) >= 0.999
    assert precisions and all(p in ("u8", "i8") for p in precisions.values()), precisions


def per_channel_activation_model() -> onnx.ModelProto:
    """NNCF's placement before a depthwise Conv: the expand Conv's output is quantized per
    channel (axis 1), then read by a 3x3 depthwise Conv, then a 1x1 Conv."""
    b = _Builder(9)
    x = _qdq_nodes(b, "image", "x", 0.02, 128)
    x = b.op("Relu", [b.op("Conv", [x, _weight(b, "expand", (16, 3, 1, 1))], "expand")], "r")
    scales = np.linspace(0.005, 0.05, 16).astype(np.float32)
    inputs = [x, b.const("r.s", scales), b.const("r.z", np.zeros(16, np.uint8))]
    q = b.op("QuantizeLinear", inputs, "r.q", axis=1)
    x = b.op("DequantizeLinear", [q, *inputs[1:]], "r.dq", axis=1)
    x = b.op("Conv", [x, _weight(b, "dw", (16, 1, 3, 3))], "dw", group=16, pads=[1, 1, 1, 1])
    x = _qdq_nodes(b, x, "dw.out", 0.05, 128)
    x = b.op("Conv", [x, _weight(b, "project", (16, 16, 1, 1))], "project")
    b.head(x, 16)
    return b.model()


def _weight(b: _Builder, name: str, shape: tuple[int, ...]) -> str:
    w = b.rng.integers(-127, 128, shape).astype(np.int8)
    s = np.full(shape[0], 0.01, np.float32)
    return b.op("DequantizeLinear", [b.const(f"{name}.wq", w), b.const(f"{name}.ws", s),
                                     b.const(f"{name}.wz", np.zeros(shape[0], np.int8))],
                f"{name}.w", axis=0)


@pytest.mark.parametrize("target", TARGETS)
def test_per_channel_activation_quantization(target, tmp_path) -> None:
    """onednn keeps the per-channel Q/DQ and runs the depthwise Conv INT8; ONNX Runtime (no
    per-channel activation scale in QLinearConv) keeps it FP32 and still runs the model."""
    import onnxruntime as ort

    quant = per_channel_activation_model()
    result = convert(quant, ConvertConfig(target=target))
    dw = next(n for n in result.decisions if n.name == "dw")
    assert (dw.status == "int8") == (target == "onednn"), dw.reason
    int8 = result.int8_model()
    opts = ort.SessionOptions()  # ONNX Runtime's own fusion of the source fails to run
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    source = ort.InferenceSession(quant.SerializeToString(), opts,
                                  providers=["CPUExecutionProvider"])
    for feeds in photos(IMAGE)[:3]:
        expected = source.run(None, feeds)[0]
        if target == "onnxruntime":
            assert cosine(expected, run_model(int8, feeds)[0]) >= 0.99
        else:  # (ONNX Runtime cannot run this one either: it fuses it as the source)
            got, precisions = run_openvino(int8, feeds, tmp_path)
            assert cosine(expected, got) >= 0.995
    if target == "onednn":
        assert len(precisions) == 3 and all(p in ("u8", "i8") for p in precisions.values())


def test_onednn_weights_keep_their_own_zero_points(relu6) -> None:
    """OpenVINO runs a Conv in f32 when its weight's zero-point constant is shared (measured on
    PP-OCRv4 det from NNCF): cleanup merges equal initializers, but not those."""
    _, _, results = relu6
    model = results["onednn"].int8_model()
    weights = {i.name for i in model.graph.initializer if len(i.dims) == 4}
    zero_points = [n.input[2] for n in model.graph.node
                   if n.op_type == "DequantizeLinear" and n.input[0] in weights]
    assert len(zero_points) == 3 and len(set(zero_points)) == 3
