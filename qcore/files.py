"""Writing outputs safely: atomically, and never over the input model."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import onnx


class OutputError(ValueError):
    """An output path that must not or cannot be written."""


def check_output(path: str | Path, *inputs: str | Path) -> Path:
    """Refuse an output path that is one of the inputs; create its folder."""
    out = Path(path)
    for source in inputs:
        if source and Path(source).exists() and out.exists() and out.samefile(source):
            raise OutputError(f"{out}: refusing to overwrite the input model")
        if source and out.resolve() == Path(source).resolve():
            raise OutputError(f"{out}: refusing to overwrite the input model")
    if out.is_dir():
        raise OutputError(f"{out}: is a folder; give a file name")
    out.parent.mkdir(parents=True, exist_ok=True)
    return out


def write_bytes_atomic(path: str | Path, data: bytes) -> Path:
    """Write to a temporary file beside ``path`` and rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def save_model(model: onnx.ModelProto, path: str | Path, *inputs: str | Path) -> Path:
    """Save an ONNX model atomically, refusing to overwrite any of ``inputs``."""
    out = check_output(path, *inputs)
    return write_bytes_atomic(out, model.SerializeToString())
