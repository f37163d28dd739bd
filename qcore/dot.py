"""Graphviz DOT text for a graph snapshot, in Paddle's ``OpType(id)`` style, but readable.

Unlike Paddle's ``graph_viz_pass`` (see section 4 of the pass spec, ``../shared/`` beside the
repository) the text is deterministic, op nodes are coloured by their quantization status
(``qcore.labels``), weights are folded into the op that uses them, and every string is
escaped so the file always renders.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol

from qcore.files import OutputSet
from qcore.ir import Graph, Node, QParams
from qcore.labels import (
    EDGE_COLOR,
    HIGHLIGHT_COLOR,
    INT8_TENSOR_FILL,
    IO_TENSOR_FILL,
    LEGEND,
    OP_BORDER,
    TENSOR_FILL,
    cached_int8_qparams,
    color_of,
    dot_quote,
    op_label_lines,
    op_tooltip,
    tensor_label_lines,
)

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
        graph_attrs += " label=" + dot_quote([title])
    out.append(f"  graph [{graph_attrs}];")
    out.append('  node [fontname="Helvetica" fontsize="11"];')
    out.append(f'  edge [color="{EDGE_COLOR}" arrowsize="0.6"];')

    tensor_ids = tensor_keys(graph)
    int8_params = cached_int8_qparams(graph)
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
        label=dot_quote(lines),
        id=f'"{tid}"',
        shape="ellipse",
        style='"filled,bold"' if is_io else '"filled"',
        fillcolor=f'"{fill}"',
        color='"#8a8a8a"',
        fontsize="9",
        fontcolor='"#333333"',
        margin='"0.05,0.02"',
        tooltip=dot_quote(tooltip),
    ) + "];"


def _op_line(graph: Graph, node: Node, marked: bool) -> str:
    return f"  op_{node.id} [" + _attrs(
        label=dot_quote(op_label_lines(graph, node)),
        id=f'"op_{node.id}"',
        shape="box",
        style='"rounded,filled"',
        fillcolor=f'"{color_of(node)}"',
        color=f'"{HIGHLIGHT_COLOR if marked else OP_BORDER}"',
        penwidth="3" if marked else "1",
        tooltip=dot_quote(op_tooltip(node)),
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
            label=dot_quote([meaning]), fillcolor=f'"{colour}"', color=f'"{OP_BORDER}"',
            id=f'"legend_{name}"', tooltip=dot_quote([f"status: {name}"]),
        ) + "];")
    tensors = [
        ("tensor", TENSOR_FILL, "float tensor: name, shape, scale"),
        ("int8_tensor", INT8_TENSOR_FILL, "int8 / uint8 tensor"),
        ("io_tensor", IO_TENSOR_FILL, "graph input / output"),
    ]
    for name, fill, meaning in tensors:
        ids.append(f"legend_{name}")
        lines.append(f"    legend_{name} [" + _attrs(
            label=dot_quote([meaning]), shape="ellipse", fillcolor=f'"{fill}"',
            color='"#8a8a8a"', id=f'"legend_{name}"', tooltip=dot_quote([meaning]),
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
