"""Import Paddle / PaddleSlim quant models as QDQ ONNX models, without Paddle installed.

``import_paddle`` lives in ``qcore.paddle.importer``; this module stays light so that
``qcore.loader`` can ask ``is_paddle_model`` without loading the converters.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import onnx


def is_paddle_model(path: str | Path) -> bool:
    """True for a Paddle program file or a folder holding one (``__model__``, ``*.pdmodel``)."""
    path = Path(path)
    if path.is_file():
        return path.suffix == ".pdmodel" or path.name == "__model__"
    if path.is_dir():
        return (path / "__model__").is_file() or any(path.glob("*.pdmodel"))
    return False


def import_paddle(model_dir_or_file: str | Path, model_filename: str | None = None,
                  params_filename: str | None = None, *,
                  out_thresholds: bool = True) -> onnx.ModelProto:
    """See ``qcore.paddle.importer.import_paddle``."""
    from qcore.paddle.importer import import_paddle as _import

    return _import(model_dir_or_file, model_filename, params_filename,
                   out_thresholds=out_thresholds)


__all__ = ["import_paddle", "is_paddle_model"]
