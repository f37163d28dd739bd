"""Per-output-channel int8 scales for the weights of Conv, Gemm and MatMul."""

from __future__ import annotations

import numpy as np

from qcore.ir import Graph, QParams
from qcore.ops import weight_axis
from qcore.passes.base import Context, Fact, Pass, PassResult


def symmetric_int8(weight: np.ndarray, axis: int) -> tuple[QParams, np.ndarray]:
    """Symmetric signed per-channel quantization, scale = max|W| / 127."""
    moved = np.moveaxis(weight.astype(np.float32), axis, 0).reshape(weight.shape[axis], -1)
    amax = np.abs(moved).max(axis=1)
    scale = np.where(amax > 0, amax / 127.0, 1.0).astype(np.float32)
    params = QParams(scale, np.zeros(scale.shape, np.int8), axis)
    return params, params.quantize(weight)


def _usable_as_is(params: QParams, ints: np.ndarray, axis: int) -> bool:
    """Reuse the model's own integer weights when they are int8, symmetric and per-tensor or
    per-channel on the output axis (the grid the quant model computed with)."""
    if params.dtype != np.int8 or np.any(params.zero_point != 0):
        return False
    if not params.per_channel:
        return True
    return params.axis is not None and (params.axis % ints.ndim) == axis


class ComputeWeightScales(Pass):
    """Paddle ``_compute_weight_scales``. Weights the fusions left untouched keep the quant
    model's own int8 values and scales; changed ones (e.g. BN folded) get new scales."""

    name = "compute_weight_scales"
    requires = frozenset({Fact.FLOAT_WEIGHTS})
    ensures = frozenset({Fact.WEIGHT_SCALES})

    def apply(self, ctx: Context) -> PassResult:
        g = ctx.graph
        kept = computed = 0
        for node in g.nodes:
            axis = weight_axis(node)
            if axis is None or len(node.inputs) < 2 or node.inputs[1] not in g.initializers:
                continue
            name = node.inputs[1]
            weight = g.initializers[name]
            if weight.dtype != np.float32 or weight.ndim < 2:
                continue
            axis %= weight.ndim
            old = g.weight_qparams.get(name)
            if old is not None and old.dtype == np.uint8 and np.all(old.zero_point == 128):
                old = _shift_to_int8(g, name, old)
            if old is not None and _usable_as_is(old, g.weight_ints[name], axis):
                kept += 1
                continue
            params, ints = symmetric_int8(weight, axis)
            _store(g, name, params, ints)
            computed += 1
        return PassResult(
            modified=computed > 0,
            summary=f"kept {kept} weight scales, computed {computed}",
        )


def _shift_to_int8(g: Graph, name: str, params: QParams) -> QParams:
    """uint8 weights with zero point 128 are int8 weights with zero point 0, exactly."""
    ints = (g.weight_ints[name].astype(np.int16) - 128).astype(np.int8)
    shifted = QParams(params.scale, np.zeros(params.scale.shape, np.int8), params.axis)
    _store(g, name, shifted, ints)
    return shifted


def _store(g: Graph, name: str, params: QParams, ints: np.ndarray) -> None:
    g.weight_qparams[name] = params
    g.weight_ints[name] = ints
