"""The Advisor tab, driven through the real window (pytest-qt, offscreen): on a model with one
deliberately poor activation scale, the advisor ranks that op first and its advice applies to
the configuration panel."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from pathlib import Path

import pytest
from conftest import POOR_SCALE_TENSOR
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox, QTableWidget

from app.main_window import MainWindow
from qcore.convert import convert

TIMEOUT = 60000


@pytest.fixture
def window(qtbot, make_window, tmp_path: Path, planted: Path, monkeypatch: pytest.MonkeyPatch):
    from qcore import render

    if render.find_dot() is None:
        pytest.skip("Graphviz 'dot' is not installed: the graph view cannot lay out")
    for name in ("critical", "warning", "information", "question"):
        monkeypatch.setattr(QMessageBox, name, staticmethod(
            lambda *_a, **_k: QMessageBox.StandardButton.Ok))
    win = make_window()
    with qtbot.waitSignals([win.job_finished, win.graph_panel.snapshot_shown], timeout=TIMEOUT):
        win.open_model(planted)
    yield win
    win.close()


def _bad_op(planted: Path) -> int:
    return next(n.id for n in convert(planted).decisions if POOR_SCALE_TENSOR in n.outputs)


def _run(qtbot, window: MainWindow) -> None:
    panel = window.results.advisor
    panel.rounds.setValue(3)
    with qtbot.waitSignal(window.job_finished, timeout=TIMEOUT) as blocker:
        qtbot.keyClick(window, Qt.Key.Key_A,
                       Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert blocker.args == ["advisor", True]


def _click_row(qtbot, table: QTableWidget, row: int, column: int = 0) -> None:
    rect = table.visualItemRect(table.item(row, column))
    qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())


def test_advisor_ranks_the_planted_op_and_applies_the_best(qtbot, window: MainWindow,
                                                           planted: Path) -> None:
    panel = window.results.advisor
    live: list[str] = []
    panel.candidates.model().rowsInserted.connect(lambda *_: live.append(
        "running" if window.runner.busy else "done"))
    _run(qtbot, window)
    assert window.results.currentWidget() is panel
    bad = _bad_op(planted)
    top = panel.sensitive.item(0, 3)
    assert top.data(Qt.ItemDataRole.UserRole) == bad
    assert top.text().startswith(f"Conv({bad})")
    assert "running" in live, "progress rows appear while the search runs"
    best = panel.best()
    assert best is not None and best.meets_bound and bad in best.op_ids_to_skip
    assert panel.candidates.rowCount() == len(panel.advice.candidates)
    assert "meets" in panel.summary.text() and "--op_ids_to_skip" in panel.summary.text()
    assert window.graph_panel.overlays.sqnr == panel.heat_map() and bad in panel.heat_map()

    assert window.session.skip_ids == set()
    qtbot.mouseClick(panel.apply_button, Qt.MouseButton.LeftButton)
    assert set(best.op_ids_to_skip) <= set(window.config_panel.skip_ids_shown())
    assert window.session.skip_ids == set(best.op_ids_to_skip)
    node = window.session.find_op(bad)
    assert window.session.preview_status(node) == ("skipped", True)  # pending colour
    assert window.session.is_dirty()


def test_rows_select_ops_and_skip_buttons_toggle(qtbot, window: MainWindow,
                                                 planted: Path) -> None:
    panel = window.results.advisor
    _run(qtbot, window)
    bad = _bad_op(planted)
    _click_row(qtbot, panel.sensitive, 0, 1)
    assert window.view_state.selection == bad
    assert window.properties.op_id == bad

    second = panel.sensitive.item(1, 0).data(Qt.ItemDataRole.UserRole)
    _click_row(qtbot, panel.sensitive, 1, 2)
    assert window.view_state.selection == second

    button = panel.sensitive.cellWidget(0, 0)
    ids = set(button.property("skip_ids"))
    assert bad in ids and button.text().startswith("Skip")
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    assert window.session.skip_ids == ids
    assert button.text().startswith("Quantize")
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    assert window.session.skip_ids == set()


def test_cancel_stops_the_advisor(qtbot, window: MainWindow) -> None:
    panel = window.results.advisor
    with qtbot.waitSignal(window.job_finished, timeout=TIMEOUT) as blocker:
        job = window.runs.run_advisor()
        assert job is not None and window.run_job is job
        window.cancel_job()
    assert blocker.args == ["advisor", False]
    assert job.is_cancelled()
    assert "Cancelled" in panel.summary.text()
    assert not panel.apply_button.isEnabled() and panel.advice is None
    assert window.actions_["advise"].isEnabled()  # ready to run again


def test_opening_another_model_clears_the_advice(qtbot, window: MainWindow) -> None:
    panel = window.results.advisor
    _run(qtbot, window)
    assert panel.advice is not None and panel.candidates.rowCount() > 0
    sample = Path(__file__).resolve().parents[1] / "resources" / "samples" / "cnn_qdq.onnx"
    with qtbot.waitSignal(window.job_finished, timeout=TIMEOUT):
        window.open_model(sample)
    assert panel.advice is None and not panel.apply_button.isEnabled()
    assert all(t.rowCount() == 0 for t in (panel.candidates, panel.sensitive, panel.lone))
    assert "press Run advisor" in panel.summary.text()
