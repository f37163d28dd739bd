"""An Add of a constant between uint8 quantizers on the onednn target, on real photos.

OpenVINO 2026.4 miscomputes DQ(uint8, zero point 0) -> Add(c) -> Q(about the same scale): it
truncates the shift ``c / scale + zero point`` instead of rounding it, so when its fraction is
above one half every output code is one step low (PP-OCRv5 rec quantized by quantize_static,
Add.141: all 230,400 codes). Our onednn model reads such an input as int8 with zero point
-128, the same values, which OpenVINO computes right; the output codes then equal ONNX
Runtime's on the source file, but for the convolution's tie roundings (at most 3 of 18,432
codes per photo here; without the int8 reading every code is off).
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from conftest import checked_model, compile_openvino, conv_stem, photos, probe_peak, run_model
from onnx import TensorProto, helper, numpy_helper

from qcore.config import ConvertConfig
from qcore.convert import convert

SIZE = 48
SHIFT = -1.353  # the constant in steps: with the output zero point 2 the shift is 0.647


def _model(scale: float, feeds_peak: float) -> onnx.ModelProto:
    """image -> Conv -> Relu -> Q/DQ(u8, 0) -> Add(c) -> Q/DQ(u8, 2): the Add's codes as output."""
    rng = np.random.default_rng(3)
    inits, stem = conv_stem(rng, 8, 0.3, feeds_peak / 127)
    inits += [
        numpy_helper.from_array(np.float32(scale), "s"),
        numpy_helper.from_array(np.uint8(0), "z0"), numpy_helper.from_array(np.uint8(2), "z2"),
        numpy_helper.from_array(np.float32(SHIFT * scale), "c"),
    ]
    nodes = [
        *stem,
        helper.make_node("Relu", ["conv"], ["relu"], name="relu"),
        helper.make_node("QuantizeLinear", ["relu", "s", "z0"], ["rq"]),
        helper.make_node("DequantizeLinear", ["rq", "s", "z0"], ["rd"]),
        helper.make_node("Add", ["rd", "c"], ["shifted"], name="shift"),
        helper.make_node("QuantizeLinear", ["shifted", "s", "z2"], ["codes"]),
        helper.make_node("DequantizeLinear", ["codes", "s", "z2"], ["out"]),
    ]
    return checked_model(
        nodes, "shift",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, SIZE, SIZE])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 8, SIZE, SIZE])], inits)


@pytest.fixture(scope="module")
def quant() -> tuple[onnx.ModelProto, list[dict]]:
    feeds = photos(SIZE)
    peak = max(float(np.abs(f["image"]).max()) for f in feeds)
    relu_peak = probe_peak(_model(1.0, peak), "relu", feeds)
    return _model(relu_peak / 255, peak), feeds


def _openvino(model: onnx.ModelProto, feeds: list[dict], tmp_path) -> list[np.ndarray]:
    compiled = compile_openvino(model, tmp_path / "model.onnx")
    return [compiled(f)[0] for f in feeds]


def test_the_add_reads_int8_with_zero_point_minus_128(quant) -> None:
    model, _ = quant
    int8 = convert(model, ConvertConfig(target="onednn")).int8_model()
    producers = {o: n for n in int8.graph.node for o in n.output}
    inits = {i.name: numpy_helper.to_array(i) for i in int8.graph.initializer}
    add = next(n for n in int8.graph.node if n.op_type == "Add")
    dq = next(producers[i] for i in add.input if i in producers)
    assert dq.op_type == "DequantizeLinear"
    assert inits[dq.input[2]].dtype == np.int8 and int(inits[dq.input[2]]) == -128


def test_openvino_computes_the_source_codes(quant, tmp_path) -> None:
    model, feeds = quant
    scale = float(numpy_helper.to_array(next(i for i in model.graph.initializer
                                              if i.name == "s")))
    int8 = convert(model, ConvertConfig(target="onednn")).int8_model()
    for feed, got in zip(feeds, _openvino(int8, feeds, tmp_path), strict=True):
        want = run_model(model, feed)[0]
        steps = np.rint((got - want) / scale)
        assert np.abs(steps).max() <= 1
        assert np.count_nonzero(steps) <= steps.size // 1000, np.count_nonzero(steps)
