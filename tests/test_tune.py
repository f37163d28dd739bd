"""`qcore convert --tune`: measured INT8 / FP32 choices, their reasons and the cache.

Timing is made deterministic by a fake timer (no engine runs, no sleeps, no wall-clock
thresholds): a model's "latency" is the sum of per-op costs read off the INT8 model file,
where the planted op is cheaper in float. One smoke test runs the real ONNX Runtime.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import onnx
import pytest

from qcore.bench.engines import op_id_of
from qcore.cli import main
from qcore.config import ConvertConfig
from qcore.convert import convert
from qcore.loader import load_graph
from qcore.status import ReasonKind
from qcore.tune import (
    PairTiming,
    Stats,
    TuneSettings,
    apply_reasons,
    cache_path,
    find_units,
    timing,
    tune,
    tune_text,
)

FLOAT_COMPUTE = {"Conv", "Gemm", "MatMul", "Add", "Mul", "Softmax", "Concat",
                 "GlobalAveragePool"}


def _ids(samples: Path) -> dict[str, int]:
    graph = load_graph(samples / "cnn_qdq.onnx")
    return {n.name: n.id for n in graph.nodes}


@pytest.fixture
def ids(samples: Path) -> dict[str, int]:
    """Op ids of the sample CNN: stem -> dw -> pw -> ... -> fc."""
    names = _ids(samples)
    return {"stem": names["stem.conv"], "dw": names["dw.conv"], "pw": names["pw.conv"],
            "fc": names["fc"]}


class _Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def _integer(op_type: str) -> bool:
    return op_type.startswith("QLinear") or op_type.endswith("Integer") or op_type == "QGemm"


class FakeTimer:
    """Stands in for ``timing.PairTimer``: a model costs, per op id, ``costs[id]`` (INT8,
    float) or ``default`` (0.1 INT8, 0.3 float), read off the model file (an id is INT8 when
    any integer op carries it). ``planted``: one op costs 1.0 INT8, 0.5 float. Counts every
    measurement."""

    planted: int = -1
    default: tuple[float, float] = (0.1, 0.3)
    costs: dict[int, tuple[float, float]] = {}
    calls: list[tuple[Path, ...]] = []
    clock: _Clock | None = None  # when set, each measurement takes 10 s on it

    def __init__(self, engine, feeds, settings, check=None) -> None:
        pass

    @classmethod
    def cost(cls, path: Path) -> float:
        kinds: dict[int, bool] = {}
        for node in onnx.load(str(path)).graph.node:
            op_id = op_id_of(node.name)
            if op_id is None:
                continue
            if _integer(node.op_type):
                kinds[op_id] = True
            elif node.op_type in FLOAT_COMPUTE:
                kinds.setdefault(op_id, False)
        total = 0.0
        for op_id, is_int8 in kinds.items():
            int8, float_ = (1.0, 0.5) if op_id == cls.planted else \
                cls.costs.get(op_id, cls.default)
            total += int8 if is_int8 else float_
        return total

    def measure(self, base: Path, trial: Path, longer: float = 1.0) -> PairTiming:
        FakeTimer.calls.append((base, trial))
        if FakeTimer.clock is not None:
            FakeTimer.clock.now += 10.0
        a, b = self.cost(base), self.cost(trial)
        return PairTiming(Stats(a, 0.99 * a, 1.01 * a, 20), Stats(b, 0.99 * b, 1.01 * b, 20))

    def measure_all(self, paths: list[Path], longer: float = 1.0) -> list[list[float]]:
        FakeTimer.calls.append(tuple(paths))
        return [[self.cost(path)] * 20 for path in paths]

    def close(self) -> None:
        pass


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch, ids: dict[str, int]) -> type[FakeTimer]:
    monkeypatch.setattr(timing, "PairTimer", FakeTimer)
    monkeypatch.setattr(FakeTimer, "planted", ids["stem"])
    monkeypatch.setattr(FakeTimer, "default", (0.1, 0.3))
    monkeypatch.setattr(FakeTimer, "costs", {})
    monkeypatch.setattr(FakeTimer, "calls", [])
    monkeypatch.setattr(FakeTimer, "clock", None)
    return FakeTimer


def _copy(samples: Path, tmp_path: Path) -> Path:
    src = tmp_path / "model" / "cnn_qdq.onnx"
    src.parent.mkdir()
    shutil.copy(samples / "cnn_qdq.onnx", src)
    return src


def _convert(src: Path, out: Path, *extra: str) -> list[str]:
    return ["convert", "--quant_model_path", str(src), "--int8_model_save_path", str(out),
            "--tune", *extra]


def _node_types(path: Path) -> dict[int, str]:
    return {op_id_of(n.name): n.op_type for n in onnx.load(str(path)).graph.node
            if op_id_of(n.name) is not None}


def test_candidates_are_small_islands_and_border_ops(samples, ids) -> None:
    """With dw FP32 (skipped), stem is a lone INT8 island; pw (after the FP32 op) and fc (the
    graph output) are at the border of the big island."""
    result = convert(samples / "cnn_qdq.onnx", ConvertConfig(op_ids_to_skip=[ids["dw"]]))
    graph = result.snapshots[0].graph
    units = find_units(result.decisions, graph.input_names, graph.output_names)
    assert [(u.kind, u.op_ids) for u in units] == [
        ("island", (ids["stem"],)), ("border", (ids["pw"],)), ("border", (ids["fc"],))]


def test_planted_op_ends_fp32_with_both_timings(samples, ids, fake) -> None:
    config = ConvertConfig(op_ids_to_skip=[ids["dw"]])
    tuned = tune(samples / "cnn_qdq.onnx", config, TuneSettings(budget_s=600))
    assert tuned.config.op_ids_to_skip == sorted([ids["dw"], ids["stem"]])
    assert tuned.tuned_ids == [ids["stem"]]
    reason = tuned.reasons()[ids["stem"]]
    assert reason.kind is ReasonKind.TUNED
    # the most specific evidence: stem alone back in INT8 costs +0.5 (2.20 -> 2.70)
    assert str(reason) == "measured 2.20 ms vs 2.70 ms INT8 in this model"
    stayed = tuned.stayed()
    assert {ids["pw"], ids["fc"]} <= set(stayed) and ids["stem"] not in stayed
    # pw alone FP32, with stem FP32 already: 1.80 -> 2.00
    assert stayed[ids["pw"]].startswith("INT8: measured 1.80 ms vs 2.00 ms FP32")
    # top-down: everything first, then its parts (regions and op types), then small units
    assert [t.kind for t in tuned.trials][:2] == ["everything", "region"]
    f = tuned.final
    assert f is not None and tuned.kept
    assert (f.tuned.median, f.default.median, f.fp32.median) == pytest.approx((1.8, 2.3, 3.8))
    assert not tuned.untried

    result = convert(samples / "cnn_qdq.onnx", tuned.config)
    apply_reasons(result, tuned)
    by_id = {n.id: n for n in result.decisions}
    assert by_id[ids["stem"]].reason.kind is ReasonKind.TUNED
    assert by_id[ids["dw"]].reason.kind is ReasonKind.SKIPPED  # the user's own choice stays
    assert by_id[ids["pw"]].status == "int8" and by_id[ids["fc"]].status == "int8"
    last = result.snapshots[-1].graph
    assert all(n.reason.kind is ReasonKind.TUNED for n in last.nodes if n.id == ids["stem"])


def test_cli_tunes_prints_choices_and_caches_beside_output(samples, tmp_path, ids, fake,
                                                            capsys) -> None:
    src = _copy(samples, tmp_path)
    before = src.read_bytes()
    out = tmp_path / "out" / "int8.onnx"
    args = _convert(src, out, "--op_ids_to_skip", str(ids["dw"]))
    assert main(args) == 0
    printed = capsys.readouterr().out
    types = _node_types(out)
    assert types[ids["stem"]] == "Conv" and types[ids["dw"]] == "Conv"
    assert types[ids["pw"]] == "QLinearConv" and types[ids["fc"]] == "QGemm"
    assert f"Conv({ids['stem']})  measured 2.20 ms vs 2.70 ms INT8 in this model" in printed
    assert f"  Conv({ids['stem']}):  measured 2.20 ms vs 2.70 ms INT8" in printed
    assert "final check, side by side: tuned 1.80 ms, default 2.30 ms, FP32 3.80 ms" in printed
    assert "INT8 (the tuned model written) is 2.11x the speed of FP32" in printed
    assert "kept FP32 by --tune" in printed and "stayed INT8 after a trial:" in printed
    assert f"Conv({ids['pw']})" in printed.split("stayed INT8 after a trial:")[1]
    assert "generated inputs" in printed
    assert f"--op_ids_to_skip {','.join(map(str, sorted([ids['stem'], ids['dw']])))}" in printed
    cache = out.parent / "int8.qcore-tune.json"
    assert cache_path(out) == cache and cache.is_file()
    data = json.loads(cache.read_text())
    assert data["format"] == "qcore-tune/1"
    summary = data["entries"][0]["summary"]  # the three medians, as JSON
    assert (summary["tuned_ms"], summary["default_ms"], summary["fp32_ms"]) == \
        pytest.approx((1.8, 2.3, 3.8))
    assert summary["kept_fp32"] == [ids["stem"]] and summary["kept_tuned"] is True
    assert summary["int8_speed_vs_fp32"] == pytest.approx(3.8 / 1.8, abs=1e-3)
    assert fake.calls, "the first run timed the candidates"
    # the input model is untouched, and nothing was written beside it
    assert src.read_bytes() == before
    assert sorted(p.name for p in src.parent.iterdir()) == ["cnn_qdq.onnx"]
    assert not list(tmp_path.rglob("*.tmp"))

    fake.calls.clear()
    assert main([*args, "--force"]) == 0
    printed = capsys.readouterr().out
    assert fake.calls == [], "the second run times nothing"
    assert "nothing was timed" in printed and str(cache) in printed
    assert _node_types(out) == types


def test_changed_config_or_model_invalidates_the_cache(samples, tmp_path, ids, fake,
                                                        capsys) -> None:
    src = _copy(samples, tmp_path)
    out = tmp_path / "int8.onnx"
    assert main(_convert(src, out, "--op_ids_to_skip", str(ids["dw"]), "-q")) == 0
    first = len(fake.calls)
    assert first

    fake.calls.clear()
    assert main(_convert(src, out, "--op_ids_to_skip", f"{ids['dw']},{ids['fc']}", "-f")) == 0
    assert fake.calls, "a new config is measured again"
    assert "the config" in capsys.readouterr().out
    # both keys are kept in the file: going back to the first config times nothing
    fake.calls.clear()
    assert main(_convert(src, out, "--op_ids_to_skip", str(ids["dw"]), "-f")) == 0
    assert fake.calls == []

    model = onnx.load(str(src))
    model.doc_string = "changed"
    onnx.save(model, str(src))
    fake.calls.clear()
    assert main(_convert(src, out, "--op_ids_to_skip", str(ids["dw"]), "-f")) == 0
    assert fake.calls, "a changed model is measured again"
    assert "the model" in capsys.readouterr().out


def test_noise_never_flips_a_decision() -> None:
    """4% faster by the median, but the interquartile ranges overlap: not faster."""
    base, noisy = Stats(1.00, 0.95, 1.05, 20), Stats(0.96, 0.92, 1.00, 20)
    assert not PairTiming(base, noisy).faster()
    assert not PairTiming(base, Stats(0.98, 0.979, 0.981, 20)).faster()  # within 3%
    assert PairTiming(base, Stats(0.90, 0.88, 0.92, 20)).faster()


def test_the_faster_half_decides_on_a_loaded_machine() -> None:
    """Other processes stretch 40% of the runs of both models to 6 ms: the ranges over all
    runs overlap, the faster halves (2.0 vs 1.2 ms) do not. The same noise on two equal
    models decides nothing."""
    base = [2.0 + 0.01 * (i % 5) for i in range(60)] + [6.0] * 40
    faster = [1.2 + 0.01 * (i % 5) for i in range(60)] + [6.0] * 40
    timed = PairTiming.of(base, faster)
    assert not (timed.trial.q75 < timed.base.q25)  # the ranges of all runs overlap
    assert timed.faster() and not timed.reversed().faster()
    assert timed.shown() == timed.fast  # the reason shows the halves that decided
    same = PairTiming.of(base, list(reversed(base)))
    assert not same.faster() and not same.reversed().faster()
    assert PairTiming.from_dict(timed.to_dict()) == timed


def _fake_engine(clock: _Clock, costs: dict[str, float], log: list[str]):
    """An engine whose sessions take ``costs[model file name]`` seconds on ``clock``."""
    from qcore.bench.engines import Engine, Session, WhatRan

    class FakeSession(Session):
        input_names = ["x"]

        def __init__(self, name: str) -> None:
            self.name = name

        def run(self, feeds):
            log.append(self.name)
            clock.now += costs[self.name]
            return {}

        def what_ran(self) -> WhatRan:
            return WhatRan("")

    class FakeEngine(Engine):
        name = "fake"
        loads: list[str] = []

        def version(self) -> str:
            return "0"

        def load(self, path, threads, shapes):
            FakeEngine.loads.append(path.name)
            return FakeSession(path.name)

    return FakeEngine()


def test_pair_timer_interleaves_and_stops_early_when_plain(monkeypatch) -> None:
    """The real PairTimer on a fake clock: A B, B A, ...; a 2x difference stops after
    ``min_rounds``, equal models run for ``seconds``; the base stays loaded."""
    import numpy as np

    clock, log = _Clock(), []
    monkeypatch.setattr(timing, "clock", clock)
    engine = _fake_engine(clock, {"a.onnx": 0.001, "b.onnx": 0.002, "c.onnx": 0.001}, log)
    settings = timing.TimerSettings(seconds=0.05, min_rounds=10, warmup=3)
    timer = timing.PairTimer(engine, [{"x": np.zeros(1)}], settings)
    plain = timer.measure(Path("a.onnx"), Path("b.onnx"))
    assert (plain.base.runs, plain.trial.runs) == (10, 10)
    assert plain.base.median == pytest.approx(1.0) and plain.trial.median == pytest.approx(2.0)
    assert log[:6] == ["a.onnx", "b.onnx"] * 3  # warm-up
    assert log[6:10] == ["a.onnx", "b.onnx", "b.onnx", "a.onnx"]  # the order alternates
    assert not plain.faster() and plain.reversed().faster()

    log.clear()
    equal = timer.measure(Path("a.onnx"), Path("c.onnx"))
    assert equal.base.runs == 25  # 0.05 s of 2 ms rounds: not plain, so it ran its time
    assert not equal.faster() and not equal.reversed().faster()
    assert engine.loads == ["a.onnx", "b.onnx", "c.onnx"]  # a loaded once
    timer.close()


def test_int8_faster_everywhere_keeps_the_default(samples, tmp_path, ids, fake,
                                                 monkeypatch) -> None:
    monkeypatch.setattr(FakeTimer, "planted", -1)  # float is slower everywhere
    tuned = tune(samples / "cnn_qdq.onnx", ConvertConfig(op_ids_to_skip=[ids["dw"]]),
                 TuneSettings(budget_s=600))
    assert tuned.config.op_ids_to_skip == [ids["dw"]] and not tuned.reasons()
    assert {ids["stem"], ids["pw"], ids["fc"]} <= set(tuned.stayed())
    # FP32 lost much in every group: no group is split (and it says so)
    assert not any(t.accepted for t in tuned.trials)
    assert tuned.pruned and not tuned.untried
    f = tuned.final
    assert f is not None and not tuned.kept and f.tuned == f.default  # two models timed
    assert f.fp32.median > f.default.median
    summary = tuned.summary()
    assert summary["int8_speed_vs_fp32"] == pytest.approx(f.fp32.median / f.default.median,
                                                          abs=1e-3)
    assert summary["kept_fp32"] == [] and summary["default_ms"] == f.default.median


def test_int8_slower_everywhere_ends_everything_fp32_in_few_trials(samples, fake,
                                                                   monkeypatch,
                                                                   capsys) -> None:
    """A model INT8 does not pay on: one trial makes everything FP32, one trial per part
    (op type) tries it back, none is split; the reason is the whole model's two medians."""
    monkeypatch.setattr(FakeTimer, "planted", -1)
    monkeypatch.setattr(FakeTimer, "default", (0.3, 0.1))  # INT8 3x slower everywhere
    tuned = tune(samples / "cnn_qdq.onnx", ConvertConfig(), TuneSettings(budget_s=600))
    default = convert(samples / "cnn_qdq.onnx", ConvertConfig())
    assert tuned.tuned_ids == default.quantized_ids  # every INT8 op FP32
    first = tuned.trials[0]
    assert first.kind == "everything" and first.accepted
    assert [t.to for t in tuned.trials[1:]] == ["int8"] * (len(tuned.trials) - 1)
    assert len(tuned.trials) <= 1 + len(tuned.units[0].parts)
    assert not any(t.accepted for t in tuned.trials[1:])
    pool = next(n.id for n in default.decisions if n.op_type == "MaxPool")
    assert str(tuned.reasons()[pool]) == "measured 1.20 ms vs 3.60 ms INT8 in this model"
    # the model written is the float model: no integer op, no Q/DQ left
    result = convert(samples / "cnn_qdq.onnx", tuned.config)
    kinds = {n.op_type for n in result.int8_model().graph.node}
    assert not {k for k in kinds if _integer(k) or k.endswith("Linear")}
    f = tuned.final
    assert f is not None and tuned.kept
    assert (f.tuned.median, f.default.median, f.fp32.median) == pytest.approx((1.2, 3.6, 1.2))
    text = tune_text(tuned, result)
    assert "final check, side by side: tuned 1.20 ms, default 3.60 ms, FP32 1.20 ms" in text
    assert "INT8 (the tuned model written) is 1.00x the speed of FP32 on this machine" in text


