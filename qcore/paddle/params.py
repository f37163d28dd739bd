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

from qcore.loader import ModelError
from qcore.paddle import framework_pb2 as pb
from qcore.paddle.program import BF16, DTYPES, Program, Var


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
        return struct.unpack(fmt, self.take(struct.calcsize(fmt), what))[0]

    @property
    def done(self) -> bool:
        return self.pos >= len(self.data)


def read_tensor(reader: _Reader, name: str = "tensor") -> np.ndarray:
    """One LoDTensor record at the reader's position."""
    version = reader.unpack("<I", f"{name}: LoD version")
    if version != 0:
        raise ModelError(f"{reader.source}: {name}: unsupported tensor version {version}")
    levels = reader.unpack("<Q", f"{name}: LoD levels")
    if levels > 64:
        raise ModelError(f"{reader.source}: {name}: not a Paddle tensor ({levels} LoD levels)")
    for _ in range(levels):
        reader.take(reader.unpack("<Q", f"{name}: LoD size"), f"{name}: LoD")
    version = reader.unpack("<I", f"{name}: tensor version")
    if version != 0:
        raise ModelError(f"{reader.source}: {name}: unsupported tensor version {version}")
    size = reader.unpack("<i", f"{name}: descriptor size")
    desc = pb.TensorDesc()
    try:
        desc.ParseFromString(reader.take(size, f"{name}: descriptor"))
    except (DecodeError, RuntimeWarning, ValueError):
        raise ModelError(f"{reader.source}: {name}: bad tensor descriptor") from None
    dtype = DTYPES.get(desc.data_type)
    if dtype is None:
        raise ModelError(f"{reader.source}: {name}: unsupported data type {desc.data_type}")
    dims = [int(d) for d in desc.dims]
    if any(d < 0 for d in dims):
        raise ModelError(f"{reader.source}: {name}: bad dims {dims}")
    count = int(np.prod(dims, dtype=np.int64))
    raw = reader.take(count * dtype.itemsize, f"{name}: data")
    array = np.frombuffer(raw, dtype=dtype.newbyteorder("<")).astype(dtype).reshape(dims)
    if desc.data_type == BF16:
        array = (array.astype(np.uint32) << 16).view(np.float32)
    return array


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ModelError(f"{path}: cannot read ({exc.strerror or exc})") from None


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
    data = _read_bytes(path)
    saved = program.saved_vars()
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
        if not _fits(var, array):
            raise ModelError(f"{source}: {var.name} has shape {list(array.shape)}, the program "
                             f"says {var.shape} (parameters do not match the program)")
        params[var.name] = array
    if not reader.done:
        raise ModelError(f"{source}: {len(data) - reader.pos} bytes left after "
                         f"{len(order)} tensors (parameters do not match the program)")
    return params


def read_separate(folder: str | Path, program: Program) -> dict[str, np.ndarray]:
    """Every saved variable of ``program``, one file per variable named after it."""
    folder = Path(folder)
    params: dict[str, np.ndarray] = {}
    missing = []
    for var in program.saved_vars():
        path = folder / var.name
        if not path.is_file():
            missing.append(var.name)
            continue
        reader = _Reader(_read_bytes(path), str(path))
        params[var.name] = read_tensor(reader, var.name)
    if missing:
        shown = ", ".join(missing[:3]) + (" ..." if len(missing) > 3 else "")
        raise ModelError(f"{folder}: {len(missing)} parameter files missing ({shown}); "
                         f"pass params_filename if they are in one combined file")
    return params
