"""ONNX external data: reading it back checked, and writing the big tensors of a model.

Reading (:func:`load_external`) takes only the bytes a tensor's dims and type imply, from a
regular file inside the model's folder. Writing (:func:`write_external_data`) puts every
tensor of at least :data:`EXTERNAL_MIN_BYTES` into one data file beside the model, aligned
to :data:`EXTERNAL_ALIGN` and named after its content (``<name>.<hash>.data``).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnx
from google.protobuf.message import EncodeError, Message
from onnx import helper, numpy_helper

from qcore.safe_io import ModelError, confined_file, read_regular, regular_file_size
from qcore.temporaries import NAME_MAX, drop, fit_name, new_temporary

#: With external data, tensors of at least this many bytes go into the data file.
EXTERNAL_MIN_BYTES = 1024
#: Offsets of tensors in the data file are multiples of this (lets runtimes mmap them).
EXTERNAL_ALIGN = 4096

# ---- reading ------------------------------------------------------------------------------


def all_tensors(graph: onnx.GraphProto) -> Iterator[onnx.TensorProto]:
    """Every tensor stored in ``graph``: initializers and attribute tensors, subgraphs too."""
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield sparse.values
        yield sparse.indices
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("t"):
                yield attr.t
            yield from attr.tensors
            if attr.HasField("g"):
                yield from all_tensors(attr.g)
            for sub in attr.graphs:
                yield from all_tensors(sub)


def tensor_nbytes(tensor: onnx.TensorProto) -> int | None:
    """The bytes a tensor's data takes by its dims and type (None for strings / unknown)."""
    count = 1
    for dim in tensor.dims:
        count *= int(dim)
    bits = _ELEMENT_BITS.get(tensor.data_type)
    if bits is None:
        try:
            bits = 8 * np.dtype(helper.tensor_dtype_to_np_dtype(tensor.data_type)).itemsize
        except (KeyError, TypeError, ValueError):
            return None
    return (count * bits + 7) // 8


#: Element sizes numpy's dtypes do not tell (packed sub-byte types; strings have none).
_ELEMENT_BITS: dict[int, int | None] = {onnx.TensorProto.STRING: None}
for _name in ("INT4", "UINT4", "FLOAT4E2M1", "INT2", "UINT2"):
    if hasattr(onnx.TensorProto, _name):
        _ELEMENT_BITS[getattr(onnx.TensorProto, _name)] = 2 if _name.endswith("2") else 4


def external_span(path: Path, tensor: onnx.TensorProto) -> tuple[Path, int, int]:
    """Where a tensor's external data is: (file, offset, length), every part checked.

    The length is the size the tensor's dims and type imply; a ``length`` entry must agree,
    and the file must hold that many bytes after ``offset`` (checked before reading)."""
    info = {entry.key: entry.value for entry in tensor.external_data}
    location = info.get("location", "")
    where = f"{path}: external data of tensor {tensor.name!r}"
    if not location:
        raise ModelError(f"{where} has no location")
    target = confined_file(path.parent, location, where)
    size = regular_file_size(target, where, f": {location!r} must sit beside the model "
                             f"in {path.parent}")
    try:
        offset = int(info.get("offset") or 0)
        length = int(info["length"]) if info.get("length") else None
    except ValueError:
        raise ModelError(f"{where}: offset / length are not integers") from None
    needed = tensor_nbytes(tensor)
    if needed is None:
        raise ModelError(f"{where}: external data of this element type is not supported")
    if length is not None and length != needed:
        raise ModelError(f"{where}: length {length} does not match its shape "
                         f"{list(tensor.dims)}, which needs {needed} bytes")
    if offset < 0 or offset + needed > size:
        raise ModelError(f"{where}: {location!r} holds {size} bytes, too few for "
                         f"{needed} bytes at offset {offset}")
    return target, offset, needed


def load_external(path: Path, tensor: onnx.TensorProto) -> None:
    """Read a tensor's external data into ``raw_data`` (only its own bytes)."""
    target, offset, length = external_span(path, tensor)
    where = f"{path}: external data of tensor {tensor.name!r}"
    tensor.raw_data = read_regular(target, offset, length, where)
    tensor.data_location = onnx.TensorProto.DEFAULT
    del tensor.external_data[:]


# ---- writing -----------------------------------------------------------------------------


@functools.lru_cache(maxsize=16)
def external_locations(path: str, mtime_ns: int, size: int) -> tuple[str, ...]:
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


def _copy_fields(source: Message, target: Message, skip: str) -> None:
    for field, value in source.ListFields():
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


def data_file_name(out: Path, digest: str) -> str:
    """The data file of model ``out`` holding data with this digest (fits NAME_MAX)."""
    tail = f".{digest}.data"
    return fit_name(out.name, NAME_MAX - len(tail)) + tail


def old_data_files(out: Path, keep: str) -> list[str]:
    """Data files the model now at ``out`` uses that qcore named for it, except ``keep``."""
    if not out.is_file():
        return []
    stat_ = out.stat()
    names = external_locations(str(out.resolve()), stat_.st_mtime_ns, stat_.st_size)
    ours = re.compile(re.escape(fit_name(out.name, NAME_MAX - 22)) + r"(\.[0-9a-f]{16})?\.data")
    return [n for n in names if n != keep and "/" not in n and ours.fullmatch(n)]


def write_external_data(model: onnx.ModelProto, out: Path,
                         ) -> tuple[Path, str, onnx.ModelProto]:
    """Write the big tensors of ``model`` to a temporary beside ``out``.

    Returns:
        The temporary, the data file name (:func:`data_file_name` of its content hash) and
        the model without those tensors' bytes, pointing at that name.
    """
    light = copy_without_initializers(model)
    fd, tmp = new_temporary(out)
    os.close(fd)
    digest = hashlib.blake2b(digest_size=8)
    stored_entries = []
    try:
        offset = 0
        with open(tmp, "wb") as handle:
            for tensor in model.graph.initializer:
                data = _tensor_bytes(tensor)
                if data is None:
                    light.graph.initializer.append(tensor)
                    continue
                pad = -offset % EXTERNAL_ALIGN
                handle.write(b"\0" * pad)
                digest.update(b"\0" * pad)
                offset += pad
                handle.write(data)
                digest.update(data)
                stored = light.graph.initializer.add()
                stored.name, stored.data_type = tensor.name, tensor.data_type
                stored.dims.extend(tensor.dims)
                stored.data_location = onnx.TensorProto.EXTERNAL
                stored_entries.append((stored, offset, len(data)))
                offset += len(data)
                del data
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(OSError):
            os.chmod(tmp, 0o644)
    except BaseException:
        drop(tmp)
        raise
    name = data_file_name(out, digest.hexdigest())
    for stored, offset, length in stored_entries:
        for key, value in (("location", name), ("offset", str(offset)), ("length", str(length))):
            entry = stored.external_data.add()
            entry.key, entry.value = key, value
    return tmp, name, light
