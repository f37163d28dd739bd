"""Helpers shared by passes."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper

from qcore.ir import Graph, Node, QParams


def qparams_of(graph: Graph, node: Node) -> QParams | None:
    """The scale / zero point of a QuantizeLinear or DequantizeLinear node, if constant."""
    scale_name = node.inputs[1] if len(node.inputs) > 1 else ""
    if scale_name not in graph.initializers:
        return None
    scale = graph.initializers[scale_name]
    if not np.all(np.isfinite(scale)) or np.any(scale <= 0):
        raise ValueError(f"{node.op_type} {node.name or node.label} has a zero, negative or "
                         f"non-finite scale ({scale_name})")
    zp = _zero_point(graph, node, scale)
    if zp is None or node.attrs.get("block_size"):
        return None
    axis = node.attrs.get("axis", 1) if scale.size > 1 else None
    _check_shapes(graph, node, scale, zp, axis)
    if zp.dtype not in (np.int8, np.uint8):
        return None
    if scale.size == 1:  # a per-tensor scale stored as [1] (or [1, 1]) is a scalar
        scale = scale.reshape(())
    if zp.size == 1:
        zp = zp.reshape(())
    elif zp.size == scale.size:
        zp = zp.reshape(scale.shape)
    return QParams(scale, zp, axis)


def _zero_point(graph: Graph, node: Node, scale: np.ndarray) -> np.ndarray | None:
    """The node's constant zero point, or zeros of its implicit type (None: not constant)."""
    zp_name = node.inputs[2] if len(node.inputs) > 2 else ""
    if zp_name:
        return graph.initializers.get(zp_name)
    dtype = implicit_zero_point_dtype(graph, node)
    return None if dtype is None else np.zeros_like(scale, dtype=dtype)


def implicit_zero_point_dtype(graph: Graph, node: Node) -> np.dtype | None:
    """The integer type of a Q/DQ without a zero-point input: a QuantizeLinear's
    ``output_dtype`` (opset 21; uint8 when absent), a DequantizeLinear's input type."""
    if node.op_type == "QuantizeLinear":
        code = int(node.attrs.get("output_dtype", 0) or TensorProto.UINT8)
    elif node.inputs[0] in graph.initializers:
        return graph.initializers[node.inputs[0]].dtype
    else:
        info = graph.tensors.get(node.inputs[0])
        code = info.elem_type if info is not None and info.elem_type else TensorProto.UINT8
    try:
        return np.dtype(helper.tensor_dtype_to_np_dtype(code))
    except (KeyError, TypeError, ValueError):
        return None


def _check_shapes(graph: Graph, node: Node, scale: np.ndarray, zp: np.ndarray,
                  axis: int | None) -> None:
    """Per-axis scales must be 1-D, match their zero points and the input's ``axis`` size."""
    what = f"{node.op_type} {node.name or node.label}"
    if scale.ndim > 1 and scale.size > 1:
        raise ValueError(f"{what} has a {scale.ndim}-D scale ({node.inputs[1]}); "
                         "only scalars and 1-D per-axis scales are supported")
    if zp.size not in (1, scale.size) or (zp.ndim > 1 and zp.size > 1):
        raise ValueError(f"{what} has {zp.size} zero points for {scale.size} scales "
                         f"({node.inputs[2]})")
    if axis is None:
        return
    shape = graph.shape(node.inputs[0])
    if shape is None:
        return
    if not isinstance(axis, int) or not -len(shape) <= axis < len(shape):
        raise ValueError(f"{what} has axis={axis}, out of range for its rank-{len(shape)} "
                         f"input {node.inputs[0]}")
    dim = shape[axis]
    if isinstance(dim, int) and dim > 0 and dim != scale.size:
        raise ValueError(f"{what} has {scale.size} per-axis scales ({node.inputs[1]}) but "
                         f"axis {axis} of {node.inputs[0]} has {dim} channels")


def single_consumer(graph: Graph, consumers: dict[str, list[Node]], tensor: str) -> Node | None:
    """The only op reading ``tensor``, if exactly one reads it and it is not a graph output."""
    users = consumers.get(tensor, [])
    if len(users) != 1 or tensor in graph.output_names:
        return None
    return users[0]


def absorb(graph: Graph, consumers: dict[str, list[Node]], node: Node, reader: Node) -> None:
    """``node`` takes over ``reader``, the only op reading its output: it writes the reader's
    output, lists it as fused, and its own output tensor is gone (also from ``consumers``,
    kept valid for the rest of the pass). The caller removes ``reader`` (all at once)."""
    gone = node.outputs[0]
    consumers.pop(gone, None)
    graph.tensors.pop(gone, None)
    graph.act_qparams.pop(gone, None)
    node.outputs = [reader.outputs[0]]
    node.fused.append(reader.label)


def const_scalar(graph: Graph, name: str) -> float | None:
    if not name or name not in graph.initializers:
        return None
    value = graph.initializers[name]
    if value.size != 1:
        return None
    return float(value.reshape(()))


def activation_bounds(g: Graph, node: Node) -> tuple[float, float] | None:
    """(low, high) of a Relu or Clip node with constant bounds, else None."""
    inf = float("inf")
    if node.op_type == "Relu":
        return 0.0, inf
    if node.op_type != "Clip":
        return None
    if "min" in node.attrs or "max" in node.attrs:
        return node.attrs.get("min", -inf), node.attrs.get("max", inf)
    low = const_scalar(g, node.inputs[1]) if len(node.inputs) > 1 and node.inputs[1] else -inf
    high = const_scalar(g, node.inputs[2]) if len(node.inputs) > 2 and node.inputs[2] else inf
    if low is None or high is None:
        return None
    return low, high


def bypass(graph: Graph, node: Node, src: str, dst: str) -> bool:
    """Remove ``node`` that maps ``src`` to ``dst`` unchanged, rewiring readers of ``dst``.

    When ``dst`` is a graph output the producer of ``src`` is renamed instead. Returns False
    (and changes nothing) when neither is possible.
    """
    if dst in graph.output_names:
        if src in graph.output_names or src in graph.input_names or src in graph.initializers:
            return False
        graph.remove_nodes([node])
        graph.rename_tensor(src, dst)
        return True
    graph.remove_nodes([node])
    graph.replace_input(dst, src)
    return True


def remove_dead_nodes(g: Graph) -> int:
    """Remove ops none of whose outputs is read or is a graph output."""
    removed = 0
    outputs = set(g.output_names)
    while True:
        read = {name for node in g.nodes for name in node.inputs} | outputs
        dead = [n for n in g.nodes if not any(o in read for o in n.outputs if o)]
        if not dead:
            return removed
        g.remove_nodes(dead)
        removed += len(dead)


def unused_initializers(g: Graph) -> list[str]:
    read = {name for node in g.nodes for name in node.inputs} | set(g.output_names)
    return [name for name in g.initializers if name not in read]
