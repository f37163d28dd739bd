"""HardSwish as ONNX Runtime's quantize_static leaves it: spelled out (quant_pre_process inlines
a HardSwish op as x * HardSigmoid(x); paddle2onnx writes x * relu6(x + 3) / 6) with Q/DQ on
the inner tensors. The converter keeps that inner quantization (issue 13: PP-OCR cls drifted
after fuse_hardswish dropped it) and, on ONNX Runtime, runs the pattern as integer ops between
the integer convolutions instead of a float island (issue 14)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from conftest import photos
from onnx import TensorProto, helper, numpy_helper
from test_fidelity import IMAGE, _Builder

from devtools import modelgen
from qcore.config import ConvertConfig
from qcore.convert import convert
from qcore.emit.hardswish import Program, Step, StepKind, integer_chain, program_of, simplify
from qcore.ir import QParams
from qcore.verify import Stage, verify

KINDS = ("native", "hard_sigmoid", "paddle")


def hardswish_cnn(kind: str) -> onnx.ModelProto:
    """Conv -> hard-swish -> Conv; the hard-swish (``hs``) is an output too, so its values
    can be compared directly. ``native``: a HardSwish op (opset 15); ``hard_sigmoid``:
    x * HardSigmoid(x); ``paddle``: x * relu6(x + 3) / 6."""
    b = _Builder(11)
    x = b.conv("image", 3, 8, 3, "c1")
    if kind == "native":
        hs = b.op("HardSwish", [x], "hs")
    elif kind == "hard_sigmoid":
        hs = b.op("Mul", [x, b.op("HardSigmoid", [x], "gate", alpha=1 / 6, beta=0.5)], "hs")
    else:
        shifted = b.op("Add", [x, b.const("three", np.array(3.0, np.float32))], "add3")
        gate = b.relu6(shifted, "relu6")
        product = b.op("Mul", [x, gate], "product")
        hs = b.op("Div", [product, b.const("six", np.array(6.0, np.float32))], "hs")
    b.conv(hs, 8, 8, 3, "c2")
    shape = [1, 8, IMAGE, IMAGE]
    graph = helper.make_graph(
        b.nodes, "hardswish",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, IMAGE, IMAGE])],
        [helper.make_tensor_value_info("hs", TensorProto.FLOAT, shape),
         helper.make_tensor_value_info("c2", TensorProto.FLOAT, shape)], b.inits)
    model = helper.make_model(graph, opset_imports=[
        helper.make_opsetid("", 15 if kind == "native" else 13)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


@pytest.fixture(scope="module")
def quantized(tmp_path_factory) -> dict[str, Path]:
    """Each kind quantized by quantize_static (u8 activations), calibrated on photos."""
    folder = tmp_path_factory.mktemp("hardswish")
    paths = {}
    for kind in KINDS:
        paths[kind] = folder / f"{kind}.qdq.onnx"
        onnx.save(modelgen.quantize_qdq(hardswish_cnn(kind), calibration=photos()),
                  str(paths[kind]))
    return paths


def _session(model: onnx.ModelProto | Path, optimized: bool = True) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    if not optimized:
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    data = str(model) if isinstance(model, Path) else model.SerializeToString()
    return ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])


def _output_scale(model: onnx.ModelProto, tensor: str) -> float:
    """The scale of the DequantizeLinear writing ``tensor`` (a graph output)."""
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    dq = next(n for n in model.graph.node if n.op_type == "DequantizeLinear"
              and tensor in n.output)
    return float(inits[dq.input[1]])


@pytest.mark.parametrize("kind", KINDS)
def test_fused_hardswish_keeps_the_inner_quantization(kind, quantized) -> None:
    """Every snapshot before quantize computes the source's function exactly (the pass used
    to drop the gate's and the product's Q/DQ), and the INT8 snapshots hold on both
    targets and engines."""
    from qcore.bench.inputs import InputSet

    result = convert(quantized[kind])
    fused = next(s for s in result.snapshots if s.name == "fuse_hardswish").graph
    hardswish = [n for n in fused.nodes if n.op_type == "HardSwish"]
    assert len(hardswish) == 1 and program_of(hardswish[0]) is not None
    inputs = InputSet(photos()[:3], "skimage photos")
    for target, engine in (("onnxruntime", "onnxruntime"), ("onednn", "openvino")):
        if engine == "openvino":
            pytest.importorskip("openvino")
        report = verify(quantized[kind], ConvertConfig(target=target), inputs, engine=engine)
        assert report.ok, report.failed
        for row in report.rows:
            if row.stage is Stage.QDQ:
                assert row.vs_source is not None and row.vs_source.max_error <= 1e-6, row


@pytest.mark.parametrize("kind", KINDS)
def test_onnxruntime_runs_the_hardswish_on_integers(kind, quantized) -> None:
    """No float op between the two integer convolutions: QLinearAdd (the gate) and
    QLinearMul (the product); the hard-swish's codes are ONNX Runtime's on the source QDQ
    model, exactly or within one step."""
    source = onnx.load(str(quantized[kind]))
    int8 = convert(source, ConvertConfig(target="onnxruntime")).int8_model()
    optimized = _session(int8)
    producers = {o: n for n in int8.graph.node for o in n.output}
    c2 = next(n for n in int8.graph.node if n.op_type == "QLinearConv" and n.output[0]
              .startswith("c2"))
    between, todo = [], [c2.input[0]]
    while todo:
        node = producers.get(todo.pop())
        if node is not None and node.op_type != "QLinearConv":
            between.append(node.op_type)
            todo += node.input
    assert sorted(between) == ["QLinearAdd", "QLinearMul"], between
    step = _output_scale(source, "hs")
    ours, theirs = optimized, _session(source)
    for feed in photos():
        got, want = ours.run(["hs"], feed)[0], theirs.run(["hs"], feed)[0]
        assert np.abs(got - want).max() <= step * 1.001
        assert np.mean(got == want) >= 0.999


def _spelled_qdq(kind: str, x: tuple[float, int], gate: tuple[float, int],
                 product: tuple[float, int] | None, y: tuple[float, int],
                 dtype: type = np.uint8) -> onnx.ModelProto:
    """x (256 channels) -> Q/DQ -> hard-swish with Q/DQ on its gate (and product) -> Q/DQ:
    what quantize_static writes, with given params."""
    inits: list[onnx.TensorProto] = []
    nodes: list[onnx.NodeProto] = []

    def qdq(tensor: str, params: tuple[float, int]) -> str:
        scale, zp = f"{tensor}.s", f"{tensor}.z"
        inits.extend([numpy_helper.from_array(np.array(params[0], np.float32), scale),
                      numpy_helper.from_array(np.array(params[1], dtype), zp)])
        nodes.append(helper.make_node("QuantizeLinear", [tensor, scale, zp], [f"{tensor}.q"]))
        nodes.append(helper.make_node("DequantizeLinear", [f"{tensor}.q", scale, zp],
                                      [f"{tensor}.dq"]))
        return f"{tensor}.dq"

    def const(name: str, value: float) -> str:
        inits.append(numpy_helper.from_array(np.array(value, np.float32), name))
        return name

    xd = qdq("x", x)
    if kind == "hard_sigmoid":
        nodes.append(helper.make_node("HardSigmoid", [xd], ["g"], alpha=1 / 6, beta=0.5))
        nodes.append(helper.make_node("Mul", [xd, qdq("g", gate)], ["hs"]))
    else:  # ONNX Runtime drops the Clip: the gate's quantizer range is [0, 6]
        nodes.append(helper.make_node("Add", [xd, const("three", 3.0)], ["g"]))
        nodes.append(helper.make_node("Mul", [xd, qdq("g", gate)], ["p"]))
        p = qdq("p", product) if product else "p"
        nodes.append(helper.make_node("Div", [p, const("six", 6.0)], ["hs"]))
    out = qdq("hs", y)
    nodes.append(helper.make_node("Identity", [out], ["y"]))
    graph = helper.make_graph(nodes, "spelled", [
        helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 256, 1, 1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 256, 1, 1])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model


# (kind, x, gate, product, y): PP-LCNet's first hard-swish and PP-OCR cls's (quantize_static)
SPELLED = {
    "pplcnet": ("hard_sigmoid", (0.0825, 95), (1 / 255, 0), None, (0.0531, 7)),
    "ppocr": ("paddle", (0.049845, 99), (6 / 255, 0), (0.19203, 12), (0.032004, 12)),
    "ppocr_requantized": ("paddle", (0.049845, 99), (6 / 255, 0), (0.17, 20), (0.032004, 12)),
}


@pytest.mark.parametrize("case", sorted(SPELLED))
def test_integer_chain_gives_the_sources_code_for_every_input_code(case) -> None:
    """All 256 input codes through our INT8 model and through ONNX Runtime on the source QDQ
    model: the same codes (QLinearAdd + QLinearMul, with a requantizing table when the
    product's grid is not the output's), and the source's QDQ semantics exactly."""
    kind, x, gate, product, y = SPELLED[case]
    source = _spelled_qdq(kind, x, gate, product, y)
    int8 = convert(source, ConvertConfig(target="onnxruntime")).int8_model()
    types = sorted(n.op_type for n in int8.graph.node)
    assert "QLinearMul" in types and "QLinearAdd" in types and "Mul" not in types, types
    if case == "ppocr_requantized":
        assert "QLinearLeakyRelu" in types
    codes = np.arange(256, dtype=np.float32)
    feed = {"x": ((codes - x[1]) * np.float32(x[0])).reshape(1, 256, 1, 1)}
    got = _session(int8).run(None, feed)[0]
    assert np.array_equal(got, _session(source).run(None, feed)[0])
    assert np.array_equal(got, _session(source, optimized=False).run(None, feed)[0])


