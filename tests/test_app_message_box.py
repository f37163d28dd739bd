"""Issue 16: "checkboxes drawn over each other while a message box is open". Reproduced: open
the sample, then a model without quantization; its "Not a quant model" box opened right after
the op-type checkboxes were rebuilt, and the old checkboxes (waiting for deleteLater, which
the box's own event loop does not run) were drawn under the new ones. Checked at the moment
the box is open: the visible checkboxes are the new model's, none overlaps another, and the
status bar already names the new model."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from pathlib import Path

import onnx
import pytest
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QCheckBox, QMessageBox

from devtools import modelgen

TIMEOUT = 60_000


def test_the_op_type_boxes_are_clean_while_a_message_box_is_open(
        qtbot, sample_window, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    window = sample_window
    panel = window.config_panel
    assert "Conv" in panel.type_boxes
    fp32 = tmp_path / "transformer_fp32.onnx"
    onnx.save(modelgen.transformer(), str(fp32))
    seen: list[dict] = []

    def look(box: QMessageBox) -> None:
        inner = panel.types_grid.parentWidget()
        shown = [c for c in inner.findChildren(QCheckBox) if c.isVisibleTo(inner)]
        seen.append({"title": box.windowTitle(), "texts": sorted(c.text() for c in shown),
                     "rects": [c.geometry() for c in shown],
                     "status": window.model_label.text()})
        box.accept()

    def box_open(parent, title, text, *args, **kwargs):
        """A real box in its own event loop, as QMessageBox.information runs it; it looks
        at the window once the box is up, then closes."""
        box = QMessageBox(QMessageBox.Icon.Information, title, text,
                          QMessageBox.StandardButton.Ok, parent)

        def poll() -> None:
            if box.isVisible():
                look(box)
            else:
                QTimer.singleShot(10, poll)

        QTimer.singleShot(0, poll)
        box.exec()
        return QMessageBox.StandardButton.Ok

    monkeypatch.setattr(QMessageBox, "information", staticmethod(box_open))
    with qtbot.waitSignal(window.job_finished, timeout=TIMEOUT):
        window.open_model(fp32)
    assert [s["title"] for s in seen] == ["Not a quant model"]
    state = seen[0]
    expected = sorted(f"{t} ({n})" for t, n in window.session.op_types().items())
    assert state["texts"] == expected  # the new model's boxes only: no Conv (8) left behind
    rects = state["rects"]
    assert not [(a, b) for i, a in enumerate(rects) for b in rects[i + 1:] if a.intersects(b)]
    assert state["status"].startswith("transformer_fp32.onnx")
