"""Paddle quantization ops -> ONNX QuantizeLinear / DequantizeLinear (int8, symmetric).

Conventions (those of Paddle's ``Quant2Int8OnednnPass``): a Paddle threshold ``T`` (the
abs-max in ``InScale`` / ``OutScale`` / ``Scale``, or ``max|W|`` per channel) becomes an ONNX
scale ``T / 127`` with an int8 zero point of 0. Fake quantize ops output
``round(x / T * 127)``, so their output is bound with factor ``T / 127`` (see
``builder.py``); fake dequantize ops multiply by ``Scale / max_range`` and become no node
when that equals the factor of their input. Weights become int8 initializers read through
DequantizeLinear (per channel on ``quant_axis``).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from qcore.paddle.builder import Binding, Builder, Factor
from qcore.paddle.ops import register
from qcore.paddle.program import Op, Program

QUANTIZE = ("fake_quantize_abs_max", "fake_quantize_range_abs_max",
            "fake_quantize_moving_average_abs_max", "fake_channel_wise_quantize_abs_max",
            "quantize_linear")
QUANT_DEQUANT = ("fake_quantize_dequantize_abs_max",
                 "fake_quantize_dequantize_moving_average_abs_max",
                 "fake_channel_wise_quantize_dequantize_abs_max")
DEQUANTIZE = ("fake_dequantize_max_abs", "fake_channel_wise_dequantize_max_abs",
              "dequantize_linear")
DYNAMIC = ("fake_quantize_abs_max", "fake_quantize_dequantize_abs_max")
CHANNEL_WISE = ("fake_channel_wise_quantize_abs_max",
                "fake_channel_wise_quantize_dequantize_abs_max")
# The weight input of each op that Paddle quantizes with weights.
WEIGHT_SLOT = {"conv2d": "Filter", "depthwise_conv2d": "Filter", "conv2d_transpose": "Filter",
               "depthwise_conv2d_transpose": "Filter", "mul": "Y", "matmul": "Y",
               "matmul_v2": "Y"}


def _qmax(bits: int) -> float:
    return float((1 << (int(bits) - 1)) - 1)


def _check_bits(b: Builder, op: Op) -> None:
    bits = int(op.attr("bit_length", 8))
    if bits != 8:
        raise b.error(f"{bits}-bit quantization is not supported (int8 only)")


def _round(values: NDArray[np.float64], round_type: int) -> NDArray[np.float64]:
    if round_type == 1:  # ties away from zero (std::round)
        return np.sign(values) * np.floor(np.abs(values) + 0.5)
    return np.rint(values)


def _per_channel(values: np.ndarray, axis: int | None) -> NDArray[np.float64]:
    """``max|values|`` over everything but ``axis`` (or over all of it)."""
    magnitudes = np.abs(values.astype(np.float64))
    if axis is None:
        return np.asarray(magnitudes.max() if magnitudes.size else 0.0)
    axis %= magnitudes.ndim
    return np.asarray(magnitudes.max(axis=tuple(i for i in range(magnitudes.ndim) if i != axis)))


def _broadcast(scale: np.ndarray, axis: int | None, ndim: int) -> np.ndarray:
    if scale.ndim == 0 or scale.size == 1 or axis is None:
        return scale.reshape(())
    shape = [1] * ndim
    shape[axis % ndim] = -1
    return scale.reshape(shape)


def _quantize_const(values: np.ndarray, threshold: np.ndarray, axis: int | None,
                    round_type: int) -> NDArray[np.int8]:
    """Paddle's ``round(clip(x / T * 127))`` at import time, as int8."""
    t = _broadcast(np.asarray(threshold, np.float64), axis, values.ndim)
    safe = np.where(t > 0, t, 1.0)
    q = _round(values.astype(np.float64) / safe * 127.0, round_type)
    q = np.where(t > 0, q, 0.0)
    return np.clip(q, -127, 127).astype(np.int8)


def _axis(op: Op) -> int | None:
    axis = op.attr("quant_axis", 0 if op.type in CHANNEL_WISE else -1)
    return None if axis is None or int(axis) < 0 else int(axis)


def _threshold(b: Builder, op: Op) -> tuple[np.ndarray | None, int | None]:
    """The abs-max threshold of a quantize op (None when Paddle computes it at run time)."""
    x_name = b.input_name("X")
    constant = b.value(x_name) if x_name not in b.bound else None
    if op.type in DYNAMIC:
        return (None if constant is None else _per_channel(constant, None)), None
    if op.type in CHANNEL_WISE:
        if constant is None:
            raise b.error("per-channel quantization of an activation is not supported")
        axis = _axis(op)
        return _per_channel(constant, axis), axis
    slot = "Scale" if op.type == "quantize_linear" else "InScale"
    threshold = b.value(op.input(slot))
    if threshold is None:
        raise b.error(f"its {slot} {op.input(slot)!r} is not a constant")
    threshold = np.asarray(threshold, np.float64).reshape(-1)
    if threshold.size == 1:
        return threshold.reshape(()), None
    return threshold, _axis(op) if _axis(op) is not None else 0


