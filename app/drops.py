"""What a drop onto the window (or its graph) may carry: a model file or folder, or a config."""

from __future__ import annotations

from PySide6.QtCore import QMimeData

from qcore.paddle import is_paddle_model


def dropped_path(mime: QMimeData) -> str | None:
    """The local ``.onnx`` model, Paddle model folder or ``.json`` config ``mime`` carries."""
    urls = mime.urls()
    if not urls or not urls[0].isLocalFile():
        return None
    path = urls[0].toLocalFile()
    if path.lower().endswith((".onnx", ".json")) or is_paddle_model(path):
        return path
    return None
