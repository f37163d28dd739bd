"""Shared fixtures: sample models and quant models made on the fly with ONNX Runtime."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "resources" / "samples"


def run_model(model, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:  # noqa: ANN001
    """Run a ModelProto or path on ONNX Runtime's CPU provider, one thread."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    data = model if isinstance(model, str | Path) else model.SerializeToString()
    session = ort.InferenceSession(str(data) if isinstance(data, Path) else data, opts,
                                   providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-30))


@pytest.fixture(scope="session")
def samples() -> Path:
    return SAMPLES


@pytest.fixture
def messages(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Qt message boxes are recorded instead of blocking the test (app tests)."""
    from PySide6.QtWidgets import QMessageBox

    shown: list[tuple[str, str]] = []

    def record(_parent, title, text, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003
        shown.append((title, text))
        return QMessageBox.StandardButton.Ok

    for name in ("critical", "warning", "information", "question"):
        monkeypatch.setattr(QMessageBox, name, staticmethod(record))
    return shown