def _qdq(b: Builder, x: str, threshold: np.ndarray, axis: int | None) -> str:
    """QuantizeLinear -> DequantizeLinear on an activation with scale ``T / 127``."""
    t = np.asarray(threshold, np.float64)
    scale = (np.where(t > 0, t, 1e-8) / 127.0).astype(np.float32)
    s = b.const(scale, f"{x}.scale")
    zp = b.const(np.zeros(scale.shape, np.int8), f"{x}.zero_point", np.int8)
    per_axis = axis if scale.ndim else None
    q = b.node("QuantizeLinear", [x, s, zp], axis=per_axis)[0]
    return b.node("DequantizeLinear", [q, s, zp], axis=per_axis)[0]


def _dynamic_threshold(b: Builder, x: str) -> str:
    """``max|x|`` computed in the graph (Paddle's abs_max quantization at run time)."""
    return b.node("ReduceMax", [b.node("Abs", [x])[0]], keepdims=0)[0]


def _record_scale(b: Builder, op: Op, threshold: np.ndarray | None, tensor: str = "") -> None:
    out_scale = op.output("OutScale")
    if out_scale and threshold is not None:
        b.consts[out_scale] = np.asarray(threshold, np.float32).reshape(-1)
    elif out_scale and tensor:
        b.bind(out_scale, tensor)


@register(*QUANTIZE)
def _quantize(b: Builder, op: Op) -> None:
    """Output: Paddle's integer-valued tensor, bound as ONNX real values with factor T/127."""
    _check_bits(b, op)
    out_slot = "Y" if op.type == "quantize_linear" else "Out"
    x_name = b.input_name("X")
    if op.attr("only_observer", False):
        _observer(b, op, out_slot)
        return
    threshold, axis = _threshold(b, op)
    round_type = int(op.attr("round_type", 0 if op.type == "quantize_linear" else 1))
    constant = b.value(x_name) if x_name not in b.bound else None
    if constant is not None and threshold is not None:
        ints = _quantize_const(constant, threshold, axis, round_type)
        b.alias(out_slot, b.int8_weight(x_name, ints, threshold, axis))
        _record_scale(b, op, threshold)
        return
    x = b.get(x_name)
    if threshold is None:
        q, _, _ = _quantize_dynamic(b, op, x)
        b.node("Cast", [q], [b.output(out_slot)], to=1)
        return
    out = _qdq(b, x, threshold, axis)
    b.output(out_slot, out, Factor(np.asarray(threshold, np.float64) / 127.0, axis))
    _record_scale(b, op, threshold)


def _quantize_dynamic(b: Builder, op: Op, x: str) -> tuple[str, str, str]:
    """QuantizeLinear of ``x`` with its run-time abs-max threshold: (int8, scale, zero point)."""
    t = _dynamic_threshold(b, x)
    scale = b.node("Div", [t, b.const(127.0, "qmax")])[0]
    zp = b.const(np.zeros((), np.int8), "zero_point", np.int8)
    q = b.node("QuantizeLinear", [x, scale, zp])[0]
    _record_scale(b, op, None, t)
    return q, scale, zp


@register(*QUANT_DEQUANT)
def _quant_dequant(b: Builder, op: Op) -> None:
    """Quantize and dequantize in one op: the output holds real values again."""
    _check_bits(b, op)
    x_name = b.input_name("X")
    threshold, axis = _threshold(b, op)
    constant = b.value(x_name) if x_name not in b.bound else None
    if constant is not None and threshold is not None:
        ints = _quantize_const(constant, threshold, axis, int(op.attr("round_type", 1)))
        weight = b.int8_weight(x_name, ints, threshold, axis)
        b.alias("Out", Binding(weight.name))
        _record_scale(b, op, threshold)
        return
    x = b.get(x_name)
    if threshold is None:
        q, scale, zp = _quantize_dynamic(b, op, x)
        b.node("DequantizeLinear", [q, scale, zp], [b.output("Out")])
        return
    b.output("Out", _qdq(b, x, threshold, axis))
    _record_scale(b, op, threshold)


def _observer(b: Builder, op: Op, out_slot: str) -> None:
    """A quantize_linear that only records a scale (``only_observer``): Paddle passes the
    tensor through. With ``b.observers`` on, the scale becomes a Q/DQ pair on the tensor, as
    ``out_threshold`` attributes do."""
    binding = b.raw(b.input_name("X"))
    threshold, axis = _threshold(b, op)
    if (not b.observers or threshold is None or binding.factor is not None
            or b.input_name("X") in b.outputs or b.input_name("X") in b.fused_away):
        b.alias(out_slot, binding)
        return
    b.alias(out_slot, Binding(_qdq(b, binding.name, threshold, axis)))


