"""Issue 14: a Conv whose output the source does not quantize (Paddle's PTQ: Q/DQ on a Conv's
inputs, none on its output) runs float on ONNX Runtime from the source QDQ file, so on the
onnxruntime target it stays FP32 behind the source's Q/DQ pair: what ONNX Runtime computes,
and as fast (its ConvInteger has no depthwise / NCHWc kernel). On onednn it stays INT8."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from conftest import cosine, photos, run_model
from onnx import TensorProto, helper
from test_fidelity import IMAGE
from test_fidelity_ort import QdqBuilder

from qcore.config import ConvertConfig
from qcore.convert import convert
from qcore.status import OpStatus, ReasonKind

CONVS = ("c1", "dw", "pw")
# The activations the source quantizes (abs max / 127 on the photos, Paddle's abs_max):
# the image and each HardSwish output a Conv reads.
QUANTIZED = ("image", "h1", "h2")


class PaddlePtqBuilder(QdqBuilder):
    """Conv (no bias) -> BatchNormalization -> HardSwish, as Paddle exports PP-LCNet."""

    def conv_bn_hswish(self, x: str, cin: int, cout: int, k: int, name: str,
                       group: int = 1) -> str:
        w = self.rng.standard_normal((cout, cin // group, k, k)) * np.sqrt(2.0 / (cin // group
                                                                                  * k * k))
        w_scale = (np.abs(w).reshape(cout, -1).max(1) / 127).astype(np.float32)
        ints = np.rint(w / w_scale[:, None, None, None]).astype(np.int8)
        wdq = self.op("DequantizeLinear", [
            self.const(f"{name}.w", ints), self.const(f"{name}.ws", w_scale),
            self.const(f"{name}.wz", np.zeros(cout, np.int8))], f"{name}.wdq", axis=0)
        y = self.op("Conv", [x, wdq], name, pads=[k // 2] * 4, group=group)
        bn = [self.const(f"{name}.bn.{key}", v.astype(np.float32)) for key, v in (
            ("g", self.rng.uniform(0.5, 1.5, cout)), ("b", self.rng.standard_normal(cout) * 0.3),
            ("m", self.rng.standard_normal(cout) * 0.2), ("v", self.rng.uniform(0.5, 2, cout)))]
        return self.op("HardSwish", [self.op("BatchNormalization", [y, *bn], f"{name}.bn")],
                       f"h{CONVS.index(name) + 1}")


def paddle_ptq_model(scales: dict[str, float] | None) -> onnx.ModelProto:
    """A stem Conv, a depthwise Conv and a pointwise Conv; with ``scales``, each of
    ``QUANTIZED`` goes through Q/DQ with its scale (int8, zero point 0) before its Conv, and
    no Conv output is quantized. Without ``scales``: the same graph with no activation Q/DQ
    (outputs: every tensor of ``QUANTIZED`` but the image, and the model's output)."""
    b = PaddlePtqBuilder(14)

    def read(x: str) -> str:
        return b.qdq(x, scales[x], f"{x}.in") if scales is not None else x

    x = b.conv_bn_hswish(read("image"), 3, 16, 3, "c1")
    x = b.conv_bn_hswish(read(x), 16, 16, 3, "dw", group=16)
    out = b.conv_bn_hswish(read(x), 16, 16, 1, "pw")
    names = [out] if scales is not None else [out, "h1", "h2"]
    graph = helper.make_graph(
        b.nodes, "paddle_ptq",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, IMAGE, IMAGE])],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 16, IMAGE, IMAGE])
         for n in names], b.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


def calibrated() -> onnx.ModelProto:
    """The QDQ model, its activation scales calibrated on the photos."""
    feeds = photos(IMAGE)
    calib = paddle_ptq_model(None)
    peaks = {"image": max(float(np.abs(f["image"]).max()) for f in feeds)}
    for feed in feeds:
        _, h1, h2 = run_model(calib, feed)
        for name, value in (("h1", h1), ("h2", h2)):
            peaks[name] = max(peaks.get(name, 0.0), float(np.abs(value).max()))
    return paddle_ptq_model({name: peak / 127 for name, peak in peaks.items()})


@pytest.fixture(scope="module")
def source() -> onnx.ModelProto:
    return calibrated()


def _convs(result) -> dict[str, object]:
    return {n.name: n for n in result.decisions if n.op_type == "Conv"}


def test_ort_keeps_float_output_convs_fp32_and_computes_what_ort_computes(source) -> None:
    result = convert(source, ConvertConfig(target="onnxruntime"))
    convs = _convs(result)
    assert sorted(convs) == sorted(CONVS)
    for node in convs.values():
        assert node.status is OpStatus.FP32, (node.name, node.reason)
        assert node.reason.kind is ReasonKind.MISSING_SCALE, (node.name, node.reason)
        assert "runs the source's Conv float" in node.reason
    int8 = result.int8_model()
    types = [n.op_type for n in int8.graph.node]
    assert "ConvInteger" not in types and "QLinearConv" not in types
    assert types.count("Conv") == 3
    # each Conv reads its activation through the source's Q -> DQ pair
    producers = {o: n for n in int8.graph.node for o in n.output}
    for conv in (n for n in int8.graph.node if n.op_type == "Conv"):
        dq = producers[conv.input[0]]
        assert dq.op_type == "DequantizeLinear" and producers[dq.input[0]].op_type == \
            "QuantizeLinear", conv.name
    # Measured: worst cosine 1 - 7e-15, largest difference 7.2e-7 on outputs up to 4.7
    # (BatchNormalization folded into the weights: float rounding). ConvInteger computed the
    # same (its sums are exact): the float Conv is chosen for speed, with no loss.
    for feed in photos(IMAGE):
        want, got = run_model(source, feed)[0], run_model(int8, feed)[0]
        assert cosine(want, got) >= 0.9999
        assert float(np.abs(want - got).max()) <= 1e-3 * float(np.abs(want).max())


def test_onednn_still_runs_float_output_convs_int8(source) -> None:
    # OpenVINO runs an INT8 Conv with a float output natively (Q/DQ on its inputs only).
    convs = _convs(convert(source, ConvertConfig(target="onednn")))
    assert sorted(convs) == sorted(CONVS)
    for node in convs.values():
        assert node.status is OpStatus.INT8, (node.name, node.reason)
