"""Read a Paddle ``ProgramDesc`` (``__model__`` / ``*.pdmodel``) into plain Python objects."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from google.protobuf.message import DecodeError

from qcore.paddle import framework_pb2 as pb
from qcore.safe_io import ModelError, read_regular, regular_file_size

# VarType.Type -> numpy dtype (BF16 is read as its raw uint16 bits and widened later).
DTYPES: dict[int, np.dtype] = {
    0: np.dtype(np.bool_),
    1: np.dtype(np.int16),
    2: np.dtype(np.int32),
    3: np.dtype(np.int64),
    4: np.dtype(np.float16),
    5: np.dtype(np.float32),
    6: np.dtype(np.float64),
    19: np.dtype(np.uint64),
    20: np.dtype(np.uint8),
    21: np.dtype(np.int8),
    22: np.dtype(np.uint16),
    23: np.dtype(np.complex64),
    24: np.dtype(np.complex128),
}
BF16 = 22
# Var types that hold no tensor data a program reads: never saved with the parameters.
NOT_SAVED = {"FEED_MINIBATCH", "FETCH_LIST", "READER", "RAW"}


@dataclass
class Var:
    """One variable of block 0: ``shape`` uses -1 for unknown sizes."""

    name: str
    kind: str
    dtype: np.dtype | None
    shape: list[int] | None
    persistable: bool

    @property
    def saved(self) -> bool:
        """True when ``save_inference_model`` writes this variable with the parameters."""
        return self.persistable and self.kind not in NOT_SAVED


@dataclass
class Op:
    """One op: ``index`` is its position in block 0, as Paddle's dumps number it."""

    index: int
    type: str
    inputs: dict[str, list[str]]
    outputs: dict[str, list[str]]
    attrs: dict[str, Any] = field(default_factory=dict)

    def input(self, slot: str, index: int = 0) -> str | None:
        names = self.inputs.get(slot, [])
        return names[index] if index < len(names) else None

    def output(self, slot: str, index: int = 0) -> str | None:
        names = self.outputs.get(slot, [])
        return names[index] if index < len(names) else None

    def attr(self, name: str, default: Any = None) -> Any:
        return self.attrs.get(name, default)

    @property
    def label(self) -> str:
        return f"{self.type} (op {self.index})"


@dataclass
class Program:
    """Block 0 of a program: its ops in order and its variables by name."""

    ops: list[Op]
    vars: dict[str, Var]
    version: int = 0

    def feeds(self) -> list[str]:
        """Variables the ``feed`` ops write, in ``col`` order."""
        return _by_col(self.ops, "feed", "Out")

    def fetches(self) -> list[str]:
        """Variables the ``fetch`` ops read, in ``col`` order."""
        return _by_col(self.ops, "fetch", "X")

    def saved_vars(self) -> list[Var]:
        """Variables stored in the parameters, in declaration order."""
        return [v for v in self.vars.values() if v.saved]


def _by_col(ops: list[Op], op_type: str, slot: str) -> list[str]:
    found = [(op.attr("col", i), op.input(slot) or op.output(slot)) for i, op in enumerate(ops)
             if op.type == op_type]
    return [name for _, name in sorted(found, key=lambda item: item[0]) if name]


def _attr_value(attr: Any) -> Any:  # attribute values are of many types
    kind = pb.ATTR_TYPE.get(attr.type, "")
    simple = {
        "INT": "i", "FLOAT": "f", "STRING": "s", "BOOLEAN": "b", "BLOCK": "block_idx",
        "LONG": "l", "VAR": "var_name", "FLOAT64": "float64",
    }
    repeated = {
        "INTS": "ints", "FLOATS": "floats", "STRINGS": "strings", "BOOLEANS": "bools",
        "BLOCKS": "blocks_idx", "LONGS": "longs", "FLOAT64S": "float64s", "VARS": "vars_name",
    }
    if kind in simple:
        return getattr(attr, simple[kind])
    if kind in repeated:
        return list(getattr(attr, repeated[kind]))
    if kind == "SCALAR":
        return _scalar(attr.scalar)
    if kind == "SCALARS":
        return [_scalar(s) for s in attr.scalars]
    return None


def _scalar(scalar: Any) -> Any:
    for name in ("b", "i", "r"):
        if scalar.HasField(name):
            return getattr(scalar, name)
    if scalar.HasField("c"):
        return complex(scalar.c.r, scalar.c.i)
    return None


def _var(desc: Any) -> Var:
    kind = pb.VAR_TYPE.get(desc.type.type, str(desc.type.type))
    dtype = shape = None
    if desc.type.HasField("lod_tensor"):
        tensor = desc.type.lod_tensor.tensor
        dtype, shape = DTYPES.get(tensor.data_type), list(tensor.dims)
    elif desc.type.HasField("selected_rows"):
        tensor = desc.type.selected_rows
        dtype, shape = DTYPES.get(tensor.data_type), list(tensor.dims)
    return Var(desc.name, kind, dtype, shape, bool(desc.persistable))


def parse_program(data: bytes, source: str = "program") -> Program:
    """Decode a serialized ``ProgramDesc``; ``ModelError`` if it is not one."""
    proto = pb.ProgramDesc()
    try:
        proto.ParseFromString(data)
    except (DecodeError, RuntimeWarning, ValueError) as exc:
        raise ModelError(f"{source}: not a Paddle program ({type(exc).__name__})") from None
    if not proto.blocks or not proto.blocks[0].ops:
        raise ModelError(f"{source}: not a Paddle program (no ops in block 0)")
    block = proto.blocks[0]
    ops = [
        Op(
            index=i,
            type=desc.type,
            inputs={v.parameter: list(v.arguments) for v in desc.inputs},
            outputs={v.parameter: list(v.arguments) for v in desc.outputs},
            attrs={a.name: _attr_value(a) for a in desc.attrs},
        )
        for i, desc in enumerate(block.ops)
    ]
    variables = {desc.name: _var(desc) for desc in block.vars}
    return Program(ops, variables, int(proto.version.version))


def read_program(path: str | Path) -> Program:
    """Read a ``__model__`` / ``.pdmodel`` file."""
    path = Path(path)
    data = read_regular(path, 0, regular_file_size(path, str(path)), str(path))
    return parse_program(data, str(path))
