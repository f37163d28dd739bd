"""Bundled files: the sample models, icons and the style sheet."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication, QIcon, QPainter, QPalette, QPixmap
from PySide6.QtSvg import QSvgRenderer

ROOT = Path(__file__).resolve().parents[1] / "resources"
SAMPLES = ROOT / "samples"
ICONS = ROOT / "icons"
STYLE = ROOT / "style.qss"


def sample_model() -> Path | None:
    path = SAMPLES / "cnn_qdq.onnx"
    return path if path.exists() else None


INK = "#374151"  # the icons' line colour, drawn for a light palette


def icon(name: str) -> QIcon:
    """A toolbar icon; on a dark palette its lines take the palette's button text colour."""
    palette = QGuiApplication.palette()
    dark = palette.color(QPalette.ColorRole.Button).lightness() < 128
    return _icon(name, palette.color(QPalette.ColorRole.ButtonText).name() if dark else INK)


@cache
def _icon(name: str, ink: str) -> QIcon:
    path = ICONS / f"{name}.svg"
    if not path.exists():
        return QIcon()
    if ink == INK:
        return QIcon(str(path))
    svg = path.read_bytes().replace(INK.encode(), ink.encode())
    result = QIcon()
    for size in (16, 24, 32, 48):
        pixmap = QPixmap(size, size)
        pixmap.fill(Qt.GlobalColor.transparent)
        painter = QPainter(pixmap)
        QSvgRenderer(svg).render(painter)
        painter.end()
        result.addPixmap(pixmap)
    return result


def style_sheet() -> str:
    return STYLE.read_text(encoding="utf-8") if STYLE.exists() else ""
