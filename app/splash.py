"""What the user sees while the app imports its engines (onnx, numpy, pyqtgraph: ~3 s cold):
a small card with the app's name, shown before the heavy imports."""

from __future__ import annotations

from PySide6.QtCore import QRect, Qt
from PySide6.QtGui import QColor, QFont, QPainter, QPixmap
from PySide6.QtWidgets import QSplashScreen

from app.resources import icon

SIZE = (420, 150)


def loading_splash(message: str = "Loading\u2026") -> QSplashScreen:
    """A shown splash screen (call ``finish(window)`` once the main window is up)."""
    width, height = SIZE
    pixmap = QPixmap(width, height)
    pixmap.fill(QColor("#ffffff"))
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setPen(QColor("#9fb7d9"))
    painter.drawRect(0, 0, width - 1, height - 1)
    icon("app").paint(painter, QRect(24, 35, 64, 64))
    title = QFont()
    title.setPointSize(17)
    title.setBold(True)
    painter.setFont(title)
    painter.setPen(QColor("#1f2937"))
    painter.drawText(QRect(104, 38, width - 120, 34), Qt.AlignmentFlag.AlignLeft, "Quant Inspector")
    body = QFont()
    body.setPointSize(10)
    painter.setFont(body)
    painter.setPen(QColor("#4b5563"))
    painter.drawText(QRect(104, 74, width - 120, 40), Qt.AlignmentFlag.AlignLeft,
                     "QDQ to INT8, pass by pass")
    painter.end()
    splash = QSplashScreen(pixmap)
    splash.showMessage(message, Qt.AlignmentFlag.AlignBottom | Qt.AlignmentFlag.AlignRight,
                       QColor("#6b7280"))
    splash.show()
    return splash
