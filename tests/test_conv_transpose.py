"""A Q/DQ'd ConvTranspose (PP-OCRv4 det's head, quantized by NNCF), on real photos.

NNCF quantizes a ConvTranspose's input and its weight (per channel on axis 1, the output
channels of ConvTranspose's [in, out / group, kH, kW] weight). OpenVINO runs it as an INT8
Deconvolution; our onednn model must too (it ran f32, 42 of the source's 44 INT8 layers on
PP-OCRv4 det NNCF). ONNX Runtime's CPU provider has no integer ConvTranspose: there it stays
FP32 behind the source's Q/DQ.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from conftest import (
    checked_model,
    compile_openvino,
    conv_stem,
    cosine,
    int8_weight,
    photos,
    probe_peak,
    run_model,
)
from onnx import TensorProto, helper, numpy_helper

from qcore.config import ConvertConfig
from qcore.convert import convert
from qcore.status import OpStatus, ReasonKind

SIZE = 32


def _model(x_scale: float, y_scale: float) -> onnx.ModelProto:
    """image -> Q/DQ -> Conv -> Relu -> Q/DQ -> ConvTranspose (stride 2) -> Sigmoid."""
    rng = np.random.default_rng(5)
    inits, stem = conv_stem(rng, 8, 0.3, x_scale)
    t = (rng.standard_normal((8, 4, 2, 2)) * 0.3).astype(np.float32)
    tq, ts = int8_weight(t, 1)
    inits += [numpy_helper.from_array(v, n) for n, v in (
        ("tq", tq), ("ts", ts), ("tz", np.zeros(4, np.int8)),
        ("tb", (rng.standard_normal(4) * 0.1).astype(np.float32)),
        ("ys", np.float32(y_scale)), ("yz", np.uint8(0)))]
    nodes = [
        *stem,
        helper.make_node("Relu", ["conv"], ["relu"], name="relu"),
        helper.make_node("QuantizeLinear", ["relu", "ys", "yz"], ["yq"]),
        helper.make_node("DequantizeLinear", ["yq", "ys", "yz"], ["yd"]),
        helper.make_node("DequantizeLinear", ["tq", "ts", "tz"], ["t"], axis=1),
        helper.make_node("ConvTranspose", ["yd", "t", "tb"], ["up"], strides=[2, 2],
                         name="up"),
        helper.make_node("Sigmoid", ["up"], ["out"], name="sigmoid"),
    ]
    return checked_model(
        nodes, "deconv",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, SIZE, SIZE])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 4, 2 * SIZE, 2 * SIZE])],
        inits)


@pytest.fixture(scope="module")
def quant() -> tuple[onnx.ModelProto, list[dict]]:
    feeds = photos(SIZE)
    x_peak = max(float(np.abs(f["image"]).max()) for f in feeds)
    relu_peak = probe_peak(_model(1.0, 1.0), "relu", feeds)
    return _model(x_peak / 127, relu_peak / 255), feeds


def _status(model: onnx.ModelProto, target: str):
    result = convert(model, ConvertConfig(target=target))
    return result, next(n for n in result.decisions if n.op_type == "ConvTranspose")


def test_onednn_makes_the_conv_transpose_int8_with_its_int8_weight(quant) -> None:
    model, _ = quant
    result, node = _status(model, "onednn")
    assert node.status is OpStatus.INT8, node.reason
    int8 = result.int8_model()
    producers = {o: n for n in int8.graph.node for o in n.output}
    deconv = next(n for n in int8.graph.node if n.op_type == "ConvTranspose")
    weight = producers[deconv.input[1]]
    assert weight.op_type == "DequantizeLinear"
    assert next(a.i for a in weight.attribute if a.name == "axis") == 1


def test_onnxruntime_keeps_it_fp32(quant) -> None:
    model, feeds = quant
    result, node = _status(model, "onnxruntime")
    assert node.status is OpStatus.FP32
    assert node.reason.kind is ReasonKind.NO_KERNEL_ON_TARGET
    int8 = result.int8_model()
    worst = min(cosine(run_model(model, f)[0], run_model(int8, f)[0]) for f in feeds)
    assert worst >= 0.99999


def test_openvino_runs_it_int8_and_matches_the_source(quant, tmp_path) -> None:
    model, feeds = quant
    compiled = compile_openvino(convert(model, ConvertConfig(target="onednn")).int8_model(),
                                tmp_path / "int8.onnx")
    precisions = {op.get_rt_info()["layerType"].astype(str):
                  op.get_rt_info()["runtimePrecision"].astype(str)
                  for op in compiled.get_runtime_model().get_ordered_ops()}
    assert precisions["Deconvolution"] in ("u8", "i8"), precisions
    for feed in feeds:
        assert cosine(run_model(model, feed)[0], compiled(feed)[0]) >= 0.9999
