"""Run > Verify passes: each pass row shows its drift, and a click selects the drifting op."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from importlib import import_module
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from app.headless import child_calls
from app.main_window import MainWindow
from app.pass_list import ROLE_DRIFT, ROLE_DRIFT_OP, ROLE_DRIFT_STATUS
from qcore.passes.compute_weight_scales import ComputeWeightScales

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "resources" / "samples" / "cnn_qdq.onnx"
TIMEOUT = 60000


class InProcessRunner:
    """Runs the child's qcore functions in this process, so a monkeypatched pass applies."""

    def call(self, name: str, *args, **kwargs):
        module, _, attr = name.partition(":")
        return getattr(import_module(module), attr)(*args, **kwargs)


@pytest.fixture
def window(sample_window: MainWindow) -> MainWindow:
    return sample_window


def _verify(qtbot, window: MainWindow) -> None:
    with qtbot.waitSignal(window.job_finished, timeout=TIMEOUT,
                          check_params_cb=lambda name, ok: name == "verify") as blocker:
        window.actions_["verify"].trigger()
    assert blocker.args == ["verify", True]


def test_verify_shows_every_pass_drift(qtbot, window: MainWindow) -> None:
    assert window.actions_["verify"].isEnabled()
    _verify(qtbot, window)
    report = window.runs.verify_report
    assert report is not None and report.ok
    items = [window.pass_list.item(i) for i in range(window.pass_list.count())]
    assert len(report.rows) == len(items) == len(window.session.snapshots)
    for item in items:
        assert item.data(ROLE_DRIFT).startswith("\u2713 cos "), item.data(ROLE_DRIFT)
        assert item.data(ROLE_DRIFT_STATUS) == "ok" and item.data(ROLE_DRIFT_OP) is None
        assert "verify: ok" in item.toolTip()


def test_a_click_selects_the_drifting_op(qtbot, window: MainWindow, monkeypatch,
                                         ) -> None:
    original = ComputeWeightScales.apply
    planted: list[int] = []

    def scale_one_weight(self, ctx):
        result = original(self, ctx)
        conv = next(n for n in ctx.graph.nodes if n.name == "res.a1.conv")
        ctx.graph.initializers[conv.inputs[1]] = ctx.graph.initializers[conv.inputs[1]] * 1.5
        planted.append(conv.id)
        return result

    monkeypatch.setattr(ComputeWeightScales, "apply", scale_one_weight)
    monkeypatch.setattr(child_calls, "shared_runner", InProcessRunner)
    _verify(qtbot, window)
    failed = window.runs.verify_report.failed
    assert failed is not None and failed.name == "compute_weight_scales"
    row = next(i for i, s in enumerate(window.session.snapshots) if s.name == failed.name)
    item = window.pass_list.item(row)
    assert item.data(ROLE_DRIFT_STATUS) == "drift" and item.data(ROLE_DRIFT_OP) == planted[0]
    assert window.pass_list.item(row + 1).data(ROLE_DRIFT).startswith("\u2013 not checked")
    window.pass_list.scrollToItem(item)
    with qtbot.waitSignal(window.graph_panel.snapshot_shown, timeout=TIMEOUT):
        qtbot.mouseClick(window.pass_list.viewport(), Qt.MouseButton.LeftButton,
                         pos=window.pass_list.drift_line_centre(row))
    assert window.pass_list.currentRow() == row
    assert window.view_state.selection == planted[0]
    assert window.graph_panel.view.selected_op() == planted[0]
