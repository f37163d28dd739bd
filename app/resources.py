"""Bundled files: the sample models, icons and the style sheet."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from PySide6.QtGui import QIcon

ROOT = Path(__file__).resolve().parents[1] / "resources"
SAMPLES = ROOT / "samples"
ICONS = ROOT / "icons"
STYLE = ROOT / "style.qss"


def sample_model() -> Path | None:
    path = SAMPLES / "cnn_qdq.onnx"
    return path if path.exists() else None


@cache
def icon(name: str) -> QIcon:
    path = ICONS / f"{name}.svg"
    return QIcon(str(path)) if path.exists() else QIcon()


def style_sheet() -> str:
    return STYLE.read_text(encoding="utf-8") if STYLE.exists() else ""
