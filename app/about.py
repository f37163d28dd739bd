"""Help > About: what this is, and the versions of everything it runs on."""

from __future__ import annotations

import platform
import subprocess
from importlib import metadata

from PySide6 import __version__ as pyside_version
from PySide6.QtCore import Qt, qVersion
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QVBoxLayout, QWidget

from qcore import render


def _package(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def version() -> str:
    """The installed quant-inspector version, or ``"dev"`` when running from a checkout."""
    return _package("quant-inspector").replace("not installed", "dev")


def graphviz_version() -> str:
    exe = render.find_dot()
    if exe is None:
        return "not installed"
    try:
        proc = subprocess.run([exe, "-V"], capture_output=True, timeout=5, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unavailable ({exc})"
    text = (proc.stderr or proc.stdout).decode("utf-8", errors="replace").strip()
    return text.replace("dot - graphviz version ", "") or "unknown"


def versions() -> list[tuple[str, str]]:
    return [
        ("Quant Inspector (qcore)", version()),
        ("onnx", _package("onnx")),
        ("onnxruntime", _package("onnxruntime")),
        ("openvino", _package("openvino")),
        ("numpy", _package("numpy")),
        ("Qt", qVersion()),
        ("PySide6", pyside_version),
        ("pyqtgraph", _package("pyqtgraph")),
        ("Graphviz dot", graphviz_version()),
        ("Python", platform.python_version()),
        ("Platform", platform.platform(terse=True)),
    ]


class AboutDialog(QDialog):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("About Quant Inspector")
        rows = "".join(f"<tr><td style='padding-right:16px'>{k}</td><td><b>{v}</b></td></tr>"
                       for k, v in versions())
        label = QLabel(
            "<h2>Quant Inspector</h2>"
            "<p>Convert QDQ ONNX quant models into INT8 models pass by pass, inspect every "
            "pass, choose what to quantize, and benchmark FP32 against INT8.</p>"
            f"<table>{rows}</table>"
            "<p style='color:#666'>Licensed under Apache-2.0.</p>")
        label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        label.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok)
        buttons.accepted.connect(self.accept)
        column = QVBoxLayout(self)
        column.addWidget(label)
        column.addWidget(buttons)
        self.text = label.text()
        self.setMinimumWidth(460)
