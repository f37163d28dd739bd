"""The converter on the samples and on quant models made with ONNX Runtime's quantize_static:
the INT8 model is valid, runs on integer kernels, stores int8 weights and agrees with the
quant model on the same inputs."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from conftest import compile_openvino, cosine, run_model

from devtools import modelgen
from qcore.config import ConvertConfig
from qcore.convert import NoQuantizationError, convert

INTEGER_OPS = {"QLinearConv", "QGemm", "QLinearMatMul", "MatMulIntegerToFloat", "QLinearAdd",
               "QLinearMul", "QLinearConcat", "QLinearGlobalAveragePool", "QLinearAveragePool"}
FLOAT_COMPUTE = {"Conv", "Gemm", "MatMul"}

VARIANTS = {
    "u8-per-channel": dict(per_channel=True, activation_type="uint8"),
    "u8-per-tensor": dict(per_channel=False, activation_type="uint8"),
    "s8-symmetric": dict(per_channel=True, activation_type="int8", symmetric_activations=True),
    "s8-per-tensor-constants": dict(per_channel=False, activation_type="int8",
                                    symmetric_activations=True, weights_as_constants=True),
    "u8-constants": dict(per_channel=True, activation_type="uint8", weights_as_constants=True),
    "u8-weights": dict(per_channel=True, weight_type="uint8"),
}


@pytest.fixture(scope="module", params=["cnn", "transformer"])
def family(request):
    build = {"cnn": modelgen.cnn, "transformer": modelgen.transformer}[request.param]
    fp32 = build(seed=1)
    return request.param, fp32, modelgen.random_inputs(fp32, count=8, seed=7, batch=2)


def _int8_weight_bytes(model: onnx.ModelProto) -> int:
    return sum(np.prod(i.dims) for i in model.graph.initializer
               if i.data_type == onnx.TensorProto.INT8)


def _check_agreement(kind: str, quant, int8, inputs) -> None:
    for feeds in inputs:
        expected = run_model(quant, feeds)[0]
        got = run_model(int8, feeds)[0]
        if kind == "cnn":
            agree = float(np.mean(expected.argmax(-1) == got.argmax(-1)))
            assert agree >= 0.99, f"top-1 agreement {agree}"
        assert cosine(expected, got) >= 0.99


@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize("target", ["onnxruntime", "onednn"])
def test_int8_model_agrees_with_quant_model(family, variant, target) -> None:
    kind, fp32, inputs = family
    quant = modelgen.quantize_qdq(fp32, **VARIANTS[variant])
    result = convert(quant, ConvertConfig(target=target))
    int8 = result.int8_model()
    onnx.checker.check_model(int8, full_check=True)
    ops = {n.op_type for n in int8.graph.node}
    for node in result.decisions:
        if node.op_type in FLOAT_COMPUTE:
            assert node.status == "int8", node.reason
    if target == "onnxruntime":
        assert ops & INTEGER_OPS
    else:
        assert "QuantizeLinear" in ops and "DequantizeLinear" in ops
    assert _int8_weight_bytes(int8) > 0
    assert not any(i.data_type == onnx.TensorProto.UINT8 and len(i.dims) > 1
                   for i in int8.graph.initializer), "weights are stored as int8"
    _check_agreement(kind, quant, int8, inputs)


@pytest.mark.parametrize("opset", [17, 21])
def test_newer_opsets(opset) -> None:
    from onnx import version_converter

    fp32 = version_converter.convert_version(modelgen.cnn(seed=3), opset)
    quant = modelgen.quantize_qdq(fp32)
    assert quant.opset_import[0].version >= opset
    int8 = convert(quant).int8_model()
    onnx.checker.check_model(int8, full_check=True)
    _check_agreement("cnn", quant, int8, modelgen.random_inputs(fp32, 4, seed=9, batch=2))


def test_every_conv_and_matmul_with_scales_is_int8(samples) -> None:
    for name in ("cnn_qdq.onnx", "transformer_qdq.onnx"):
        for target in ("onnxruntime", "onednn"):
            result = convert(str(samples / name), ConvertConfig(target=target))
            for node in result.decisions:
                if node.op_type in FLOAT_COMPUTE:
                    assert node.status == "int8", (name, target, node.label, node.reason)


def test_no_static_cost_rule_makes_a_float_island(samples) -> None:
    """The 3-channel 3x3 stem (27 products per output) is INT8 for ONNX Runtime too: the
    runtime runs it INT8 from the QDQ file itself, and an FP32 island there measured slower
    in the model (benchmarks/bench_zoo.py)."""
    path = str(samples / "cnn_qdq.onnx")
    ort_result = convert(path, ConvertConfig(target="onnxruntime"))
    graph = ort_result.snapshots[0].graph
    stem = next(n for n in ort_result.decisions if n.op_type == "Conv")
    assert graph.shape(stem.inputs[0])[1] == 3
    assert stem.status == "int8", stem.reason


def test_int8_model_is_about_four_times_smaller() -> None:
    fp32_source = modelgen.resnet_like(image=32, classes=10, blocks=(1, 1, 1, 1), width=16)
    quant = modelgen.quantize_qdq(fp32_source, per_channel=True)
    result = convert(quant)
    fp32 = len(result.fp32_model().SerializeToString())
    int8 = len(result.int8_model().SerializeToString())
    assert int8 * 3.5 < fp32, (int8, fp32)


def test_fp32_model_matches_quant_model(samples) -> None:
    """The clean FP32 model computes what the quant model computes, minus rounding."""
    quant = str(samples / "cnn_qdq.onnx")
    fp32 = convert(quant).fp32_model()
    assert not {"QuantizeLinear", "DequantizeLinear"} & {n.op_type for n in fp32.graph.node}
    for feeds in modelgen.random_inputs(onnx.load(quant), count=4, seed=3, batch=2):
        assert cosine(run_model(quant, feeds)[0], run_model(fp32, feeds)[0]) > 0.999


def test_ids_are_stable_across_snapshots_and_runs(samples) -> None:
    path = str(samples / "cnn_qdq.onnx")
    first, second = convert(path), convert(path)
    labels = [[n.label for n in s.graph.nodes] for s in first.snapshots]
    assert labels == [[n.label for n in s.graph.nodes] for s in second.snapshots]
    original = {n.id: n.op_type for n in first.snapshots[0].graph.nodes}
    for snap in first.snapshots:
        ids = [n.id for n in snap.graph.nodes]
        assert len(ids) == len(set(ids)), f"duplicate ids in {snap.stem}"
    convs = [n.id for n in first.decisions if n.op_type == "Conv" and n.status == "int8"]
    assert convs and all(original[i] == "Conv" for i in convs)
    final = {n.id: n.op_type for n in first.int8.nodes}
    assert all(final[i] == "QLinearConv" for i in convs)


def test_op_ids_to_skip_keeps_exactly_those_ops_fp32(samples) -> None:
    path = str(samples / "cnn_qdq.onnx")
    convs = [n.id for n in convert(path).decisions if n.op_type == "Conv" and n.status == "int8"]
    skip = convs[1:3]
    result = convert(path, ConvertConfig(op_ids_to_skip=skip))
    status = {n.id: n for n in result.decisions}
    for node_id in convs:
        assert (status[node_id].status == "fp32") == (node_id in skip)
    assert all("skipped by id" in status[i].reason for i in skip)
    final = {n.id: n.op_type for n in result.int8.nodes}
    assert [final[i] for i in skip] == ["Conv", "Conv"]
    feeds = modelgen.random_inputs(onnx.load(path), count=1, seed=5, batch=2)[0]
    assert cosine(run_model(path, feeds)[0], run_model(result.int8_model(), feeds)[0]) > 0.99


def test_ops_to_quantize_restricts_by_type(samples) -> None:
    path = str(samples / "transformer_qdq.onnx")
    result = convert(path, ConvertConfig(ops_to_quantize=["MatMul"]))
    for node in result.decisions:
        if node.op_type == "MatMul":
            assert node.status == "int8"
        elif node.op_type in ("Add", "Mul"):
            assert node.status == "fp32" and "ops_to_quantize" in node.reason
    types = {n.op_type for n in result.int8_model().graph.node}
    assert "QLinearAdd" not in types and "MatMulIntegerToFloat" in types


def test_every_fp32_op_has_a_reason(samples) -> None:
    result = convert(str(samples / "transformer_qdq.onnx"))
    reasons = result.fp32_reasons()
    assert reasons and all(reasons.values())


def test_model_without_quantization_is_refused(samples) -> None:
    with pytest.raises(NoQuantizationError, match="no QuantizeLinear"):
        convert(str(samples / "cnn_fp32.onnx"))


def test_onednn_target_runs_int8_primitives_in_openvino(samples, tmp_path) -> None:
    path = str(samples / "cnn_qdq.onnx")
    model = convert(path, ConvertConfig(target="onednn")).int8_model()
    assert not any(n.domain for n in model.graph.node), "OpenVINO reads only standard ops"
    compiled = compile_openvino(model, tmp_path / "cnn_onednn.onnx")
    layers = [op.get_rt_info() for op in compiled.get_runtime_model().get_ordered_ops()]
    convs = [info for info in layers if info["layerType"].astype(str) == "Convolution"]
    assert convs and all(info["runtimePrecision"].astype(str) in ("u8", "i8") for info in convs)
    feeds = modelgen.random_inputs(onnx.load(path), count=1, seed=4, batch=1)[0]
    got = compiled(feeds)[0]
    assert cosine(run_model(path, feeds)[0], got) > 0.99


def test_a_model_without_quantization_can_still_be_viewed(samples) -> None:
    from qcore.convert import convert_or_view

    result = convert_or_view(str(samples / "cnn_fp32.onnx"))
    assert not result.quantized and [s.stem for s in result.snapshots] == ["quant_orig"]
    assert result.decisions and all(n.status == "fp32" for n in result.decisions)
    assert convert_or_view(str(samples / "cnn_qdq.onnx")).quantized


def test_initializers_named_like_onnx_runtime_generated_shapes_are_renamed() -> None:
    """quant_pre_process leaves ``gemm_input_shape`` initializers behind; ONNX Runtime's own
    MatMulAddFusion then clashes with them (MiniLM-L6 in the zoo): written models rename them."""
    from onnx import TensorProto, helper, numpy_helper

    from qcore.convert import export_model
    from qcore.ir_onnx import from_onnx

    rng = np.random.default_rng(0)
    graph = helper.make_graph(
        [helper.make_node("Reshape", ["x", "gemm_input_shape"], ["flat"]),
         helper.make_node("MatMul", ["flat", "w"], ["m"]),
         helper.make_node("Add", ["m", "b"], ["y"])],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(np.array([6, 4], np.int64), "gemm_input_shape"),
         numpy_helper.from_array(rng.standard_normal((4, 5)).astype(np.float32), "w"),
         numpy_helper.from_array(rng.standard_normal(5).astype(np.float32), "b")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    written = export_model(from_onnx(model))
    names = {t.name for t in written.graph.initializer}
    assert "gemm_input_shape" not in names and "model_gemm_input_shape" in names
    feeds = {"x": rng.standard_normal((2, 3, 4)).astype(np.float32)}
    assert np.array_equal(run_model(written, feeds)[0], run_model(model, feeds)[0])
