"""One test or two per pass, each on a tiny graph written inline (as onnx-ir tests its passes):
the pass reports ``modified`` and leaves exactly the ops expected."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from conftest import run_model
from onnx import TensorProto, helper, numpy_helper

from qcore.config import ConvertConfig
from qcore.convert import convert
from qcore.ir import QParams
from qcore.loader import load_graph
from qcore.passes import Context, default_passes
from qcore.passes.activation_signedness import ActivationSignedness
from qcore.passes.dequantize_weights import DequantizeWeights
from qcore.passes.fold_batch_norm import FoldBatchNorm
from qcore.passes.fuse_activation import FuseActivation
from qcore.passes.fuse_hardswish import FuseHardSwish
from qcore.passes.fuse_matmul_bias import FuseMatMulBias
from qcore.passes.gather_scales import GatherScales
from qcore.passes.propagate_scales import PropagateScales
from qcore.passes.remove_fake_ops import RemoveFakeOps
from qcore.passes.remove_identity import RemoveIdentity

RNG = np.random.default_rng(0)


def _model(nodes, inputs, outputs, inits=(), opset=13) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes, "t",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in outputs],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in inits],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def _qdq(tensor: str, scale: float, zp: int, dtype=np.uint8) -> tuple[list, list]:
    """Q -> DQ on ``tensor``; the DQ output is ``tensor + '_dq'``."""
    inits = [(f"{tensor}_s", np.array(scale, np.float32)), (f"{tensor}_z", np.array(zp, dtype))]
    nodes = [
        helper.make_node("QuantizeLinear", [tensor, f"{tensor}_s", f"{tensor}_z"], [f"{tensor}_q"]),
        helper.make_node("DequantizeLinear", [f"{tensor}_q", f"{tensor}_s", f"{tensor}_z"],
                         [f"{tensor}_dq"]),
    ]
    return nodes, inits


def _run(passes, model) -> tuple:
    ctx = Context(load_graph(model), ConvertConfig())
    results = [p.apply(ctx) for p in passes]
    return ctx.graph, results


def _types(graph) -> list[str]:
    return [n.op_type for n in graph.nodes]


def _conv_qdq_model(weights_as_constants: bool = False) -> onnx.ModelProto:
    w = RNG.integers(-127, 128, (4, 3, 3, 3)).astype(np.int8)
    q_nodes, q_inits = _qdq("x", 0.02, 128)
    out_nodes, out_inits = _qdq("y", 0.05, 0)
    w_inits = [("w_q", w), ("w_s", np.full(4, 0.01, np.float32)),
               ("w_z", np.zeros(4, np.int8))]
    nodes = q_nodes + [
        helper.make_node("DequantizeLinear", ["w_q", "w_s", "w_z"], ["w"], axis=0),
        helper.make_node("Conv", ["x_dq", "w"], ["y"], pads=[1, 1, 1, 1]),
    ] + out_nodes
    inits = q_inits + out_inits + w_inits
    if weights_as_constants:
        consts = [helper.make_node("Constant", [], [k], value=numpy_helper.from_array(v, k))
                  for k, v in w_inits]
        nodes, inits = consts + nodes, q_inits + out_inits
    graph_out = [n for n in nodes if n.output[0] == "y_dq"][0]
    graph_out.output[0] = "out"
    return _model(nodes, [("x", [1, 3, 8, 8])], ["out"], inits)


# ---- gather_scales / remove_fake_ops / dequantize_weights --------------------------------


@pytest.mark.parametrize("constants", [False, True])
def test_fake_ops_removed_and_weights_dequantized(constants) -> None:
    graph, results = _run([GatherScales(), RemoveFakeOps(), DequantizeWeights()],
                          _conv_qdq_model(constants))
    assert all(r.modified for r in results)
    assert _types(graph) == ["Conv", "Relu"]  # y's quantizer starts at 0: clamp restored
    assert graph.act_qparams["x"].describe() == "u8 s=0.02 zp=128"
    w = graph.initializers["w"]
    assert w.dtype == np.float32 and graph.weight_ints["w"].dtype == np.int8
    np.testing.assert_allclose(w, graph.weight_ints["w"].astype(np.float32) * 0.01)


def test_ids_are_file_positions_and_constants_keep_others_ids() -> None:
    plain = load_graph(_conv_qdq_model(False))
    consts = load_graph(_conv_qdq_model(True))
    assert [n.id for n in plain.nodes] == list(range(len(plain.nodes)))
    conv_plain = next(n for n in plain.nodes if n.op_type == "Conv")
    conv_const = next(n for n in consts.nodes if n.op_type == "Conv")
    assert conv_const.id == conv_plain.id + 3  # three Constant nodes come first in the file


# ---- fusions -----------------------------------------------------------------------------


def test_identity_removed_and_graph_output_kept() -> None:
    model = _model([helper.make_node("Relu", ["x"], ["a"]),
                    helper.make_node("Identity", ["a"], ["out"])], [("x", [2])], ["out"])
    graph, (result,) = _run([RemoveIdentity()], model)
    assert result.modified and _types(graph) == ["Relu"] and graph.nodes[0].outputs == ["out"]


def test_batch_norm_folds_into_conv_exactly() -> None:
    c = 4
    inits = [("w", RNG.standard_normal((c, 3, 3, 3)).astype(np.float32)),
             ("g", RNG.uniform(0.5, 2, c).astype(np.float32)),
             ("b", RNG.standard_normal(c).astype(np.float32)),
             ("m", RNG.standard_normal(c).astype(np.float32)),
             ("v", RNG.uniform(0.5, 2, c).astype(np.float32))]
    model = _model([helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1]),
                    helper.make_node("BatchNormalization", ["y", "g", "b", "m", "v"], ["out"])],
                   [("x", [1, 3, 6, 6])], ["out"], inits)
    graph, (result,) = _run([FoldBatchNorm()], model)
    assert result.modified and _types(graph) == ["Conv"]
    assert graph.nodes[0].fused == ["BatchNormalization(1)"]
    from qcore.convert import export_model

    x = {"x": RNG.standard_normal((1, 3, 6, 6)).astype(np.float32)}
    np.testing.assert_allclose(run_model(export_model(graph), x)[0], run_model(model, x)[0],
                               rtol=1e-4, atol=1e-4)


def test_matmul_bias_and_activation_fuse_and_export_back() -> None:
    inits = [("w", RNG.standard_normal((8, 5)).astype(np.float32)),
             ("b", RNG.standard_normal(5).astype(np.float32))]
    model = _model([helper.make_node("MatMul", ["x", "w"], ["m"]),
                    helper.make_node("Add", ["m", "b"], ["a"]),
                    helper.make_node("Relu", ["a"], ["out"])],
                   [("x", [2, 3, 8])], ["out"], inits)
    graph, results = _run([FuseMatMulBias(), FuseActivation()], model)
    assert [r.modified for r in results] == [True, True]
    (node,) = graph.nodes
    assert node.op_type == "MatMul" and node.inputs == ["x", "w", "b"]
    assert node.fused == ["Add(1)", "Relu(2)"] and node.act is not None
    assert (node.act.op_type, node.act.low, node.act.high) == ("Relu", 0.0, float("inf"))
    from qcore.convert import export_model

    exported = export_model(graph)
    assert [n.op_type for n in exported.graph.node] == ["MatMul", "Add", "Relu"]
    assert [n.name.split("#")[1] for n in exported.graph.node] == ["0", "1", "2"]
    x = {"x": RNG.standard_normal((2, 3, 8)).astype(np.float32)}
    np.testing.assert_allclose(run_model(exported, x)[0], run_model(model, x)[0], rtol=1e-5)


def _hardswish_nodes(variant: str) -> list:
    if variant == "paddle":  # x * clip(x + 3, 0, 6) / 6
        return [helper.make_node("Add", ["x", "three"], ["a"]),
                helper.make_node("Clip", ["a", "zero", "six"], ["c"]),
                helper.make_node("Mul", ["x", "c"], ["m"]),
                helper.make_node("Div", ["m", "six"], ["out"])]
    return [helper.make_node("HardSigmoid", ["x"], ["h"], alpha=1 / 6, beta=0.5),
            helper.make_node("Mul", ["h", "x"], ["out"])]


@pytest.mark.parametrize("variant", ["paddle", "hardsigmoid"])
def test_hardswish_patterns_fuse_into_one_op(variant) -> None:
    inits = [("three", np.array(3.0, np.float32)), ("zero", np.array(0.0, np.float32)),
             ("six", np.array(6.0, np.float32))]
    model = _model(_hardswish_nodes(variant), [("x", [2, 4])], ["out"], inits)
    graph, (result,) = _run([FuseHardSwish()], model)
    assert result.modified and _types(graph) == ["HardSwish"]
    assert graph.nodes[0].inputs == ["x"] and graph.nodes[0].outputs == ["out"]
    from qcore.convert import export_model

    x = {"x": np.linspace(-5, 5, 8, dtype=np.float32).reshape(2, 4)}
    np.testing.assert_allclose(run_model(export_model(graph), x)[0], run_model(model, x)[0],
                               atol=1e-6)


def test_hardswish_not_fused_with_other_constants() -> None:
    inits = [("three", np.array(2.0, np.float32)), ("zero", np.array(0.0, np.float32)),
             ("six", np.array(6.0, np.float32))]
    model = _model(_hardswish_nodes("paddle"), [("x", [2, 4])], ["out"], inits)
    graph, (result,) = _run([FuseHardSwish()], model)
    assert not result.modified and len(graph.nodes) == 4


# ---- scales ------------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["onnxruntime", "onednn"])
def test_signedness_keeps_every_value_of_the_quant_model(target) -> None:
    """onnxruntime: every s8 tensor is u8 with zero point + 128, saturation included; onednn:
    s8 tensors stay s8, also this Relu's output: read as u8 with zero point 0 it would
    saturate at 255 steps instead of the source's 127, and a Relu of its own has no fused
    clamp to end at 127 steps (tests/test_fidelity_signedness.py has the fused case)."""
    model = _model([helper.make_node("Relu", ["x"], ["r"]),
                    helper.make_node("Neg", ["r"], ["out"])], [("x", [4])], ["out"])
    graph = load_graph(model)
    graph.act_qparams["r"] = QParams(np.array(0.1, np.float32), np.array(0, np.int8))
    graph.act_qparams["out"] = QParams(np.array(0.2, np.float32), np.array(3, np.int8))
    result = ActivationSignedness().apply(Context(graph, ConvertConfig(target=target)))
    ort = target == "onnxruntime"
    assert result.modified == ort
    relu_out, neg_out = graph.act_qparams["r"], graph.act_qparams["out"]
    assert relu_out.dtype == (np.uint8 if ort else np.int8)
    assert int(relu_out.zero_point) == (128 if ort else 0)
    assert neg_out.dtype == (np.uint8 if ort else np.int8)
    values = np.arange(-128, 128, dtype=np.int32).astype(np.int8)
    for new, old in ((neg_out, QParams(np.array(0.2, np.float32), np.array(3, np.int8))),
                     (relu_out, QParams(np.array(0.1, np.float32), np.array(0, np.int8)))):
        kept = old.dequantize(values)
        if new is relu_out:
            kept = kept[kept >= 0]
        np.testing.assert_array_equal(new.dequantize(new.quantize(kept)), kept)
    assert relu_out.real_range()[1] == pytest.approx(12.7)  # the source's saturation


def test_scales_propagate_through_reshape_both_ways_and_into_concat() -> None:
    inits = [("shape", np.array([2, 2], np.int64))]
    model = _model([helper.make_node("Reshape", ["x", "shape"], ["r"]),
                    helper.make_node("Transpose", ["r"], ["t"], perm=[1, 0]),
                    helper.make_node("Concat", ["t", "y"], ["out"], axis=0)],
                   [("x", [4]), ("y", [2, 2])], ["out"], inits)
    graph = load_graph(model)
    p = QParams(np.array(0.1, np.float32), np.array(128, np.uint8))
    graph.act_qparams["t"] = p
    graph.act_qparams["out"] = QParams(np.array(0.3, np.float32), np.array(128, np.uint8))
    assert PropagateScales().apply(Context(graph)).modified
    assert graph.act_qparams["x"] is p and graph.act_qparams["r"] is p
    assert graph.act_qparams["y"] is graph.act_qparams["out"]


# ---- placement, quantize, squash, cleanup -----------------------------------------------


def test_placement_reasons_and_squash_fold_rescale_the_bias() -> None:
    """Two convs with different scales between them: the requantization is folded into the
    second QLinearConv's input scale and its int32 bias follows, so results are unchanged."""
    w1 = RNG.integers(-127, 128, (8, 8, 1, 1)).astype(np.int8)
    w2 = RNG.integers(-127, 128, (8, 8, 1, 1)).astype(np.int8)
    qx, ix = _qdq("x", 0.02, 128)
    qa, ia = _qdq("a", 0.05, 128)
    qb, ib = _qdq("a2", 0.08, 128)  # a requantization a -> a2 with a wider range
    qy, iy = _qdq("y", 0.1, 128)
    nodes = qx + [
        helper.make_node("DequantizeLinear", ["w1q", "ws"], ["w1"]),
        helper.make_node("Conv", ["x_dq", "w1", "b1"], ["a"]),
    ] + qa + [helper.make_node("Identity", ["a_dq"], ["a2"])] + qb + [
        helper.make_node("DequantizeLinear", ["w2q", "ws"], ["w2"]),
        helper.make_node("Conv", ["a2_dq", "w2", "b2"], ["y"]),
    ] + qy + [helper.make_node("Sin", ["y_dq"], ["out"])]
    inits = ix + ia + ib + iy + [("w1q", w1), ("w2q", w2), ("ws", np.array(0.004, np.float32)),
                                 ("b1", RNG.standard_normal(8).astype(np.float32)),
                                 ("b2", RNG.standard_normal(8).astype(np.float32))]
    model = _model(nodes, [("x", [1, 8, 4, 4])], ["out"], inits)
    result = convert(model)
    reasons = result.fp32_reasons()
    sin = next(n for n in result.decisions if n.op_type == "Sin")
    assert reasons[sin.id] == "no INT8 kernel for this op type"
    int8 = result.int8_model()
    types = [n.op_type for n in int8.graph.node]
    assert types.count("QLinearConv") == 2 and types.count("QuantizeLinear") == 1
    assert types.count("DequantizeLinear") == 1  # only at the FP32 border before Sin
    x = {"x": RNG.uniform(-2, 2, (1, 8, 4, 4)).astype(np.float32)}
    np.testing.assert_allclose(run_model(int8, x)[0], run_model(model, x)[0], atol=0.1)


def test_every_pass_snapshot_is_taken_and_named() -> None:
    result = convert(_conv_qdq_model())
    names = [p.name for p in default_passes()]
    assert [s.name for s in result.snapshots] == ["quant_orig"] + names
    assert result.snapshots[1].stem == "int8_00_gather_scales"
    assert result.snapshots[-1].stem == f"int8_{len(names) - 1:02d}_cleanup"


def test_onnxruntime_adds_a_constant_int8_only_when_8_bits_hold_it() -> None:
    """QLinearAdd reads its constant input in 8 bits: a scalar exactly, a vector bias only
    over a u8 grid of its range; a bias that grid rounds stays a float Add."""
    from qcore.emit.onnxruntime import constant_u8, exact_constant

    for value in (np.array(0.3, np.float32), np.array(-2.5, np.float32), np.array(0.0)):
        codes, params = constant_u8(value)
        assert params.dequantize(codes) == np.float32(value) and exact_constant(value)
    assert not exact_constant(np.array([0.1, -0.37, 0.52], np.float32))
    assert exact_constant(np.array([0.0, 255.0], np.float32))
