"""Graphviz DOT text for a graph snapshot, in Paddle's ``OpType(id)`` style, but readable.

Unlike Paddle's ``graph_viz_pass`` (see PADDLE_PASS_SPEC.md section 4) the text is
deterministic, op nodes are coloured by their quantization status, weights are folded into
the op that uses them, and every string is escaped so the file always renders.
"""

from __future__ import annotations

import re
import textwrap
import weakref
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from qcore.files import OutputSet
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


def _quote(lines: Iterable[str]) -> str:
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


def _op_tooltip(node: Node) -> list[str]:
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


def _cached_int8_qparams(graph: Graph) -> dict[str, QParams]:
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
    return INT8_TENSOR_FILL if name in _cached_int8_qparams(graph) else TENSOR_FILL


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
        qparams = _cached_int8_qparams(graph).get(name)
    if qparams is not None:
        lines.append(qparams.describe())
    return lines


# ---- the graph ----------------------------------------------------------------------------


def _attrs(**items: str) -> str:
    """``key=value`` pairs; values are already-quoted DOT strings or plain identifiers."""
    return " ".join(f"{key}={value}" for key, value in items.items())


def to_dot(
    graph: Graph,
    title: str = "",
    highlight: set[int] | None = None,
    legend: bool = True,
) -> str:
    """Describe ``graph`` as a Graphviz digraph.

    Ops are boxes ``op_<id>`` labelled ``OpType(id)`` and filled by status (:data:`LEGEND`);
    activations, graph inputs and graph outputs are ellipses ``t_<k>``; initializers are not
    drawn, the op label shows the weight shape instead. The same graph always gives the same
    text.

    Args:
        graph: The snapshot to draw.
        title: Shown above the graph.
        highlight: Op ids to draw with a thick blue border (for example the ops a pass changed).
        legend: Add a cluster explaining the colours.

    Returns:
        The DOT text, ending with a newline.
    """
    highlight = highlight or set()
    out: list[str] = ["digraph G {"]
    graph_attrs = _attrs(rankdir="TB", fontname='"Helvetica"', fontsize="16", labelloc="t",
                         nodesep="0.3", ranksep="0.35", bgcolor='"white"')
    if title:
        graph_attrs += " label=" + _quote([title])
    out.append(f"  graph [{graph_attrs}];")
    out.append('  node [fontname="Helvetica" fontsize="11"];')
    out.append(f'  edge [color="{EDGE_COLOR}" arrowsize="0.6"];')

    tensor_ids = tensor_keys(graph)
    int8_params = int8_tensor_qparams(graph)
    _QPARAMS_CACHE[:] = [(weakref.ref(graph), len(graph.nodes), int8_params)]
    out.append("  // tensors")
    out.extend(_tensor_line(graph, name, tid, int8_params) for name, tid in tensor_ids.items())
    out.append("  // ops")
    out.extend(_op_line(graph, node, node.id in highlight) for node in graph.nodes)
    out.append("  // edges")
    for node in graph.nodes:
        out.extend(f"  {tensor_ids[name]} -> op_{node.id};" for name in node.inputs
                   if name in tensor_ids)
        out.extend(f"  op_{node.id} -> {tensor_ids[name]};" for name in node.outputs
                   if name in tensor_ids)

    if legend:
        out.extend(_legend_lines(bool(highlight)))
    out.append("}")
    return "\n".join(out) + "\n"


def tensor_keys(graph: Graph) -> dict[str, str]:
    """``t_<k>`` of every drawn tensor (graph inputs and outputs, and every tensor an op
    reads or writes that is not a weight), numbered in order of first use."""
    io = set(graph.input_names) | set(graph.output_names)
    keys: dict[str, str] = {}

    def add(name: str) -> None:
        if name and (name not in graph.initializers or name in io) and name not in keys:
            keys[name] = f"t_{len(keys)}"

    for name in graph.input_names:
        add(name)
    for node in graph.nodes:
        for name in list(node.inputs) + list(node.outputs):
            add(name)
    for name in graph.output_names:
        add(name)
    return keys


def _tensor_line(graph: Graph, name: str, tid: str, int8_params: dict[str, QParams]) -> str:
    is_io = name in graph.input_names or name in graph.output_names
    lines = tensor_label_lines(graph, name, int8_params.get(name))
    tooltip = [name] + lines[1:]
    if name in int8_params:
        tooltip.append(f"{int8_params[name].dtype} data")
    if name in graph.input_names:
        tooltip.append("graph input")
    if name in graph.output_names:
        tooltip.append("graph output")
    fill = IO_TENSOR_FILL if is_io else INT8_TENSOR_FILL if name in int8_params else TENSOR_FILL
    return f"  {tid} [" + _attrs(
        label=_quote(lines),
        id=f'"{tid}"',
        shape="ellipse",
        style='"filled,bold"' if is_io else '"filled"',
        fillcolor=f'"{fill}"',
        color='"#8a8a8a"',
        fontsize="9",
        fontcolor='"#333333"',
        margin='"0.05,0.02"',
        tooltip=_quote(tooltip),
    ) + "];"