def _multiplier(b: Builder, op: Op) -> Factor | str:
    """What a dequantize op multiplies by: a constant factor, or else a graph tensor."""
    if op.type == "fake_dequantize_max_abs":
        scale = b.value(op.input("Scale"))
        max_range = float(op.attr("max_range"))
        if scale is None:
            return b.node("Div", [b.input("Scale"), b.const(max_range, "max_range")])[0]
        return Factor(np.asarray(scale, np.float64).reshape(-1)[0] / max_range)
    if op.type == "dequantize_linear":
        return _linear_factor(b, op)
    names = op.inputs.get("Scales", [])
    values = [value for value in map(b.value, names) if value is not None]
    if not names or len(values) != len(names):
        raise b.error("its Scales are not constants")
    bits = list(op.attr("quant_bits", [8] * len(names)))
    if len(names) == 1:
        return Factor(np.asarray(values[0], np.float64).reshape(-1) / _qmax(bits[0]),
                      _axis(op) if np.size(values[0]) > 1 else None)
    axis = max(int(op.attr("x_num_col_dims", 1)), 1)
    scale = (np.asarray(values[0], np.float64).reshape(-1) *
             float(np.asarray(values[1]).reshape(-1)[0]) / (_qmax(bits[0]) * _qmax(bits[1])))
    return Factor(scale, axis)


def _linear_factor(b: Builder, op: Op) -> Factor:
    """The constant factor of a ``dequantize_linear`` op: ``Scale / qmax``."""
    value = b.value(op.input("Scale"))
    if value is None:
        raise b.error("its Scale is not a constant")
    scale = np.asarray(value, np.float64).reshape(-1)
    axis = _axis(op) if scale.size > 1 else None
    return Factor(scale / _qmax(op.attr("bit_length", 8)), axis)


def _integral(values: np.ndarray) -> bool:
    if values.dtype.kind in "iu":
        return bool(values.size == 0 or np.abs(values).max() <= 127)
    return bool(np.all(np.isfinite(values)) and np.array_equal(values, np.rint(values))
                and (values.size == 0 or np.abs(values).max() <= 127))


@register(*DEQUANTIZE)
def _dequantize(b: Builder, op: Op) -> None:
    x_name = b.input_name("X")
    constant = b.value(x_name) if x_name not in b.bound else None
    if op.type == "dequantize_linear" and op.attr("only_observer", False):
        b.alias("Y", b.raw(x_name))
        return
    if op.type == "dequantize_linear":
        _check_bits(b, op)
        if constant is not None and _integral(constant):
            linear = _linear_factor(b, op)
            abs_max = linear.scale * 127.0
            weight = b.int8_weight(x_name, constant.astype(np.int8), abs_max, linear.axis)
            b.alias("Y", Binding(weight.name))
            return
    out_slot = "Y" if op.type == "dequantize_linear" else "Out"
    factor = _multiplier(b, op)
    if isinstance(factor, str):
        b.node("Mul", [b.get(x_name), factor], [b.output(out_slot)])
        return
    binding = b.raw(x_name)
    if binding.factor is not None and factor.matches(binding.factor):
        b.alias(out_slot, Binding(binding.name))
        return
    x = b.get(x_name)
    b.node("Mul", [x, b.broadcast_const(factor, x_name, "dequant_scale")],
           [b.output(out_slot)])


def plan_weights(program: Program,
                 params: dict[str, np.ndarray]) -> dict[str, tuple[np.ndarray, int | None]]:
    """Weights that a frozen legacy program stores as integer-valued floats, with the
    threshold (``max|W|``, per channel on an axis or per tensor) that the fake dequantize
    op after their consumer implies: ``{weight name: (threshold, axis)}``."""
    producers = {name: op for op in program.ops for names in op.outputs.values()
                 for name in names}
    plan: dict[str, tuple[np.ndarray, int | None]] = {}
    for op in program.ops:
        if op.type not in ("fake_dequantize_max_abs", "fake_channel_wise_dequantize_max_abs"):
            continue
        producer = producers.get(op.input("X") or "")
        slot = WEIGHT_SLOT.get(producer.type) if producer else None
        weight = producer.input(slot) if producer and slot else None
        if weight is None or weight not in params or weight in plan:
            continue
        if not _integral(params[weight]):
            continue
        if op.type == "fake_dequantize_max_abs":
            plan[weight] = (np.asarray(127.0 * 127.0 / float(op.attr("max_range"))), None)
            continue
        scales = op.inputs.get("Scales", [])
        if len(scales) != 2 or scales[0] not in params:
            continue
        bits = list(op.attr("quant_bits", [8, 8]))
        abs_max = params[scales[0]].astype(np.float64).reshape(-1) * 127.0 / _qmax(bits[0])
        axis = int(op.attr("quant_axis", 0))
        plan[weight] = (abs_max, axis if abs_max.size > 1 else None)
    return plan
