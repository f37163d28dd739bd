"""qcore bench --per-op: what ran per op id on ONNX Runtime and OpenVINO, and the flags.

A CNN from devtools.modelgen is converted with one Conv skipped by id; each engine's
profiler must report that Conv as run in float and every other Conv as run INT8, found by
op id even where the engine renamed the node (ONNX Runtime runs the float Conv as an NCHWc
kernel named after its output tensor)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from devtools import modelgen
from qcore.bench import BenchReport, get_engine
from qcore.bench.engines import Kernel
from qcore.bench.nodedata import per_op_node_data
from qcore.bench.op_map import ModelOps
from qcore.bench.ort_profile import kernels_from_trace
from qcore.bench.per_op import (
    OpRun,
    PerOpResult,
    decisions_by_id,
    flag_ops,
    profile_model,
    skipped_by_id,
)
from qcore.cli import main
from qcore.config import ConvertConfig
from qcore.convert import convert

try:
    import openvino  # noqa: F401

    HAVE_OPENVINO = True
except ImportError:
    HAVE_OPENVINO = False

needs_openvino = pytest.mark.skipif(not HAVE_OPENVINO, reason="openvino not installed")
#: engine -> the INT8 model it runs (OpenVINO reads the --target onednn model)
ENGINE_MODELS = [("onnxruntime", "int8"),
                 pytest.param("openvino", "int8-onednn", marks=needs_openvino)]


class Planted:
    """The QDQ CNN, its Conv ids, the one skipped, and the two INT8 models with decisions."""

    def __init__(self, folder: Path) -> None:
        self.quant = folder / "cnn_qdq.onnx"
        onnx.save(modelgen.quantize_qdq(modelgen.cnn(seed=1)), str(self.quant))
        plain = convert(str(self.quant), ConvertConfig())
        self.convs = [n.id for n in plain.decisions if n.op_type == "Conv"]
        self.skip = self.convs[2]  # the pointwise Conv after the depthwise one
        self.paths: dict[str, Path] = {}
        self.decisions = {}
        for target, label in (("onnxruntime", "int8"), ("onednn", "int8-onednn")):
            result = convert(str(self.quant), ConvertConfig(op_ids_to_skip=[self.skip],
                                                            target=target))
            self.paths[label] = folder / f"{label}.onnx"
            onnx.save(result.int8_model(), str(self.paths[label]))
            self.decisions[label] = decisions_by_id(result.decisions)
        self.feeds = modelgen.random_inputs(onnx.load(str(self.quant)), count=2, seed=3)


@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> Planted:
    return Planted(tmp_path_factory.mktemp("per_op"))


def _profile(planted: Planted, engine: str, label: str, **kw: object) -> PerOpResult:
    return profile_model(get_engine(engine), planted.paths[label], planted.feeds, runs=3,
                         decisions=planted.decisions[label], label=label, **kw)  # type: ignore[arg-type]


def test_the_skip_is_a_decision_by_id(planted) -> None:
    for decisions in planted.decisions.values():
        skipped = decisions[planted.skip]
        assert skipped.status == "fp32" and skipped_by_id(skipped.reason)
        assert skipped.reason == "skipped by id (op_ids_to_skip)"
        assert all(decisions[c].status == "int8" for c in planted.convs if c != planted.skip)


@pytest.mark.parametrize(("engine", "label"), ENGINE_MODELS)
def test_skipped_conv_ran_float_the_others_int8(planted, engine, label) -> None:
    result = _profile(planted, engine, label)
    assert result.status == "ok" and result.runs == 3 and result.flags_checked
    skipped = result.op(planted.skip)
    assert skipped is not None and skipped.fused_into is None
    assert (skipped.precision, skipped.decided, skipped.kind, skipped.flag) == \
        ("float", "fp32", "compute", "")
    for conv in (c for c in planted.convs if c != planted.skip):
        row = result.op(conv)
        assert row is not None and row.op_type in ("Conv", "QLinearConv"), conv
        assert (row.precision, row.decided, row.flag) == ("int8", "int8", ""), row
    assert result.summary.flagged == 0
    assert result.summary.compute_float >= 1 and result.summary.compute_int8 >= 7
    assert result.summary.qdq.count >= 1  # the input's QuantizeLinear at least
    assert [r.time_ms for r in result.ops] == sorted((r.time_ms for r in result.ops),
                                                     reverse=True)
    assert all(r.op_id is None for r in result.unmapped)


@pytest.mark.parametrize(("engine", "label"), ENGINE_MODELS)
def test_contradictions_are_flagged(planted, engine, label, monkeypatch) -> None:
    """The engine's answer changed: the skipped Conv 'ran INT8', an INT8 Conv 'ran float'."""
    eng = get_engine(engine)
    ops = ModelOps.of(planted.paths[label])
    made_int8 = next(c for c in planted.convs if c != planted.skip)
    real = eng.profile

    def changed(*args: object, **kwargs: object):
        prof = real(*args, **kwargs)  # type: ignore[arg-type]
        for k in prof.kernels:
            head = ops.resolve(k)[:1]
            if head == [planted.skip]:
                k.precision, k.kernel = "int8", "planted_I8"
            elif head == [made_int8]:
                k.precision, k.kernel, k.detail = "float", "planted_f32", "reorders: f32 input"
        return prof

    monkeypatch.setattr(eng, "profile", changed)
    result = profile_model(eng, planted.paths[label], planted.feeds, runs=2,
                           decisions=planted.decisions[label])
    skipped, other = result.op(planted.skip), result.op(made_int8)
    assert skipped is not None and other is not None
    assert skipped.flag.startswith(f"skipped by id, but {engine} ran it INT8")
    assert other.flag == f"made INT8, but {engine} ran it in float (reorders: f32 input)"
    assert result.summary.flagged == 2
    assert sum(bool(r.flag) for r in result.ops) == 2


