"""qcore.bench on the sample models: latency statistics, speedups, what ran, accuracy,
per-tensor SQNR, cancel, missing engines, JSON / CSV and the `qcore bench` command."""

from __future__ import annotations

import csv
import io
import json
import math
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from qcore.bench import (
    SCHEMA_VERSION,
    BenchCancelled,
    BenchReport,
    BenchSettings,
    EngineUnavailable,
    compare_models,
    generate_inputs,
    get_engine,
    model_inputs,
    node_data,
    per_tensor_error,
    records,
    run_benchmark,
)
from qcore.bench.report import CSV_FIELDS
from qcore.cli import main
from qcore.config import ConvertConfig
from qcore.convert import convert
from qcore.loader import load_graph
from qcore.passes.base import Cancelled

try:
    import openvino  # noqa: F401

    HAVE_OPENVINO = True
except ImportError:
    HAVE_OPENVINO = False

ENGINES = ["onnxruntime", "openvino"] if HAVE_OPENVINO else ["onnxruntime"]


def _models(samples: Path, folder: Path, name: str) -> dict[str, Path]:
    """fp32 (qcore's optimized FP32), qdq (the sample), int8 and int8-onednn (converted)."""
    qdq = samples / f"{name}_qdq.onnx"
    paths = {"fp32": folder / f"{name}_fp32.onnx", "qdq": qdq}
    for target, label in (("onnxruntime", "int8"), ("onednn", "int8-onednn")):
        result = convert(str(qdq), ConvertConfig(target=target))
        paths[label] = folder / f"{name}_{label}.onnx"
        onnx.save(result.int8_model(), paths[label])
        onnx.save(result.fp32_model(), paths["fp32"])
    return paths


@pytest.fixture(scope="module")
def cnn(samples, tmp_path_factory) -> dict[str, Path]:
    return _models(samples, tmp_path_factory.mktemp("cnn"), "cnn")


@pytest.fixture(scope="module")
def transformer(samples, tmp_path_factory) -> dict[str, Path]:
    return _models(samples, tmp_path_factory.mktemp("transformer"), "transformer")


@pytest.fixture(scope="module")
def measured(cnn) -> tuple[BenchReport, list[tuple[int, int, str]]]:
    """One run of the four cnn models on every engine, 1 and 2 threads, with accuracy."""
    settings = BenchSettings(engines=ENGINES, threads=[1, 2], warmup=2, iters=15, samples=4,
                             accuracy=True, per_tensor=True)
    calls: list[tuple[int, int, str]] = []
    return run_benchmark(cnn, settings, progress=lambda *a: calls.append(a)), calls


@pytest.fixture(scope="module")
def report(measured) -> BenchReport:
    return measured[0]


def _ok(report: BenchReport) -> list:
    return [r for r in report.results if r.status == "ok"]


def test_latency_statistics_are_consistent(report) -> None:
    assert _ok(report), [r.reason for r in report.results]
    for r in _ok(report):
        lat, samples = r.latency_ms, np.array(r.samples_ms)
        assert lat.count == len(samples) == 15
        assert lat.min <= lat.p50 <= lat.p90 <= lat.p99 <= lat.max
        assert lat.p50 == pytest.approx(np.median(samples))
        assert lat.mean == pytest.approx(samples.mean())
        assert r.throughput_per_s == pytest.approx(r.batch * 1000.0 / samples.mean())
        assert r.load_s is not None and r.load_s >= 0
    assert {r.threads for r in report.results} == {1, 2}
    assert report.system["logical_cpus"] >= 1 and isinstance(report.system["cpu_flags"], list)


def test_speedups_come_from_the_medians(report) -> None:
    for r in _ok(report):
        base = report.result("fp32", r.engine, r.threads)
        expected = np.median(base.samples_ms) / np.median(r.samples_ms)
        assert r.speedup_vs_fp32 == pytest.approx(expected)
    assert all(r.speedup_vs_fp32 == pytest.approx(1.0) for r in _ok(report) if r.model == "fp32")


def test_progress_is_monotonic_and_reaches_the_total(measured) -> None:
    calls = measured[1]
    assert len(calls) > 5
    done = [c[0] for c in calls]
    assert done == sorted(done)
    assert calls[-1][0] == calls[-1][1] and all(c[1] == calls[0][1] for c in calls)


