"""What an op or a tensor says: its colour by quantization status, its label lines and
tooltip, and the int8 params read from an INT8 graph's integer ops. Shared by the DOT writer
(``qcore.dot``) and the app's graph view."""

from __future__ import annotations

import re
import textwrap
import weakref
from collections.abc import Iterable
from typing import Any

import numpy as np

from qcore.ir import Graph, Node, QParams
from qcore.ops import KERNELS, QDQ_OPS
from qcore.status import OpStatus, ReasonKind

# ---- colours ------------------------------------------------------------------------------

#: ``(status name, fill colour, meaning)`` for every op colour; shared with the app.
LEGEND: list[tuple[str, str, str]] = [
    ("int8", "#a8e0a0", "INT8: quantized"),
    ("fp32", "#ffd29e", "FP32: kept in float (reason shown)"),
    ("skipped", "#f29b9b", "FP32: skipped by id (op_ids_to_skip)"),
    ("fake", "#d8c6f2", "Quantize / Dequantize"),
    ("undecided", "#e4e4e4", "not decided yet (or added later)"),
]
COLORS: dict[str, str] = {name: colour for name, colour, _ in LEGEND}

TENSOR_FILL = "#ffffff"
INT8_TENSOR_FILL = "#e9f6e6"
IO_TENSOR_FILL = "#d6e6f7"
HIGHLIGHT_COLOR = "#1f5fbf"
OP_BORDER = "#4d4d4d"
EDGE_COLOR = "#6b6b6b"

MAX_NAME = 40
_QUANTIZED_NAME = re.compile(r"(.+)_quantized(?:_\d+)?")

# Ops whose constant input is a weight ("W"); for other ops it is shown as "const".
_WEIGHT_OPS = frozenset({
    "Conv", "ConvTranspose", "Gemm", "MatMul", "QLinearConv", "QGemm", "QLinearMatMul",
    "ConvInteger", "MatMulInteger", "MatMulIntegerToFloat", "DynamicQuantizeMatMul",
    "FusedConv", "FusedGemm", "FusedMatMul", "QuantizeLinear", "DequantizeLinear",
})


def status_key(node: Node) -> str:
    """The :data:`LEGEND` entry an op belongs to.

    Args:
        node: Any op of a snapshot.

    Returns:
        ``"fake"`` for QuantizeLinear / DequantizeLinear ops, otherwise ``"int8"``,
        ``"skipped"`` (FP32 because of ``op_ids_to_skip``), ``"fp32"`` or ``"undecided"``.
    """
    if node.status is OpStatus.FAKE or node.op_type in QDQ_OPS:
        return "fake"
    if node.status is OpStatus.INT8:
        return "int8"
    if node.status is OpStatus.FP32:
        return "skipped" if node.reason.kind is ReasonKind.SKIPPED else "fp32"
    return "undecided"


def color_of(node: Node) -> str:
    """The fill colour (``#rrggbb``) of an op, by its quantization status.

    Args:
        node: Any op of a snapshot.

    Returns:
        The colour :data:`LEGEND` gives to :func:`status_key` of ``node``.
    """
    return COLORS[status_key(node)]


def describe_status(node: Node) -> str:
    """One line saying what the op's colour means for this op (used as its tooltip)."""
    key = status_key(node)
    if key == "fake":
        text = "Quantize / Dequantize op"
        if node.status is OpStatus.FAKE:
            text += " of the quant model"
        return f"{text}: {node.reason}" if node.reason else text
    if key == "int8":
        return "INT8: quantized"
    if key in ("fp32", "skipped"):
        return f"FP32: {node.reason}" if node.reason else "FP32"
    return "no INT8 / FP32 decision (placement not run yet, or op added by a later pass)"


# ---- text helpers -------------------------------------------------------------------------