def test_only_the_slower_region_is_kept_fp32(samples, fake, monkeypatch) -> None:
    """The transformer sample has two INT8 regions (split by a LayerNormalization); the ops
    of the second are slower INT8, everything else faster: just that region ends FP32."""
    model = samples / "transformer_qdq.onnx"
    default = convert(model, ConvertConfig())
    by_name = {n.name: n for n in default.decisions}
    second = sorted(n.id for name, n in by_name.items() if n.status == "int8"
                    and (".ffn" in name or ".gelu" in name))
    assert second, "the FFN block is INT8 by default"
    monkeypatch.setattr(FakeTimer, "planted", -1)
    monkeypatch.setattr(FakeTimer, "costs", {i: (1.0, 0.5) for i in second})
    tuned = tune(model, ConvertConfig(), TuneSettings(budget_s=600))
    assert tuned.tuned_ids == second
    region = next(t for t in tuned.trials if t.accepted)
    assert region.kind == "region" and region.op_ids == second
    assert tuned.final is not None and tuned.kept


def test_budget_bounds_the_search_and_says_what_was_left(samples, tmp_path, ids, fake,
                                                          capsys) -> None:
    out = tmp_path / "int8.onnx"
    assert main(_convert(samples / "cnn_qdq.onnx", out, "--op_ids_to_skip", str(ids["dw"]),
                         "--tune-budget", "0")) == 0
    printed = capsys.readouterr().out
    assert fake.calls == []
    assert "not tried (--tune-budget 0 s ran out):" in printed
    assert f"island Conv({ids['stem']})" in printed.split("not tried (")[1]
    assert _node_types(out)[ids["stem"]] == "QLinearConv"  # the default


