"""What ran, per op, in the app: the Benchmark panel's 'Per op' option runs qcore's per-op
profile of the INT8 model in the background, the 'What ran' tab lists it, and the graph can be
coloured by it (pytest-qt, offscreen; every wait is on a signal or a condition)."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import json
from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QColor

from app.headless.per_op_view import RAN_FILL
from app.main_window import MainWindow
from app.per_op_panel import COLUMNS, SORT_ROLE
from qcore.bench.nodedata import TIME_GRADIENT, per_op_node_data

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "resources" / "samples" / "cnn_qdq.onnx"
TIMEOUT = 60000
SKIP = 23  # dw.conv: INT8 by default; skipped, ONNX Runtime runs it as a float NCHWc Conv
COL = {name: i for i, name in enumerate(COLUMNS)}


@pytest.fixture
def window(sample_window: MainWindow) -> MainWindow:
    return sample_window


def _skip_and_convert(qtbot, window: MainWindow) -> None:
    window.graph_panel.select_op(SKIP)
    window.toggle_skip(SKIP)
    with qtbot.waitSignal(window.job_finished, timeout=TIMEOUT) as blocker:
        qtbot.keyClick(window, Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier)
    assert blocker.args == ["convert", True]


def _set_up_bench(window: MainWindow, engines: tuple[str, ...] = ("onnxruntime",),
                  runs: int = 3) -> None:
    bench = window.results.bench
    for role, box in bench.model_boxes.items():
        box.setChecked(role == "int8")
    for name, box in bench.engine_boxes.items():
        box.setChecked(name in engines)
    bench.iters.setValue(2)
    bench.warmup.setValue(0)
    bench.accuracy.setChecked(False)
    bench.per_tensor.setChecked(False)
    bench.per_op.setChecked(True)
    bench.per_op_runs = runs


def _benchmark(qtbot, window: MainWindow, ok: bool = True) -> None:
    with qtbot.waitSignal(window.job_finished, timeout=TIMEOUT) as blocker:
        qtbot.keyClick(window, Qt.Key.Key_B, Qt.KeyboardModifier.ControlModifier)
    assert blocker.args == ["benchmark", ok]


def _show_placement(qtbot, window: MainWindow) -> None:
    row = next(i for i, s in enumerate(window.session.snapshots)
               if s.name == "quantize_placement")
    with qtbot.waitSignal(window.graph_panel.snapshot_shown, timeout=TIMEOUT):
        window.pass_list.setCurrentRow(row)


def _rows(window: MainWindow) -> dict[int, dict[str, str]]:
    table = window.results.per_op.table
    return {int(table.item(r, 0).data(Qt.ItemDataRole.UserRole)):
            {name: table.item(r, c).text() for name, c in COL.items()}
            for r in range(table.rowCount())}


def _convs(window: MainWindow) -> list[int]:
    return [n.id for n in window.session.result.decisions if n.op_type == "Conv"]


def _fill_at_left(qtbot, window: MainWindow, op_id: int) -> QColor:
    """The colour painted inside op ``op_id``'s box, left of its text."""
    view = window.graph_panel.view
    item = view.ops[op_id]
    view.centerOn(item)
    rect = item.sceneBoundingRect()
    inner = item.mapToScene(item.rect.left() + 4, 0)
    point = view.mapFromScene(inner.x(), rect.center().y())
    image = view.viewport().grab().toImage()
    return image.pixelColor(point + QPoint(1, 0))


