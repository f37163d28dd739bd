"""The order of the interleaved runs (qcore bench and the tuner's timer): every model runs
right after every other model equally often, so no model always pays the cache leftovers of
the same other one (with plain rotation, FP32 always ran after the tuned model and the tuned
model after our INT8 one)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from qcore.bench import BenchSettings, WhatRan, run_benchmark
from qcore.bench.engines import Engine, Session
from qcore.bench.runner import round_order, williams_rows
from qcore.tune import timing


def _followers(log: list[str], size: int) -> Counter[tuple[str, str]]:
    """(run before, run) pairs inside each round of ``size`` runs."""
    rounds = [log[i:i + size] for i in range(0, len(log) - size + 1, size)]
    return Counter((r[k], r[k + 1]) for r in rounds for k in range(size - 1))


@pytest.mark.parametrize("count", [2, 3, 4, 5, 6])
def test_williams_rows_put_every_item_after_every_other_equally_often(count) -> None:
    rows = williams_rows(count)
    assert all(sorted(row) == list(range(count)) for row in rows)
    pairs = Counter((row[k], row[k + 1]) for row in rows for k in range(count - 1))
    assert len(pairs) == count * (count - 1) and len(set(pairs.values())) == 1
    assert round_order(["a"], 3) == ["a"]


class _LogSession(Session):
    input_names = ["x"]

    def __init__(self, name: str, log: list[str], clock: list[float] | None = None) -> None:
        self.name, self.log, self.clock = name, log, clock

    def run(self, feeds):
        self.log.append(self.name)
        if self.clock is not None:
            self.clock[0] += 0.001
        return {}

    def what_ran(self) -> WhatRan:
        return WhatRan("")


class _LogEngine(Engine):
    """Records which model each inference ran."""

    name = "onnxruntime"

    def __init__(self, clock: list[float] | None = None) -> None:
        self.log: list[str] = []
        self.clock = clock

    def version(self) -> str:
        return "fake"

    def load(self, path, threads, shapes):
        return _LogSession(Path(path).stem, self.log, self.clock)


def _identity_model(path: Path) -> Path:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g", [x], [y])
    onnx.save(helper.make_model(graph), path)
    return path


def test_bench_runs_every_model_after_every_other_equally_often(tmp_path,
                                                                 monkeypatch) -> None:
    import qcore.bench.runner as runner

    engine = _LogEngine()
    monkeypatch.setattr(runner, "get_engine", lambda name: engine)
    labels = ["fp32", "qdq", "int8", "tuned"]
    models = {label: _identity_model(tmp_path / f"{label}.onnx") for label in labels}
    settings = BenchSettings(engines=["onnxruntime"], warmup=1, iters=8, samples=1)
    report = run_benchmark(models, settings)
    assert all(report.result(m, "onnxruntime", 1).status == "ok" for m in labels)
    measured = engine.log[2 * len(labels):]  # after the check run and the warm-up of each
    assert len(measured) == 8 * len(labels)
    pairs = _followers(measured, len(labels))
    assert len(pairs) == 12 and set(pairs.values()) == {2}  # 8 rounds: each pair twice


def test_tuner_timer_runs_every_model_after_every_other_equally_often(monkeypatch) -> None:
    clock = [0.0]
    monkeypatch.setattr(timing, "clock", lambda: clock[0])
    engine = _LogEngine(clock)
    settings = timing.TimerSettings(seconds=1e9, min_rounds=6, max_rounds=12, warmup=1)
    timer = timing.PairTimer(engine, [{"x": np.zeros((1, 4), np.float32)}], settings)
    runs = timer.measure_all([Path("default.onnx"), Path("tuned.onnx"), Path("fp32.onnx")])
    assert [len(r) for r in runs] == [12, 12, 12]
    pairs = _followers(engine.log[3:], 3)
    assert len(pairs) == 6 and set(pairs.values()) == {4}  # 12 rounds: each pair 4 times