def escape(text: str) -> str:
    """Make ``text`` safe inside a double-quoted DOT string (one visual line).

    Backslashes and quotes are escaped and control characters become spaces, so Graphviz
    shows the text literally (``\\N``, ``\\G`` etc. lose their special meaning).
    """
    text = "".join(" " if ord(ch) < 32 or ord(ch) == 127 else ch for ch in str(text))
    return text.replace("\\", "\\\\").replace('"', '\\"')


#: Graphviz refuses quoted strings longer than 16384 bytes; labels and tooltips stay below.
MAX_LINE, MAX_QUOTED = 2000, 12000


def dot_quote(lines: Iterable[str]) -> str:
    """A quoted DOT string whose lines are centred (``\\n`` line breaks); very long lines
    (a 100k-character name) are shortened so that Graphviz can read it."""
    text = "\\n".join(escape(shorten(str(line), MAX_LINE)) for line in lines)
    if len(text.encode("utf-8")) > MAX_QUOTED:
        text = text.encode("utf-8")[:MAX_QUOTED].decode("utf-8", errors="ignore")
        text = text[:-1] if (len(text) - len(text.rstrip("\\"))) % 2 else text
        text += "..."
    return '"' + text + '"'


def shorten(text: str, limit: int = MAX_NAME) -> str:
    """Cut ``text`` to ``limit`` characters, keeping its start and end around ``...``."""
    if len(text) <= limit:
        return text
    keep = limit - 3
    head = (keep + 1) // 2
    return text[:head] + "..." + text[len(text) - (keep - head):]


def format_shape(shape: Iterable[Any] | None) -> str:
    """``[1, 3, 224, 224]`` -> ``1x3x224x224``; unknown dims become ``?``; ``[]`` -> ``scalar``."""
    if shape is None:
        return ""
    dims = ["?" if d is None or d == "" else str(d) for d in shape]
    return "x".join(dims) if dims else "scalar"


def wrap_text(text: str, width: int = 34, max_lines: int = 3) -> list[str]:
    """Break ``text`` into at most ``max_lines`` lines of about ``width`` characters."""
    lines = textwrap.wrap(text, width, break_long_words=True) or [""]
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        lines[-1] = lines[-1][: width - 3].rstrip() + "..."
    return lines


def _wrap(items: list[str], per_line: int = 3) -> list[str]:
    return [" ".join(items[i:i + per_line]) for i in range(0, len(items), per_line)]


def _attr_text(value: Any) -> str:
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_attr_text(v) for v in value) + "]"
    if isinstance(value, (str, int, np.integer, np.floating)):
        return str(value)
    return type(value).__name__


# ---- labels -------------------------------------------------------------------------------


def _const_input(graph: Graph, node: Node) -> tuple[str, str] | None:
    """``("W", name)`` / ``("const", name)`` for the op's constant input worth showing."""
    kernel = KERNELS.get(node.op_type)
    index = kernel.weight if kernel is not None else 1
    if index is None or index >= len(node.inputs):
        return None
    name = node.inputs[index]
    if not name or name not in graph.initializers:
        return None
    return ("W" if node.op_type in _WEIGHT_OPS else "const"), name


def op_label_lines(graph: Graph, node: Node) -> list[str]:
    """The lines of an op's label: ``OpType(id)``, name, fused ops, weight shape, FP32 reason."""
    lines = [node.label]
    if node.name:
        lines.append(shorten(node.name))
    if node.fused:
        lines.extend(_wrap([f"+{label}" for label in node.fused]))
    const = _const_input(graph, node)
    if const is not None:
        kind, name = const
        array = graph.initializers[name]
        text = f"{kind} {format_shape(array.shape)}"
        if array.dtype != np.float32:
            text += f" {array.dtype}"
        lines.append(text)
    if status_key(node) in ("fp32", "skipped") and node.reason:
        lines.extend(wrap_text(f"FP32: {node.reason}"))
    return lines


def op_tooltip(node: Node) -> list[str]:
    head = node.label if not node.domain else f"{node.label} [{node.domain}]"
    lines = [head]
    if node.name:
        lines.append(f"name: {node.name}")
    lines.append(describe_status(node))
    if node.fused:
        lines.append("fused: " + ", ".join(node.fused))
    for key in sorted(node.attrs):
        if not key.startswith("_"):
            lines.append(shorten(f"{key} = {_attr_text(node.attrs[key])}", 80))
    return lines


