"""Paddle layers -> ONNX: pooling, interpolation and the linear ops (conv2d,
depthwise_conv2d, conv2d_transpose, mul, matmul, matmul_v2, fc), which carry the
quantization factors of their inputs to their outputs (see ``builder.py``)."""

from __future__ import annotations

import numpy as np

from qcore.paddle.builder import Binding, Builder, Factor
from qcore.paddle.ops import ints, register
from qcore.paddle.program import Op
from qcore.paddle.shape_ops import shape_slice

# ---- pooling and resizing ---------------------------------------------------------------


def conv_pads(b: Builder, op: Op, spatial: int = 2) -> dict[str, str | int | list[int]]:
    """``pads`` / ``auto_pad`` from Paddle's paddings and padding_algorithm."""
    algorithm = op.attr("padding_algorithm", "EXPLICIT")
    if algorithm == "SAME":
        return {"auto_pad": "SAME_UPPER"}
    if algorithm == "VALID":
        return {"pads": [0] * (2 * spatial)}
    pads = ints(op.attr("paddings", [0] * spatial))
    if len(pads) == spatial:
        return {"pads": pads + pads}
    if len(pads) == 2 * spatial:
        # Paddle: [top, bottom, left, right]; ONNX: [top, left, bottom, right].
        return {"pads": pads[0::2] + pads[1::2]}
    raise b.error(f"cannot read paddings {pads}")


