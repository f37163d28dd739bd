"""Configuration > "Tune for speed": Convert / Save INT8 model run ``qcore convert --tune``.

The job runs in this process (the child's functions called directly), so the tuner's timer
can be replaced by a fake: a model's "latency" is the sum of per-op costs read off the INT8
file, where the planted op (the stem Conv, a lone INT8 island once dw is skipped) is cheaper
in float. Waits are on signals and conditions only.
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import threading
from importlib import import_module
from pathlib import Path

import onnx
import pytest
from PySide6.QtCore import QSettings, Qt

from app.headless import child_calls
from app.main_window import MainWindow
from app.settings import AppSettings
from qcore.bench.engines import op_id_of
from qcore.status import ReasonKind
from qcore.tune import PairTiming, Stats, cache_path, timing

TIMEOUT = 60000
FLOAT = {"Conv", "Gemm", "MatMul"}
INT8 = {"QLinearConv", "QGemm", "QLinearMatMul"}


class InProcessRunner:
    """Runs the child's qcore functions in this process, so the fake timer applies."""

    def call(self, name: str, *args, **kwargs):
        module, _, attr = name.partition(":")
        return getattr(import_module(module), attr)(*args, **kwargs)


class FakeTimer:
    """Stands in for ``timing.PairTimer``: 0.1 per INT8 compute op, 0.3 per float one; the
    planted op 1.0 INT8, 0.5 float. With ``hold`` a measurement waits for ``release`` (set by
    the test after Cancel), then the tuner's cancel check raises."""

    planted = -1
    hold = False
    measuring = threading.Event()
    release = threading.Event()
    made: list[tuple[str, list]] = []  # (engine, feeds) of every timer made

    def __init__(self, engine, feeds, settings, check=None) -> None:
        self.check = check
        FakeTimer.made.append((engine.name, feeds))

    @classmethod
    def cost(cls, path: Path) -> float:
        total = 0.0
        for node in onnx.load(str(path)).graph.node:
            if node.op_type in FLOAT | INT8:
                planted = op_id_of(node.name) == cls.planted
                total += (0.5 if planted else 0.3) if node.op_type in FLOAT else \
                    (1.0 if planted else 0.1)
        return total

    def measure(self, base: Path, trial: Path, longer: float = 1.0) -> PairTiming:
        FakeTimer.measuring.set()
        if FakeTimer.hold:
            FakeTimer.release.wait(TIMEOUT / 1000)
            self.check()  # Cancelled: the test pressed Cancel before releasing
        a, b = self.cost(base), self.cost(trial)
        return PairTiming(Stats(a, 0.99 * a, 1.01 * a, 20), Stats(b, 0.99 * b, 1.01 * b, 20))

    def measure_all(self, paths: list[Path], longer: float = 1.0) -> list[list[float]]:
        """The final side-by-side check (default, tuned, FP32): 20 runs of each."""
        return [[self.cost(path)] * 20 for path in paths]

    def close(self) -> None:
        pass


@pytest.fixture
def window(qtbot, sample_window: MainWindow, monkeypatch: pytest.MonkeyPatch) -> MainWindow:
    """The sample converted with dw.conv skipped (so stem.conv is a lone INT8 island), then
    the box ticked."""
    monkeypatch.setattr(child_calls, "shared_runner", InProcessRunner)
    monkeypatch.setattr(timing, "PairTimer", FakeTimer)
    ids = {n.name: n.id for n in sample_window.session.snapshots[0].graph.nodes}
    FakeTimer.planted, FakeTimer.hold = ids["stem.conv"], False
    FakeTimer.measuring.clear()
    FakeTimer.release.clear()
    FakeTimer.made = []
    sample_window.session.set_skip_ids({ids["dw.conv"]})
    with qtbot.waitSignal(sample_window.job_finished, timeout=TIMEOUT):
        sample_window.runs.convert()
    sample_window.config_panel.tune.setChecked(True)
    return sample_window


def _logged(window: MainWindow) -> str:
    return window.results.log_panel.text()


