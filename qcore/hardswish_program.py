"""The steps of a spelled-out hard-swish, its source's fake-quants included: what a fused
``HardSwish`` node computes (``Node.program``; written back by ``qcore.emit.hardswish``)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import numpy as np

from qcore.qparams import QParams


class StepKind(Enum):
    """One op of the spelled-out pattern (a constant operand), or a fake-quant pair."""

    ADD = "Add"
    MUL = "Mul"
    DIV = "Div"
    CLIP = "Clip"
    HARD_SIGMOID = "HardSigmoid"
    FAKE_QUANT = "FakeQuant"


@dataclass(frozen=True)
class Step:
    """``a``: the constant (Add / Mul / Div), the low bound (Clip) or alpha (HardSigmoid);
    ``b``: the high bound or beta. A fake-quant quantizes with ``quant`` and reads the codes
    back with ``read`` (None: the same params). ``op_id``: the source op it stands for."""

    kind: StepKind
    a: float = 0.0
    b: float = 0.0
    quant: QParams | None = None
    read: QParams | None = None
    op_id: int | None = None

    def apply(self, v: np.ndarray) -> np.ndarray:
        """The step on float32 values, as ONNX computes it."""
        a, b = np.float32(self.a), np.float32(self.b)
        result: np.ndarray
        if self.kind is StepKind.ADD:
            result = v + a
        elif self.kind is StepKind.MUL:
            result = v * a
        elif self.kind is StepKind.DIV:
            result = v / a
        elif self.kind is StepKind.CLIP:
            result = np.minimum(np.maximum(v, a), b)
        elif self.kind is StepKind.HARD_SIGMOID:
            result = np.maximum(np.float32(0), np.minimum(np.float32(1), a * v + b))
        else:
            assert self.quant is not None, "a fake-quant step has params"
            result = (self.read or self.quant).dequantize(self.quant.quantize(v))
        return result


@dataclass(frozen=True)
class Program:
    """``x * gate(x)`` then ``product`` steps: ``gate`` maps x to the gate, ``product`` maps
    the product to the hard-swish (the node's own output quantization is not part of it)."""

    gate: tuple[Step, ...]
    product: tuple[Step, ...] = ()

    def evaluate(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, np.float32)
        g = x
        for step in self.gate:
            g = step.apply(g)
        y: np.ndarray = x * g
        for step in self.product:
            y = step.apply(y)
        return y

    @property
    def steps(self) -> tuple[Step, ...]:
        return self.gate + self.product
