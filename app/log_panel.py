"""The log: timestamped lines from conversions, benchmarks and errors."""

from __future__ import annotations

import html
import time

from PySide6.QtGui import QFont, QPalette, QTextCursor
from PySide6.QtWidgets import QPlainTextEdit, QWidget

LEVEL_COLOURS = {"info": "#202020", "ok": "#1b6e20", "warn": "#8a5a00", "error": "#b3261e"}
DARK_LEVEL_COLOURS = {"info": "#e6e6e6", "ok": "#8bd68f", "warn": "#f2c46d", "error": "#ff8f85"}


class LogPanel(QPlainTextEdit):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setReadOnly(True)
        self.setMaximumBlockCount(5000)
        font = QFont("monospace")
        font.setStyleHint(QFont.StyleHint.Monospace)
        font.setPointSizeF(max(8.0, self.font().pointSizeF() * 0.95))
        self.setFont(font)
        self.lines: list[str] = []

    def log(self, text: str, level: str = "info") -> None:
        """Append ``text`` (one or many lines) in one edit, so a long report costs one
        layout pass instead of one per line."""
        stamp = time.strftime("%H:%M:%S")
        dark = self.palette().color(QPalette.ColorRole.Base).lightness() < 128
        colours = DARK_LEVEL_COLOURS if dark else LEVEL_COLOURS
        colour = colours.get(level, colours["info"])
        lines = str(text).splitlines() or [""]
        self.lines.extend(lines)
        rows = [f"<span style='color:#888'>{stamp if i == 0 else ' ' * len(stamp)}</span>"
                f"&nbsp;&nbsp;<span style='color:{colour}; white-space:pre'>"
                f"{html.escape(line)}</span>" for i, line in enumerate(lines)]
        self.appendHtml("<br>".join(rows))
        self.moveCursor(QTextCursor.MoveOperation.End)

    def text(self) -> str:
        return "\n".join(self.lines)
