"""Big graphs in the app (issue 5): a 5,004-op QDQ model made with onnx.helper.

Graphviz is replaced by a program that never answers (the layout "is still running") or by
the quick layout, so the tests are fast and deterministic. They check behaviour; how long
the UI waits is measured by benchmarks/bench_big_graphs.py.
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from pathlib import Path

import onnx
import pytest
from PySide6.QtCore import QTimer
from PySide6.QtTest import QTest

from app import scene_builder, view_loader
from app.headless.blocks import detect_blocks
from app.headless.fast_layout import quick_layout
from app.main_window import MainWindow
from devtools.modelgen import qdq_chain
from qcore.ir_onnx import from_onnx

BLOCKS = 834  # 6 ops each: 5,004 ops
TIMEOUT = 120000  # a guard against hangs on a busy machine, not a speed bound


def big_model_file(factory: pytest.TempPathFactory, blocks: int = BLOCKS) -> Path:
    """``qdq_chain(blocks)`` saved in a new temporary folder (for module fixtures)."""
    path = factory.mktemp("big") / f"big{blocks * 6}_qdq.onnx"
    onnx.save(qdq_chain(blocks), str(path))
    return path


@pytest.fixture(scope="module")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return big_model_file(tmp_path_factory)


class EventLoopProbe:
    """Counts the turns of the UI event loop that found the graph view still being built:
    a build that ran in one go, blocking the loop, leaves the count at zero."""

    def __init__(self, view) -> None:
        self.view, self.during_build = view, 0
        self.timer = QTimer(interval=0)
        self.timer.timeout.connect(self._tick)
        self.timer.start()

    def _tick(self) -> None:
        if self.view.ops and not self.view.items_ready():
            self.during_build += 1


def _open(qtbot, window: MainWindow, path: Path) -> None:
    """Open ``path`` and wait until its passes are converted and the view is drawn."""
    panel = window.graph_panel
    with qtbot.waitSignal(window.job_finished, timeout=TIMEOUT):
        window.open_model(path)
    qtbot.waitUntil(lambda: not window.runner.busy and bool(panel.view.blocks)
                    and panel.view.items_ready(), timeout=TIMEOUT)


def test_blocks_are_found_by_name_prefix() -> None:
    graph = from_onnx(qdq_chain(20))
    blocks = detect_blocks(graph)
    assert list(blocks)[:3] == ["block0", "block1", "block2"] and len(blocks) == 20
    assert all(len(b.op_ids) == 6 for b in blocks.values())


def test_open_search_select_skip_while_layout_runs(qtbot, make_window, model_path: Path,
                                                   silent_dot: None) -> None:
    window = make_window()
    _open(qtbot, window, model_path)
    panel = window.graph_panel
    assert panel.view_job is not None  # Graphviz is still "running", in a worker
    assert len(panel.view.blocks) == BLOCKS - len(panel.state.expanded)
    relu = next(n.id for n in panel.graph().nodes if n.name == "block7.relu")
    panel.search.field.setText("block7.relu")  # inside a collapsed block: it expands
    qtbot.waitUntil(lambda: panel.view.selected_op() == relu, timeout=TIMEOUT)
    assert "block7" in panel.state.expanded and "block7" not in panel.view.blocks
    window.toggle_skip()
    assert relu in window.session.skip_ids
    assert panel.view.ops[relu].status == "skipped"
    assert panel.select_op(relu) and panel.view.selected_op() == relu
    assert panel.view_job is not None  # all of that answered while the layout still ran
    window.close()


def test_a_big_model_is_drawn_before_its_passes_finish(qtbot, make_window,
                                                       model_path: Path) -> None:
    window = make_window()
    shown: list[tuple[bool, int]] = []
    window.session.result_changed.connect(lambda: shown.append(
        (window.session.result.complete, window.pass_list.count())))
    _open(qtbot, window, model_path)
    assert shown[0][0] is False  # the preview: the model as loaded, alone
    assert shown[-1][0] is True and window.pass_list.count() > 1
    assert "converting" not in window.model_label.text()
    window.close()


def test_cancelled_layout_leaves_the_app_usable(qtbot, make_window, model_path: Path,
                                                silent_dot: None) -> None:
    window = make_window()
    _open(qtbot, window, model_path)
    panel = window.graph_panel
    job = panel.view_job
    assert job is not None
    with qtbot.waitSignal(job.signals.finished, timeout=TIMEOUT):
        window.cancel_job()
    assert panel.view_job is None and panel.view.blocks  # the quick layout stays on screen
    panel.search.field.setText("block3.add")
    add = next(n.id for n in panel.graph().nodes if n.name == "block3.add")
    qtbot.waitUntil(lambda: panel.view.selected_op() == add, timeout=TIMEOUT)
    window.toggle_skip(add)
    assert add in window.session.skip_ids
    window.close()


@pytest.fixture(scope="module")
def model_3000(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return big_model_file(tmp_path_factory, 500)


def test_whole_graph_is_built_in_slices(qtbot, make_window, model_3000: Path, silent_dot: None,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Every op of a 3,000-op graph is drawn while the event loop keeps turning (how long
    the UI waits at most is a figure of benchmarks/bench_big_graphs.py)."""
    monkeypatch.setattr(scene_builder, "SLICE_MS", 1)  # ~9,000 items: many slices
    window = make_window()
    _open(qtbot, window, model_3000)
    panel = window.graph_panel
    probe = EventLoopProbe(panel.view)
    QTest.mouseMove(panel.banner)  # the user clicks its "Show every op" link
    panel.set_view_mode("all")
    qtbot.waitUntil(lambda: len(panel.view.ops) == len(panel.graph().nodes)
                    and panel.view.items_ready(), timeout=TIMEOUT)
    assert probe.during_build > 1, "the view was built in one go, blocking the event loop"
    window.close()


def test_pass_switching_reuses_the_cache(qtbot, make_window, model_3000: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []

    def fake_graphviz(plan, **_):
        calls.append(1)
        layout = quick_layout(plan.view)
        layout.quick = False
        return layout

    monkeypatch.setattr(view_loader, "graphviz_layout", fake_graphviz)
    window = make_window()
    _open(qtbot, window, model_3000)
    panel = window.graph_panel
    qtbot.waitUntil(lambda: panel.view_job is None, timeout=TIMEOUT)
    last = len(window.session.snapshots) - 1
    for row in (last, 0):
        window.pass_list.setCurrentRow(row)
        qtbot.waitUntil(lambda: panel.view_job is None and panel.view.items_ready(),
                        timeout=TIMEOUT)
    made = len(calls)
    for row in (last, 0, last, 0):
        QTest.mouseMove(window.pass_list)  # the user picks the pass
        with qtbot.waitSignal(panel.snapshot_shown, timeout=TIMEOUT):
            window.pass_list.setCurrentRow(row)
        assert panel.view_job is None  # shown from the cache: no new job
        assert panel.snapshot() is window.session.snapshots[row]
    assert len(calls) == made  # no layout was computed again
    window.close()