def test_a_gate_that_cannot_be_an_integer_add_stays_an_exact_float_island() -> None:
    """s8 symmetric activations: the gate's quantizer does not clamp at 0, so QLinearAdd
    cannot compute it; the INT8 model runs the source's float ops between Q/DQ instead."""
    params = {"x": QParams(np.float32(0.05), np.int8(0)),
              "gate": QParams(np.float32(1 / 127), np.int8(0)),
              "y": QParams(np.float32(0.04), np.int8(0))}
    program = Program((Step(StepKind.HARD_SIGMOID, 1 / 6, 0.5),
                       Step(StepKind.FAKE_QUANT, quant=params["gate"])))
    assert integer_chain(program, params["x"], params["y"]) is None
    source = _spelled_qdq("hard_sigmoid", (0.05, 0), (1 / 127, 0), None, (0.04, 0), np.int8)
    int8 = convert(source, ConvertConfig(target="onnxruntime")).int8_model()
    types = [n.op_type for n in int8.graph.node]
    assert "HardSigmoid" in types and "QLinearAdd" not in types
    codes = np.arange(-128, 128, dtype=np.float32)
    feed = {"x": (codes * np.float32(0.05)).reshape(1, 256, 1, 1)}
    exact = _session(source, optimized=False).run(None, feed)[0]
    assert np.array_equal(_session(int8, optimized=False).run(None, feed)[0], exact)
    for model in (int8, source):  # ONNX Runtime's own fusions round ties their own way
        assert np.abs(_session(model).run(None, feed)[0] - exact).max() <= 0.04 * 1.001


