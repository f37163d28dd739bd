"""Expanded blocks are drawn inside a labelled frame (issue 16): a QDQ BERT named as Hugging
Face's exporter names its ops, one layer opened, then its attention level inside it."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from pathlib import Path

import onnx
import pytest
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor
from test_blocks import hf_name

from app.frame_items import contrast, text_on
from devtools import modelgen
from qcore import render

LAYER = "/encoder/layer.2"
TIMEOUT = 60_000


@pytest.fixture(scope="module")
def hf_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    model = modelgen.quantize_qdq(modelgen.bert_like(layers=4, hidden=64, heads=4, ffn=128,
                                                     seq=16))
    for node in model.graph.node:
        node.name = hf_name(node.name)
    path = tmp_path_factory.mktemp("frames") / "hf_bert_qdq.onnx"
    onnx.save(model, str(path))
    return path


def _box(item) -> QRectF:
    return item.mapRectToScene(item.rect)


def _inside(view, frame) -> tuple[set[str], set[str]]:
    """The node items a frame's rectangle touches, and those it holds whole."""
    touched, held = set(), set()
    for item in (*view.ops.values(), *view.tensors.values(), *view.blocks.values()):
        box = _box(item)
        if frame.rect.intersects(box):
            touched.add(item.box.key)
        if frame.rect.contains(box):
            held.add(item.box.key)
    return touched, held


def test_an_expanded_block_is_framed_around_its_own_nodes(qtbot, make_window, hf_path: Path,
                                                          messages: list) -> None:
    if render.find_dot() is None:
        pytest.skip("Graphviz 'dot' is not installed")
    window = make_window()
    with qtbot.waitSignal(window.job_finished, timeout=TIMEOUT):
        window.open_model(hf_path)
    panel = window.graph_panel

    def settled() -> bool:
        return panel.view_job is None and panel.view.items_ready()

    qtbot.waitUntil(settled, timeout=TIMEOUT)
    with qtbot.waitSignal(panel.snapshot_shown, timeout=TIMEOUT):
        panel.set_view_mode("blocks")
    qtbot.waitUntil(settled, timeout=TIMEOUT)
    assert not panel.view.frames  # every block collapsed: no frame
    with qtbot.waitSignal(panel.snapshot_shown, timeout=TIMEOUT):
        panel.state.expand(LAYER)
    qtbot.waitUntil(lambda: settled() and LAYER in panel.view.frames, timeout=TIMEOUT)
    frame = panel.view.frames[LAYER]
    assert frame.label == LAYER
    block = panel._plan.blocks[LAYER]
    mine = {key for key, item in panel.view.blocks.items() if item.op_ids <= set(block.op_ids)}
    assert mine == {f"{LAYER}/attention", f"{LAYER}/intermediate", f"{LAYER}/output"}
    expected = panel._plan.view.frame_nodes(LAYER)
    assert {panel.view.blocks[k].box.key for k in mine} <= expected
    touched, held = _inside(panel.view, frame)
    assert touched == held == expected  # exactly the layer's nodes, none of another's

    with qtbot.waitSignal(panel.snapshot_shown, timeout=TIMEOUT):
        panel.state.expand(f"{LAYER}/attention")
    qtbot.waitUntil(lambda: settled() and f"{LAYER}/attention" in panel.view.frames,
                    timeout=TIMEOUT)
    outer, inner = panel.view.frames[LAYER], panel.view.frames[f"{LAYER}/attention"]
    assert inner.label == "attention" and inner.parent_key == LAYER
    assert outer.rect.contains(inner.rect) and inner.zValue() > outer.zValue()
    touched, held = _inside(panel.view, inner)
    assert touched == held == panel._plan.view.frame_nodes(f"{LAYER}/attention")
    levels = {panel.view.blocks[f"{LAYER}/attention/{k}"].box.key for k in ("self", "output")}
    assert levels <= held
    ops = {i.box.key for i in panel.view.ops.values()}
    assert not ops & _inside(panel.view, outer)[0]  # the layer's own ops are all in levels
    for key in (LAYER, f"{LAYER}/attention"):
        item = panel.view.frames[key]
        assert contrast(item.colour, item.text_colour) >= 4.5  # the label reads

    selfish = f"{LAYER}/attention/self"
    with qtbot.waitSignal(panel.snapshot_shown, timeout=TIMEOUT):
        panel.state.expand(selfish)
    qtbot.waitUntil(lambda: settled() and selfish in panel.view.frames, timeout=TIMEOUT)
    inner = panel.view.frames[selfish]
    touched, held = _inside(panel.view, inner)
    assert touched == held == panel._plan.view.frame_nodes(selfish)
    drawn = {panel.view.ops[i].box.key for i in panel._plan.blocks[selfish].op_ids
             if i in panel.view.ops}
    assert drawn and drawn <= held  # the op items of the level, and no other op
    assert {panel.view.ops[i].box.key for i in panel.view.ops} & held == drawn
    assert panel.view.frames[f"{LAYER}/attention"].rect.contains(inner.rect)

    # a double click on the inner frame's label folds that level back
    panel.view.centerOn(inner.tab.center())
    at = panel.view.mapFromScene(inner.tab.center())
    with qtbot.waitSignal(panel.snapshot_shown, timeout=TIMEOUT):
        qtbot.mouseDClick(panel.view.viewport(), Qt.MouseButton.LeftButton, pos=at)
    qtbot.waitUntil(lambda: settled() and selfish in panel.view.blocks, timeout=TIMEOUT)
    assert panel.state.expanded == {LAYER, f"{LAYER}/attention"}
    assert set(panel.view.frames) == {LAYER, f"{LAYER}/attention"}
    window.close()


def test_frame_labels_read_on_light_and_dark_highlights() -> None:
    for colour in ("#308cc6", "#3d7bd9", "#2a82da", "#ffcc00", "#0b3d91"):
        fill = QColor(colour)
        assert contrast(fill, text_on(fill)) >= 4.5
