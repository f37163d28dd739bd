"""If / Loop bodies that read tensors of the enclosing graph (silero VAD's decoder does).

The IR lists those tensors as extra inputs of the op (``Node.subgraph_reads``), so passes
rename and keep them like any reader's; writing ONNX drops the extra inputs and points the
bodies at the current names. A QDQ model whose If and Loop read a DequantizeLinear output,
an Identity's output and a raw Sigmoid output converts on both targets, and the INT8 model
computes what ONNX Runtime computes on the source (both branches, nested If too).
"""

from __future__ import annotations

import itertools

import numpy as np
import onnx
import pytest
from conftest import cosine, run_model
from onnx import TensorProto, helper, numpy_helper

from qcore.cli import main
from qcore.config import ConvertConfig
from qcore.convert import convert
from qcore.ir import outer_reads
from qcore.ir_onnx import from_onnx, to_onnx
from qcore.loader import ModelError, load_graph
from qcore.status import OpStatus, ReasonKind

TARGETS = ("onnxruntime", "onednn")
SHAPE = [1, 4, 6, 6]
FLOAT = TensorProto.FLOAT


class _Model:
    """A QDQ model built by hand (fixed params), or the same model with float activations
    (``qdq=False``: weights still through DequantizeLinear), which the converter's FP32
    model must compute."""

    def __init__(self, qdq: bool) -> None:
        self.qdq = qdq
        self.rng = np.random.default_rng(7)
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []

    def const(self, name: str, value) -> str:
        self.inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def op(self, op_type: str, inputs: list[str], out: str, **attrs) -> str:
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=out, **attrs))
        return out

    def fq(self, x: str, low: float, high: float) -> str:
        """``x`` through an asymmetric uint8 Q/DQ pair of range [low, high]."""
        if not self.qdq:
            return x
        scale = np.float32((high - min(low, 0.0)) / 255.0)
        zp = np.uint8(round(-min(low, 0.0) / scale))
        s, z = self.const(f"{x}_scale", scale), self.const(f"{x}_zp", zp)
        q = self.op("QuantizeLinear", [x, s, z], f"{x}_q")
        return self.op("DequantizeLinear", [q, s, z], f"{x}_dq")

    def conv(self, x: str, name: str) -> str:
        w = (self.rng.standard_normal((4, 4, 3, 3)) * 0.3).astype(np.float32)
        scale = (np.abs(w).reshape(4, -1).max(1) / 127).astype(np.float32)
        ints = np.clip(np.rint(w / scale[:, None, None, None]), -127, 127).astype(np.int8)
        wq = self.const(f"{name}.wq", ints)
        ws, wz = self.const(f"{name}.ws", scale), self.const(f"{name}.wz", np.zeros(4, np.int8))
        weight = self.op("DequantizeLinear", [wq, ws, wz], f"{name}.w", axis=0)
        bias = self.const(f"{name}.b", (self.rng.standard_normal(4) * 0.1).astype(np.float32))
        return self.op("Conv", [x, weight, bias], name, pads=[1, 1, 1, 1])


def _branch(nodes: list[onnx.NodeProto], out: str) -> onnx.GraphProto:
    return helper.make_graph(nodes, f"{out}_graph", [],
                             [helper.make_tensor_value_info(out, FLOAT, None)])