def test_a_budget_cut_search_replays_at_once_and_continues_with_more(samples, tmp_path, ids,
                                                                    fake, monkeypatch,
                                                                    capsys) -> None:
    """Each measurement takes 10 s on a fake clock: a 25 s budget stops after two trials. The
    same command again measures nothing and gives the same model; a larger budget goes on."""
    clock = _Clock()
    monkeypatch.setattr(timing, "clock", clock)
    fake.clock = clock
    out = tmp_path / "int8.onnx"
    args = _convert(samples / "cnn_qdq.onnx", out, "--op_ids_to_skip", str(ids["dw"]), "-f")
    assert main([*args, "--tune-budget", "25"]) == 0
    first = capsys.readouterr().out
    assert len(fake.calls) == 3  # two trials, then the final check (over the budget)
    assert "not tried (--tune-budget 25 s ran out)" in first
    types = _node_types(out)

    fake.calls.clear()
    assert main([*args, "--tune-budget", "25"]) == 0
    again = capsys.readouterr().out
    assert fake.calls == [] and _node_types(out) == types
    assert "a larger budget continues it" in again and "nothing was timed" in again

    assert main([*args, "--tune-budget", "100"]) == 0
    assert fake.calls and "not tried (" not in capsys.readouterr().out


def test_real_inputs_are_used_and_named(samples, tmp_path, ids, fake, capsys) -> None:
    import numpy as np

    data = tmp_path / "x.npz"
    np.savez(data, image=np.zeros((1, 3, 32, 32), np.float32))
    out = tmp_path / "int8.onnx"
    assert main(_convert(samples / "cnn_qdq.onnx", out, "--inputs", str(data))) == 0
    assert f"inputs from {data}" in capsys.readouterr().out