def test_what_ran_on_onnx_runtime_counts_integer_and_float_ops(report) -> None:
    fp32 = report.result("fp32", "onnxruntime", 1).what_ran
    int8 = report.result("int8", "onnxruntime", 1).what_ran
    assert fp32.int8_ops == 0 and fp32.compute_ops > 0
    assert int8.int8_ops > 0 and int8.compute_ops == fp32.compute_ops
    assert len(int8.float_ops) == int8.compute_ops - int8.int8_ops
    text = report.text()
    if int8.float_ops:
        assert "float remained in: " + int8.float_ops[0] in text


@pytest.mark.skipif(not HAVE_OPENVINO, reason="openvino is not installed")
def test_openvino_runs_the_onednn_int8_model_on_int8_kernels(report) -> None:
    info = report.engine("openvino")
    assert info.available and info.settings["INFERENCE_PRECISION_HINT"] == "f32"
    assert any("f32" in note for note in info.notes)
    onednn = report.result("int8-onednn", "openvino", 1)
    assert onednn.status == "ok"
    assert onednn.what_ran.int8_ops > 0
    assert any(k.lower().endswith("_i8") for k in onednn.what_ran.histogram)
    assert "ran INT8" in onednn.what_ran.summary
    fp32 = report.result("fp32", "openvino", 1).what_ran
    assert fp32.int8_ops == 0 and fp32.compute_ops == onednn.what_ran.compute_ops
    skipped = report.result("int8", "openvino", 1)  # com.microsoft QOperator ops
    assert skipped.status == "skipped" and "--target onednn" in skipped.reason
    assert skipped.latency_ms is None


def test_a_model_compared_with_itself_agrees_fully(cnn) -> None:
    feeds = generate_inputs(model_inputs(cnn["fp32"]), count=4, seed=3).feeds
    result = compare_models(cnn["fp32"], cnn["fp32"], feeds)
    assert result.status == "ok" and result.outputs
    for out in result.outputs:
        assert out.top1_agreement == 1.0 and out.top5_overlap == 1.0 and out.rows == 4
        assert out.cosine == pytest.approx(1.0, abs=1e-12) and out.max_abs_diff == 0.0
    errors, note = per_tensor_error(cnn["fp32"], cnn["fp32"], feeds[:2])
    assert errors and all(e.sqnr_db == math.inf for e in errors)
    assert note.startswith(f"{len(errors)} of {len(errors)} ")


def _sqnr(ref: np.ndarray, test: np.ndarray) -> float:
    ref, test = ref.astype(np.float64), test.astype(np.float64)
    return 10 * math.log10(np.sum(ref**2) / np.sum((ref - test) ** 2))


def _run_plain(path: Path, feed: dict) -> np.ndarray:
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return session.run(None, feed)[0]


@pytest.mark.parametrize("family", ["cnn", "transformer"])
@pytest.mark.parametrize("label", ["int8", "int8-onednn"])
def test_int8_per_tensor_sqnr_is_finite_and_names_the_op(request, family, label) -> None:
    paths = request.getfixturevalue(family)
    feeds = generate_inputs(model_inputs(paths["fp32"]), count=2, seed=5).feeds
    errors, _ = per_tensor_error(paths["fp32"], paths[label], feeds)
    finite = [e for e in errors if math.isfinite(e.sqnr_db)]
    assert finite, "INT8 must differ from FP32 somewhere"
    assert [e.sqnr_db for e in errors] == sorted(e.sqnr_db for e in errors)
    worst = errors[0]
    assert 0 < worst.sqnr_db < 60  # 8-bit quantization noise, not garbage and not nothing
    # the op to blame exists in the quant model under that id, with a matching type
    quant_ops = {n.id: n.op_type for n in load_graph(str(paths["qdq"])).nodes}
    for e in errors:
        if e.op_id is not None and e.op_id in quant_ops:
            assert quant_ops[e.op_id] in e.op_type or e.op_type.startswith("QLinear"), e
    assert worst.op_id is not None and worst.op_type
    # the arithmetic: the graph output's SQNR recomputed from the two models' outputs
    out_name = onnx.load(str(paths["fp32"])).graph.output[0].name
    row = next(e for e in errors if e.tensor == out_name)
    ref = np.concatenate([_run_plain(paths["fp32"], f).ravel() for f in feeds])
    got = np.concatenate([_run_plain(paths[label], f).ravel() for f in feeds])
    assert row.sqnr_db == pytest.approx(_sqnr(ref, got), rel=1e-6)
    assert records(errors)[0]["sqnr_db"] == worst.sqnr_db
    data = node_data(errors)
    assert data["results"][str(worst.op_id)]["value"] == pytest.approx(worst.sqnr_db)


