"""A graph output the source quantizes after an op that stays FP32 keeps its Q/DQ.

PP-OCRv5 rec quantized by quantize_static ends Softmax -> Q -> DQ: the quant model's
probabilities are 1/255 steps. On onednn the Softmax has no INT8 form and stays FP32; our
model wrote its float output, up to half a step (1.96e-3) from the quant model's on the
source's own quantized inputs, which ``qcore verify`` flagged at Softmax(1208). Now the FP32
op writes a new name and a Q -> DQ with the source's params gives the output its name.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from conftest import checked_model, compile_openvino, conv_stem, photos, probe_peak, run_model
from onnx import TensorProto, helper, numpy_helper

from qcore.config import ConvertConfig
from qcore.convert import convert

SIZE = 32
STEP = np.float32(1 / 255)


def _model(conv_scale: float, image_peak: float) -> onnx.ModelProto:
    """image -> Q/DQ -> Conv -> Q/DQ -> Softmax over channels -> Q/DQ (u8, 1/255) -> out."""
    rng = np.random.default_rng(5)
    inits, stem = conv_stem(rng, 10, 0.4, image_peak / 127)
    inits += [
        numpy_helper.from_array(np.float32(conv_scale), "cs"),
        numpy_helper.from_array(np.int8(0), "cz"),
        numpy_helper.from_array(STEP, "ps"), numpy_helper.from_array(np.uint8(0), "pz"),
    ]
    nodes = [
        *stem,
        helper.make_node("QuantizeLinear", ["conv", "cs", "cz"], ["cq"]),
        helper.make_node("DequantizeLinear", ["cq", "cs", "cz"], ["cd"]),
        helper.make_node("Softmax", ["cd"], ["probs"], axis=1, name="softmax"),
        helper.make_node("QuantizeLinear", ["probs", "ps", "pz"], ["pq"]),
        helper.make_node("DequantizeLinear", ["pq", "ps", "pz"], ["out"]),
    ]
    return checked_model(
        nodes, "softmax_out",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, SIZE, SIZE])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 10, SIZE, SIZE])], inits)


@pytest.fixture(scope="module")
def quant() -> tuple[onnx.ModelProto, list[dict]]:
    feeds = photos(SIZE)
    peak = max(float(np.abs(f["image"]).max()) for f in feeds)
    conv_peak = probe_peak(_model(1.0, peak), "conv", feeds)
    return _model(conv_peak / 127, peak), feeds


@pytest.mark.parametrize("target", ["onnxruntime", "onednn"])
def test_the_output_keeps_the_sources_quantizer(quant, target, tmp_path) -> None:
    """On the source's grid, and the codes the target's engine gives on the source file
    (OpenVINO's FakeQuantize rounds about 10 % of this Softmax's codes otherwise than ONNX
    Runtime's QuantizeLinear, on the source as on ours)."""
    model, feeds = quant
    result = convert(model, ConvertConfig(target=target))
    if target == "onednn":
        softmax = next(n for n in result.decisions if n.op_type == "Softmax")
        assert softmax.status.name == "FP32", softmax.reason  # the case this test is about
        ours = compile_openvino(result.int8_model(), tmp_path / "int8.onnx")
        source = compile_openvino(model, tmp_path / "source.onnx")
        pairs = [(ours(f)[0], source(f)[0]) for f in feeds]
    else:
        pairs = [(run_model(result.int8_model(), f)[0], run_model(model, f)[0]) for f in feeds]
    for out, expected in pairs:
        codes = out / STEP
        assert np.abs(codes - np.rint(codes)).max() < 1e-3  # on the source's 1/255 grid
        differ = np.count_nonzero(np.rint(codes) != np.rint(expected / STEP))
        assert differ <= codes.size // 1000, f"{differ} of {codes.size} codes differ"