def test_tune_flags_need_tune(samples, tmp_path, capsys) -> None:
    out = tmp_path / "int8.onnx"
    code = main(["convert", "--quant_model_path", str(samples / "cnn_qdq.onnx"),
                 "--int8_model_save_path", str(out), "--engine", "openvino"])
    assert code == 2 and "only apply with --tune" in capsys.readouterr().err
    assert not out.exists()


def test_engine_that_cannot_run_the_target_is_refused(samples, tmp_path, capsys) -> None:
    pytest.importorskip("openvino")
    out = tmp_path / "int8.onnx"
    code = main(_convert(samples / "cnn_qdq.onnx", out, "--engine", "openvino"))
    err = capsys.readouterr().err
    assert code == 2 and "--engine openvino cannot run the --target onnxruntime model" in err
    assert not out.exists() and not cache_path(out).exists()


def test_unreadable_cache_is_replaced(samples, tmp_path, ids, fake, capsys) -> None:
    out = tmp_path / "int8.onnx"
    cache_path(out).write_text("not json")
    assert main(_convert(samples / "cnn_qdq.onnx", out, "--op_ids_to_skip", str(ids["dw"]))) == 0
    assert "not used" in capsys.readouterr().out
    assert json.loads(cache_path(out).read_text())["entries"]