def test_benchmark_accuracy_section(report) -> None:
    pairs = {(a.test, a.reference, a.engine): a for a in report.accuracy}
    assert ("int8", "fp32", "onnxruntime") in pairs and ("int8", "qdq", "onnxruntime") in pairs
    int8 = pairs[("int8", "fp32", "onnxruntime")]
    assert int8.per_tensor and any(math.isfinite(e.sqnr_db) for e in int8.per_tensor)
    for a in report.accuracy:
        if a.status == "ok":
            assert all(-1 <= o.cosine_min <= o.cosine <= 1 + 1e-9 for o in a.outputs)
    if HAVE_OPENVINO:
        assert pairs[("int8", "fp32", "openvino")].status == "skipped"
        assert pairs[("int8-onednn", "fp32", "openvino")].status == "ok"


def test_json_round_trips_and_csv_has_a_header(report) -> None:
    text = report.to_json()
    data = json.loads(text)  # strict JSON: no NaN / Infinity literals
    assert data["schema_version"] == SCHEMA_VERSION
    assert data["settings"]["threads"] == [1, 2] and data["engines"][0]["version"]
    again = BenchReport.from_json(text)
    assert again.to_json() == text
    assert again.result("int8", "onnxruntime", 1).latency_ms == \
        report.result("int8", "onnxruntime", 1).latency_ms
    rows = list(csv.DictReader(io.StringIO(report.to_csv())))
    assert list(rows[0]) == CSV_FIELDS and len(rows) == len(report.results)
    assert {r["status"] for r in rows} <= {"ok", "skipped", "failed"}


def test_infinite_sqnr_survives_json(cnn) -> None:
    models = {"fp32": cnn["fp32"], "copy": cnn["fp32"]}
    settings = BenchSettings(engines=["onnxruntime"], warmup=0, iters=2, samples=1,
                             per_tensor=True)
    rep = run_benchmark(models, settings)
    assert all(e.sqnr_db == math.inf for e in rep.accuracy[0].per_tensor)
    assert '"sqnr_db": "inf"' in rep.to_json()
    back = BenchReport.from_json(rep.to_json())
    assert all(e.sqnr_db == math.inf for e in back.accuracy[0].per_tensor)


def test_cancel_stops_before_the_next_inference(cnn) -> None:
    polls: list[int] = []

    def cancelled() -> bool:  # polled before every inference: True on the 20th
        polls.append(1)
        return len(polls) >= 20

    settings = BenchSettings(engines=["onnxruntime"], warmup=0, iters=10**7)
    with pytest.raises(BenchCancelled) as info:
        run_benchmark(cnn, settings, cancelled=cancelled)
    assert len(polls) == 20, "the run went on after cancel"
    assert isinstance(info.value, Cancelled)
    partial = info.value.partial
    assert partial is not None and partial.cancelled and "CANCELLED" in partial.text()
    assert partial.results, "the runs measured before the cancel are kept"
    assert 0 < sum(r.latency_ms.count for r in partial.results) < 20
    for r in partial.results:
        assert r.latency_ms.count == len(r.samples_ms) > 0 and r.reason.startswith("partial")


def test_cancel_after_progress_calls(cnn) -> None:
    calls: list[int] = []
    polled_after_cancel: list[int] = []

    def progress(done: int, total: int, message: str) -> None:
        calls.append(done)

    def cancelled() -> bool:
        if len(calls) >= 3:
            polled_after_cancel.append(1)
            return True
        return False

    settings = BenchSettings(engines=["onnxruntime"], warmup=10**6, iters=10)
    with pytest.raises(BenchCancelled):
        run_benchmark(cnn, settings, progress=progress, cancelled=cancelled)
    assert polled_after_cancel == [1] and len(calls) == 3  # it stopped at once


@pytest.mark.parametrize("module", ["openvino", "onnxruntime"])
def test_a_missing_engine_is_reported_not_faked(cnn, monkeypatch, module) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # makes `import <module>` fail
    with pytest.raises(EngineUnavailable, match=f"{module} is not installed.*pip install"):
        get_engine(module)
    other = "onnxruntime" if module == "openvino" else "openvino"
    settings = BenchSettings(engines=[module, other], warmup=0, iters=2, samples=1)
    if other == "openvino" and not HAVE_OPENVINO:
        settings.engines = [module]
    rep = run_benchmark({"fp32": cnn["fp32"]}, settings)
    info = rep.engine(module)
    assert not info.available and f"{module} is not installed" in info.reason
    assert all(r.engine != module for r in rep.results)
    assert f"{module}: UNAVAILABLE" in rep.text()