@needs_openvino
def test_openvino_runs_attention_matmuls_in_float(tmp_path) -> None:
    """A real contradiction: OpenVINO runs activation x activation MatMuls in f32 although
    the onednn target made them INT8 (weights MatMuls run on I8 kernels)."""
    fp32 = modelgen.bert_like(layers=1, hidden=32, heads=2, ffn=64, seq=16)
    quant = tmp_path / "bert_qdq.onnx"
    onnx.save(modelgen.quantize_qdq(fp32), str(quant))
    result = convert(str(quant), ConvertConfig(target="onednn"))
    path = tmp_path / "bert_int8.onnx"
    onnx.save(result.int8_model(), str(path))
    feeds = modelgen.random_inputs(onnx.load(str(quant)), count=1, seed=1)
    per_op = profile_model(get_engine("openvino"), path, feeds, runs=2,
                           decisions=decisions_by_id(result.decisions))
    matmuls = [r for r in per_op.ops if r.op_type == "MatMul" and r.decided == "int8"]
    flagged = [r for r in matmuls if r.flag]
    assert flagged and all(r.precision == "float" and "made INT8" in r.flag for r in flagged)
    assert all("f32" in r.flag for r in flagged)  # the engine's primitive / precision
    assert any(r.precision == "int8" for r in matmuls)


@pytest.mark.parametrize(("engine", "label"), ENGINE_MODELS)
def test_profiled_runs_compute_the_model(planted, engine, label, tmp_path) -> None:
    """The profiled session is a real inference: its outputs match ONNX Runtime's, and the
    profiler's files stay in the scratch folder (none beside the model)."""
    feed = planted.feeds[0]
    before = set(planted.paths[label].parent.iterdir())
    prof = get_engine(engine).profile(planted.paths[label], 1, [feed], 2, tmp_path)
    assert set(planted.paths[label].parent.iterdir()) == before
    session = ort.InferenceSession(str(planted.paths[label]), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    expected = dict(zip(names, session.run(None, feed), strict=True))
    assert set(prof.outputs) == set(expected)
    for name, want in expected.items():
        got = prof.outputs[name]
        assert got.shape == want.shape
        a, b = got.ravel().astype(np.float64), want.ravel().astype(np.float64)
        assert a @ b / (np.linalg.norm(a) * np.linalg.norm(b)) > 0.999
        if engine == "onnxruntime":
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_flags_from_plain_decisions() -> None:
    """Decisions read back as plain text (no reason kind) flag the same way."""
    def row(op_id: int, precision: str) -> OpRun:
        return OpRun(op_id, "Conv", f"c#{op_id}", precision, "k", 1.0, "compute", detail="d")

    rows = [row(1, "int8"), row(2, "float"), row(3, "float"), row(4, "int8")]
    decided = {1: ("fp32", "skipped by id (op_ids_to_skip)"), 2: ("int8", ""),
               3: ("fp32", "skipped by id (op_ids_to_skip)"), 4: ("fp32", "missing scale: x")}
    decisions = {i: SimpleNamespace(id=i, status=s, reason=r) for i, (s, r) in decided.items()}
    assert flag_ops(rows, decisions, "eng") == 2  # type: ignore[arg-type]
    assert rows[0].flag == "skipped by id, but eng ran it INT8 (d)"
    assert rows[1].flag == "made INT8, but eng ran it in float (d)"
    assert rows[2].flag == rows[3].flag == ""  # skipped and float; FP32 for another reason
    assert [r.decided for r in rows] == ["fp32", "int8", "fp32", "fp32"]


def test_trace_parsing_leaves_out_the_warm_up() -> None:
    """Node events of the first model_run are the warm-up; times are means per run."""
    def node(name: str, ts: float, dur: float, op: str, types: list[str]) -> dict:
        return {"cat": "Node", "name": f"{name}_kernel_time", "ts": ts, "dur": dur,
                "args": {"op_name": op, "provider": "CPUExecutionProvider",
                         "input_type_shape": [{t: [1]} for t in types]}}

    events = [{"cat": "Session", "name": "model_run", "ts": 0, "dur": 100},
              node("conv#3_token_1", 10, 999, "QLinearConv", ["uint8"]),
              {"cat": "Session", "name": "model_run", "ts": 200, "dur": 100},
              node("conv#3_token_1", 210, 40, "QLinearConv", ["uint8"]),
              node("Transpose_token_2", 260, 10, "Transpose", ["uint8"]),
              {"cat": "Session", "name": "model_run", "ts": 400, "dur": 100},
              node("conv#3_token_1", 410, 60, "QLinearConv", ["uint8"]),
              node("pw.out_nchwc", 470, 20, "Conv", ["float"])]
    kernels, runs = kernels_from_trace(events, {})
    assert runs == 2
    by_name = {k.name: k for k in kernels}
    assert by_name["conv#3_token_1"].time_ms == pytest.approx(0.05)  # (40 + 60) / 2 us
    assert by_name["conv#3_token_1"].precision == "int8"
    assert by_name["pw.out_nchwc"].precision == "float"
    assert by_name["Transpose_token_2"].precision == "int8"  # moves uint8 data


def test_renamed_and_engine_made_kernels_map_by_id_tensor_or_not_at_all() -> None:
    x = onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 4])
    y = onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 4])
    w = onnx.numpy_helper.from_array(np.eye(4, dtype=np.float32), "w")
    nodes = [onnx.helper.make_node("MatMul", ["x", "w"], ["mm"], name="fc#7"),
             onnx.helper.make_node("Relu", ["mm"], ["y"], name="act#8")]
    model = onnx.helper.make_model(onnx.helper.make_graph(nodes, "g", [x], [y], [w]))
    ops = ModelOps(model)

    def k(name: str, op: str = "FusedMatMul", **kw: object) -> Kernel:
        kw.setdefault("originals", [name])  # ONNX Runtime: the node's own name
        return Kernel(name, op, op, "float", 1.0, **kw)  # type: ignore[arg-type]

    assert ops.resolve(k("fc#7_token_4")) == [7]
    assert ops.resolve(k("y_nchwc", outputs=["tmp"])) == [7, 8]  # via act#8, fused into fc
    assert ops.resolve(k("Fused_1", inputs=["x", "w"])) == [7]  # the weight's only reader
    assert ops.resolve(k("Transpose_token_9", "Transpose", outputs=["y"])) == []
    assert ops.resolve(k("x", "Reorder", originals=[])) == []
    assert ops.resolve(k("fc#7/WithoutBiases", "FullyConnected",
                         originals=["Add_1", "act#8"])) == [7, 8]


