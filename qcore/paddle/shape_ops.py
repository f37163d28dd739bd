"""Paddle shape and data-movement ops -> ONNX (reshape, flatten, transpose, squeeze,
unsqueeze, concat, split, slice, shape, cast, fill_constant)."""

from __future__ import annotations

import numpy as np

from qcore.paddle.builder import Binding, Builder
from qcore.paddle.ops import ints, register
from qcore.paddle.program import DTYPES, Op


def shape_slice(b: Builder, x: str, start: int, end: int | None = None) -> str:
    """``Shape(x)[start:end]`` as an int64 tensor."""
    return b.node("Shape", [x], start=start, end=end)[0]


@register("reshape2", "reshape")
def _reshape(b: Builder, op: Op) -> None:
    x = b.input("X")
    if op.input("Shape"):
        shape = b.node("Cast", [b.input("Shape")], to=7)[0]
    elif op.inputs.get("ShapeTensor"):
        parts = [b.node("Reshape", [b.node("Cast", [b.get(n)], to=7)[0],
                                    b.const([1], "one_dim", np.int64)])[0]
                 for n in op.inputs["ShapeTensor"]]
        shape = b.node("Concat", parts, axis=0)[0]
    else:
        shape = b.const(ints(op.attr("shape")), "shape", np.int64)
    b.node("Reshape", [x, shape], [b.output("Out")])


@register("flatten_contiguous_range")
def _flatten_range(b: Builder, op: Op) -> None:
    x_name = b.input_name("X")
    rank = b.rank(x_name)
    start = int(op.attr("start_axis", 1)) % max(rank, 1)
    stop = int(op.attr("stop_axis", -1)) % max(rank, 1)
    x = b.get(x_name)
    if stop == rank - 1:
        if start <= 1:
            if start == 0:
                b.node("Reshape", [x, b.const([-1], "shape", np.int64)], [b.output("Out")])
            else:
                b.node("Flatten", [x], [b.output("Out")], axis=1)
            return
        shape = b.const([0] * start + [-1], "shape", np.int64)
        b.node("Reshape", [x, shape], [b.output("Out")])
        return
    head = b.const([0] * start + [-1], "shape", np.int64)
    tail = shape_slice(b, x, stop + 1)
    shape = b.node("Concat", [head, tail], axis=0)[0]
    b.node("Reshape", [x, shape], [b.output("Out")])


@register("flatten2", "flatten")
def _flatten(b: Builder, op: Op) -> None:
    b.node("Flatten", [b.input("X")], [b.output("Out")], axis=int(op.attr("axis", 1)))


@register("transpose2", "transpose")
def _transpose(b: Builder, op: Op) -> None:
    b.node("Transpose", [b.input("X")], [b.output("Out")], perm=ints(op.attr("axis")))


@register("squeeze2", "squeeze")
def _squeeze(b: Builder, op: Op) -> None:
    x_name = b.input_name("X")
    axes = ints(op.attr("axes", []))
    shape = b.var_shape(x_name)
    if shape is not None and axes:
        # Paddle skips axes whose size is not 1; ONNX would fail on them.
        axes = [a for a in axes if shape[a % len(shape)] in (1, -1)]
    x = b.get(x_name)
    if not axes and op.attr("axes"):
        b.alias("Out", Binding(x))
        return
    inputs = [x] + ([b.const(axes, "axes", np.int64)] if axes else [])
    b.node("Squeeze", inputs, [b.output("Out")])


@register("unsqueeze2", "unsqueeze")
def _unsqueeze(b: Builder, op: Op) -> None:
    if op.input("AxesTensor") or op.inputs.get("AxesTensorList"):
        raise b.error("unsqueeze with tensor axes is not supported")
    axes = b.const(ints(op.attr("axes")), "axes", np.int64)
    b.node("Unsqueeze", [b.input("X"), axes], [b.output("Out")])