def _take_qparams(graph: Graph, found: dict[str, QParams], node: Node, tensor: str,
                  scale: str, zero_point: str) -> None:
    if not tensor or tensor in found:
        return
    scale_value = graph.initializers.get(scale)
    zp_value = graph.initializers.get(zero_point)
    if scale_value is None or zp_value is None:
        return
    axis = node.attrs.get("axis", 1) if scale_value.size > 1 else None
    try:
        found[tensor] = QParams(scale_value, zp_value, axis)
    except (ValueError, TypeError):
        return


def int8_tensor_qparams(graph: Graph) -> dict[str, QParams]:
    """Quantization parameters of the int8 tensors of an INT8 graph.

    They are read from the scale / zero-point inputs of the QuantizeLinear, DequantizeLinear
    and QLinear* ops that produce or consume each tensor.

    Args:
        graph: Any snapshot; graphs without quantized ops give an empty dict.

    Returns:
        Tensor name -> parameters, for every tensor known to hold int8 / uint8 data.
    """
    found: dict[str, QParams] = {}
    for node in graph.nodes:
        kernel = KERNELS.get(node.op_type)
        if kernel is None:
            continue
        triples = [(node.inputs, s.tensor, s.scale, s.zero_point)
                   for s in kernel.input_slots(node)]
        if kernel.output is not None:
            triples.append((node.outputs, 0, *kernel.output))
        for names, k, scale, zero_point in triples:
            if k < len(names) and zero_point < len(node.inputs):
                _take_qparams(graph, found, node, names[k], node.inputs[scale],
                              node.inputs[zero_point])
    return found


_QPARAMS_CACHE: list[tuple[weakref.ref[Graph], int, dict[str, QParams]]] = []


def cached_int8_qparams(graph: Graph) -> dict[str, QParams]:
    """:func:`int8_tensor_qparams` of the last graph asked about (snapshots do not change)."""
    if _QPARAMS_CACHE:
        ref, count, table = _QPARAMS_CACHE[0]
        if ref() is graph and count == len(graph.nodes):
            return table
    table = int8_tensor_qparams(graph)
    _QPARAMS_CACHE[:] = [(weakref.ref(graph), len(graph.nodes), table)]
    return table


def tensor_fill(graph: Graph, name: str) -> str:
    """The fill colour of a tensor: graph input / output, int8 data, or float."""
    if name in graph.input_names or name in graph.output_names:
        return IO_TENSOR_FILL
    return INT8_TENSOR_FILL if name in cached_int8_qparams(graph) else TENSOR_FILL


def tensor_shape(graph: Graph, name: str) -> list[int | str | None] | None:
    """The shape of ``name``; an int8 copy ``<x>_quantized[_N]`` without one has ``x``'s."""
    shape = graph.shape(name)
    if shape is None:
        match = _QUANTIZED_NAME.fullmatch(name)
        if match:
            shape = graph.shape(match.group(1))
    return shape


def tensor_label_lines(graph: Graph, name: str, qparams: QParams | None = None) -> list[str]:
    """The lines of a tensor's label: name, shape (if known), quantization parameters.

    Args:
        graph: The snapshot holding the tensor.
        name: The tensor.
        qparams: Parameters to show when ``graph.act_qparams`` has none for ``name``;
            by default those of the int8 tensor (see :func:`int8_tensor_qparams`), if any.

    Returns:
        One to three lines of plain text.
    """
    lines = [shorten(name)]
    shape = format_shape(tensor_shape(graph, name))
    if shape:
        lines.append(shape)
    if name in graph.act_qparams:
        qparams = graph.act_qparams[name]
    elif qparams is None:
        qparams = cached_int8_qparams(graph).get(name)
    if qparams is not None:
        lines.append(qparams.describe())
    return lines