def test_cli_per_op_table_json_and_node_data(planted, tmp_path, capsys) -> None:
    engines = "onnxruntime,openvino" if HAVE_OPENVINO else "onnxruntime"
    out, folder = tmp_path / "report.json", tmp_path / "nodedata"
    code = main(["bench", "--quant", str(planted.quant), "--op_ids_to_skip", str(planted.skip),
                 "--engine", engines, "--per-op", "--per-op-runs", "2", "--per-tensor",
                 "--iters", "2", "--warmup", "0", "--samples", "1", "--json", str(out),
                 "--node-data", str(folder), "-q"])
    text = capsys.readouterr().out
    assert code == 0
    assert "what ran, per op id" in text and "VNNI: avx512_vnni" in text
    assert "== int8 on onnxruntime" in text and "op id" in text
    report = BenchReport.from_json(out.read_text())
    assert report.per_op and report.per_op == BenchReport.from_json(report.to_json()).per_op
    wanted = [("int8", "onnxruntime")] + ([("int8-onednn", "openvino")] if HAVE_OPENVINO
                                          else [])
    for model, engine in wanted:
        result = next(r for r in report.per_op if (r.model, r.engine) == (model, engine))
        skipped = result.op(planted.skip)
        assert skipped is not None and (skipped.precision, skipped.decided) == ("float", "fp32")
        data = json.loads((folder / f"{model}.{engine}.ran_int8.json").read_text())
        assert data == per_op_node_data(result)["ran_int8"]
        assert data["results"][str(planted.skip)] == {"value": 0.0}
        assert all(data["results"][str(c)] == {"value": 1.0}
                   for c in planted.convs if c != planted.skip)
        times = json.loads((folder / f"{model}.{engine}.time_ms.json").read_text())
        assert set(times["results"]) == set(data["results"]) and times["gradient"]
    sqnr = json.loads((folder / "int8_vs_fp32.sqnr_db.json").read_text())
    assert sqnr["results"] and sqnr["thresholds"]
    ort_int8 = next(r for r in report.per_op if (r.model, r.engine) == ("int8", "onnxruntime"))
    assert f"{planted.skip:>6}  Conv" in text.split("== int8 on onnxruntime")[1]
    assert ort_int8.summary.ops["float"] >= 1


def test_cli_node_data_needs_something_to_write(planted, tmp_path, capsys) -> None:
    code = main(["bench", "--quant", str(planted.quant), "--node-data", str(tmp_path / "nd"),
                 "-q"])
    assert code == 2 and "--node-data" in capsys.readouterr().err
    assert not (tmp_path / "nd").exists()
