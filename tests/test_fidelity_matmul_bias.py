"""A MatMul whose output the source quantizes before its bias Add (ONNX Runtime's
``quantize_static`` with MatMul as the op type: MiniLM-L6 in the zoo, the bundled transformer
sample) keeps that quantization: the Add stays its own op and reads the rounded, clamped
product, with the float bias the source adds (QLinearAdd would read it rounded to 8 bits).
Checked on rows of real photos against ONNX Runtime running the source."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from conftest import photos
from onnx import TensorProto, helper, numpy_helper
from test_fidelity_weights import run_plain, snapshot_errors

from devtools.modelgen import quantize_qdq
from qcore.config import ConvertConfig
from qcore.convert import convert

WIDTH = 48 * 3  # one photo row: 48 pixels x RGB


def _rows(feed: dict) -> dict:
    image = feed["image"][0]  # 3 x 48 x 48
    return {"x": np.ascontiguousarray(image.transpose(1, 2, 0).reshape(48, WIDTH), np.float32)}


def two_linear() -> onnx.ModelProto:
    """x @ W1 + b1 -> Relu -> @ W2 + b2, the biases large enough that rounding matters."""
    rng = np.random.default_rng(21)
    w1 = (rng.standard_normal((WIDTH, 64)) / np.sqrt(WIDTH)).astype(np.float32)
    w2 = (rng.standard_normal((64, 16)) / 8).astype(np.float32)
    inits = [numpy_helper.from_array(v, k) for k, v in (
        ("w1", w1), ("b1", rng.normal(0, 0.5, 64).astype(np.float32)),
        ("w2", w2), ("b2", rng.normal(0, 0.5, 16).astype(np.float32)))]
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["m1"]),
             helper.make_node("Add", ["m1", "b1"], ["a1"]),
             helper.make_node("Relu", ["a1"], ["r1"]),
             helper.make_node("MatMul", ["r1", "w2"], ["m2"]),
             helper.make_node("Add", ["m2", "b2"], ["y"])]
    graph = helper.make_graph(nodes, "linear", [
        helper.make_tensor_value_info("x", TensorProto.FLOAT, [48, WIDTH])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [48, 16])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model


@pytest.fixture(scope="module")
def matmul_only() -> tuple[onnx.ModelProto, list[dict]]:
    feeds = [_rows(f) for f in photos()]
    quant = quantize_qdq(two_linear(), op_types=["MatMul"], calibration=feeds[:3],
                         preprocess=False)  # quant_pre_process would fuse them to Gemm
    dq_outputs = {n.output[0] for n in quant.graph.node if n.op_type == "DequantizeLinear"}
    adds = [n for n in quant.graph.node if n.op_type == "Add"]
    assert len(adds) == 2 and all(any(i in dq_outputs for i in n.input) for n in adds)
    return quant, feeds


@pytest.mark.parametrize("target", ["onnxruntime", "onednn"])
def test_every_snapshot_adds_the_bias_to_the_quantized_product(matmul_only, target) -> None:
    quant, feeds = matmul_only
    result = convert(quant, ConvertConfig(target=target))
    for name, worst in snapshot_errors(quant, result, feeds):
        assert worst <= 1e-5, name
    graph = next(s.graph for s in result.snapshots if s.name == "fuse_matmul_bias")
    assert [n.op_type for n in graph.nodes if n.op_type in ("MatMul", "Add")].count("Add") == 2
    int8 = result.int8_model()  # ONNX Runtime: the bias Add stays float (no exact u8 bias)
    for feed in feeds:
        want = run_plain(quant, feed)
        got = run_plain(int8, feed)
        assert np.abs(got - want).max() <= 1e-3 * np.abs(want).max()