def test_skipped_conv_ran_float_in_the_table_and_the_graph(qtbot, window: MainWindow,
                                                           tmp_path: Path) -> None:
    _skip_and_convert(qtbot, window)
    _set_up_bench(window)
    assert "per-op profile" in window.results.bench.settings_text()
    _benchmark(qtbot, window)
    panel = window.results.per_op
    assert window.results.tabText(window.results.currentIndex()) == "Benchmark"
    assert panel.result is not None and panel.result.engine == "onnxruntime"
    rows = _rows(window)
    assert (rows[SKIP]["Ours"], rows[SKIP]["Ran"], rows[SKIP]["Flag"]) == ("FP32", "ran float", "")
    others = [c for c in _convs(window) if c != SKIP]
    assert others and all(rows[c]["Ran"] == "ran INT8" and rows[c]["Ours"] == "INT8"
                          for c in others)
    summary = panel.summary.text()
    assert "int8 on onnxruntime" in summary and "Q/DQ" in summary and "reorders" in summary
    assert "VNNI: avx512_vnni" in summary and "AMX: amx_int8" in summary

    # sortable: a click on the time header orders the rows by time
    table, header = panel.table, panel.table.horizontalHeader()
    for _ in range(2):
        x = header.sectionViewportPosition(COL["Time ms"]) + 5
        qtbot.mouseClick(header.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(x, 5))
        times = [table.item(r, COL["Time ms"]).data(SORT_ROLE) for r in range(table.rowCount())]
        order = header.sortIndicatorOrder()
        assert times == sorted(times, reverse=order == Qt.SortOrder.DescendingOrder)

    # a click on a row selects the op in the graph, through the view state
    _show_placement(qtbot, window)
    row = next(r for r in range(table.rowCount())
               if table.item(r, 0).data(Qt.ItemDataRole.UserRole) == SKIP)
    table.scrollToItem(table.item(row, 1))
    qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton,
                     pos=table.visualItemRect(table.item(row, 1)).center())
    assert window.view_state.selection == SKIP
    assert window.graph_panel.view.selected_op() == SKIP
    props = window.properties.text()
    assert "What ran (int8 on onnxruntime)" in props and "ran: ran float" in props
    # an op of the INT8 model only (a QuantizeLinear the quantize pass added) is shown in
    # the last pass that has it
    placement = window.graph_panel.graph()
    added = next(r for r in panel.result.ops if r.op_type == "QuantizeLinear"
                 and placement.node_by_id(r.op_id) is None)
    row = next(r for r in range(table.rowCount())
               if table.item(r, 0).data(Qt.ItemDataRole.UserRole) == added.op_id)
    table.scrollToItem(table.item(row, 1))
    with qtbot.waitSignal(window.graph_panel.snapshot_shown, timeout=TIMEOUT):
        qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton,
                         pos=table.visualItemRect(table.item(row, 1)).center())
    qtbot.waitUntil(lambda: window.graph_panel.view.selected_op() == added.op_id,
                    timeout=TIMEOUT)
    assert window.pass_list.currentRow() == len(window.session.snapshots) - 1
    _show_placement(qtbot, window)

    # colour by what ran: the skipped Conv is drawn in the float colour, the others INT8
    view, legend = window.graph_panel.view, window.graph_panel.legend
    window.actions_["colour_ran"].trigger()
    assert window.view_state.colour == "ran"
    assert view.ops[SKIP].mark.fill == RAN_FILL["float"]
    assert _fill_at_left(qtbot, window, SKIP) == QColor(RAN_FILL["float"])
    assert _fill_at_left(qtbot, window, others[0]) == QColor(RAN_FILL["int8"])
    assert all(w.isVisibleTo(legend) for w in legend.ran)
    assert not any(w.isVisibleTo(legend) for w in legend.status)
    assert "ran float" in view.ops[SKIP].toolTip()

    # colour by time: the longest op is the red end of the ramp, each op has its time
    window.actions_["colour_time"].trigger()
    longest = max((r for r in panel.result.ops if r.op_id in view.ops), key=lambda r: r.time_ms)
    assert view.ops[longest.op_id].mark.fill == TIME_GRADIENT[-1][1]
    assert view.ops[SKIP].mark.badge.endswith(" ms")
    assert all(w.isVisibleTo(legend) for w in legend.time)
    window.actions_["colour_status"].trigger()
    assert view.ops[SKIP].mark.fill == "" and legend.status[0].isVisibleTo(legend)

    # the node data of Model Explorer, from the File menu's action
    assert window.actions_["export_node_data"].isEnabled()
    with qtbot.waitSignal(window.job_finished, timeout=TIMEOUT):
        window.export_node_data(tmp_path / "nodedata")
    ran = json.loads((tmp_path / "nodedata" / "int8.onnxruntime.ran_int8.json").read_text())
    assert ran == per_op_node_data(panel.result)["ran_int8"]
    assert ran["results"][str(SKIP)] == {"value": 0.0}
    assert (tmp_path / "nodedata" / "int8.onnxruntime.time_ms.json").is_file()