def test_fp32_model_has_one_float_hardswish(quantized) -> None:
    """The FP32 model drops activation quantization: one plain HardSwish op."""
    fp32 = convert(quantized["paddle"]).fp32_model()
    types = [n.op_type for n in fp32.graph.node]
    assert types.count("HardSwish") == 1
    assert not {"QuantizeLinear", "DequantizeLinear", "Div"} & set(types)


def test_onednn_matches_openvino_on_the_source(quantized, tmp_path) -> None:
    """On OpenVINO our onednn model (the program's ops between Q/DQ, simplified exactly)
    gives OpenVINO's values on the source QDQ model, within one step."""
    pytest.importorskip("openvino")
    from qcore.bench.openvino_engine import shared_core

    core = shared_core()
    for kind in KINDS:
        source = onnx.load(str(quantized[kind]))
        ours = tmp_path / f"{kind}.onednn.onnx"
        onnx.save(convert(source, ConvertConfig(target="onednn")).int8_model(), str(ours))
        step = _output_scale(source, "hs")
        models = {}
        for name, path in (("source", quantized[kind]), ("ours", ours)):
            compiled = core.compile_model(str(path), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
            models[name] = compiled
        for feed in photos()[:3]:
            got, want = (np.asarray(m(feed)["hs"]) for m in (models["ours"], models["source"]))
            assert np.abs(got - want).max() <= step * 1.001, kind


def test_simplify_reads_the_last_quantizer_with_the_outputs_params_when_that_is_exact() -> None:
    """PP-OCR cls: the product quantized at 0.19203 and divided by 6 lands on the output's
    grid (0.032004): its codes are read with the output's params, so the reader's Q/DQ of
    the output squashes away (one FakeQuantize fewer per hard-swish on OpenVINO)."""
    u8 = np.uint8
    gate, product = QParams(np.float32(6 / 255), u8(0)), QParams(np.float32(0.19203), u8(12))
    out = QParams(np.float32(0.032004), u8(12))
    program = Program((Step(StepKind.ADD, 3.0), Step(StepKind.FAKE_QUANT, quant=gate)),
                      (Step(StepKind.FAKE_QUANT, quant=product), Step(StepKind.DIV, 6.0)))
    last = simplify(program, out).product[-1]
    assert last.kind is StepKind.FAKE_QUANT and last.read is out
    other = QParams(np.float32(0.03), u8(12))  # not the same grid: the scale is folded only
    last = simplify(program, other).product[-1]
    assert last.read is not None and np.isclose(float(last.read.scale), 0.19203 / 6)
