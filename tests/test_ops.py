"""The op registry (qcore.ops): every table agrees with itself, and an INT8 op type is one
entry. Softmax, the entry added last, runs as ONNX Runtime's QLinearSoftmax and computes what
the quant model computes; OpenVINO has no int8 Softmax, so on onednn it stays FP32."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from skimage import color, data

from devtools import modelgen
from qcore.config import ConvertConfig
from qcore.convert import convert
from qcore.ir import Node
from qcore.ops import KERNELS, ONNXRUNTIME, SPECS, TARGETS, Form, spec_of
from qcore.status import OpStatus, ReasonKind


def test_every_spec_names_a_known_kernel_and_target() -> None:
    for spec in SPECS.values():
        assert spec.targets and spec.targets <= set(TARGETS), spec.op_type
        if spec.form is Form.MOVEMENT:
            assert spec.ort == "", spec.op_type  # runs unchanged on int8 data
        elif ONNXRUNTIME not in spec.targets:
            assert spec.ort == "", spec.op_type  # no ONNX Runtime kernel to name
        else:
            assert spec.ort in KERNELS, (spec.op_type, spec.ort)
            kernel = KERNELS[spec.ort]
            assert kernel.output is not None or spec.form in (Form.LINEAR, Form.MATMUL)


def test_kernel_slots_never_overlap() -> None:
    for kernel in KERNELS.values():
        slots = [p for s in kernel.inputs for p in (s.tensor, s.scale, s.zero_point)]
        taken = slots + list(kernel.output or ()) + [kernel.int32_bias or -1]
        assert len(set(slots)) == len(slots), kernel.op_type
        assert kernel.int32_bias is None or taken.count(kernel.int32_bias) == 1, kernel.op_type


def test_ops_of_other_domains_have_no_spec() -> None:
    assert spec_of(Node(0, "Conv", ["x", "w"], ["y"], domain="com.example")) is None
    assert spec_of(Node(0, "Conv", ["x", "w"], ["y"])) is SPECS["Conv"]


def _patches(image: np.ndarray, count: int, seed: int) -> np.ndarray:
    """``count`` 8x8 grey patches of a real photo, as rows of 64 values in [0, 1]."""
    rng = np.random.default_rng(seed)
    ys = rng.integers(0, image.shape[0] - 8, count)
    xs = rng.integers(0, image.shape[1] - 8, count)
    rows = [image[y:y + 8, x:x + 8].reshape(64) for y, x in zip(ys, xs, strict=True)]
    return np.asarray(rows, np.float32)


@pytest.fixture(scope="module")
def softmax_model() -> tuple[onnx.ModelProto, onnx.ModelProto, np.ndarray]:
    """A 64 -> 10 linear classifier with Softmax over photo patches, quantized by ONNX
    Runtime's quantize_static (u8 activations, MatMul and Softmax quantized)."""
    rng = np.random.default_rng(7)
    weight = (rng.standard_normal((64, 10)) * 0.6).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["logits"]),
         helper.make_node("Softmax", ["logits"], ["probs"], axis=-1)],
        "softmax_head",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, [1, 10])],
        [numpy_helper.from_array(weight, "w")])
    fp32 = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    fp32.ir_version = 8
    calibration = _patches(color.rgb2gray(data.astronaut()), 64, seed=1)
    qdq = modelgen.quantize_qdq(fp32, op_types=["MatMul", "Softmax"],
                                calibration=[{"x": row[None]} for row in calibration])
    test = _patches(data.camera() / 255.0, 32, seed=2)
    return fp32, qdq, test


def _run(model: onnx.ModelProto, rows: np.ndarray) -> np.ndarray:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(model.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    return np.concatenate([session.run(None, {"x": row[None]})[0] for row in rows])


def test_softmax_runs_as_qlinearsoftmax_and_matches_the_quant_model(softmax_model) -> None:
    _, qdq, test = softmax_model
    assert "Softmax" in {n.op_type for n in qdq.graph.node}
    source_has_qdq = [n.op_type for n in qdq.graph.node].count("QuantizeLinear") >= 2
    assert source_has_qdq, "quantize_static quantized the Softmax's input and output"
    result = convert(qdq, ConvertConfig(target="onnxruntime"))
    softmax = next(n for n in result.decisions if n.op_type == "Softmax")
    assert softmax.status is OpStatus.INT8, softmax.reason
    int8 = result.int8_model()
    kernels = {n.op_type: n for n in int8.graph.node}
    assert "QLinearSoftmax" in kernels and "Softmax" not in kernels
    attrs = {a.name: helper.get_attribute_value(a) for a in kernels["QLinearSoftmax"].attribute}
    assert attrs == {"axis": -1, "opset": 13}
    ours, reference = _run(int8, test), _run(qdq, test)
    step = 1 / 256  # quantize_static's fixed Softmax output scale (u8)
    assert np.max(np.abs(ours - reference)) <= 2 * step + 1e-6
    assert (ours.argmax(1) == reference.argmax(1)).mean() >= 0.95


def test_softmax_stays_fp32_on_onednn_with_the_reason(softmax_model) -> None:
    _, qdq, test = softmax_model
    result = convert(qdq, ConvertConfig(target="onednn"))
    softmax = next(n for n in result.decisions if n.op_type == "Softmax")
    assert softmax.status is OpStatus.FP32
    assert softmax.reason.kind is ReasonKind.NO_KERNEL_ON_TARGET
    assert softmax.reason == "no INT8 kernel for this op type on onednn"
    ours, reference = _run(result.int8_model(), test), _run(qdq, test)
    assert np.max(np.abs(ours - reference)) <= 2 / 256 + 1e-6