def test_a_planted_flag_shows_in_the_tooltip_and_properties(qtbot, window: MainWindow,
                                                            monkeypatch) -> None:
    """The engine's answer contradicts the conversion: the skipped Conv 'ran INT8', an INT8
    Conv 'ran float'; both are flagged, with the engine's words."""
    from qcore.bench.op_map import ModelOps
    from qcore.bench.ort_engine import OrtEngine

    _skip_and_convert(qtbot, window)
    made_int8 = next(c for c in _convs(window) if c != SKIP)
    real = OrtEngine.profile

    def planted(self, path, *args, **kwargs):
        prof = real(self, path, *args, **kwargs)
        ops = ModelOps.of(path)
        for k in prof.kernels:
            head = ops.resolve(k)[:1]
            if head == [SKIP]:
                k.precision, k.kernel = "int8", "planted_I8"
            elif head == [made_int8]:
                k.precision, k.detail = "float", "planted: reorders to f32"
        return prof

    monkeypatch.setattr(OrtEngine, "profile", planted)
    _set_up_bench(window)
    _benchmark(qtbot, window)
    rows = _rows(window)
    assert rows[SKIP]["Flag"].startswith("skipped by id, but onnxruntime ran it INT8")
    assert rows[made_int8]["Flag"] == ("made INT8, but onnxruntime ran it in float "
                                       "(planted: reorders to f32)")
    assert "2 flagged" in window.results.per_op.chooser.currentText()
    _show_placement(qtbot, window)
    item = window.graph_panel.view.ops[made_int8]
    assert item.mark.flag and "FLAG: made INT8, but onnxruntime ran it in float" in item.toolTip()
    assert window.graph_panel.legend.flag[0].isVisibleTo(window.graph_panel.legend)
    window.graph_panel.select_op(made_int8)
    window.update_properties()
    assert "flag: made INT8, but onnxruntime ran it in float" in window.properties.text()


def test_cancel_during_the_profile_keeps_the_benchmark(qtbot, window: MainWindow) -> None:
    """One progress bar runs over the benchmark and the profile after it; Cancel while
    profiling keeps the benchmark's results."""
    _set_up_bench(window, runs=10**6)
    bar = window.runner.progress
    seen: list[tuple[int, int, str]] = []
    with qtbot.waitSignal(window.job_finished, timeout=TIMEOUT) as blocker:
        job = window.runs.benchmark()
        assert job is not None
        job.signals.progress.connect(lambda done, total, text: seen.append((done, total, text)))
        qtbot.waitUntil(lambda: "per-op" in bar.toolTip(), timeout=TIMEOUT)
        assert bar.value() < bar.maximum()
        window.cancel_job()
    assert blocker.args == ["benchmark", False]
    steps = [(d, t) for d, t, text in seen if text != "writing the models"]
    assert len({t for _, t in steps}) == 1  # one total for both phases
    assert [d for d, _ in steps] == sorted(d for d, _ in steps)  # never backwards
    bench = window.results.bench
    assert bench.table.rowCount() == 1 and bench.notes.text().startswith("Cancelled")
    assert window.results.per_op.table.rowCount() == 0


def test_the_per_op_option_is_remembered(qtbot, make_window, messages: list) -> None:
    window = make_window()
    assert not window.results.bench.per_op.isChecked()
    assert not window.actions_["colour_ran"].isEnabled()
    assert not window.actions_["export_node_data"].isEnabled()
    window.results.bench.per_op.setChecked(True)
    assert window.results.bench.settings().per_op
    window.close()
    again = make_window()
    assert again.results.bench.per_op.isChecked()
    again.close()


def test_time_colours_and_marks_without_a_profile() -> None:
    from app.headless.per_op_view import marks, time_fill

    assert time_fill(0.0, 2.0) == TIME_GRADIENT[0][1]
    assert time_fill(1.0, 2.0) == TIME_GRADIENT[1][1]
    assert time_fill(2.0, 2.0) == time_fill(5.0, 2.0) == TIME_GRADIENT[-1][1]
    assert marks(None, "ran", {1, 2}) == {}