def _op_line(graph: Graph, node: Node, marked: bool) -> str:
    return f"  op_{node.id} [" + _attrs(
        label=_quote(op_label_lines(graph, node)),
        id=f'"op_{node.id}"',
        shape="box",
        style='"rounded,filled"',
        fillcolor=f'"{color_of(node)}"',
        color=f'"{HIGHLIGHT_COLOR if marked else OP_BORDER}"',
        penwidth="3" if marked else "1",
        tooltip=_quote(_op_tooltip(node)),
    ) + "];"


def _legend_lines(with_highlight: bool) -> list[str]:
    """A cluster with one swatch per :data:`LEGEND` entry, stacked by invisible edges."""
    lines = [
        "  subgraph cluster_legend {",
        '    graph [label="Legend" fontsize="12" style="rounded" color="#9a9a9a" margin="8"];',
        '    node [shape="box" style="rounded,filled" fontsize="10" width="2.6" height="0.3"];',
    ]
    ids = []
    for name, colour, meaning in LEGEND:
        ids.append(f"legend_{name}")
        lines.append(f"    legend_{name} [" + _attrs(
            label=_quote([meaning]), fillcolor=f'"{colour}"', color=f'"{OP_BORDER}"',
            id=f'"legend_{name}"', tooltip=_quote([f"status: {name}"]),
        ) + "];")
    tensors = [
        ("tensor", TENSOR_FILL, "float tensor: name, shape, scale"),
        ("int8_tensor", INT8_TENSOR_FILL, "int8 / uint8 tensor"),
        ("io_tensor", IO_TENSOR_FILL, "graph input / output"),
    ]
    for name, fill, meaning in tensors:
        ids.append(f"legend_{name}")
        lines.append(f"    legend_{name} [" + _attrs(
            label=_quote([meaning]), shape="ellipse", fillcolor=f'"{fill}"',
            color='"#8a8a8a"', id=f'"legend_{name}"', tooltip=_quote([meaning]),
        ) + "];")
    if with_highlight:
        ids.append("legend_highlight")
        lines.append(f'    legend_highlight [label="highlighted" fillcolor="#ffffff" '
                     f'color="{HIGHLIGHT_COLOR}" penwidth="3" id="legend_highlight" '
                     'tooltip="highlighted op"];')
    lines.append("    " + " -> ".join(ids) + ' [style="invis"];')
    lines.append("  }")
    return lines


# ---- debug snapshots ----------------------------------------------------------------------


class _SnapshotLike(Protocol):
    graph: Graph
    summary: str

    @property
    def stem(self) -> str: ...


def snapshot_title(snapshot: _SnapshotLike) -> str:
    """``int8_11_quantize: quantized 14 ops`` - the stem plus the pass summary."""
    return f"{snapshot.stem}: {snapshot.summary}" if snapshot.summary else snapshot.stem


def debug_files(snapshots: Iterable[_SnapshotLike], out_dir: str | Path,
                ) -> list[tuple[Path, bytes]]:
    """``(out_dir / <stem>.dot, DOT bytes)`` for every snapshot (the ``--debug`` set)."""
    folder = Path(out_dir)
    return [(folder / f"{snapshot.stem}.dot",
             to_dot(snapshot.graph, title=snapshot_title(snapshot)).encode("utf-8"))
            for snapshot in snapshots]


def write_debug_snapshots(snapshots: Iterable[_SnapshotLike], out_dir: str | Path,
                          outputs: OutputSet | None = None) -> list[Path]:
    """Write ``<stem>.dot`` for every snapshot (Paddle's ``--debug`` files, but deterministic).

    Args:
        snapshots: ``ConversionResult.snapshots`` (anything with ``stem``, ``graph``,
            ``summary``).
        out_dir: Folder for the files; created if missing.
        outputs: Stage the files in this set (its ``commit`` writes them); without it they
            are written at once, all or none, replacing older ones.

    Returns:
        The paths, in snapshot order.
    """
    if outputs is not None:
        outputs.make_folder(out_dir)
        return [outputs.add_bytes(path, data) for path, data in debug_files(snapshots, out_dir)]
    with OutputSet(force=True) as own:
        own.make_folder(out_dir)
        for path, data in debug_files(snapshots, out_dir):
            own.add_bytes(path, data)
        return own.commit()


def source(graph: Graph, title: str = "") -> Any:
    """The snapshot as a ``graphviz.Source``, which Jupyter renders inline as SVG and which can
    ``.render()`` / ``.pipe()`` to any format (uses the graphviz Python package)."""
    import graphviz

    return graphviz.Source(to_dot(graph, title=title))
