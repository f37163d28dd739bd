"""Paddle op -> ONNX converters: a registry of small functions, one per Paddle op type.

Each converter reads its inputs from the ``Builder`` (``b.input(slot)`` gives Paddle's value,
``b.raw(name)`` the ONNX tensor with its quantization factor), adds ONNX nodes for the current
op with ``b.node`` and binds the op's outputs with ``b.output`` / ``b.alias``. The quantization
ops are in ``quant_ops.py``; the linear ops here carry factors through (see ``builder.py``).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from qcore.paddle.builder import Binding, Builder
from qcore.paddle.program import Op

Converter = Callable[[Builder, Op], None]
REGISTRY: dict[str, Converter] = {}


def register(*op_types: str) -> Callable[[Converter], Converter]:
    def wrap(fn: Converter) -> Converter:
        for op_type in op_types:
            REGISTRY[op_type] = fn
        return fn

    return wrap


def ints(values: list[int]) -> list[int]:
    return [int(v) for v in values]


# ---- activations ------------------------------------------------------------------------


SIMPLE = {"relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh", "exp": "Exp", "sqrt": "Sqrt",
          "abs": "Abs", "floor": "Floor", "ceil": "Ceil", "erf": "Erf", "log": "Log"}


@register(*SIMPLE)
def _simple(b: Builder, op: Op) -> None:
    b.node(SIMPLE[op.type], [b.input("X")], [b.output("Out")])


@register("relu6", "clip", "brelu")
def _clip(b: Builder, op: Op) -> None:
    if op.type == "relu6":
        low, high = 0.0, float(op.attr("threshold", 6.0))
    elif op.type == "brelu":
        low, high = float(op.attr("t_min", 0.0)), float(op.attr("t_max", 24.0))
    else:
        if op.input("Min") or op.input("Max"):
            raise b.error("clip with tensor bounds is not supported")
        low, high = float(op.attr("min")), float(op.attr("max"))
    b.node("Clip", [b.input("X"), b.const(low, "clip_min"), b.const(high, "clip_max")],
           [b.output("Out")])


@register("leaky_relu")
def _leaky_relu(b: Builder, op: Op) -> None:
    b.node("LeakyRelu", [b.input("X")], [b.output("Out")], alpha=float(op.attr("alpha", 0.02)))


@register("hard_sigmoid")
def _hard_sigmoid(b: Builder, op: Op) -> None:
    b.node("HardSigmoid", [b.input("X")], [b.output("Out")],
           alpha=float(op.attr("slope", 0.2)), beta=float(op.attr("offset", 0.5)))


@register("hard_swish")
def _hard_swish(b: Builder, op: Op) -> None:
    threshold = float(op.attr("threshold", 6.0))
    scale = float(op.attr("scale", 6.0))
    offset = float(op.attr("offset", 3.0))
    x = b.input("X")
    if math.isclose(threshold, 6.0) and math.isclose(scale, 6.0) and math.isclose(offset, 3.0):
        b.node("HardSwish", [x], [b.output("Out")])
        return
    # x * min(max(x + offset, 0), threshold) / scale
    gate = b.node("HardSigmoid", [x], alpha=1.0 / threshold, beta=offset / threshold)[0]
    gate = b.node("Mul", [gate, b.const(threshold / scale, "hard_swish_scale")])[0]
    b.node("Mul", [x, gate], [b.output("Out")])


@register("swish", "silu")
def _swish(b: Builder, op: Op) -> None:
    x = b.input("X")
    beta = float(op.attr("beta", 1.0)) if op.type == "swish" else 1.0
    inner = x if beta == 1.0 else b.node("Mul", [x, b.const(beta, "swish_beta")])[0]
    gate = b.node("Sigmoid", [inner])[0]
    b.node("Mul", [x, gate], [b.output("Out")])


@register("gelu")
def _gelu(b: Builder, op: Op) -> None:
    x = b.input("X")
    out = b.output("Out")
    if op.attr("approximate", False):
        # 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
        cube = b.node("Mul", [x, b.node("Mul", [x, x])[0]])[0]
        inner = b.node("Add", [x, b.node("Mul", [cube, b.const(0.044715, "gelu_c")])[0]])[0]
        inner = b.node("Mul", [inner, b.const(math.sqrt(2.0 / math.pi), "gelu_k")])[0]
        gate = b.node("Tanh", [inner])[0]
    else:
        gate = b.node("Erf", [b.node("Div", [x, b.const(math.sqrt(2.0), "gelu_sqrt2")])[0]])[0]
    gate = b.node("Add", [gate, b.const(1.0, "gelu_one")])[0]
    half = b.node("Mul", [x, b.const(0.5, "gelu_half")])[0]
    b.node("Mul", [half, gate], [out])


@register("softmax")
def _softmax(b: Builder, op: Op) -> None:
    b.node("Softmax", [b.input("X")], [b.output("Out")], axis=int(op.attr("axis", -1)))


@register("scale")
def _scale(b: Builder, op: Op) -> None:
    if op.input("ScaleTensor"):
        raise b.error("scale with a ScaleTensor input is not supported")
    scale, bias = float(op.attr("scale", 1.0)), float(op.attr("bias", 0.0))
    if scale == 1.0 and bias == 0.0:
        b.alias("Out", Binding(b.input("X")))
        return
    x = b.input("X")
    if bias != 0.0 and not op.attr("bias_after_scale", True):
        x = b.node("Add", [x, b.const(bias, "scale_bias")])[0]
        bias = 0.0
    if bias == 0.0:
        b.node("Mul", [x, b.const(scale, "scale")], [b.output("Out")])
        return
    y = b.node("Mul", [x, b.const(scale, "scale")])[0]
    b.node("Add", [y, b.const(bias, "scale_bias")], [b.output("Out")])


@register("dropout")
def _dropout(b: Builder, op: Op) -> None:
    """Inference dropout: ``downgrade_in_infer`` scales by ``1 - p``; ``upscale_in_train``
    is the identity."""
    mode = op.attr("dropout_implementation", "downgrade_in_infer")
    prob = float(op.attr("dropout_prob", 0.5))
    if mode == "upscale_in_train" or prob == 0.0:
        b.alias("Out", b.raw(b.input_name("X")))
        return
    b.node("Mul", [b.input("X"), b.const(1.0 - prob, "dropout_keep")], [b.output("Out")])


@register("moving_average_abs_max_scale", "assign")
def _identity(b: Builder, op: Op) -> None:
    """Observers that only record a scale (or plain copies): the output is the input."""
    b.alias("Out", b.raw(b.input_name("X")))


# ---- elementwise ------------------------------------------------------------------------


ELEMENTWISE = {"elementwise_add": "Add", "elementwise_sub": "Sub", "elementwise_mul": "Mul",
               "elementwise_div": "Div", "elementwise_pow": "Pow", "elementwise_max": "Max",
               "elementwise_min": "Min"}


def aligned_y(b: Builder, op: Op) -> str:
    """Input ``Y`` reshaped for numpy broadcasting under Paddle's ``axis`` rule: Y's dims
    line up with X's starting at ``axis`` (``-1``: trailing, as numpy does)."""
    x_name, y_name = b.input_name("X"), b.input_name("Y")
    axis = int(op.attr("axis", -1))
    if axis == -1:
        return b.get(y_name)
    y_shape = b.var_shape(y_name)
    if y_shape is None:
        raise b.error(f"the rank of {y_name!r} is unknown")
    x_rank = b.rank(x_name)
    trailing = x_rank - axis % max(x_rank, 1) - len(y_shape)
    if trailing <= 0:
        return b.get(y_name)
    value = b.value(y_name)
    if value is not None and y_name not in b.bound:
        dtype = np.float32 if value.dtype == np.float64 else value.dtype
        return b.const(value.reshape(list(value.shape) + [1] * trailing), f"{y_name}.aligned",
                       dtype)
    axes = list(range(len(y_shape), len(y_shape) + trailing))
    return b.node("Unsqueeze", [b.get(y_name), b.const(axes, "axes", np.int64)])[0]


