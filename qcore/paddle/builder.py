"""The state of one import: ONNX nodes made so far and what each Paddle variable became.

Paddle's legacy quant ops pass *integer-valued* float tensors between ops (a fake quantize
op outputs ``round(x / T * 127)``, a frozen weight holds its int8 values, and a fake
dequantize op after the conv scales the product back). The ONNX model computes on real
values throughout, with QuantizeLinear / DequantizeLinear pairs: so every Paddle variable is
bound to an ONNX tensor and a ``Factor`` ``f`` meaning ``onnx_value = paddle_value * f``.
A dequantize op whose multiplier equals the factor of its input becomes no node at all; an
op that needs Paddle's own integer values gets them back through a ``Mul`` (``materialize``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
from numpy.typing import DTypeLike
from onnx import TensorProto, helper, numpy_helper

from qcore.paddle.program import Op, Program, Var
from qcore.safe_io import ModelError

OPSET = 17
FLOAT = TensorProto.FLOAT


@dataclass
class Factor:
    """``onnx = paddle * scale``; ``scale`` is a scalar or one value per index of ``axis``."""

    scale: np.ndarray
    axis: int | None = None

    def __post_init__(self) -> None:
        self.scale = np.asarray(self.scale, dtype=np.float64)
        if self.scale.size == 1:
            self.scale, self.axis = self.scale.reshape(()), None

    @property
    def per_channel(self) -> bool:
        return self.scale.ndim > 0

    def matches(self, other: Factor | None, rtol: float = 1e-5) -> bool:
        """True when both factors scale every element the same way."""
        if other is None:
            return bool(np.allclose(self.scale, 1.0, rtol=rtol, atol=0))
        if self.per_channel and other.per_channel and self.axis != other.axis:
            return False
        try:
            a, b = np.broadcast_arrays(self.scale, other.scale)
        except ValueError:
            return False
        zero = (a == 0) | (b == 0)
        return bool(np.allclose(a[~zero], b[~zero], rtol=rtol, atol=0))

    def times(self, other: Factor | None, axis: int | None = None) -> Factor:
        """This factor times ``other``; a per-channel result lives on ``axis``."""
        if other is None:
            return self
        scale = self.scale * other.scale
        return Factor(scale, axis if scale.ndim else None)


@dataclass
class Binding:
    """What a Paddle variable is in the ONNX graph."""

    name: str
    factor: Factor | None = None


class Builder:
    """Collects ONNX nodes and initializers while Paddle ops are converted one by one."""

    def __init__(self, program: Program, params: dict[str, np.ndarray]) -> None:
        self.program = program
        self.params = params
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: dict[str, onnx.TensorProto] = {}
        self.inputs: list[onnx.ValueInfoProto] = []
        self.bound: dict[str, Binding] = {}
        self.consts: dict[str, np.ndarray] = {}
        self.weight_plan: dict[str, tuple[np.ndarray, int | None]] = {}
        self.warnings: list[str] = []
        self.observers = True  # only_observer scales become Q/DQ pairs ...
        self.outputs: set[str] = set()  # ... except on the model's outputs
        self.fused_away: set[str] = set()  # ... and on tensors Paddle fuses away
        self.op: Op | None = None
        self._names: set[str] = set()
        self._reserved = set(program.vars) | set(params)
        self._per_op: dict[int, int] = {}
        self._op_start = 0
        self._cache: dict[tuple[str, str], str] = {}

    # ---- names and nodes --------------------------------------------------------------
    def fresh(self, base: str) -> str:
        """A tensor name not used yet (reserved at once)."""
        name, k = base, 1
        while name in self._names or name in self._reserved:
            name, k = f"{base}_{k}", k + 1
        self._names.add(name)
        return name

    def is_used(self, name: str) -> bool:
        """True when an ONNX tensor of that name exists already."""
        return name in self._names

    def node(self, op_type: str, inputs: list[str], outputs: int | list[str] = 1,
             **attrs: Any) -> list[str]:
        """Add an ONNX node for the current Paddle op and return its output names.

        Nodes are named ``paddle_op_<index>_<type>`` (``start_op`` / ``finish_op`` give the
        plain name to the node computing the op's output, ``..._<k>`` to its helpers) and
        carry the doc_string ``paddle op <index>: <type>``.
        """
        op = self.op
        if isinstance(outputs, int):
            stem = f"paddle_op_{op.index}" if op else "qcore"
            outputs = [self.fresh(f"{stem}.{op_type.lower()}") for _ in range(outputs)]
        base = f"paddle_op_{op.index}_{op.type}" if op else f"qcore_{op_type.lower()}"
        key = op.index if op else -1
        count = self._per_op.get(key, 0) + 1
        self._per_op[key] = count
        proto = helper.make_node(op_type, inputs, outputs, name=f"{base}_{count}",
                                 **{k: v for k, v in attrs.items() if v is not None})
        if op is not None:
            proto.doc_string = f"paddle op {op.index}: {op.type}"
        self.nodes.append(proto)
        return list(outputs)

    def start_op(self, op: Op) -> None:
        self.op = op
        self._op_start = len(self.nodes)

    def finish_op(self) -> None:
        """Name the nodes made for the current op: the one writing the op's first bound
        output gets ``paddle_op_<index>_<type>``, the others ``..._1``, ``..._2`` in order."""
        op, made = self.op, self.nodes[self._op_start:]
        if op is None or not made:
            return
        produced = [self.bound[n].name for names in op.outputs.values() for n in names
                    if n in self.bound]
        main = next((node for name in produced for node in made if name in node.output), None)
        base = f"paddle_op_{op.index}_{op.type}"
        k = 0
        for node in made:
            if node is main:
                node.name = base
            else:
                k += 1
                node.name = f"{base}_{k}"
        self._per_op[op.index] = k

    def const(self, value: np.ndarray | float | list[float] | list[int], hint: str = "const",
              dtype: DTypeLike = np.float32) -> str:
        """An initializer holding ``value`` (made once per name hint and value)."""
        array = np.asarray(value, dtype=dtype)
        key = (hint, array.dtype.str + str(array.shape) + array.tobytes().hex())
        if key in self._cache:
            return self._cache[key]
        name = self.fresh(hint)
        self.initializers[name] = numpy_helper.from_array(array.copy(order="C"), name)
        self._cache[key] = name
        return name

    # ---- Paddle variables -------------------------------------------------------------
    def var_shape(self, name: str) -> list[int] | None:
        if name in self.params:
            return list(self.params[name].shape)
        var = self.program.vars.get(name)
        return None if var is None or var.shape is None else list(var.shape)

    def rank(self, name: str) -> int:
        shape = self.var_shape(name)
        if shape is None:
            raise self.error(f"the rank of {name!r} is unknown")
        return len(shape)

    def declare(self, name: str, shape: list[int] | None) -> None:
        """Make a helper variable known (for its rank) to later converters."""
        self.program.vars[name] = Var(name, "LOD_TENSOR", None, shape, False)

    def value(self, name: str | None) -> np.ndarray | None:
        """The value of a variable known at import time (a parameter or a computed scale)."""
        if name is None:
            return None
        if name in self.consts:
            return self.consts[name]
        return self.params.get(name)

    def bind(self, paddle_name: str | None, onnx_name: str, factor: Factor | None = None) -> None:
        if paddle_name:
            self.bound[paddle_name] = Binding(onnx_name, factor)
            self._names.add(onnx_name)

    def out_name(self, paddle_name: str | None) -> str:
        """The ONNX name for a Paddle output: its own name while that is still free."""
        if not paddle_name:
            return self.fresh("unused")
        if paddle_name in self._names:
            return self.fresh(paddle_name)
        self._names.add(paddle_name)
        return paddle_name

    def raw(self, name: str) -> Binding:
        """The ONNX tensor of a variable, with its factor (parameters become initializers)."""
        if name in self.bound:
            return self.bound[name]
        if name in self.weight_plan:
            return self._planned_weight(name)
        if name in self.params:
            array = self.params[name]
            if array.dtype == np.float64:
                array = array.astype(np.float32)
            self.initializers[name] = numpy_helper.from_array(array, name)
            self.bind(name, name)
            return self.bound[name]
        raise self.error(f"reads {name!r}, which no earlier op writes and is not a parameter")

    def get(self, name: str) -> str:
        """The ONNX tensor holding a variable's Paddle value (factor 1)."""
        binding = self.raw(name)
        if binding.factor is None or binding.factor.matches(None):
            return binding.name
        return self.materialize(binding, name)

    def materialize(self, binding: Binding, paddle_name: str) -> str:
        """Undo a factor: ``paddle = onnx / f`` (Paddle's integer-valued tensor)."""
        factor = binding.factor
        if factor is None:
            return binding.name
        inverse = Factor(1.0 / np.where(factor.scale == 0, 1, factor.scale), factor.axis)
        return self.node("Mul", [binding.name, self.broadcast_const(inverse, paddle_name,
                                                                    "unscale")])[0]

    def broadcast_const(self, factor: Factor, paddle_name: str, hint: str) -> str:
        """``factor`` as an initializer that broadcasts against ``paddle_name``."""
        if not factor.per_channel:
            return self.const(factor.scale, hint)
        rank = self.rank(paddle_name)
        axis = self.channel_axis(factor, rank)
        shape = [-1] + [1] * (rank - axis - 1)
        return self.const(factor.scale.reshape(shape), hint)

    def channel_axis(self, factor: Factor, rank: int) -> int:
        """The axis, in ``0 .. rank - 1``, that a per-channel ``factor`` lives on."""
        if factor.axis is None:
            raise self.error("a per-channel scale has no axis")
        return factor.axis % rank

    def input_name(self, slot: str, index: int = 0) -> str:
        """The Paddle variable the current op reads at ``slot``; required."""
        name = self.op.input(slot, index) if self.op else None
        if name is None:
            raise self.error(f"has no input {slot!r}")
        return name

    def input(self, slot: str, index: int = 0) -> str:
        """The ONNX tensor of the current op's input ``slot``; required."""
        return self.get(self.input_name(slot, index))

    def output_name(self, slot: str, index: int = 0) -> str:
        """The Paddle variable the current op writes at ``slot``; required."""
        name = self.op.output(slot, index) if self.op else None
        if name is None:
            raise self.error(f"has no output {slot!r}")
        return name

    def output(self, slot: str, onnx_name: str | None = None, factor: Factor | None = None,
               index: int = 0) -> str:
        """Bind the current op's output ``slot``; returns the ONNX name to write it to."""
        name = self.output_name(slot, index)
        target = onnx_name or self.out_name(name)
        self.bind(name, target, factor)
        return target

    def alias(self, slot_out: str, binding: Binding, index: int = 0) -> None:
        """The op's output is its input unchanged (no ONNX node)."""
        name = self.op.output(slot_out, index) if self.op else None
        if name:
            self.bound[name] = binding

    # ---- weights that Paddle stored quantized -----------------------------------------
    def _planned_weight(self, name: str) -> Binding:
        abs_max, axis = self.weight_plan[name]
        ints = self.params[name]
        binding = self.int8_weight(name, np.rint(ints).astype(np.int8), abs_max, axis)
        self.bound[name] = binding
        return binding

    def int8_weight(self, name: str, ints: np.ndarray, abs_max: np.ndarray,
                    axis: int | None) -> Binding:
        """An int8 initializer read through DequantizeLinear with scale ``abs_max / 127``.

        The binding's factor is ``abs_max / 127``: ONNX holds real values where Paddle holds
        the integers.
        """
        abs_max = np.asarray(abs_max, dtype=np.float64).reshape(-1)
        safe = np.where(abs_max > 0, abs_max, 1e-8)
        scale = (safe / 127.0).astype(np.float32)
        per_channel = scale.size > 1
        if not per_channel:
            scale = scale.reshape(())
        q_name = self.fresh(f"{name}.int8")
        self.initializers[q_name] = numpy_helper.from_array(ints.astype(np.int8), q_name)
        s_name = self.const(scale, f"{name}.scale")
        zp = self.const(np.zeros(scale.shape, np.int8), f"{name}.zero_point", np.int8)
        out = self.fresh(f"{name}.dequantized")
        self.node("DequantizeLinear", [q_name, s_name, zp], [out],
                  axis=(axis if per_channel else None))
        return Binding(out, Factor(safe / 127.0, axis if per_channel else None))

    # ---- errors -----------------------------------------------------------------------
    def error(self, message: str) -> ModelError:
        where = f"Paddle op {self.op.index} ({self.op.type})" if self.op else "Paddle program"
        return ModelError(f"{where}: {message}")
