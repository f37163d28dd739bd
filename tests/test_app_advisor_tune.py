"""The Advisor tab reuses what Convert's "Tune for speed" measured in this session, as ``qcore
advise --tune-cache`` does: it starts from the tuned configuration, and a lone INT8 op whose
pair the tuner timed is decided on that timing. When the key differs (here: the configuration
changed after tuning) nothing is reused and the log says why.

The tuner runs in this process on a fake timer (a model's "latency" is the sum of per-op costs
read off the INT8 file); the advisor runs in the conversion process as in the app, so the
tuner's start crosses the process boundary. Waits are on signals and conditions only.
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from importlib import import_module
from pathlib import Path

import onnx
import pytest
from PySide6.QtCore import Qt

import qcore.child
from app.headless import child_calls
from app.main_window import MainWindow
from qcore.bench.engines import op_id_of
from qcore.config import ConvertConfig
from qcore.tune import PairTiming, Stats, TuneSettings, cache_path, timing, tune
from qcore.tune.reuse import cached_measurements, result_pairs

TIMEOUT = 60000
QUANTIZED = {"QGemm", "ConvInteger", "MatMulInteger"}


class CostTimer:
    """Stands in for ``timing.PairTimer``: each compute op costs 0.1 INT8 and 0.3 FP32, but
    the ops in ``costs`` (op id -> (INT8, FP32)) cost what it says. Ties are never faster."""

    costs: dict[int, tuple[float, float]] = {}

    def __init__(self, engine, feeds, settings, check=None) -> None:
        pass

    @classmethod
    def cost(cls, path: Path) -> float:
        total = 0.0
        for node in onnx.load(str(path)).graph.node:
            int8 = node.op_type.startswith("QLinear") or node.op_type in QUANTIZED
            op_id = op_id_of(node.name)
            if op_id in cls.costs:
                total += cls.costs[op_id][0 if int8 else 1]
            elif node.op_type in {"Conv", "Gemm", "QLinearConv", "QGemm"}:
                total += 0.1 if int8 else 0.3
        return total

    def measure(self, base: Path, trial: Path, longer: float = 1.0) -> PairTiming:
        a, b = self.cost(base), self.cost(trial)
        return PairTiming(Stats(a, 0.99 * a, 1.01 * a, 20), Stats(b, 0.99 * b, 1.01 * b, 20))

    def measure_all(self, paths: list[Path], longer: float = 1.0) -> list[list[float]]:
        return [[self.cost(path)] * 20 for path in paths]

    def close(self) -> None:
        pass


class TuneHere:
    """The tuner in this process (so the fake timer applies); every other call goes to the
    conversion process, as in the app."""

    def __init__(self, real) -> None:
        self.real = real

    def call(self, name: str, *args, **kwargs):
        if name == "qcore.tune:tune":
            module, _, attr = name.partition(":")
            return getattr(import_module(module), attr)(*args, **kwargs)
        return self.real().call(name, *args, **kwargs)


def _ids(window: MainWindow) -> dict[str, int]:
    return {n.name: n.id for n in window.session.snapshots[0].graph.nodes}


def _costs(ids: dict[str, int]) -> dict[int, tuple[float, float]]:
    """The pooling op is faster FP32 (tuning keeps it); the stem Conv (a lone INT8 island
    once dw is skipped), pw and fc cost the same either way, so the tuner times the stem
    alone and leaves it INT8."""
    same = (0.1, 0.1)
    return {ids["gap"]: (0.2, 0.05), ids["stem.conv"]: same, ids["pw.conv"]: same,
            ids["fc"]: same}


@pytest.fixture
def window(qtbot, sample_window: MainWindow, monkeypatch: pytest.MonkeyPatch) -> MainWindow:
    """The sample with dw.conv skipped, converted with "Tune for speed"."""
    real = qcore.child.shared_runner
    monkeypatch.setattr(child_calls, "shared_runner", lambda: TuneHere(real))
    monkeypatch.setattr(timing, "PairTimer", CostTimer)
    ids = _ids(sample_window)
    monkeypatch.setattr(CostTimer, "costs", _costs(ids))
    sample_window.session.set_skip_ids({ids["dw.conv"]})
    sample_window.config_panel.tune.setChecked(True)
    with qtbot.waitSignal(sample_window.job_finished, timeout=TIMEOUT) as blocker:
        sample_window.runs.convert()
    assert blocker.args == ["convert", True]
    run = sample_window.session.tune
    assert run is not None and run.tuned.tuned_ids == [ids["gap"]]
    return sample_window


def _run(qtbot, window: MainWindow) -> None:
    panel = window.results.advisor
    panel.rounds.setValue(3)
    panel.min_cosine.setValue(0.9)  # met at once: the search goes straight to the lone ops
    with qtbot.waitSignal(window.job_finished, timeout=TIMEOUT) as blocker:
        qtbot.keyClick(window, Qt.Key.Key_A,
                       Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert blocker.args == ["advisor", True], window.results.log_panel.text()[-600:]


def test_the_advisor_starts_from_the_tuned_configuration_and_reuses_its_timings(
        qtbot, window: MainWindow) -> None:
    ids = _ids(window)
    gap, stem = ids["gap"], ids["stem.conv"]
    _run(qtbot, window)
    panel = window.results.advisor
    advice = panel.advice
    assert advice is not None
    notes = [c.note for c in advice.candidates]
    # the first candidate is always "quantize everything"; the tuned start comes next
    assert notes[0] == "quantize everything"
    start = advice.candidates[1]
    assert start.note.startswith("start from --tune's configuration (1 ops kept FP32, "
                                 "measured ")
    assert start.op_ids_to_skip == [gap] and start.meets_bound
    assert panel.candidates.item(1, 6).text() == start.note
    assert stem in advice.lone_ops
    (lone,) = [c for c in advice.candidates if c.note.startswith(f"lone INT8 op {stem} ")]
    assert lone.note.endswith(", measured by --tune)"), lone.note
    assert lone.op_ids_to_skip == sorted([gap, stem])
    row = notes.index(lone.note)
    assert panel.candidates.item(row, 6).text() == lone.note
    summary = panel.summary.text()
    assert "Started from Tune for speed's configuration; 1 lone-op decision on its timings" \
        in summary
    log = window.results.log_panel.text()
    assert "Advisor starts from Tune for speed's configuration (op_ids_to_skip=" \
           f"{sorted([ids['dw.conv'], gap])}) and reuses the" in log
    assert "not reused" not in log


def test_a_changed_configuration_is_not_reused(qtbot, window: MainWindow) -> None:
    ids = _ids(window)
    window.session.toggle_skip(ids["fc"])  # after tuning: another key
    assert window.session.is_dirty()
    _run(qtbot, window)
    panel = window.results.advisor
    notes = [c.note for c in panel.advice.candidates]
    assert not any(n.startswith("start from --tune") for n in notes)
    assert not any(n.endswith("measured by --tune)") for n in notes)
    assert "Started from Tune for speed" not in panel.summary.text()
    assert "Advisor: Tune for speed's measurements not reused: the configuration changed " \
           "since it was measured" in window.results.log_panel.text()


def test_the_pairs_in_memory_are_those_the_cache_keeps(samples: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The app builds the start from the tune's result in memory: replaying its trials gives
    every pair the tuner wrote to its cache, keyed the same."""
    from qcore.convert import convert

    model = samples / "cnn_qdq.onnx"
    ids = {n.name: n.id for n in convert(model).snapshots[0].graph.nodes}
    monkeypatch.setattr(timing, "PairTimer", CostTimer)
    monkeypatch.setattr(CostTimer, "costs", _costs(ids))
    config = ConvertConfig(op_ids_to_skip=[ids["dw.conv"]])
    cache = cache_path(tmp_path / "int8.onnx")
    tuned = tune(model, config, TuneSettings(), cache_file=cache)
    summary, pairs, note = cached_measurements(model, config, TuneSettings(), cache)
    assert summary is not None, note
    assert len(pairs) > 3 and result_pairs(tuned) == pairs
