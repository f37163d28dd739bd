"""Real inputs from a folder of images: resize, centre crop, scale, mean / std, layout.

A preset names the preprocessing a model family was trained with, so that accuracy is
measured on what the model really sees. The result is the same ``.npz`` a user could have
made by hand (one array keyed by the model's image input), so every consumer of
``--inputs`` (benchmark, accuracy, advisor) takes it unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from qcore.bench.inputs import InputError, InputSpec, model_inputs

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
MAX_IMAGES = 256  # a benchmark needs a few dozen; a photo library is not read whole


@dataclass(frozen=True)
class Preset:
    """How to turn an image file into a model input."""

    name: str
    description: str
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    scale: float = 1 / 255  # applied first: 8-bit pixels to [0, 1]
    bgr: bool = False  # channel order the model expects
    crop: bool = True  # resize the short side, then centre crop; else stretch to size
    default_size: tuple[int, int] = (224, 224)  # for inputs with symbolic height / width


PRESETS: dict[str, Preset] = {p.name: p for p in (
    Preset("imagenet", "ImageNet (torchvision, timm): RGB, /255, mean 0.485 0.456 0.406, "
           "std 0.229 0.224 0.225, short side resized and centre crop",
           mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)),
    Preset("unit", "RGB scaled to [0, 1], stretched to the input size", crop=False),
    Preset("symmetric", "RGB scaled to [-1, 1] (TF / Keras MobileNet, EfficientNet-Lite)",
           mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)),
    Preset("paddleocr", "PaddleOCR: BGR, /255, mean 0.5, std 0.5, stretched to the input size",
           mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), bgr=True, crop=False,
           default_size=(48, 320)),
    Preset("yolo", "YOLO (Ultralytics): RGB scaled to [0, 1], stretched to the input size",
           crop=False, default_size=(640, 640)),
)}


def image_files(folder: str | Path) -> list[Path]:
    """The image files directly in ``folder``, sorted by name (at most ``MAX_IMAGES``)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: not a folder of images")
    files = sorted(p for p in folder.iterdir()
                   if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise InputError(f"{folder}: no image files ({', '.join(IMAGE_SUFFIXES)})")
    return files[:MAX_IMAGES]


def image_input(specs: list[InputSpec]) -> tuple[InputSpec, str, tuple[int | None, int | None]]:
    """The model's one image input, its layout (``NCHW`` / ``NHWC``) and its fixed height and
    width (None where symbolic)."""
    images = [s for s in specs if len(s.shape) == 4 and np.issubdtype(s.dtype, np.floating)]
    if len(specs) != 1 or len(images) != 1:
        names = ", ".join(f"{s.name} {s.shape}" for s in specs)
        raise InputError(f"images feed models with one 4-D float input; this one has {names}: "
                         "give a .npz keyed by input name instead")
    spec = images[0]
    dims = [d if isinstance(d, int) and d > 0 else None for d in spec.shape]
    if dims[1] == 3:
        return spec, "NCHW", (dims[2], dims[3])
    if dims[3] == 3:
        return spec, "NHWC", (dims[1], dims[2])
    raise InputError(f"input '{spec.name}' {spec.shape} has no dimension of 3 colour "
                     "channels at position 1 or 3")


def _open_rgb(path: Path) -> PILImage:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            rgb: PILImage = image.convert("RGB")
            return rgb
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise InputError(f"{path}: not an image Pillow can read ({exc})") from None


def preprocess(path: Path, preset: Preset, size: tuple[int, int]) -> np.ndarray:
    """One image as a float32 ``(3, H, W)`` array, preprocessed by ``preset``."""
    from PIL import Image

    image = _open_rgb(path)
    height, width = size
    if preset.crop:
        ratio = max(height / image.height, width / image.width)
        resized = (max(width, round(image.width * ratio)), max(height, round(image.height * ratio)))
        image = image.resize(resized, Image.Resampling.BILINEAR)
        left, top = (image.width - width) // 2, (image.height - height) // 2
        image = image.crop((left, top, left + width, top + height))
    else:
        image = image.resize((width, height), Image.Resampling.BILINEAR)
    pixels: np.ndarray = np.asarray(image, np.float32) * preset.scale
    if preset.bgr:
        pixels = pixels[..., ::-1]
    pixels = (pixels - np.array(preset.mean, np.float32)) / np.array(preset.std, np.float32)
    return np.ascontiguousarray(pixels.transpose(2, 0, 1), np.float32)


def load_image_folder(folder: str | Path, model: str | Path, preset: Preset,
                      ) -> dict[str, np.ndarray]:
    """Every image of ``folder`` preprocessed for ``model``: ``{input name: (N, ...)}``."""
    spec, layout, (height, width) = image_input(model_inputs(model))
    size = (height or preset.default_size[0], width or preset.default_size[1])
    batch = np.stack([preprocess(p, preset, size) for p in image_files(folder)])
    if layout == "NHWC":
        batch = np.ascontiguousarray(batch.transpose(0, 2, 3, 1))
    return {spec.name: batch.astype(spec.dtype, copy=False)}


def write_image_inputs(folder: str | Path, model: str | Path, preset: Preset,
                       target: str | Path) -> Path:
    """``load_image_folder`` saved as the ``.npz`` that ``--inputs`` takes."""
    target = Path(target)
    arrays: dict[str, Any] = load_image_folder(folder, model, preset)
    np.savez(target, **arrays)
    return target
