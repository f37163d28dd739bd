"""`qcore advise --tune-cache`: the advisor starts from what `qcore convert --tune` measured
(same model, config, engine, threads and inputs), and takes every pair of configurations it
timed from its cache instead of timing it again.

The tuning runs on the fake timer of tests/test_tune.py (INT8 slower than FP32 everywhere,
so --tune keeps everything FP32); the advisor's own accuracy and final timing run on ONNX
Runtime with generated inputs.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_tune import FakeTimer

import qcore.advise.search as search_module
from qcore.advise import AdviseSettings, MeasuredPair, TunedStart, advise
from qcore.cli import main
from qcore.config import ConvertConfig
from qcore.convert import convert
from qcore.tune import TuneSettings, cache_path, cached_summary, timing


@pytest.fixture
def tuned_cache(samples: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """`qcore convert --tune` of the sample CNN with INT8 3x slower everywhere."""
    monkeypatch.setattr(timing, "PairTimer", FakeTimer)
    monkeypatch.setattr(FakeTimer, "planted", -1)
    monkeypatch.setattr(FakeTimer, "default", (0.3, 0.1))
    monkeypatch.setattr(FakeTimer, "costs", {})
    monkeypatch.setattr(FakeTimer, "calls", [])
    monkeypatch.setattr(FakeTimer, "clock", None)
    out = tmp_path / "int8.onnx"
    assert main(["convert", "--quant_model_path", str(samples / "cnn_qdq.onnx"),
                 "--int8_model_save_path", str(out), "--tune", "-q"]) == 0
    return cache_path(out)


def test_the_cache_summary_names_the_tuned_configuration(samples, tuned_cache) -> None:
    summary, note = cached_summary(samples / "cnn_qdq.onnx", ConvertConfig(), TuneSettings(),
                                   tuned_cache)
    assert summary is not None, note
    int8 = convert(samples / "cnn_qdq.onnx").quantized_ids
    assert summary["kept_fp32"] == int8 and set(int8) <= set(summary["op_ids_to_skip"])
    assert summary["int8_speed_vs_fp32"] == pytest.approx(1.0)
    # another key (the thread count) finds nothing, and says why
    other, why = cached_summary(samples / "cnn_qdq.onnx", ConvertConfig(),
                                TuneSettings(threads=2), tuned_cache)
    assert other is None and "the thread count" in why


def test_advise_starts_from_the_tuned_configuration(samples, tmp_path, tuned_cache,
                                                    capsys) -> None:
    out = tmp_path / "advice.json"
    assert main(["advise", "--quant_model_path", str(samples / "cnn_qdq.onnx"),
                 "--tune-cache", str(tuned_cache), "--min-cosine", "0.9", "--rounds", "3",
                 "--samples", "2", "--json", str(out), "-q"]) == 0
    printed = capsys.readouterr()
    assert "--tune-cache not used" not in printed.err
    advice = json.loads(out.read_text())
    notes = [c["note"] for c in advice["candidates"]]
    int8 = convert(samples / "cnn_qdq.onnx").quantized_ids
    start = next(c for c in advice["candidates"] if c["note"].startswith("start from --tune"))
    assert f"({len(int8)} ops kept FP32, measured 1.0x the speed of FP32)" in start["note"]
    assert start["meets_bound"] and set(int8) <= set(start["op_ids_to_skip"])
    assert not any(n.startswith("lone INT8 op") for n in notes), "measured by --tune already"
    assert "start from --tune's configuration" in printed.out


def test_a_cache_of_another_key_is_not_used(samples, tuned_cache, capsys) -> None:
    assert main(["advise", "--quant_model_path", str(samples / "cnn_qdq.onnx"),
                 "--tune-cache", str(tuned_cache), "--threads", "2", "--min-cosine", "0.9",
                 "--rounds", "3", "--samples", "2", "-q"]) == 0
    printed = capsys.readouterr()
    assert "--tune-cache not used: cache not reused: the thread count changed" in printed.err
    assert "start from --tune" not in printed.out


def test_the_advisor_takes_a_pair_the_tuner_timed_from_the_cache(samples, monkeypatch) -> None:
    """A lone INT8 op whose 'INT8 vs FP32' pair --tune timed is decided on that timing: the
    advisor does not time the pair again."""
    path = str(samples / "cnn_qdq.onnx")
    decisions = convert(path).decisions
    convs = [n.id for n in decisions if n.op_type == "Conv"]
    lone = convs[len(convs) // 2]
    base = ConvertConfig(op_ids_to_skip=[n.id for n in decisions if n.id != lone])
    kept = sorted(base.op_ids_to_skip)
    pairs = {(tuple(kept), tuple(sorted([*kept, lone]))): MeasuredPair(2.0, 1.0, True)}
    start = TunedStart([], "start from --tune's configuration", pairs)
    timed: list[int] = []
    real = search_module._Evaluator.latencies

    def counting(self, paths):
        timed.append(len(paths))
        return real(self, paths)

    monkeypatch.setattr(search_module._Evaluator, "latencies", counting)
    advice = advise(path, base, AdviseSettings(min_cosine=0.5, rounds=2, samples=2),
                    start=start)
    assert advice.lone_ops == [lone]
    (trial,) = [c for c in advice.candidates if c.note.startswith(f"lone INT8 op {lone}")]
    assert trial.note.endswith("(1.00 vs 2.00 ms, measured by --tune)")
    assert 2 not in timed, "the pair was timed again"
