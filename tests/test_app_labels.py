"""Labels that fit their boxes (#16 item 9): op titles and FP32 reasons inside the op's box at
every zoom, tensor text inside its ellipse and readable at the starting zoom, and Graphviz laying
out the very box sizes the app draws (pytest-qt, offscreen)."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import math
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QImage, QPainter

from app.graph_items import OpItem, TensorItem
from app.main_window import MainWindow

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "resources" / "samples" / "cnn_qdq.onnx"
TIMEOUT = 30000
ZOOMS = (0.5, 1.0, 2.0)
INK = 60  # darker than this in every channel: label text (#111), not a border (#4d4d4d)


@pytest.fixture
def window(sample_window: MainWindow) -> MainWindow:
    return sample_window


def _with_fp32_reasons(qtbot, window: MainWindow) -> None:
    """Skip a Conv and untick Add, convert, and show the placement pass: two FP32 reasons."""
    window.toggle_skip(23)
    window.session.set_ops_to_quantize([t for t in window.session.op_types() if t != "Add"])
    with qtbot.waitSignal(window.job_finished, timeout=TIMEOUT):
        window.runs.convert()
    row = next(i for i, s in enumerate(window.session.snapshots)
               if s.name == "quantize_placement")
    with qtbot.waitSignal(window.graph_panel.snapshot_shown, timeout=TIMEOUT):
        window.pass_list.setCurrentRow(row)


def _ink_outside(window: MainWindow, item: OpItem, zoom: float) -> int:
    """Dark (text) pixels drawn outside the op's box when the scene around it is rendered at
    ``zoom``: a label that straddles the border leaves some."""
    scene_rect = item.sceneBoundingRect().adjusted(-4, -4, 4, 4)
    w, h = math.ceil(scene_rect.width() * zoom), math.ceil(scene_rect.height() * zoom)
    image = QImage(w, h, QImage.Format.Format_RGB32)
    image.fill(QColor("#ffffff"))
    painter = QPainter(image)
    painter.setRenderHints(QPainter.RenderHint.Antialiasing | QPainter.RenderHint.TextAntialiasing)
    window.graph_panel.view.scene().render(painter, QRectF(0, 0, w, h), scene_rect,
                                           Qt.AspectRatioMode.IgnoreAspectRatio)
    painter.end()
    pixels = np.frombuffer(image.constBits(), np.uint8).reshape(h, image.bytesPerLine())
    rgb = pixels[:, : 4 * w].reshape(h, w, 4)[:, :, :3]
    dark = (rgb < INK).all(axis=2)
    box = item.mapRectToScene(item.rect)
    ys, xs = np.mgrid[0:h, 0:w]
    sx, sy = scene_rect.left() + (xs + 0.5) / zoom, scene_rect.top() + (ys + 0.5) / zoom
    outside = (sx < box.left() - 1) | (sx > box.right() + 1) | (sy < box.top() - 1) | \
        (sy > box.bottom() + 1)
    return int((dark & outside).sum())


def test_op_labels_stay_inside_their_boxes_at_three_zooms(qtbot, window: MainWindow) -> None:
    _with_fp32_reasons(qtbot, window)
    view = window.graph_panel.view
    reasons = [i for i in view.ops.values() if any(t.startswith("FP32") for t in i.label.lines)]
    assert len(reasons) >= 2  # the skipped Conv and the unticked Add show why
    for zoom in ZOOMS:
        view.set_scale(zoom)
        for op_id, item in view.ops.items():
            inner = item.rect.adjusted(2, 2, -2, -2)
            assert inner.contains(item.label.bounds()), (zoom, op_id, item.label.lines)
            assert not item.label.elided, (op_id, item.label.lines)
            assert _ink_outside(window, item, zoom) == 0, (zoom, op_id)


def _inside_ellipse(rect: QRectF, box: QRectF) -> bool:
    a, b, c = box.width() / 2, box.height() / 2, box.center()
    corners = [(rect.left(), rect.top()), (rect.right(), rect.top()),
               (rect.left(), rect.bottom()), (rect.right(), rect.bottom())]
    return all(((x - c.x()) / a) ** 2 + ((y - c.y()) / b) ** 2 <= 1.0 for x, y in corners)


def test_tensor_labels_fit_their_ellipses_and_read_at_10_px(window: MainWindow) -> None:
    view = window.graph_panel.view
    tensors = [i for i in view.scene().items() if isinstance(i, TensorItem)]
    assert tensors
    for item in tensors:
        assert all(_inside_ellipse(r, item.rect) for r in item.label.rects()), item.tensor
        assert item.label.px * view.scale_factor() >= 10, (item.tensor, view.scale_factor())


def test_a_label_too_big_for_its_box_shrinks_then_elides(qapp) -> None:
    from app.label_block import MIN_PX, LabelBlock

    rect = QRectF(-60, -24, 120, 48)
    shrunk = LabelBlock(["Conv(7)", "a_rather_long_name_1"], rect, 12, True)
    assert shrunk.px < 12 and not shrunk.elided
    long = LabelBlock(["Conv(7)", "x" * 80, "FP32: a reason", "that goes on", "and on"],
                      rect, 12, True)
    assert long.elided and long.px == MIN_PX and long.lines[1].endswith("\u2026")
    for label in (shrunk, long):
        assert rect.adjusted(8, 5, -8, -5).contains(label.bounds())
    tensor = LabelBlock(["t" * 60, "1x3x224x224"], rect, 11, False, ellipse=True)
    assert all(_inside_ellipse(r, rect) for r in tensor.rects())


def test_graphviz_lays_out_the_sizes_the_app_draws() -> None:
    """The quick layout and Graphviz's get the same box sizes, those of the app's labels."""
    from app.headless.fast_layout import node_size, quick_layout
    from app.headless.view_plan import ViewSpec, graphviz_layout, plan_view
    from qcore import render
    from qcore.convert import convert

    if render.find_dot() is None:
        pytest.skip("Graphviz is not installed")
    graph = convert(SAMPLE).snapshots[-1].graph
    plan = plan_view(graph, ViewSpec("all"))
    sizes = {n.key: node_size(n) for n in plan.view.nodes}
    for layout in (quick_layout(plan.view), graphviz_layout(plan)):
        assert {b.key for b in layout.nodes} == set(sizes)
        for box in layout.nodes:
            assert box.w == pytest.approx(sizes[box.key][0], abs=1.0), box.key
            assert box.h == pytest.approx(sizes[box.key][1], abs=1.0), box.key
