"""Every file of the bad-input corpus opened in the real window: a clear message or a normal
open, never a traceback or a crash; the window stays usable and leaves no busy threads."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from pathlib import Path

from PySide6.QtCore import QThreadPool

ROOT = Path(__file__).resolve().parents[1]
BAD = ROOT / "tests" / "data" / "bad"
SAMPLE = ROOT / "resources" / "samples" / "cnn_qdq.onnx"
MUST_FAIL = {"empty", "random_bytes", "truncated", "dq_zero_scale", "dq_nan_scale",
             "dq_negative_scale", "per_axis_mismatch", "external_missing", "external_escape",
             "external_absolute", "cycle", "dangling_input"}
MUST_OPEN = {"tiny_qdq", "hostile_names", "external_data", "dynamic_shapes",
             "fp32_only"}  # its graph, with a "not a quant model" message; the rest: either



def test_every_bad_file_gives_a_message_and_the_window_stays_usable(
        qtbot, make_window, messages: list) -> None:
    window = make_window()
    for path in sorted(BAD.glob("*.onnx")):
        before = len(messages)
        with qtbot.waitSignal(window.job_finished, timeout=30000) as blocker:
            window.open_model(path)
        job, ok = blocker.args
        assert job == "open"
        assert ok or path.stem not in MUST_OPEN, (path.name, messages[before:])
        assert not ok or path.stem not in MUST_FAIL, f"{path.name} opened"
        if not ok:  # refused: in words
            new = messages[before:]
            assert new, f"{path.name}: no message"
            title, text = new[-1]
            assert title and text and "Traceback" not in text, (path.name, text)
            assert "internal error" not in text.lower(), (path.name, text)
        else:
            assert window.pass_list.count() >= 1, path.name  # its graph is shown
    with qtbot.waitSignal(window.job_finished, timeout=30000) as blocker:
        window.open_model(SAMPLE)
    assert blocker.args == ["open", True] and window.pass_list.count() > 1
    qtbot.waitUntil(lambda: QThreadPool.globalInstance().activeThreadCount() == 0,
                    timeout=30000)
    window.close()