def subgraph_model(qdq: bool = True) -> onnx.ModelProto:
    """x -> Q/DQ -> Conv c1 -> Q/DQ, read by an Identity, a Sigmoid (its output Q/DQ'd for a
    Mul, read raw by the If: ONNX Runtime's quantizer does not see subgraph reads) and
    the bodies; If(flag) then: ident + sigmoid and a nested If(flag2) on c1's DQ output,
    else: c1's DQ output * the Mul's output; a Loop adds up ident three times (only that);
    their sum -> Q/DQ -> Conv c2 -> y. Outputs y and the Loop's result."""
    m = _Model(qdq)
    x = m.fq("x", -3.0, 3.0)
    c1 = m.fq(m.conv(x, "c1"), -4.0, 4.0)
    ident = m.op("Identity", [c1], "ident")
    sig = m.op("Sigmoid", [c1], "sig")
    # a narrow range on purpose: the raw and the quantized sigmoid differ a lot
    mul = m.fq(m.op("Mul", [m.fq(sig, 0.0, 0.3), c1], "mul"), -1.2, 1.2)
    inner = helper.make_node(
        "If", ["flag2"], ["inner"], name="inner_if",
        then_branch=_branch([helper.make_node("Mul", ["t1", c1], ["inner_then"])], "inner_then"),
        else_branch=_branch([helper.make_node("Neg", [c1], ["inner_else"])], "inner_else"))
    then = helper.make_graph(
        [helper.make_node("Add", [ident, sig], ["t1"]), inner,
         helper.make_node("Add", ["t1", "inner"], ["then_out"])], "then", [],
        [helper.make_tensor_value_info("then_out", FLOAT, None)])
    else_ = _branch([helper.make_node("Mul", [c1, mul], ["else_out"])], "else_out")
    m.nodes.append(helper.make_node("If", ["flag"], ["branch"], name="branch",
                                    then_branch=then, else_branch=else_))
    body = helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"]),
         helper.make_node("Add", ["acc_in", ident], ["acc_out"])], "body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []),
         helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("acc_in", FLOAT, SHAPE)],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("acc_out", FLOAT, SHAPE)])
    trips = m.const("trips", np.array(3, np.int64))
    go = m.const("go", np.array(True))
    zeros = m.const("zeros", np.zeros(SHAPE, np.float32))
    m.nodes.append(helper.make_node("Loop", [trips, go, zeros], ["loop"], name="loop",
                                    body=body))
    total = m.fq(m.op("Add", ["branch", "loop"], "total"), -30.0, 30.0)
    m.conv(total, "y")
    graph = helper.make_graph(
        m.nodes, "subgraphs",
        [helper.make_tensor_value_info("x", FLOAT, SHAPE),
         helper.make_tensor_value_info("flag", TensorProto.BOOL, []),
         helper.make_tensor_value_info("flag2", TensorProto.BOOL, [])],
        [helper.make_tensor_value_info("y", FLOAT, SHAPE),
         helper.make_tensor_value_info("loop", FLOAT, SHAPE)], m.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


def _feeds() -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(3)
    return [{"x": rng.standard_normal(SHAPE).astype(np.float32), "flag": np.array(a),
             "flag2": np.array(b)} for a, b in itertools.product((True, False), repeat=2)]


def _worst(a: onnx.ModelProto, b: onnx.ModelProto) -> tuple[float, float]:
    """(lowest cosine, largest abs error relative to the output's range) over every feed
    and output."""
    worst_cos, worst_err = 1.0, 0.0
    for feed in _feeds():
        for x, y in zip(run_model(a, feed), run_model(b, feed), strict=True):
            worst_cos = min(worst_cos, cosine(x, y))
            worst_err = max(worst_err, float(np.abs(x - y).max() / np.abs(x).max()))
    return worst_cos, worst_err


# ---- the IR -------------------------------------------------------------------------------


def test_outer_reads_become_the_ops_last_inputs_sorted() -> None:
    graph = from_onnx(subgraph_model())
    branch = next(n for n in graph.nodes if n.op_type == "If")
    loop = next(n for n in graph.nodes if n.op_type == "Loop")
    assert branch.subgraph_reads == ("c1_dq", "flag2", "ident", "mul_dq", "sig")
    assert branch.inputs == ["flag", *branch.subgraph_reads] and branch.own_inputs == ["flag"]
    assert loop.own_inputs == ["trips", "go", "zeros"]
    assert loop.inputs[3:] == ["ident"]
    assert graph.consumers()["sig"][-1] is branch  # passes see the If as a reader


def test_export_writes_only_own_inputs_and_the_bodies_unchanged() -> None:
    source = subgraph_model()
    model = to_onnx(from_onnx(source))
    for ours, theirs in zip(model.graph.node, source.graph.node, strict=True):
        assert list(ours.input) == list(theirs.input)
        assert ours.attribute == theirs.attribute
    onnx.checker.check_model(model, full_check=True)


def test_renamed_outer_tensors_are_renamed_in_the_bodies_nested_too() -> None:
    graph = from_onnx(subgraph_model())
    graph.rename_tensor("sig", "sigmoid_out")
    graph.replace_inputs({"c1_dq": "flag2", "flag2": "c1_dq"})  # swapped: no chained renames
    model = to_onnx(graph)
    branch = next(n for n in model.graph.node if n.op_type == "If")
    then = next(a.g for a in branch.attribute if a.name == "then_branch")
    assert outer_reads(then) == {"ident", "sigmoid_out", "flag2", "c1_dq"}
    inner = next(n for n in then.node if n.op_type == "If")
    assert list(inner.input) == ["c1_dq"]  # was flag2
    inner_then = next(a.g for a in inner.attribute if a.name == "then_branch")
    assert list(inner_then.node[0].input) == ["t1", "flag2"]  # t1 is the body's own
    assert list(branch.input) == ["flag"]
    source = next(n for n in subgraph_model().graph.node if n.op_type == "If")
    assert outer_reads(next(a.g for a in source.attribute if a.name == "then_branch")) == {
        "ident", "sig", "flag2", "c1_dq"}  # the model's own bodies are not touched


def test_new_names_never_reuse_a_body_tensor_name() -> None:
    graph = from_onnx(subgraph_model())
    assert graph.unique_name("t1") == "t1_1"
    assert graph.unique_name("then_out") == "then_out_1"


def test_ops_listed_before_what_their_bodies_read_are_sorted() -> None:
    """Silero VAD's QDQ file lists an If before the If whose output its body reads."""
    model = subgraph_model()
    nodes = list(model.graph.node)
    loop = next(n for n in nodes if n.op_type == "Loop")
    ident = next(n for n in nodes if n.op_type == "Identity")
    nodes.remove(loop)
    nodes.insert(nodes.index(ident), loop)  # before the Identity its body reads
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    graph = load_graph(model)
    order = [n.op_type for n in graph.nodes]
    assert order.index("Loop") > order.index("Identity")
    assert "the ops were not in topological order; they were sorted" in graph.warnings


def test_a_body_read_of_a_missing_tensor_is_named() -> None:
    model = subgraph_model()
    branch = next(n for n in model.graph.node if n.op_type == "If")
    else_ = next(a.g for a in branch.attribute if a.name == "else_branch")
    else_.node[0].input[1] = "ghost"
    with pytest.raises(ModelError, match=r"tensor 'ghost' read by If\(\d+\) 'branch' \(in its "
                                         r"subgraph\) is not produced by any op"):
        load_graph(model)


def test_a_body_that_reuses_an_outer_name_is_refused(tmp_path, capsys) -> None:
    model = subgraph_model()
    branch = next(n for n in model.graph.node if n.op_type == "If")
    else_ = next(a.g for a in branch.attribute if a.name == "else_branch")
    else_.node[0].output[0] = "ident"
    else_.output[0].name = "ident"
    path = tmp_path / "shadow.onnx"
    onnx.save(model, str(path))
    text = ("its subgraph 'else_branch' defines 'ident', which the enclosing graph also "
            "defines; tensor names must be unique across a graph and its subgraphs")
    with pytest.raises(ModelError, match=r"If\(\d+\) 'branch': " + text):
        load_graph(path)
    assert main(["convert", "--quant_model_path", str(path), "--int8_model_save_path",
                 str(tmp_path / "int8.onnx")]) == 2
    assert text in capsys.readouterr().err


# ---- conversion ---------------------------------------------------------------------------


@pytest.mark.parametrize("target", TARGETS)
def test_int8_model_computes_what_ort_computes_on_the_source(target) -> None:
    source = subgraph_model()
    result = convert(source, ConvertConfig(target=target))
    by_name = {n.name: n for n in result.decisions}
    assert by_name["c1"].status is OpStatus.INT8
    if target == "onednn":
        assert by_name["y"].status is OpStatus.INT8
    else:  # y writes the graph output without a Q: ONNX Runtime runs that Conv float
        assert by_name["y"].reason.kind is ReasonKind.MISSING_SCALE
    for name in ("branch", "loop"):
        assert by_name[name].reason.kind is ReasonKind.NO_KERNEL
    int8 = result.int8_model()
    onnx.checker.check_model(int8, full_check=True)
    written = {n.op_type: n for n in int8.graph.node}
    assert list(written["If"].input) == ["flag"]
    assert list(written["Loop"].input) == ["trips", "go", "zeros"]
    worst_cos, worst_err = _worst(source, int8)
    assert worst_cos > 0.9999 and worst_err < 0.02, (worst_cos, worst_err)


def test_onnxruntime_keeps_an_op_float_whose_output_a_body_reads_raw() -> None:
    """The If reads the Sigmoid's output without a Q/DQ pair, another op through one whose
    range ends at 0.3: an INT8 Sigmoid (QLinearSigmoid) would hand the If clamped values."""
    result = convert(subgraph_model(), ConvertConfig(target="onnxruntime"))
    sig = next(n for n in result.decisions if n.name == "sig")
    assert sig.status is OpStatus.FP32 and sig.reason.kind is ReasonKind.UNSUPPORTED_FORM
    assert sig.reason.startswith("If(") and "without a Q/DQ pair in the source" in sig.reason


@pytest.mark.parametrize("target", TARGETS)
def test_fp32_model_computes_the_source_with_float_activations(target) -> None:
    result = convert(subgraph_model(), ConvertConfig(target=target))
    fp32 = result.fp32_model()
    onnx.checker.check_model(fp32, full_check=True)
    worst_cos, worst_err = _worst(subgraph_model(qdq=False), fp32)
    assert worst_cos > 0.999999 and worst_err < 1e-5, (worst_cos, worst_err)


@pytest.mark.parametrize("target", TARGETS)
def test_verify_holds(target, tmp_path) -> None:
    from qcore.bench.inputs import InputSet
    from qcore.verify import verify

    path = tmp_path / "subgraphs.onnx"
    onnx.save(subgraph_model(), str(path))
    report = verify(path, ConvertConfig(target=target), inputs=InputSet(_feeds(), "seeded"))
    assert report.ok, report.failed


def test_onednn_model_runs_on_openvino(tmp_path) -> None:
    """OpenVINO (qcore.bench's engine) runs the onednn INT8 model as ONNX Runtime runs the
    source, branches and Loop included."""
    pytest.importorskip("openvino")
    from qcore.bench import get_engine

    source = subgraph_model()
    path = tmp_path / "int8.onnx"
    onnx.save(convert(source, ConvertConfig(target="onednn")).int8_model(), str(path))
    session = get_engine("openvino").load(path, 1, {k: v.shape for k, v in _feeds()[0].items()})
    try:
        for feed in _feeds():
            ours = list(session.run(feed).values())
            for ref, out in zip(run_model(source, feed), ours, strict=True):
                assert cosine(ref, out) > 0.9999
                assert np.abs(ref - out).max() < 0.02 * np.abs(ref).max()
    finally:
        session.close()
