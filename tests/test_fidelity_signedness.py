"""oneDNN's u8 activations after a Relu keep the source's s8 saturation: an s8 symmetric
quantizer (ONNX Runtime ``quantize_static`` with QInt8 activations) clamps a Relu's output at
127 steps; read as u8 with zero point 0 and the same scale it would clamp at 255. Checked on
real photos (calibrated on two at half contrast, so outputs of the photos pass the calibrated range)
against ONNX Runtime running the source as fake-quant."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from conftest import cosine, photos
from test_fidelity import IMAGE, _Builder, ort_quantize, run_openvino
from test_fidelity_weights import run_plain, snapshot_errors

from qcore.config import ConvertConfig
from qcore.convert import ConversionResult, convert
from qcore.verify_model import runnable_model


def relu_cnn() -> onnx.ModelProto:
    """Conv + Relu three times (the Relus fuse into the Convs), then the head."""
    b = _Builder(11)
    x = b.op("Relu", [b.conv("image", 3, 16, 3, "c1", stride=2)], "r1")
    x = b.op("Relu", [b.conv(x, 16, 32, 3, "c2", gain=1.5)], "r2")
    x = b.op("Relu", [b.conv(x, 32, 32, 1, "c3", gain=1.5)], "r3")
    b.head(x, 32)
    return b.model()


@pytest.fixture(scope="module")
def s8_relu(tmp_path_factory) -> tuple[onnx.ModelProto, list[dict], ConversionResult]:
    feeds = photos(IMAGE)
    calibration = [{"image": f["image"] * np.float32(0.5)} for f in feeds[:2]]  # low contrast
    quant = ort_quantize(relu_cnn(), calibration, tmp_path_factory.mktemp("s8relu"),
                         symmetric_s8=True)
    return quant, feeds, convert(quant, ConvertConfig(target="onednn"))


def test_the_photos_pass_the_calibrated_range(s8_relu) -> None:
    """The case exists: the test photos take some Relu outputs above 127 steps."""
    _, feeds, result = s8_relu
    graph = next(s.graph for s in result.snapshots if s.name == "compute_weight_scales")
    tops = {n.outputs[0]: float(graph.act_qparams[n.outputs[0]].scale) * 127
            for n in graph.nodes if n.op_type == "Conv"}
    model = runnable_model(graph, fake_quant=False)
    del model.graph.output[:]
    model.graph.output.extend(onnx.ValueInfoProto(name=t) for t in tops)
    over = [np.max(value) - top for feed in feeds
            for value, top in zip(_run_all(model, feed), tops.values(), strict=True)]
    assert len(tops) == 3 and max(over) > 0


def _run_all(model: onnx.ModelProto, feed: dict) -> list[np.ndarray]:
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(model.SerializeToString(), opts,
                                   providers=["CPUExecutionProvider"])
    return [np.asarray(v) for v in session.run(None, feed)]


def test_every_snapshot_saturates_where_the_source_does(s8_relu) -> None:
    quant, feeds, result = s8_relu
    for name, worst in snapshot_errors(quant, result, feeds):
        assert worst <= 1e-5, name


def test_relu_outputs_are_u8_and_openvino_matches_the_source(s8_relu, tmp_path) -> None:
    quant, feeds, result = s8_relu
    graph = next(s.graph for s in result.snapshots if s.name == "activation_signedness")
    convs = [n for n in graph.nodes if n.op_type == "Conv"]
    assert all(n.act is not None and n.act.op_type == "Clip" for n in convs)
    assert all(graph.act_qparams[n.outputs[0]].dtype == np.uint8 for n in convs)
    int8 = result.int8_model()
    for feed in feeds:
        got, precisions = run_openvino(int8, feed, tmp_path)
        assert cosine(run_plain(quant, feed), got) >= 0.995
    assert precisions and all(p in ("u8", "i8") for p in precisions.values()), precisions


def test_a_graph_output_the_source_quantizes_stays_quantized(s8_relu) -> None:
    """The logits' Q/DQ (the source saturates them, calibrated at half contrast) is kept on
    ``onednn``: no INT8 reader would put it back after the Gemm."""
    quant, feeds, result = s8_relu
    int8 = result.int8_model()
    producers = {o: n for n in int8.graph.node for o in n.output}
    assert producers["logits"].op_type == "DequantizeLinear"
    for feed in feeds:
        want, got = run_plain(quant, feed), run_plain(int8, feed)
        assert np.abs(got - want).max() <= 0.02 * np.abs(want).max()
