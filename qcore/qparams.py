"""Quantization parameters of one tensor: scale, zero point and axis, with ONNX's rounding."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class QParams:
    """Quantization parameters of one tensor: ``real = (q - zero_point) * scale``."""

    scale: np.ndarray
    zero_point: np.ndarray
    axis: int | None = None

    def __post_init__(self) -> None:
        self.scale = np.asarray(self.scale, dtype=np.float32)
        self.zero_point = np.asarray(self.zero_point)
        if self.zero_point.dtype not in (np.int8, np.uint8):
            raise ValueError(f"zero point must be int8 or uint8, not {self.zero_point.dtype}")
        if self.zero_point.shape != self.scale.shape:
            self.zero_point = np.broadcast_to(self.zero_point, self.scale.shape).copy()

    @property
    def dtype(self) -> np.dtype:
        return self.zero_point.dtype

    @property
    def per_channel(self) -> bool:
        return self.scale.ndim > 0 and self.scale.size > 1

    @property
    def qmin(self) -> int:
        return int(np.iinfo(self.dtype).min)

    @property
    def qmax(self) -> int:
        return int(np.iinfo(self.dtype).max)

    def real_range(self) -> tuple[float, float]:
        """The smallest and largest real value the tensor can hold (per-tensor params only)."""
        zp = self.zero_point.astype(np.int32)
        low = float(np.min((self.qmin - zp) * self.scale))
        high = float(np.max((self.qmax - zp) * self.scale))
        return low, high

    def same_as(self, other: QParams | None) -> bool:
        return (
            other is not None
            and self.dtype == other.dtype
            and self.scale.shape == other.scale.shape
            and bool(np.array_equal(self.scale, other.scale))
            and bool(np.array_equal(self.zero_point, other.zero_point))
            and (self.axis == other.axis or not self.per_channel)
        )

    def quantize(self, x: np.ndarray) -> np.ndarray:
        """Quantize ``x`` as ONNX QuantizeLinear does (round half to even, saturate)."""
        scale, zp = self._broadcast(x.ndim)
        q = np.rint(x.astype(np.float32) / scale) + zp
        result: np.ndarray = np.clip(q, self.qmin, self.qmax).astype(self.dtype)
        return result

    def dequantize(self, q: np.ndarray) -> np.ndarray:
        scale, zp = self._broadcast(q.ndim)
        result: np.ndarray = ((q.astype(np.int32) - zp) * scale).astype(np.float32)
        return result

    def _broadcast(self, ndim: int) -> tuple[np.ndarray, np.ndarray]:
        zp = self.zero_point.astype(np.int32)
        if not self.per_channel:
            return self.scale.reshape(()), zp.reshape(())
        axis = (self.axis if self.axis is not None else 1) % ndim
        shape = [1] * ndim
        shape[axis] = -1
        return self.scale.reshape(shape), zp.reshape(shape)

    def describe(self) -> str:
        kind = "u8" if self.dtype == np.uint8 else "s8"
        if self.per_channel:
            return f"{kind} per-channel[{self.scale.size}] axis={self.axis}"
        return f"{kind} s={float(self.scale):.4g} zp={int(self.zero_point)}"
