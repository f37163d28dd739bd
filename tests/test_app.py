"""The desktop app, driven through its real window (pytest-qt, offscreen).

Every wait is on a signal: the window's ``job_finished`` (open / convert / benchmark / export
workers) and the graph panel's ``snapshot_shown`` (layout worker).
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import re
from pathlib import Path

import onnx
import pyqtgraph as pg
import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent
from PySide6.QtWidgets import QApplication

from app.headless import view_state
from app.main_window import MainWindow
from qcore.config import ConvertConfig

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "resources" / "samples" / "cnn_qdq.onnx"
FP32_SAMPLE = ROOT / "resources" / "samples" / "cnn_fp32.onnx"
TIMEOUT = 30000
CONV_ID = 23  # dw.conv: INT8 by default in the CNN sample




def _open(qtbot, window: MainWindow, path: Path) -> None:
    with qtbot.waitSignals([window.job_finished, window.graph_panel.snapshot_shown],
                           timeout=TIMEOUT):
        window.open_model(path)


@pytest.fixture
def window(qtbot, make_window, tmp_path: Path, messages: list) -> MainWindow:
    from qcore import render

    if render.find_dot() is None:
        pytest.skip("Graphviz 'dot' is not installed: the graph view cannot lay out")
    win = make_window()
    _open(qtbot, win, SAMPLE)
    yield win
    win.close()


def show_pass(qtbot, window: MainWindow, name: str) -> None:
    row = next(i for i, s in enumerate(window.session.snapshots) if s.name == name)
    if window.pass_list.currentRow() == row:
        return
    with qtbot.waitSignal(window.graph_panel.snapshot_shown, timeout=TIMEOUT):
        window.pass_list.setCurrentRow(row)


def click_op(qtbot, window: MainWindow, op_id: int, button=Qt.MouseButton.LeftButton) -> None:
    view = window.graph_panel.view
    item = view.ops[op_id]
    view.centerOn(item)
    pos = view.mapFromScene(item.sceneBoundingRect().center())
    qtbot.mouseClick(view.viewport(), button, pos=pos)


def test_open_sample_lists_every_pass_and_draws_items(window: MainWindow) -> None:
    snaps = window.session.snapshots
    assert window.pass_list.count() == len(snaps) > 10
    assert snaps[0].name == "quant_orig"
    assert "quant_orig" in window.pass_list.item(0).text()
    view = window.graph_panel.view
    assert len(view.ops) == len(snaps[0].graph.nodes)  # every op is an item
    assert view.tensors and view.scene().items()
    assert "quant_orig" in window.graph_panel.title.text()
    assert window.windowTitle().startswith("cnn_qdq.onnx")
    assert window.settings.recent_files()[0].endswith("cnn_qdq.onnx")


def test_click_node_then_s_skips_it(qtbot, window: MainWindow) -> None:
    show_pass(qtbot, window, "quantize_placement")
    click_op(qtbot, window, CONV_ID)
    assert window.graph_panel.view.selected_op() == CONV_ID
    assert window.properties.op_id == CONV_ID
    text = window.properties.text()
    assert f"id: {CONV_ID}" in text and "op type: Conv" in text and "scale: u8" in text
    assert window.graph_panel.view.ops[CONV_ID].status == "int8"

    qtbot.keyClick(window.graph_panel.view, Qt.Key.Key_S)
    assert window.session.skip_ids == {CONV_ID}
    assert window.config_panel.skip_ids_shown() == [CONV_ID]
    item = window.graph_panel.view.ops[CONV_ID]
    assert (item.status, item.pending) == ("skipped", True)  # coloured at once
    assert "pending" in window.properties.header.text()

    qtbot.keyClick(window.graph_panel.view, Qt.Key.Key_S)  # S again: quantize it again
    assert window.config_panel.skip_ids_shown() == []
    assert (item.status, item.pending) == ("int8", False)


def test_context_menu_action_and_typed_ids(qtbot, window: MainWindow) -> None:
    window.toggle_skip(CONV_ID)  # what the context menu's "Skip this op" calls
    window.config_panel.id_edit.setText("26, 30")
    qtbot.keyClick(window.config_panel.id_edit, Qt.Key.Key_Return)
    assert window.config_panel.skip_ids_shown() == [CONV_ID, 26, 30]
    window.config_panel.skip_list.item(0).setSelected(True)
    window.config_panel.skip_list.actions()[0].trigger()  # its context menu's "Remove"
    assert window.session.skip_ids == {26, 30}


def test_unticking_an_op_type_previews_fp32(qtbot, window: MainWindow) -> None:
    show_pass(qtbot, window, "quantize_placement")
    concat = next(n.id for n in window.graph_panel.graph().nodes if n.op_type == "Concat")
    window.config_panel.type_boxes["Concat"].click()
    assert "Concat" not in window.session.config().ops_to_quantize
    assert window.session.config().ops_to_quantize  # the other types stay ticked
    item = window.graph_panel.view.ops[concat]
    assert (item.status, item.pending) == ("fp32", True)
    assert "Changed since" in window.config_panel.dirty.text()


def test_convert_keeps_skipped_op_fp32(qtbot, window: MainWindow) -> None:
    show_pass(qtbot, window, "quantize_placement")
    click_op(qtbot, window, CONV_ID)
    qtbot.keyClick(window.graph_panel.view, Qt.Key.Key_S)
    with qtbot.waitSignal(window.job_finished, timeout=TIMEOUT) as blocker:
        qtbot.keyClick(window, Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier)
    assert blocker.args == ["convert", True]
    assert window.session.result.config.op_ids_to_skip == [CONV_ID]
    assert window.pass_list.count() == len(window.session.snapshots)
    show_pass(qtbot, window, window.session.snapshots[-1].name)
    item = window.graph_panel.view.ops[CONV_ID]
    assert item.node.op_type == "Conv"  # not QLinearConv: it stayed FP32
    assert (item.status, item.pending) == ("skipped", False)
    assert item.node.reason.startswith("skipped by id")
    assert window.graph_panel.view.selected_op() == CONV_ID  # the selection followed the id
    assert "skipped by id" in window.properties.text()
    assert window.config_panel.dirty.text() == ""


def test_selection_follows_op_id_and_fused_ops(qtbot, window: MainWindow) -> None:
    click_op(qtbot, window, CONV_ID)
    show_pass(qtbot, window, window.session.snapshots[-1].name)
    assert window.graph_panel.view.selected_op() == CONV_ID  # now a QLinearConv
    assert window.graph_panel.view.ops[CONV_ID].node.op_type == "QLinearConv"
    show_pass(qtbot, window, "remove_fake_ops")
    relu = next(n for n in window.graph_panel.graph().nodes if n.op_type == "Relu")
    click_op(qtbot, window, relu.id)
    show_pass(qtbot, window, "fuse_activation")
    host = window.graph_panel.view.selected_op()
    assert host is not None and f"({relu.id})" in " ".join(
        window.graph_panel.view.ops[host].node.fused)
    assert "fused into" in window.properties.header.text()


def test_search_centres_on_matches(qtbot, window: MainWindow) -> None:
    qtbot.keyClick(window, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClicks(window.graph_panel.search.field, "Gemm")
    gemm = window.graph_panel.view.selected_op()
    assert window.graph_panel.view.ops[gemm].node.op_type == "Gemm"
    assert window.properties.op_id == gemm
    window.graph_panel.search.field.setText(f"Conv({CONV_ID})")
    assert window.graph_panel.view.selected_op() == CONV_ID
    window.graph_panel.search.field.setText("zzz-nothing")
    assert window.graph_panel.search.count.text() == "no match"


def test_s_after_a_search_skips_the_op_found(qtbot, window: MainWindow) -> None:
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=TIMEOUT)
    qtbot.keyClick(window, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    field = window.graph_panel.search.field
    assert field.hasFocus()
    qtbot.keyClicks(field, f"Conv({CONV_ID})")
    qtbot.keyClick(field, Qt.Key.Key_Return)  # accept the match: the graph has the keys
    assert window.graph_panel.view.hasFocus()
    assert window.graph_panel.view.selected_op() == CONV_ID
    qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_S)
    assert window.session.skip_ids == {CONV_ID}
    assert field.text() == f"Conv({CONV_ID})"  # S went to the graph, not into the field
    qtbot.keyClick(window, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClick(field, Qt.Key.Key_Escape)  # Escape clears and gives the graph the keys
    assert field.text() == "" and window.graph_panel.view.hasFocus()


def test_f3_steps_through_the_matches(qtbot, window: MainWindow) -> None:
    panel = window.graph_panel
    panel.search.field.setText("Conv")
    first = panel.view.selected_op()
    qtbot.keyClick(panel.view, Qt.Key.Key_F3)
    second = panel.view.selected_op()
    node = panel.view.ops[second].node
    assert second != first and "conv" in f"{node.op_type} {node.name}".lower()
    qtbot.keyClick(panel.view, Qt.Key.Key_F3, Qt.KeyboardModifier.ShiftModifier)
    assert panel.view.selected_op() == first


def test_a_model_dropped_on_the_graph_opens(qtbot, window: MainWindow) -> None:
    from PySide6.QtGui import QDragEnterEvent

    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(FP32_SAMPLE))])
    viewport = window.graph_panel.view.viewport()
    enter = QDragEnterEvent(QPoint(50, 50), Qt.DropAction.CopyAction, mime,
                            Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(viewport, enter)
    assert enter.isAccepted()
    drop = QDropEvent(QPointF(50, 50), Qt.DropAction.CopyAction, mime,
                      Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier)
    with qtbot.waitSignal(window.job_finished, timeout=TIMEOUT):
        QApplication.sendEvent(viewport, drop)
    assert window.session.path == FP32_SAMPLE


def test_zoom_shortcuts(qtbot, window: MainWindow) -> None:
    view = window.graph_panel.view
    before = view.scale_factor()
    qtbot.keyClick(window, Qt.Key.Key_Equal, Qt.KeyboardModifier.ControlModifier)
    assert view.scale_factor() == pytest.approx(before * 1.25)
    qtbot.keyClick(window, Qt.Key.Key_Minus, Qt.KeyboardModifier.ControlModifier)
    assert view.scale_factor() == pytest.approx(before)
    qtbot.keyClick(window, Qt.Key.Key_0, Qt.KeyboardModifier.ControlModifier)
    rect = view.mapFromScene(view.scene().itemsBoundingRect()).boundingRect()
    port = view.viewport().rect()
    assert rect.height() <= port.height() and rect.width() <= port.width()  # all of it shows


def test_benchmark_fills_table_and_sqnr_selects_op(qtbot, window: MainWindow,
                                                   tmp_path: Path) -> None:
    bench = window.results.bench
    bench.engine_boxes["openvino"].setChecked(False)
    bench.model_boxes["int8-onednn"].setChecked(False)
    bench.iters.setValue(3)
    bench.warmup.setValue(1)
    with qtbot.waitSignal(window.job_finished, timeout=120000) as blocker:
        qtbot.keyClick(window, Qt.Key.Key_B, Qt.KeyboardModifier.ControlModifier)
    assert blocker.args == ["benchmark", True]
    table = bench.table
    assert table.rowCount() == 3
    models = {table.item(r, 0).text() for r in range(3)}
    assert models == {"fp32", "qdq", "int8"}
    assert all(float(table.item(r, 3).text()) > 0 for r in range(3))  # p50 ms
    bars = [i for i in bench.chart.getPlotItem().items if isinstance(i, pg.BarGraphItem)]
    assert len(bars) == 3  # one p50 bar per model
    sqnr = window.results.accuracy.sqnr
    assert sqnr.rowCount() > 0 and window.results.accuracy.outputs.rowCount() > 0
    row = next(r for r in range(sqnr.rowCount())
               if sqnr.item(r, 0).data(Qt.ItemDataRole.UserRole) is not None)
    op_id = sqnr.item(row, 0).data(Qt.ItemDataRole.UserRole)
    sqnr.cellClicked.emit(row, 1)
    assert window.view_state.selection == op_id
    assert window.properties.op_id is not None
    for name in ("bench.json", "bench.csv"):
        with qtbot.waitSignal(window.job_finished, timeout=TIMEOUT):
            window.export_results(tmp_path / name)
    assert '"results"' in (tmp_path / "bench.json").read_text()
    assert (tmp_path / "bench.csv").read_text().startswith("model,engine")


def test_export_snapshot_all_and_models(qtbot, window: MainWindow, tmp_path: Path,
                                        messages: list) -> None:
    for name in ("snap.svg", "snap.png", "snap.dot"):
        with qtbot.waitSignal(window.job_finished, timeout=TIMEOUT):
            window.export_snapshot(tmp_path / name)
    assert b"<svg" in (tmp_path / "snap.svg").read_bytes()[:400]
    assert (tmp_path / "snap.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "snap.dot").read_text().startswith("digraph")
    with qtbot.waitSignal(window.job_finished, timeout=TIMEOUT):
        window.export_all(tmp_path / "debug")
    dots = sorted(p.name for p in (tmp_path / "debug").glob("*.dot"))
    assert len(dots) == len(window.session.snapshots) and "quant_orig.dot" in dots
    with qtbot.waitSignal(window.job_finished, timeout=TIMEOUT):
        window.save_int8(tmp_path / "m_int8.onnx")
    model = onnx.load(str(tmp_path / "m_int8.onnx"))
    assert any(n.op_type == "QLinearConv" for n in model.graph.node)
    with qtbot.waitSignal(window.job_finished, timeout=TIMEOUT) as blocker:
        window.save_fp32(SAMPLE)  # never over the input model
    assert blocker.args[1] is False
    assert messages and "overwrite" in messages[-1][1]


def test_config_round_trip_and_drop(qtbot, window: MainWindow, tmp_path: Path) -> None:
    window.toggle_skip(CONV_ID)
    window.config_panel.target.setCurrentText("onednn")
    window.save_config(tmp_path / "cfg.json")
    assert ConvertConfig.load(tmp_path / "cfg.json") == ConvertConfig([], [CONV_ID], "onednn")
    ConvertConfig(["Conv"], [26], "onnxruntime").save(tmp_path / "other.json")
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(tmp_path / "other.json"))])
    event = QDropEvent(QPoint(5, 5), Qt.DropAction.CopyAction, mime,
                       Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier)
    window.dropEvent(event)
    assert window.config_panel.skip_ids_shown() == [26]
    assert window.session.ops_to_quantize == ["Conv"]
    assert window.config_panel.type_boxes["Conv"].isChecked()
    assert not window.config_panel.type_boxes["Gemm"].isChecked()


def test_open_errors_show_a_message(qtbot, make_window, tmp_path: Path,
                                    messages: list) -> None:
    window = make_window()
    bad = tmp_path / "notes.onnx"
    bad.write_text("not a model")
    with qtbot.waitSignal(window.job_finished, timeout=TIMEOUT) as blocker:
        window.open_model(bad)
    assert blocker.args == ["open", False]
    assert messages[-1][0] == "Cannot open the model" and "not an ONNX model" in messages[-1][1]
    with qtbot.waitSignal(window.job_finished, timeout=TIMEOUT):
        window.open_model(FP32_SAMPLE)
    assert messages[-1][0] == "Not a quant model"
    result = window.session.result
    assert result is not None and not result.quantized  # its graph is shown, nothing converted
    assert window.pass_list.count() == 1
    assert all(n.status == "fp32" and "not a quant model" in n.reason for n in result.decisions)
    window.close()


def test_graphviz_missing_banner_but_conversion_works(qtbot, make_window, tmp_path: Path,
                                                      messages: list, monkeypatch) -> None:
    from qcore import render

    monkeypatch.setattr(render, "find_dot", lambda: None)
    window = make_window()
    _open(qtbot, window, SAMPLE)
    assert window.pass_list.count() == len(window.session.snapshots)
    assert not window.graph_panel.banner.isHidden()
    assert "Graphviz" in window.graph_panel.banner.text()
    assert not window.graph_panel.view.ops
    with qtbot.waitSignal(window.job_finished, timeout=TIMEOUT) as blocker:
        window.export_snapshot(tmp_path / "x.svg")
    assert blocker.args[1] is False and messages[-1][0] == "Graphviz is missing"
    window.close()


def test_big_graph_starts_in_neighbourhood_view(qtbot, make_window, messages: list,
                                                monkeypatch) -> None:
    from qcore import render

    if render.find_dot() is None:
        pytest.skip("Graphviz 'dot' is not installed")
    monkeypatch.setattr(view_state, "LARGE_GRAPH_OPS", 20)
    window = make_window()
    _open(qtbot, window, SAMPLE)
    panel = window.graph_panel
    assert panel.state.near and "neighbourhood" in panel.banner.text()
    assert 0 < len(panel.view.ops) < len(panel.graph().nodes)
    with qtbot.waitSignal(panel.snapshot_shown, timeout=TIMEOUT):
        panel.state.set_near(False)
    assert len(panel.view.ops) == len(panel.graph().nodes)
    window.close()


def test_selecting_an_op_outside_the_neighbourhood_centres_it(qtbot, window: MainWindow,
                                                              ) -> None:
    panel = window.graph_panel
    first, last = panel.graph().nodes[0].id, panel.graph().nodes[-1].id
    click_op(qtbot, window, first)
    panel.depth_spin.setValue(1)
    with qtbot.waitSignal(panel.snapshot_shown, timeout=TIMEOUT):
        window.actions_["focus"].trigger()
    assert panel.state.near and first in panel.view.ops and last not in panel.view.ops
    with qtbot.waitSignal(panel.snapshot_shown, timeout=TIMEOUT):
        panel.select_op(last)  # e.g. a row of the SQNR table
    assert last in panel.view.ops and first not in panel.view.ops
    assert panel.view.selected_op() == last == window.view_state.selection
    assert window.properties.op_id == last


def test_about_lists_versions(monkeypatch: pytest.MonkeyPatch) -> None:
    from app.about import versions
    from qcore import render

    assert render.find_dot() is not None, "make setup installs Graphviz"
    table = dict(versions())
    assert re.fullmatch(r"\d+\.\d+.*", table["Graphviz dot"]), table["Graphviz dot"]
    assert table["onnx"] == onnx.__version__
    assert table["Qt"].startswith("6.")
    monkeypatch.setattr(render, "find_dot", lambda: None)
    assert dict(versions())["Graphviz dot"] == "not installed"


def test_recent_files_show_their_folders() -> None:
    from app.actions import recent_label

    home = Path.home()
    one, two = home / "a" / "qdq.onnx", Path("/data/b&c/qdq.onnx")
    assert recent_label(str(one), 0) == "&1  qdq.onnx   ~/a"
    assert recent_label(str(two), 9) == "qdq.onnx   /data/b&&c"  # & is not a mnemonic
    deep = Path("/" + "/".join(f"folder{i}" for i in range(30))) / "m.onnx"
    label = recent_label(str(deep), 1)
    assert len(label) < 80 and "\u2026" in label and label.endswith("folder29")


def test_a_running_benchmark_says_so_and_its_progress_fits(qtbot, window: MainWindow) -> None:
    from PySide6.QtGui import QFontMetrics

    bench = window.results.bench
    bench.engine_boxes["openvino"].setChecked(False)
    bench.iters.setValue(10**6)
    bench.warmup.setValue(0)
    bar = window.runner.progress
    with qtbot.waitSignal(window.job_finished, timeout=TIMEOUT) as blocker:
        assert window.runs.benchmark() is not None
        assert bench.notes.text().startswith("Benchmarking (") and "Ctrl+B" not in \
            bench.notes.text()
        qtbot.waitUntil(lambda: bar.maximum() > 0 and bar.value() > 0, timeout=TIMEOUT)
        width = QFontMetrics(bar.font()).horizontalAdvance(bar.format())
        assert width <= bar.width() and "\n" not in bar.format()
        assert bar.toolTip().endswith(bar.format().split()[-1])  # the whole text, in its tip
        window.cancel_job()
    assert blocker.args == ["benchmark", False]
    assert not bench.notes.text().startswith("Run Benchmark (Ctrl+B) to time")


def test_collapsing_works_at_any_size(qtbot, make_window, tmp_path: Path,
                                      messages: list) -> None:
    from devtools import modelgen

    small = tmp_path / "bert3_qdq.onnx"  # three layers, under BLOCKS_ABOVE_OPS ops
    onnx.save(modelgen.quantize_qdq(modelgen.bert_like(layers=3, hidden=32, heads=2, ffn=64,
                                                       seq=8)), str(small))
    window = make_window()
    with qtbot.waitSignal(window.job_finished, timeout=TIMEOUT):
        window.open_model(small)
    panel = window.graph_panel
    qtbot.waitUntil(lambda: panel.view_job is None and panel.view.items_ready(),
                    timeout=TIMEOUT)
    assert len(panel.graph().nodes) <= view_state.BLOCKS_ABOVE_OPS
    assert not panel.view.blocks  # small: every op at first
    with qtbot.waitSignal(panel.snapshot_shown, timeout=TIMEOUT):
        panel.set_view_mode("blocks")  # View > Collapse repeated blocks
    qtbot.waitUntil(lambda: panel.view_job is None and panel.view.items_ready(),
                    timeout=TIMEOUT)
    assert len(panel.view.blocks) >= 2
    assert "found by name" in panel.banner.text() and "layer#" in panel.banner.text()
    window.close()


def test_command_line() -> None:
    from app.__main__ import parse_args

    args = parse_args(["model.onnx", "--config", "c.json"])
    assert (args.model, args.config) == ("model.onnx", "c.json")
    assert parse_args([]).model is None


def test_layout_cancel_stops_graphviz(qtbot, make_window, tmp_path: Path,
                                      messages: list, monkeypatch) -> None:
    from qcore import render

    slow = tmp_path / "dot"
    slow.write_text("#!/bin/sh\nexec tail -f /dev/null\n")  # never answers
    slow.chmod(0o755)
    monkeypatch.setattr(render, "find_dot", lambda: str(slow))
    window = make_window()
    with qtbot.waitSignal(window.job_finished, timeout=TIMEOUT):
        window.open_model(SAMPLE)
    panel = window.graph_panel
    job = panel.view_job
    assert job is not None  # Graphviz is "running"
    with qtbot.waitSignal(job.signals.finished, timeout=TIMEOUT):
        window.cancel_job()  # no conversion runs, so Cancel stops the layout
    assert "cancelled" in panel.view.scene().items()[0].text()
    window.close()


def test_settings_are_remembered(qtbot, make_window, messages: list) -> None:
    window = make_window()
    with qtbot.waitSignal(window.job_finished, timeout=TIMEOUT):
        window.open_model(SAMPLE)
    first = window.size()
    window.resize(first.width() - 40, first.height() - 50)
    saved = window.size()  # as small as the docks allow
    assert saved != first
    window.actions_["legend"].setChecked(False)
    window.close()
    again = make_window()
    assert again.size() == saved  # not the first-start size
    assert again.settings.recent_files()[0].endswith("cnn_qdq.onnx")
    label = again.actions_.recent_menu.actions()[0].text()
    assert label.startswith("&1  cnn_qdq.onnx") and label.endswith(str(SAMPLE.parent)[-20:])
    assert not again.actions_["legend"].isChecked() and again.graph_panel.legend.isHidden()
    again.close()


def test_a_dropped_paddle_model_folder_opens(qtbot, make_window,
                                             messages: list) -> None:
    from PySide6.QtGui import QDragEnterEvent

    window = make_window()
    folder = ROOT / "tests" / "data" / "paddle" / "cnn_qat_onnx"
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(folder))])
    enter = QDragEnterEvent(QPoint(5, 5), Qt.DropAction.CopyAction, mime,
                            Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier)
    enter.ignore()
    window.dragEnterEvent(enter)
    assert enter.isAccepted()
    drop = QDropEvent(QPoint(5, 5), Qt.DropAction.CopyAction, mime,
                      Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier)
    with qtbot.waitSignal(window.job_finished, timeout=TIMEOUT) as blocker:
        window.dropEvent(drop)
    assert blocker.args == ["open", True], messages
    assert window.session.result.quantized and window.pass_list.count() > 1
    assert any(n.name.startswith("paddle_op_") for n in window.session.result.decisions)
    window.close()


def test_diff_view_draws_only_what_the_pass_changed(qtbot, window: MainWindow) -> None:
    panel, snaps = window.graph_panel, window.session.snapshots
    show_pass(qtbot, window, "fuse_activation")
    row = window.pass_list.currentRow()
    before, after = snaps[row - 1].graph, snaps[row].graph
    rewritten = {n.id for n in after.nodes
                 if (b := before.node_by_id(n.id)) is not None and b.fused != n.fused}
    assert rewritten  # the CNN's Conv+Relu pairs
    with qtbot.waitSignal(panel.snapshot_shown, timeout=TIMEOUT):
        window.actions_["diff"].trigger()
    qtbot.waitUntil(panel.view.items_ready, timeout=TIMEOUT)
    drawn = set(panel.view.ops)
    assert rewritten <= drawn and len(drawn) < len(after.nodes)
    neighbours = {p.id for i in rewritten for t in after.node_by_id(i).inputs
                  if (p := after.producers().get(t)) is not None}
    assert neighbours <= drawn  # one hop of context
    assert "fuse_activation" in panel.banner.text() and "Relu" in panel.banner.text()
    show_pass(qtbot, window, "cleanup")  # follows the pass list
    assert window.actions_["diff"].isChecked()
    with qtbot.waitSignal(panel.snapshot_shown, timeout=TIMEOUT):
        panel.banner.linkActivated.emit("nodiff")  # its "Show every op" link
    qtbot.waitUntil(panel.view.items_ready, timeout=TIMEOUT)
    assert not window.actions_["diff"].isChecked()
    assert len(panel.view.ops) == len(snaps[window.pass_list.currentRow()].graph.nodes)
