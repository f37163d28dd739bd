"""Writing outputs safely: atomically, and never over the input model.

Protobuf cannot serialize a message of 2 GiB or more, so :func:`save_model` stores the
weights of a bigger model in ``<name>.data`` beside it (ONNX external data).
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import tempfile
from pathlib import Path

import onnx
from google.protobuf.message import EncodeError
from onnx import numpy_helper

#: A model whose proto would reach this size is saved with external data.
MAX_PROTO_BYTES = 2**31 - 2**24
#: With external data, tensors of at least this many bytes go into the data file.
EXTERNAL_MIN_BYTES = 1024
#: Offsets of tensors in the data file are multiples of this (lets runtimes mmap them).
EXTERNAL_ALIGN = 4096


#: Files qcore writes; in a Paddle model folder they are not taken for parts of the model.
OUTPUT_SUFFIXES = frozenset({".onnx", ".data", ".json", ".csv", ".dot", ".gv", ".svg", ".png",
                             ".pdf", ".txt"})


class OutputError(ValueError):
    """An output path that must not or cannot be written."""


def input_files(source: str | Path) -> list[Path]:
    """The files a model given as ``source`` is read from, as far as they can be told.

    A folder (a Paddle model) counts with every file directly in it (Paddle may keep one
    file per parameter) except the kinds qcore writes (:data:`OUTPUT_SUFFIXES`); a Paddle
    ``.pdmodel`` with its ``.pdiparams``; an ONNX file with the external data files it names.
    """
    path = Path(source)
    if path.is_dir():
        return [path] + sorted(p for p in path.iterdir()
                               if p.is_file() and p.suffix.lower() not in OUTPUT_SUFFIXES)
    if path.suffix == ".pdmodel":
        return [path, path.with_suffix(".pdiparams"), path.with_suffix(".pdiparams.info")]
    if not path.is_file():
        return [path]
    stat = path.stat()
    return [path] + [path.parent / name for name in
                     _external_locations(str(path.resolve()), stat.st_mtime_ns, stat.st_size)]


@functools.lru_cache(maxsize=16)
def _external_locations(path: str, mtime_ns: int, size: int) -> tuple[str, ...]:
    """The external data locations an ONNX file names (none if it is not ONNX)."""
    del mtime_ns, size  # only part of the cache key
    try:
        model = onnx.load(path, load_external_data=False)
        tensors = list(model.graph.initializer)
    except Exception:  # noqa: BLE001 - not an ONNX model: it names no other file
        return ()
    found = {entry.value for tensor in tensors for entry in tensor.external_data
             if entry.key == "location" and entry.value}
    return tuple(sorted(found))


def _same_file(a: Path, b: Path) -> bool:
    try:
        if a.exists() and b.exists():
            return a.samefile(b)
        return a.resolve() == b.resolve()
    except (OSError, RuntimeError, ValueError):
        return False


def check_output(path: str | Path, *inputs: str | Path) -> Path:
    """Refuse an output path that is one of the inputs' files; create its folder.

    Raises:
        OutputError: ``path`` is (a file of) an input model (see :func:`input_files`), or a
            folder.
    """
    out = Path(path)
    for source in filter(None, inputs):
        for used in input_files(source):
            if _same_file(out, used):
                what = "the input model" if used == Path(source) else f"a file of {source}"
                raise OutputError(f"{out}: refusing to overwrite {what}")
    if out.is_dir():
        raise OutputError(f"{out}: is a folder; give a file name")
    out.parent.mkdir(parents=True, exist_ok=True)
    return out


def write_bytes_atomic(path: str | Path, data: bytes) -> Path:
    """Write to a temporary file beside ``path`` and rename it into place: readers never see
    a half-written file, and a failed write leaves the old file untouched."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(OSError):
            os.chmod(tmp, 0o644)  # mkstemp creates 0600; give the usual file permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def save_model(model: onnx.ModelProto, path: str | Path, *inputs: str | Path,
               external_data: bool | None = None) -> Path:
    """Save an ONNX model atomically, refusing to overwrite any of ``inputs``.

    Args:
        model: The model; it is not changed.
        path: The ``.onnx`` file to write.
        *inputs: Files that must not be overwritten (the input model).
        external_data: Store the weights in ``<path name>.data`` beside the model; by default
            only when the proto would reach :data:`MAX_PROTO_BYTES` (protobuf's 2 GiB limit).

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        OutputError: ``path`` (or its data file) is one of ``inputs``, or a folder, or the
            model is too large even with external data.
    """
    out = check_output(path, *inputs)
    if external_data is None:
        external_data = proto_size(model) >= MAX_PROTO_BYTES
    if not external_data:
        return write_bytes_atomic(out, model.SerializeToString())
    return _save_with_external_data(model, out, *inputs)


def proto_size(model: onnx.ModelProto) -> float:
    """The serialized size of ``model`` in bytes (infinite when protobuf cannot tell)."""
    try:
        return model.ByteSize()
    except (EncodeError, ValueError, OverflowError):
        return float("inf")


def copy_without_initializers(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of ``model`` whose main graph has no initializers (cheap for huge models)."""
    light = onnx.ModelProto()
    _copy_fields(model, light, skip="graph")
    _copy_fields(model.graph, light.graph, skip="initializer")
    return light


def _copy_fields(source: object, target: object, skip: str) -> None:
    for field, value in source.ListFields():  # type: ignore[attr-defined]
        if field.name == skip:
            continue
        if field.is_repeated:
            getattr(target, field.name).extend(value)
        elif field.message_type is not None:
            getattr(target, field.name).CopyFrom(value)
        else:
            setattr(target, field.name, value)


def _tensor_bytes(tensor: onnx.TensorProto) -> bytes | None:
    """The raw little-endian bytes of a tensor worth moving to the data file, else None."""
    if tensor.data_type == onnx.TensorProto.STRING:
        return None
    if onnx.external_data_helper.uses_external_data(tensor):
        return None
    if tensor.HasField("raw_data"):
        data = tensor.raw_data
    elif tensor.ByteSize() >= EXTERNAL_MIN_BYTES:
        data = numpy_helper.to_array(tensor).tobytes()
    else:
        return None
    return data if len(data) >= EXTERNAL_MIN_BYTES else None


def _save_with_external_data(model: onnx.ModelProto, out: Path, *inputs: str | Path) -> Path:
    """Write ``out`` and ``<out name>.data`` through a temporary folder beside them."""
    data_name = f"{out.name}.data"
    data_path = check_output(out.with_name(data_name), *inputs)
    light = copy_without_initializers(model)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        offset = 0
        with open(tmp / data_name, "wb") as handle:
            for tensor in model.graph.initializer:
                data = _tensor_bytes(tensor)
                if data is None:
                    light.graph.initializer.append(tensor)
                    continue
                offset += -offset % EXTERNAL_ALIGN
                handle.seek(offset)
                handle.write(data)
                stored = light.graph.initializer.add()
                stored.name, stored.data_type = tensor.name, tensor.data_type
                stored.dims.extend(tensor.dims)
                stored.data_location = onnx.TensorProto.EXTERNAL
                for key, value in (("location", data_name), ("offset", str(offset)),
                                   ("length", str(len(data)))):
                    entry = stored.external_data.add()
                    entry.key, entry.value = key, value
                offset += len(data)
                del data
        if proto_size(light) >= MAX_PROTO_BYTES:
            raise OutputError(f"{out}: the model is too large to save even with its weights "
                              "in a separate data file")
        (tmp / out.name).write_bytes(light.SerializeToString())
        os.replace(tmp / data_name, data_path)
        os.replace(tmp / out.name, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out