def test_tuned_save_keeps_the_planted_op_fp32_with_its_measured_reason(
        qtbot, window: MainWindow, tmp_path: Path) -> None:
    out = tmp_path / "out" / "cnn_int8.onnx"
    out.parent.mkdir()
    with qtbot.waitSignal(window.job_finished, timeout=TIMEOUT) as blocker:
        window.save_int8(out)
    assert blocker.args == ["save int8", True]
    planted = FakeTimer.planted
    types = {op_id_of(n.name): n.op_type for n in onnx.load(str(out)).graph.node}
    assert types[planted] == "Conv", "the planted op is saved FP32"
    assert cache_path(out).is_file(), "the measurements sit beside the INT8 output"
    node = next(n for n in window.session.result.decisions if n.id == planted)
    assert node.reason.kind is ReasonKind.TUNED
    table = window.results.decisions
    row = next(r for r in range(table.rowCount())
               if table.item(r, 0).data(Qt.ItemDataRole.UserRole) == planted)
    reason = table.item(row, 5).text()
    assert "measured" in reason and "ms INT8 in this model" in reason
    assert table.item(row, 4).text() == "FP32" and table.item(row, 5).toolTip() == reason
    assert not window.session.is_dirty(), "the user's config is still the one applied"
    log = _logged(window)
    assert "Tuning kept 1 op FP32" in log and f"new saved in {cache_path(out)}" in log

    with qtbot.waitSignal(window.job_finished, timeout=TIMEOUT):
        window.save_int8(out)  # again: the cache answers
    assert "tune cache: used, nothing timed" in _logged(window)


def test_cancel_during_tuning_stops_and_writes_nothing(qtbot, window: MainWindow,
                                                       tmp_path: Path) -> None:
    out = tmp_path / "cnn_int8.onnx"
    FakeTimer.hold = True
    with qtbot.waitSignal(window.job_finished, timeout=TIMEOUT) as blocker:
        window.save_int8(out)
        qtbot.waitUntil(FakeTimer.measuring.is_set, timeout=TIMEOUT)
        assert window.actions_["cancel"].isEnabled()
        window.actions_["cancel"].trigger()
        FakeTimer.release.set()
    assert blocker.args == ["save int8", False]
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".onnx") == []


def test_the_box_is_remembered(qtbot, make_window, tmp_path: Path) -> None:
    first = make_window()
    assert not first.config_panel.tune.isChecked()
    assert "may take minutes" in first.config_panel.tune.toolTip()
    first.config_panel.tune.setChecked(True)
    first.close()
    settings = AppSettings(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    assert settings.tune_for_speed()
    assert make_window().config_panel.tune.isChecked()


def test_tuned_convert_keeps_no_measurements(qtbot, window: MainWindow) -> None:
    folder = window.session.path.parent
    before = sorted(p.name for p in folder.iterdir())
    with qtbot.waitSignal(window.job_finished, timeout=TIMEOUT) as blocker:
        window.actions_["convert"].trigger()
    assert blocker.args == ["convert", True]
    node = next(n for n in window.session.result.decisions if n.id == FakeTimer.planted)
    assert node.reason.kind is ReasonKind.TUNED and not window.session.is_dirty()
    assert "tune cache: none" in _logged(window)
    assert sorted(p.name for p in folder.iterdir()) == before, "nothing left beside the model"


def test_engine_budget_and_the_benchmark_inputs_reach_the_tuner(
        qtbot, window: MainWindow, tmp_path: Path, make_window) -> None:
    """Tune on OpenVINO for 30 s on the Benchmark tab's .npz, as ``qcore convert --target
    onednn --tune --engine openvino --tune-budget 30 --inputs F``; both are remembered."""
    import numpy as np

    from app.headless.input_source import InputSource
    from qcore.bench.inputs import model_inputs

    panel = window.config_panel
    assert panel.tune_engine.isEnabled() and panel.tune_engine_name() == ""  # auto
    assert panel.tune_budget.value() == 120  # qcore's default
    panel.target.setCurrentText("onednn")  # OpenVINO cannot read ONNX Runtime's QLinear ops
    panel.tune_engine.setCurrentIndex(panel.tune_engine.findData("openvino"))
    panel.tune_budget.setValue(30)
    spec = model_inputs(window.session.path)[0]
    shape = [d if isinstance(d, int) else 1 for d in spec.shape]
    image = np.linspace(-1, 1, int(np.prod(shape)), dtype=np.float32).reshape(shape)
    npz = tmp_path / "feeds.npz"
    np.savez(npz, **{spec.name: image[None]})  # one sample
    window.session.set_inputs(InputSource("file", str(npz)))
    with qtbot.waitSignal(window.job_finished, timeout=TIMEOUT) as blocker:
        window.actions_["convert"].trigger()
    assert blocker.args == ["convert", True], _logged(window)[-600:]
    assert FakeTimer.made and {engine for engine, _ in FakeTimer.made} == {"openvino"}
    feeds = FakeTimer.made[0][1]
    assert len(feeds) == 1 and np.array_equal(feeds[0][spec.name], image)
    assert "engine openvino, budget 30 s, inputs: feeds.npz" in _logged(window)

    panel.tune.setChecked(False)
    assert not panel.tune_budget.isEnabled()
    again = make_window()
    assert again.config_panel.tune_engine_name() == "openvino"
    assert again.config_panel.tune_budget.value() == 30
    again.close()
