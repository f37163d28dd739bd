"""Weights a producer quantizes in the graph: NNCF on a model whose weights sit in ``Constant``
nodes (paddle2onnx's export) writes QuantizeLinear -> DequantizeLinear on the float weight
instead of an int8 initializer. That pair quantizes a weight, not an activation: every
snapshot and the FP32 model keep the dequantized int8 values the quant model computes with
(NNCF's fast bias correction tuned the biases for them), checked on real photos against ONNX
Runtime running the source."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from conftest import cosine, photos
from onnx import helper
from test_fidelity import IMAGE, silu_cnn, worst_cosine

from qcore.config import ConvertConfig
from qcore.convert import ConversionResult, convert
from qcore.verify_model import runnable_model


def _weights_in_constants(model: onnx.ModelProto) -> onnx.ModelProto:
    """The same model with every initializer written as a Constant node (paddle2onnx)."""
    consts = [helper.make_node("Constant", [], [i.name], value=i) for i in model.graph.initializer]
    nodes = consts + list(model.graph.node)
    del model.graph.initializer[:]
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    return model


def _without_activation_qdq(quant: onnx.ModelProto) -> onnx.ModelProto:
    """The source with its activation Q/DQ pairs bypassed; weights keep theirs."""
    model = onnx.ModelProto()
    model.CopyFrom(quant)
    consts = {n.output[0] for n in model.graph.node if n.op_type == "Constant"}
    quants = {n.output[0]: n.input[0] for n in model.graph.node
              if n.op_type == "QuantizeLinear" and n.input[0] not in consts}
    rename = {n.output[0]: quants[n.input[0]] for n in model.graph.node
              if n.op_type == "DequantizeLinear" and n.input[0] in quants}
    for node in model.graph.node:
        node.input[:] = [rename.get(name, name) for name in node.input]
    return model


def run_plain(model: onnx.ModelProto, feed: dict) -> np.ndarray:
    """The first output on ONNX Runtime with graph optimizations off (as ``qcore verify``
    runs its reference: QDQ as float fake-quant, not fused into integer kernels)."""
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(model.SerializeToString(), opts,
                                   providers=["CPUExecutionProvider"])
    return np.asarray(session.run(None, feed)[0])


def snapshot_errors(quant: onnx.ModelProto, result: ConversionResult,
                    feeds: list[dict]) -> list[tuple[str, float]]:
    """(name, worst max error relative to the output's range) of every snapshot before
    quantize_placement, run as ``qcore verify`` runs it (fake-quant where the graph keeps
    activation scales), against the source on ``feeds``."""
    expected = [run_plain(quant, f) for f in feeds]
    errors = []
    for snapshot in result.snapshots:
        if snapshot.name == "quantize_placement":
            break
        model = runnable_model(snapshot.graph, fake_quant=True)
        got = [run_plain(model, f) for f in feeds]
        errors.append((snapshot.name, max(float(np.abs(a - b).max() / np.abs(b).max())
                                          for a, b in zip(got, expected, strict=True))))
    return errors


@pytest.fixture(scope="module")
def nncf_constants() -> tuple[onnx.ModelProto, list[dict]]:
    nncf = pytest.importorskip("nncf")
    feeds = photos(IMAGE)
    quant = nncf.quantize(_weights_in_constants(silu_cnn()), nncf.Dataset(feeds))
    consts = {n.output[0] for n in quant.graph.node if n.op_type == "Constant"}
    weight_quants = [n for n in quant.graph.node
                     if n.op_type == "QuantizeLinear" and n.input[0] in consts]
    assert len(weight_quants) == 6  # five Convs and the Gemm: quantized in the graph
    return quant, feeds


@pytest.mark.parametrize("target", ["onnxruntime", "onednn"])
def test_fp32_model_keeps_the_weights_the_source_quantizes(nncf_constants, target) -> None:
    quant, feeds = nncf_constants
    result = convert(quant, ConvertConfig(target=target))
    fp32, reference = result.fp32_model(), _without_activation_qdq(quant)
    for feed in feeds:
        want, got = run_plain(reference, feed), run_plain(fp32, feed)
        assert np.abs(got - want).max() <= 1e-4 * np.abs(want).max()
    assert worst_cosine(quant, result.int8_model(), feeds) >= 0.995


def test_snapshots_compute_the_source_with_weights_quantized(nncf_constants) -> None:
    """Every snapshot before quantize, run as ``qcore verify`` runs it (fake-quant where the
    graph keeps activation scales), gives the source's outputs."""
    quant, feeds = nncf_constants
    result = convert(quant, ConvertConfig())
    expected = [run_plain(quant, f) for f in feeds[:3]]
    for snapshot in result.snapshots:
        if snapshot.name == "quantize_placement":
            break
        model = runnable_model(snapshot.graph, fake_quant=True)
        got = [run_plain(model, f) for f in feeds[:3]]
        assert min(cosine(a, b) for a, b in zip(got, expected, strict=True)) >= 0.99999, \
            snapshot.name


def test_the_source_int8_weights_are_kept(nncf_constants) -> None:
    """Every weight keeps the source's integers (its QuantizeLinear of the float constant),
    not new scales computed from the float values: also c1's, whose BatchNormalization is
    folded into it (the factor goes into the per-channel scales)."""
    quant, _ = nncf_constants
    result = convert(quant, ConvertConfig())
    summary = next(s.summary for s in result.snapshots if s.name == "compute_weight_scales")
    assert summary == "kept 6 weight scales, computed 0"
    graph = next(s.graph for s in result.snapshots if s.name == "compute_weight_scales")
    conv = next(n for n in graph.nodes if n.name == "c1")
    folded = graph.weight_qparams[conv.inputs[1]].dequantize(graph.weight_ints[conv.inputs[1]])
    np.testing.assert_allclose(folded, graph.initializers[conv.inputs[1]], rtol=1e-6, atol=1e-7)