@register("pool2d")
def _pool2d(b: Builder, op: Op) -> None:
    if op.attr("data_format", "NCHW") == "NHWC":
        raise b.error("pool2d with data_format NHWC is not supported")
    kind = op.attr("pooling_type", "max")
    if kind not in ("max", "avg"):
        raise b.error(f"pooling_type {kind!r} is not supported")
    x_name = b.input_name("X")
    x = b.get(x_name)
    ksize = ints(op.attr("ksize", [1, 1]))
    glob = bool(op.attr("global_pooling", False))
    if op.attr("adaptive", False):
        if ksize == [1, 1]:
            glob = True
        else:
            shape = b.var_shape(x_name)
            if shape is None or any(d <= 0 for d in shape[2:]) or any(
                    s % k for s, k in zip(shape[2:], ksize, strict=True)):
                raise b.error(f"adaptive pool2d to {ksize} needs sizes divisible by it")
            kernel = [s // k for s, k in zip(shape[2:], ksize, strict=True)]
            onnx_type = "MaxPool" if kind == "max" else "AveragePool"
            b.node(onnx_type, [x], [b.output("Out")], kernel_shape=kernel, strides=kernel)
            return
    if glob:
        onnx_type = "GlobalMaxPool" if kind == "max" else "GlobalAveragePool"
        b.node(onnx_type, [x], [b.output("Out")])
        return
    attrs = conv_pads(b, op)
    attrs.update(kernel_shape=ksize, strides=ints(op.attr("strides", [1, 1])),
                 ceil_mode=int(bool(op.attr("ceil_mode", False))))
    if kind == "avg":
        attrs["count_include_pad"] = 0 if op.attr("exclusive", True) else 1
        b.node("AveragePool", [x], [b.output("Out")], **attrs)
    else:
        b.node("MaxPool", [x], [b.output("Out")], **attrs)


@register("max_pool2d_with_index")
def _max_pool_with_index(b: Builder, op: Op) -> None:
    """Max pooling that also outputs argmax indices (``Mask``); only ``Out`` is mapped."""
    mask = op.output("Mask")
    if mask and any(mask in names for later in b.program.ops[op.index + 1:]
                    for names in later.inputs.values()):
        raise b.error("the Mask (argmax) output is not supported")
    op.attrs.setdefault("pooling_type", "max")
    _pool2d(b, op)


@register("bilinear_interp", "bilinear_interp_v2", "nearest_interp", "nearest_interp_v2")
def _interp(b: Builder, op: Op) -> None:
    if op.attr("data_layout", "NCHW") == "NHWC":
        raise b.error("interpolation with data_layout NHWC is not supported")
    x_name = b.input_name("X")
    x = b.get(x_name)
    nearest = op.type.startswith("nearest")
    align = bool(op.attr("align_corners", False))
    if align:
        mode = "align_corners"
    elif nearest or int(op.attr("align_mode", 1)) == 1:
        mode = "asymmetric"
    else:
        mode = "half_pixel"
    attrs = {"mode": "nearest" if nearest else "linear", "coordinate_transformation_mode": mode}
    if nearest:
        attrs["nearest_mode"] = "round_prefer_ceil" if align else "floor"
    sizes = _interp_sizes(b, op, x)
    if sizes is not None:
        b.node("Resize", [x, "", "", sizes], [b.output("Out")], **attrs)
        return
    scale = op.attr("scale", [])
    scale = [float(scale)] * 2 if isinstance(scale, float) else [float(s) for s in scale]
    if len(scale) == 1:
        scale = scale * 2
    if len(scale) != 2 or min(scale) <= 0:
        raise b.error("interpolation needs out_h/out_w, a scale or an OutSize input")
    scales = b.const([1.0, 1.0, *scale], "scales")
    b.node("Resize", [x, "", scales], [b.output("Out")], **attrs)


def _interp_sizes(b: Builder, op: Op, x: str) -> str | None:
    """The ``sizes`` input of Resize, or None when the op gives scales instead."""
    if op.input("Scale"):
        raise b.error("interpolation with a Scale tensor input is not supported")
    if op.input("OutSize"):
        hw = b.node("Cast", [b.input("OutSize")], to=7)[0]
        return b.node("Concat", [shape_slice(b, x, 0, 2), hw], axis=0)[0]
    if op.inputs.get("SizeTensor"):
        parts = [b.node("Reshape", [b.node("Cast", [b.get(n)], to=7)[0],
                                    b.const([1], "one_dim", np.int64)])[0]
                 for n in op.inputs["SizeTensor"]]
        return b.node("Concat", [shape_slice(b, x, 0, 2), *parts], axis=0)[0]
    out_h, out_w = int(op.attr("out_h", -1)), int(op.attr("out_w", -1))
    scale = op.attr("scale", [])
    has_scale = (isinstance(scale, float) and scale > 0) or (
        isinstance(scale, list) and scale and min(scale) > 0)
    if out_h > 0 and out_w > 0 and not has_scale:
        hw = b.const([out_h, out_w], "hw", np.int64)
        return b.node("Concat", [shape_slice(b, x, 0, 2), hw], axis=0)[0]
    return None


# ---- linear ops (carry quantization factors) --------------------------------------------


def linear_inputs(b: Builder, x_name: str, w_name: str, w_axis: int | None,
                  out_axis: int | None) -> tuple[str, str, Factor | None]:
    """The ONNX inputs of a linear op and the factor of its output.

    ``w_axis`` is the weight axis that indexes output channels and ``out_axis`` the output
    axis they land on (None: per-channel weight factors cannot be carried, undo them).
    """
    x, w = b.raw(x_name), b.raw(w_name)
    x_onnx, w_onnx = x.name, w.name
    x_f, w_f = x.factor, w.factor
    if x_f is not None and x_f.per_channel:
        x_onnx, x_f = b.materialize(x, x_name), None
    if w_f is not None and w_f.per_channel and (
            w_axis is None or out_axis is None or b.channel_axis(w_f, b.rank(w_name)) != w_axis):
        w_onnx, w_f = b.materialize(w, w_name), None
    if x_f is None:
        return x_onnx, w_onnx, None if w_f is None else Factor(w_f.scale, out_axis)
    return x_onnx, w_onnx, x_f.times(w_f, out_axis)


@register("conv2d", "depthwise_conv2d")
def _conv(b: Builder, op: Op) -> None:
    if op.attr("data_format", "NCHW") == "NHWC":
        raise b.error("conv with data_format NHWC is not supported")
    x, w, factor = linear_inputs(b, b.input_name("Input"), b.input_name("Filter"), 0, 1)
    inputs = [x, w]
    if op.input("Bias"):
        if factor is not None:
            x, w, factor = b.get(b.input_name("Input")), b.get(b.input_name("Filter")), None
            inputs = [x, w]
        inputs.append(b.input("Bias"))
    attrs = conv_pads(b, op)
    b.node("Conv", inputs, [b.output("Output", factor=factor)],
           strides=ints(op.attr("strides", [1, 1])),
           dilations=ints(op.attr("dilations", [1, 1])),
           group=int(op.attr("groups", 1) or 1), **attrs)


@register("conv2d_transpose", "depthwise_conv2d_transpose")
def _conv_transpose(b: Builder, op: Op) -> None:
    if op.attr("data_format", "NCHW") == "NHWC":
        raise b.error("conv2d_transpose with data_format NHWC is not supported")
    groups = int(op.attr("groups", 1) or 1)
    w_axis = 1 if groups == 1 else None
    x, w, factor = linear_inputs(b, b.input_name("Input"), b.input_name("Filter"), w_axis, 1)
    inputs = [x, w]
    if op.input("Bias"):
        inputs = [b.get(b.input_name("Input")), b.get(b.input_name("Filter")), b.input("Bias")]
        factor = None
    attrs = conv_pads(b, op)
    output_size = ints(op.attr("output_size", []))
    if output_size:
        attrs = {"output_shape": output_size, **({"auto_pad": attrs["auto_pad"]}
                                                 if "auto_pad" in attrs else {})}
    output_padding = ints(op.attr("output_padding", []))
    b.node("ConvTranspose", inputs, [b.output("Output", factor=factor)],
           strides=ints(op.attr("strides", [1, 1])),
           dilations=ints(op.attr("dilations", [1, 1])), group=groups,
           output_padding=output_padding or None, **attrs)


def _matmul(b: Builder, op: Op, trans_x: bool, trans_y: bool, alpha: float) -> None:
    x_name, y_name = b.input_name("X"), b.input_name("Y")
    y_rank = b.rank(y_name)
    if trans_x:
        x_name = _swap_last(b, x_name)
    if trans_y:
        y_name = _swap_last(b, y_name)
    out_rank = max(b.rank(x_name), y_rank)
    x, y, factor = linear_inputs(b, x_name, y_name, y_rank - 1, out_rank - 1)
    if alpha != 1.0:
        mm = b.node("MatMul", [x, y])[0]
        b.node("Mul", [mm, b.const(alpha, "alpha")], [b.output("Out", factor=factor)])
        return
    b.node("MatMul", [x, y], [b.output("Out", factor=factor)])


def _swap_last(b: Builder, name: str) -> str:
    """A variable equal to ``name`` with its last two axes swapped. Parameters (int8 weights
    too) are transposed at import time; activations get a Transpose node."""
    shape = b.var_shape(name)
    if shape is None or len(shape) < 2:
        raise b.error(f"cannot transpose {name!r} (rank < 2 or unknown)")
    rank = len(shape)
    perm = list(range(rank - 2)) + [rank - 1, rank - 2]
    alias = f"{name}@transposed"
    if alias in b.bound or alias in b.params:
        return alias
    if name in b.params and name not in b.bound:
        b.params[alias] = np.transpose(b.params[name], perm)
        if name in b.weight_plan:
            abs_max, axis = b.weight_plan[name]
            b.weight_plan[alias] = (abs_max, None if axis is None else perm.index(axis % rank))
        return alias
    binding = b.raw(name)
    factor = binding.factor
    if factor is not None and factor.per_channel:
        factor = Factor(factor.scale, perm.index(b.channel_axis(factor, rank)))
    b.declare(alias, [shape[p] for p in perm])
    b.bind(alias, b.node("Transpose", [binding.name], perm=perm)[0], factor)
    return alias


def _flattened(b: Builder, name: str) -> str:
    """A variable equal to ``name`` flattened to 2-D from axis 1."""
    alias = f"{name}@flattened"
    if alias in b.bound:
        return alias
    binding = b.raw(name)
    x, factor = binding.name, binding.factor
    if factor is not None and factor.per_channel:
        x, factor = b.materialize(binding, name), None
    b.declare(alias, [-1, -1])
    b.bind(alias, b.node("Flatten", [x], axis=1)[0], factor)
    return alias


@register("matmul_v2")
def _matmul_v2(b: Builder, op: Op) -> None:
    _matmul(b, op, bool(op.attr("trans_x", False)), bool(op.attr("trans_y", False)), 1.0)


@register("matmul")
def _matmul_v1(b: Builder, op: Op) -> None:
    _matmul(b, op, bool(op.attr("transpose_X", False)), bool(op.attr("transpose_Y", False)),
            float(op.attr("alpha", 1.0)))


@register("mul")
def _mul(b: Builder, op: Op) -> None:
    x_name, y_name = b.input_name("X"), b.input_name("Y")
    x_cols = int(op.attr("x_num_col_dims", 1))
    y_cols = int(op.attr("y_num_col_dims", 1))
    x_rank, y_rank = b.rank(x_name), b.rank(y_name)
    if y_rank != 2 or y_cols != 1:
        raise b.error("mul with a Y of rank != 2 is not supported")
    if x_rank > 2 and x_cols == 1:
        x_name, x_rank = _flattened(b, x_name), 2
    elif x_cols != x_rank - 1:
        raise b.error(f"mul with x_num_col_dims={x_cols} on rank {x_rank} is not supported")
    x, y, factor = linear_inputs(b, x_name, y_name, 1, x_rank - 1)
    b.node("MatMul", [x, y], [b.output("Out", factor=factor)])


@register("fc")
def _fc(b: Builder, op: Op) -> None:
    x_name = b.input_name("Input")
    x_cols = int(op.attr("in_num_col_dims", 1))
    x = b.get(x_name)
    if b.rank(x_name) > 2 and x_cols == 1:
        x = b.node("Flatten", [x], axis=1)[0]
    elif x_cols != b.rank(x_name) - 1:
        raise b.error(f"fc with in_num_col_dims={x_cols} is not supported")
    w = b.input("W")
    if op.attr("padding_weights", False):
        raise b.error("fc with padding_weights is not supported")
    y = b.node("MatMul", [x, w])[0]
    activation = op.attr("activation_type", "")
    if op.input("Bias"):
        bias = b.input("Bias")
        y = b.node("Add", [y, bias], 1 if activation else [b.output("Out")])[0]
    if activation == "relu":
        b.node("Relu", [y], [b.output("Out")])
    elif activation:
        raise b.error(f"fc activation_type {activation!r} is not supported")
    elif not op.input("Bias"):
        b.alias("Out", Binding(y))