@register("concat")
def _concat(b: Builder, op: Op) -> None:
    if op.input("AxisTensor"):
        raise b.error("concat with an AxisTensor input is not supported")
    inputs = [b.get(name) for name in op.inputs.get("X", [])]
    b.node("Concat", inputs, [b.output("Out")], axis=int(op.attr("axis", 0)))


@register("split")
def _split(b: Builder, op: Op) -> None:
    if op.input("AxisTensor") or op.inputs.get("SectionsTensorList"):
        raise b.error("split with tensor axis or sections is not supported")
    x_name = b.input_name("X")
    axis = int(op.attr("axis", 0))
    outs = op.outputs.get("Out", [])
    sections = ints(op.attr("sections", []))
    inputs = [b.get(x_name)]
    if sections:
        if -1 in sections:
            shape = b.var_shape(x_name)
            total = shape[axis] if shape else -1
            if total < 0:
                raise b.error("split with a -1 section needs a known size along the axis")
            sections[sections.index(-1)] = total - sum(s for s in sections if s >= 0)
        inputs.append(b.const(sections, "split", np.int64))
    names = [b.out_name(n) for n in outs]
    b.node("Split", inputs, names, axis=axis)
    for paddle_name, onnx_name in zip(outs, names, strict=True):
        b.bind(paddle_name, onnx_name)


@register("slice")
def _slice(b: Builder, op: Op) -> None:
    tensor_inputs = ("StartsTensor", "EndsTensor", "StartsTensorList", "EndsTensorList")
    if any(op.inputs.get(slot) for slot in tensor_inputs):
        raise b.error("slice with tensor starts/ends is not supported")
    axes = ints(op.attr("axes"))
    starts, ends = ints(op.attr("starts")), ints(op.attr("ends"))
    big = np.iinfo(np.int64).max
    ends = [big if e >= 2**31 - 1 else e for e in ends]
    decrease = ints(op.attr("decrease_axis", []))
    x = b.input("Input")
    inputs = [x, b.const(starts, "starts", np.int64), b.const(ends, "ends", np.int64),
              b.const(axes, "axes", np.int64)]
    if not decrease:
        b.node("Slice", inputs, [b.output("Out")])
        return
    sliced = b.node("Slice", inputs)[0]
    if len(decrease) == b.rank(b.input_name("Input")):
        # Paddle keeps one element as shape [1] rather than a scalar.
        b.node("Reshape", [sliced, b.const([1], "shape", np.int64)], [b.output("Out")])
        return
    b.node("Squeeze", [sliced, b.const(decrease, "axes", np.int64)], [b.output("Out")])


@register("fill_constant")
def _fill_constant(b: Builder, op: Op) -> None:
    """A constant tensor (computed at import time, so later ops can fold it)."""
    if any(op.inputs.get(slot) for slot in ("ValueTensor", "ShapeTensor", "ShapeTensorList")):
        raise b.error("fill_constant with tensor inputs is not supported")
    dtype = DTYPES.get(int(op.attr("dtype", 5)), np.dtype(np.float32))
    text = op.attr("str_value", "")
    value = float(text) if text else float(op.attr("value", 0.0))
    array = np.full(ints(op.attr("shape", [])), value, dtype=dtype)
    out = b.output_name("Out")
    b.consts[out] = array
    b.bind(out, b.const(array, out, dtype))


@register("shape")
def _shape(b: Builder, op: Op) -> None:
    shape = b.node("Shape", [b.input("Input")])[0]
    b.node("Cast", [shape], [b.output("Out")], to=6)


@register("cast")
def _cast(b: Builder, op: Op) -> None:
    onnx_types = {0: 9, 1: 5, 2: 6, 3: 7, 4: 10, 5: 1, 6: 11, 20: 2, 21: 3}
    to = onnx_types.get(int(op.attr("out_dtype", 5)))
    if to is None:
        raise b.error(f"cast to Paddle dtype {op.attr('out_dtype')} is not supported")
    b.node("Cast", [b.input("X")], [b.output("Out")], to=to)


