"""Read Paddle parameters: a combined ``save_combine`` file or one file per variable.

Each tensor is stored as Paddle's LoDTensor serialization:

* ``uint32`` LoD version (0), ``uint64`` LoD level count, and for each level a ``uint64``
  byte size followed by that many bytes of ``uint64`` offsets;
* ``uint32`` tensor version (0), ``int32`` size of a ``VarType.TensorDesc`` protobuf, the
  protobuf itself (data type and dims);
* the raw little-endian data, ``prod(dims)`` elements.

A combined file is those records back to back, in the sorted order of the variable names
(Paddle 1.x wrote them in declaration order; both are tried).
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
from google.protobuf.message import DecodeError

from qcore.paddle import framework_pb2 as pb
from qcore.paddle.program import BF16, DTYPES, Program, Var
from qcore.safe_io import ModelError, confined_file, read_regular, regular_file_size


class _Reader:
    """A cursor over the bytes of a parameters file."""

    def __init__(self, data: bytes, source: str) -> None:
        self.data, self.pos, self.source = data, 0, source

    def take(self, size: int, what: str) -> bytes:
        if size < 0 or self.pos + size > len(self.data):
            raise ModelError(f"{self.source}: ends early while reading {what}")
        chunk = self.data[self.pos:self.pos + size]
        self.pos += size
        return chunk

    def unpack(self, fmt: str, what: str) -> int:
        return int(struct.unpack(fmt, self.take(struct.calcsize(fmt), what))[0])

    @property
    def done(self) -> bool:
        return self.pos >= len(self.data)


def read_tensor(reader: _Reader, name: str = "tensor") -> np.ndarray:
    """One LoDTensor record at the reader's position."""
    # Messages never quote the file's bytes: they say what is wrong, not what was read.
    if reader.unpack("<I", f"{name}: LoD version") != 0:
        raise ModelError(f"{reader.source}: {name}: not a Paddle tensor record (unsupported "
                         "LoD version)")
    levels = reader.unpack("<Q", f"{name}: LoD levels")
    if levels > 64:
        raise ModelError(f"{reader.source}: {name}: not a Paddle tensor record (too many LoD "
                         "levels)")
    for _ in range(levels):
        reader.take(reader.unpack("<Q", f"{name}: LoD size"), f"{name}: LoD")
    if reader.unpack("<I", f"{name}: tensor version") != 0:
        raise ModelError(f"{reader.source}: {name}: not a Paddle tensor record (unsupported "
                         "tensor version)")
    size = reader.unpack("<i", f"{name}: descriptor size")
    desc = pb.TensorDesc()
    try:
        desc.ParseFromString(reader.take(size, f"{name}: descriptor"))
    except (DecodeError, RuntimeWarning, ValueError):
        raise ModelError(f"{reader.source}: {name}: bad tensor descriptor") from None
    dtype = DTYPES.get(desc.data_type)
    if dtype is None:
        raise ModelError(f"{reader.source}: {name}: not a Paddle tensor record (unsupported "
                         "data type)")
    dims = [int(d) for d in desc.dims]
    if any(d < 0 for d in dims):
        raise ModelError(f"{reader.source}: {name}: not a Paddle tensor record (negative "
                         "dims)")
    count = int(np.prod(dims, dtype=np.int64))
    raw = reader.take(count * dtype.itemsize, f"{name}: data")
    array = np.frombuffer(raw, dtype=dtype.newbyteorder("<")).astype(dtype).reshape(dims)
    if desc.data_type == BF16:
        array = (array.astype(np.uint32) << 16).view(np.float32)
    return array


def _read_bytes(path: Path) -> bytes:
    """The whole of a regular file (never a FIFO or device, which could block or never end)."""
    where = str(path)
    return read_regular(path, 0, regular_file_size(path, where), where)


def _compatible(declared: np.dtype, stored: np.dtype) -> bool:
    """Stored types a program's declared type allows: bf16 (read as float32), and int8
    weights of a float variable (PaddleSlim's onnx_format saves quantized weights so)."""
    if declared == np.uint16 and stored == np.float32:
        return True
    return declared.kind == "f" and stored in (np.dtype(np.int8), np.dtype(np.uint8))