def test_real_onnxruntime_smoke(samples, tmp_path, ids, capsys) -> None:
    """End to end on ONNX Runtime with a small budget (asserts behaviour, not speed)."""
    out = tmp_path / "int8.onnx"
    code = main(_convert(samples / "cnn_qdq.onnx", out, "--op_ids_to_skip", str(ids["dw"]),
                         "--tune-budget", "8", "-f"))
    printed = capsys.readouterr().out
    assert code == 0
    onnx.checker.check_model(onnx.load(str(out)))
    assert "tune: measured on onnxruntime" in printed
    assert cache_path(out).is_file()
    entry = json.loads(cache_path(out).read_text())["entries"][0]
    assert entry["fields"]["engine"] == "onnxruntime" and entry["trials"]
    for trial in entry["trials"]:
        assert trial["timing"]["base"]["runs"] >= 10


def test_a_tuned_mix_further_from_float_is_not_written(samples, ids, fake, monkeypatch) -> None:
    """The planted stem is faster FP32, but say the mix were further from float than the
    default: the default is written (everything FP32 was not measured faster), and says why.
    When everything FP32 was measured faster, it is written instead."""
    from qcore.tune import tuner

    cosines = iter([0.90, 0.99, 0.99])  # the tuned mix, the default, the source QDQ
    monkeypatch.setattr(tuner, "_cosine", lambda *args: next(cosines))
    config = ConvertConfig(op_ids_to_skip=[ids["dw"]])
    tuned = tune(samples / "cnn_qdq.onnx", config, TuneSettings(budget_s=600))
    assert tuned.config.op_ids_to_skip == [ids["dw"]] and not tuned.kept
    assert any("further from float than the default and the source (cosine 0.9000 vs 0.9900 "
               "and 0.9900" in n and n.endswith("kept the default") for n in tuned.notes)

    # further from float than the default, but within the zoo's 0.005 of the source: written
    cosines = iter([0.9961, 0.9996, 0.9996])
    tuned = tune(samples / "cnn_qdq.onnx", config, TuneSettings(budget_s=600))
    assert tuned.kept and not any("further from float" in n for n in tuned.notes)

    # INT8 slower everywhere but the pool, which is much faster INT8: the mix keeps it INT8
    pool = next(n.id for n in convert(samples / "cnn_qdq.onnx").decisions
                if n.op_type == "GlobalAveragePool")
    monkeypatch.setattr(FakeTimer, "planted", -1)
    monkeypatch.setattr(FakeTimer, "default", (0.3, 0.1))
    monkeypatch.setattr(FakeTimer, "costs", {pool: (0.1, 2.0)})
    cosines = iter([0.90, 0.99, 0.99, 0.999])  # the mix, the default, the source, all FP32
    tuned = tune(samples / "cnn_qdq.onnx", ConvertConfig(), TuneSettings(budget_s=600))
    assert tuned.trials[0].kind == "everything" and tuned.trials[0].accepted
    assert tuned.kept and set(tuned.tuned_ids) == set(tuned.int8_ids)  # everything FP32
    assert any(n.endswith("wrote everything FP32 (measured faster than the default)")
               for n in tuned.notes)
