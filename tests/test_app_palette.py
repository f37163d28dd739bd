"""Legible in light and dark: the style sheet takes its colours from the palette, so panel
titles, the graph title, the status bar and table headers keep their contrast on a dark
desktop. Checked on pixels: the widget is rendered and its text compared with its background."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from collections import Counter
from pathlib import Path

import pytest
from PySide6.QtGui import QColor, QImage, QPalette
from PySide6.QtWidgets import QApplication, QTableWidget, QWidget

from app.resources import style_sheet

WCAG_TEXT = 4.5  # WCAG AA for normal text
SAMPLE = Path(__file__).resolve().parents[1] / "resources" / "samples" / "cnn_qdq.onnx"


def luminance(rgb: int) -> float:
    def channel(c: int) -> float:
        c = c / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (rgb >> 16) & 255, (rgb >> 8) & 255, rgb & 255
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def contrast(a: int, b: int) -> float:
    la, lb = sorted((luminance(a), luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def text_contrast(image: QImage) -> float:
    """Contrast between the most common colour (the background) and the pixel that stands
    out most from it (the core of a glyph)."""
    image = image.convertToFormat(QImage.Format.Format_RGB32)
    pixels = Counter(image.pixel(x, y) & 0xFFFFFF for y in range(image.height())
                     for x in range(image.width()))
    background = pixels.most_common(1)[0][0]
    return max(contrast(background, p) for p in pixels)


def dark_palette() -> QPalette:
    palette = QPalette()
    roles = {QPalette.ColorRole.Window: "#2b2b2b", QPalette.ColorRole.WindowText: "#e8e8e8",
             QPalette.ColorRole.Base: "#1e1e1e", QPalette.ColorRole.AlternateBase: "#262626",
             QPalette.ColorRole.Button: "#353535", QPalette.ColorRole.ButtonText: "#e8e8e8",
             QPalette.ColorRole.Text: "#e8e8e8", QPalette.ColorRole.Mid: "#4a4a4a",
             QPalette.ColorRole.Midlight: "#3c3c3c", QPalette.ColorRole.Highlight: "#3d7bd9",
             QPalette.ColorRole.HighlightedText: "#ffffff",
             QPalette.ColorRole.PlaceholderText: "#a0a0a0"}
    for role, colour in roles.items():
        palette.setColor(role, QColor(colour))
    return palette


@pytest.fixture(params=["light", "dark"])
def styled_window(request, qtbot, make_window):
    app = QApplication.instance()
    old_palette, old_sheet = app.palette(), app.styleSheet()
    if request.param == "dark":
        app.setPalette(dark_palette())
    app.setStyleSheet(style_sheet())
    window = make_window()
    window.resize(1280, 720)
    with qtbot.waitSignal(window.job_finished, timeout=30000):
        window.open_model(SAMPLE)
    window.status("Converted: 14 of 20 ops INT8", 0)
    yield window
    window.close()
    app.setStyleSheet(old_sheet)
    app.setPalette(old_palette)


def _title(dock: QWidget) -> QImage:
    """The left of a dock's title bar: its text, not the float / close buttons."""
    return dock.grab().toImage().copy(0, 0, min(dock.width() // 2, 90), 22)


def test_toolbar_icons_take_the_palette_ink(qtbot, styled_window) -> None:
    from app.resources import icon

    image = icon("zoom_in").pixmap(24, 24).toImage()
    window_colour = styled_window.palette().color(QPalette.ColorRole.Button).rgb() & 0xFFFFFF
    ink = max((image.pixel(x, y) & 0xFFFFFF for y in range(24) for x in range(24)
               if image.pixelColor(x, y).alpha() > 200),
              key=lambda p: contrast(p, window_colour))
    assert contrast(ink, window_colour) >= 3  # WCAG AA for graphics


def test_titles_status_bar_and_headers_are_legible(qtbot, styled_window) -> None:
    window = styled_window
    qtbot.waitUntil(lambda: window.graph_panel.title.width() > 100, timeout=30000)
    parts: dict[str, QImage] = {f"{d.windowTitle()} title": _title(d) for d in window.docks
                                if d.isVisible() and d.width() > 0}
    parts["graph title"] = window.graph_panel.title.grab().toImage()
    parts["status bar"] = window.statusBar().grab().toImage()
    log = window.results.log_panel
    log.clear()
    for level in ("info", "ok", "warn", "error"):
        log.log(f"a {level} line of the log", level)
    parts["log"] = log.viewport().grab().toImage().copy(0, 0, 260, 70)
    table = QTableWidget(2, 3)  # as the results tables are
    table.setHorizontalHeaderLabels(["op", "status", "reason"])
    qtbot.addWidget(table)
    table.show()
    parts["table header"] = table.horizontalHeader().grab().toImage()
    assert len(parts) >= 7
    for name, image in parts.items():
        assert not image.isNull() and image.width() > 10, name
        assert text_contrast(image) >= WCAG_TEXT, name