def _check_record(source: str, var: Var, array: np.ndarray) -> None:
    """A saved tensor must have the shape and data type the program declares."""
    if not _fits(var, array):
        raise ModelError(f"{source}: {var.name} has shape {list(array.shape)}, the program "
                         f"says {var.shape} (parameters do not match the program)")
    if (var.dtype is not None and array.dtype != var.dtype
            and not _compatible(var.dtype, array.dtype)):
        raise ModelError(f"{source}: {var.name} is stored as {array.dtype}, the program says "
                         f"{var.dtype} (parameters do not match the program)")


def _fits(var: Var, array: np.ndarray) -> bool:
    """True when the saved tensor has the shape the program declares (a 0-d tensor for a
    declared ``[1]`` too: PostTrainingQuantization saves scales that way)."""
    if var.shape is None:
        return True
    if len(var.shape) == array.ndim:
        return all(d < 0 or d == s for d, s in zip(var.shape, array.shape, strict=True))
    return all(d >= 0 for d in var.shape) and int(np.prod(var.shape)) == array.size


def read_combined(path: str | Path, program: Program) -> dict[str, np.ndarray]:
    """Every saved variable of ``program`` from one ``save_combine`` file."""
    path = Path(path)
    saved = program.saved_vars()
    limit = _most_bytes(saved)
    size = regular_file_size(path, str(path))
    if limit is not None and size > limit:
        raise ModelError(f"{path}: {size} bytes, more than the program's {len(saved)} saved "
                         "variables can take (parameters do not match the program)")
    data = _read_bytes(path)
    orders = [sorted(saved, key=lambda v: v.name), saved]
    first_error: ModelError | None = None
    for order in orders:
        try:
            return _read_in_order(data, str(path), order)
        except ModelError as exc:
            first_error = first_error or exc
    assert first_error is not None
    raise first_error


def _read_in_order(data: bytes, source: str, order: list[Var]) -> dict[str, np.ndarray]:
    reader = _Reader(data, source)
    params: dict[str, np.ndarray] = {}
    for var in order:
        array = read_tensor(reader, var.name)
        _check_record(source, var, array)
        params[var.name] = array
    if not reader.done:
        raise ModelError(f"{source}: {len(data) - reader.pos} bytes left after "
                         f"{len(order)} tensors (parameters do not match the program)")
    return params


#: Bytes a tensor record may hold besides its data (LoD header and descriptor).
RECORD_HEADER_MAX = 65536


def _most_bytes(variables: list[Var]) -> int | None:
    """The largest size the records of ``variables`` can take (None: a shape is unknown)."""
    total = 0
    for var in variables:
        if var.shape is None or var.dtype is None or any(d < 0 for d in var.shape):
            return None
        total += int(np.prod(var.shape, dtype=np.int64)) * var.dtype.itemsize
    return total + RECORD_HEADER_MAX * len(variables)


def _check_file_size(path: Path, var: Var) -> None:
    """Refuse, before reading it, a parameter file bigger than the program's shape allows."""
    limit = _most_bytes([var])
    if limit is None:
        return
    size = regular_file_size(path, str(path))
    if size > limit:
        raise ModelError(f"{path}: {size} bytes, more than {var.name} of shape {var.shape} "
                         "can take (parameters do not match the program)")


def read_separate(folder: str | Path, program: Program) -> dict[str, np.ndarray]:
    """Every saved variable of ``program``, one file per variable named after it.

    The names come from the program, so each file is confined to ``folder`` as ONNX external
    data is (no absolute path, no ``..``, no link leading out), and must be a regular file.
    """
    folder = Path(folder)
    params: dict[str, np.ndarray] = {}
    missing = []
    for var in program.saved_vars():
        path = confined_file(folder, var.name, f"{folder}: parameter file of {var.name!r}")
        if not path.exists():
            missing.append(var.name)
            continue
        _check_file_size(path, var)
        reader = _Reader(_read_bytes(path), str(path))
        array = read_tensor(reader, var.name)
        if not reader.done:
            raise ModelError(f"{path}: {len(reader.data) - reader.pos} bytes left after the "
                             "tensor (parameters do not match the program)")
        _check_record(str(path), var, array)
        params[var.name] = array
    if missing:
        shown = ", ".join(missing[:3]) + (" ..." if len(missing) > 3 else "")
        raise ModelError(f"{folder}: {len(missing)} parameter files missing ({shown}); "
                         f"pass params_filename if they are in one combined file")
    return params