def test_time_budget_runs_at_least_three_rounds(cnn) -> None:
    settings = BenchSettings(engines=["onnxruntime"], warmup=0, seconds=0.05)
    rep = run_benchmark({"fp32": cnn["fp32"], "int8": cnn["int8"]}, settings)
    counts = {r.latency_ms.count for r in rep.results}
    assert len(counts) == 1 and counts.pop() >= 3


def test_cli_bench_converts_and_writes_json_and_csv(samples, tmp_path, capsys) -> None:
    out_json, out_csv = tmp_path / "r.json", tmp_path / "r.csv"
    code = main(["bench", "--quant", str(samples / "cnn_qdq.onnx"), "--engine", "onnxruntime",
                 "--iters", "5", "--warmup", "1", "--accuracy", "--json", str(out_json),
                 "--csv", str(out_csv), "-q"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "what ran:" in printed and "accuracy:" in printed
    rep = BenchReport.from_json(out_json.read_text())
    assert set(rep.models) == {"fp32", "qdq", "int8"}
    assert out_csv.read_text().splitlines()[0] == ",".join(CSV_FIELDS)


@pytest.mark.parametrize("argv", [
    ["bench", "--quant", "missing.onnx"],
    ["bench", "--fp32", "{cnn}", "--threads", "0"],
    ["bench", "--fp32", "{cnn}", "--engine", "tensorrt"],
    ["bench", "--fp32", "{cnn}", "--dims", "seq"],
    ["bench", "--fp32", "{cnn}", "--inputs", "missing.npz"],
])
def test_cli_bad_input_exits_2_with_one_line(samples, capsys, argv) -> None:
    argv = [a.replace("{cnn}", str(samples / "cnn_fp32.onnx")) for a in argv]
    assert main(argv + ["-q"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("qcore: error: ")


class _FakeSession:
    def __init__(self, label: str, log: list[str], fail_after: int | None) -> None:
        self.label, self.log, self.fail_after, self.input_names = label, log, fail_after, []

    def run(self, feeds):
        self.log.append(self.label)
        if self.fail_after is not None and self.log.count(self.label) > self.fail_after:
            raise RuntimeError("kernel exploded\nsecond line of the engine's message")
        return {}

    def what_ran(self):
        from qcore.bench import WhatRan

        return WhatRan(summary=f"fake {self.label}")

    def close(self) -> None:
        pass


class _FakeEngine:
    """Records the order of inferences; the model labelled 'bad' fails on its 6th run."""

    name = "onnxruntime"

    def __init__(self) -> None:
        self.log: list[str] = []

    def version(self) -> str:
        return "fake"

    def settings(self) -> dict:
        return {}

    def notes(self) -> list:
        return []

    def check(self, path: Path) -> str | None:
        return None

    def load(self, path, threads, shapes):
        label = Path(path).stem
        return _FakeSession(label, self.log, 5 if label == "bad" else None)


def test_runs_are_interleaved_and_a_failing_model_does_not_stop_the_others(
        cnn, tmp_path, monkeypatch) -> None:
    import qcore.bench.runner as runner

    engine = _FakeEngine()
    monkeypatch.setattr(runner, "get_engine", lambda name: engine)
    paths = {}
    for label in ("fp32", "a", "b", "bad"):
        paths[label] = tmp_path / f"{label}.onnx"
        paths[label].write_bytes(cnn["fp32"].read_bytes())
    settings = BenchSettings(engines=["onnxruntime"], warmup=1, iters=8, samples=1)
    rep = run_benchmark(paths, settings)
    measured = engine.log[len(paths) * 2:]  # after the check run and one warm-up each
    rounds = [measured[i:i + 4] for i in range(0, 16, 4)]  # while 'bad' still runs
    assert all(sorted(r) == ["a", "b", "bad", "fp32"] for r in rounds[:3])
    assert len({tuple(r) for r in rounds[:3]}) > 1, "the order rotates between rounds"
    bad = rep.result("bad", "onnxruntime", 1)
    assert bad.status == "failed" and bad.reason.startswith("kernel exploded")
    for label in ("fp32", "a", "b"):
        r = rep.result(label, "onnxruntime", 1)
        assert r.status == "ok" and r.latency_ms.count == 8
        assert r.what_ran.summary == f"fake {label}"