@register(*ELEMENTWISE)
def _elementwise(b: Builder, op: Op) -> None:
    x = b.input("X")
    y = aligned_y(b, op)
    b.node(ELEMENTWISE[op.type], [x, y], [b.output("Out")])


# ---- normalization ----------------------------------------------------------------------


@register("batch_norm")
def _batch_norm(b: Builder, op: Op) -> None:
    if op.attr("data_layout", "NCHW") == "NHWC":
        raise b.error("batch_norm with data_layout NHWC is not supported")
    inputs = [b.input(slot) for slot in ("X", "Scale", "Bias", "Mean", "Variance")]
    b.node("BatchNormalization", inputs, [b.output("Y")],
           epsilon=float(op.attr("epsilon", 1e-5)))


@register("layer_norm")
def _layer_norm(b: Builder, op: Op) -> None:
    x_name = b.input_name("X")
    shape = b.var_shape(x_name)
    axis = int(op.attr("begin_norm_axis", 1))
    if shape is None or any(d < 0 for d in shape[axis:]):
        raise b.error("layer_norm needs static sizes for the normalized axes")
    normalized = shape[axis:]
    params = []
    for slot, fill in (("Scale", 1.0), ("Bias", 0.0)):
        name = op.input(slot)
        value = b.value(name) if name else np.full(normalized, fill, np.float32)
        if value is None:
            raise b.error(f"layer_norm {slot} must be a parameter")
        params.append(b.const(value.reshape(normalized), f"{name or 'ln'}.{slot.lower()}"))
    b.node("LayerNormalization", [b.get(x_name), *params], [b.output("Y")], axis=axis,
           epsilon=float(op.attr("epsilon", 1e-5)))


# The converters of the other op families register themselves on import.
from qcore.paddle import layer_ops, quant_ops, shape_ops  # noqa: E402, F401
