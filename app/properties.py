"""The properties of the selected op (or tensor): ids, tensors with shapes and scales, why."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor, QGuiApplication, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.headless.per_op_view import FLAG_FILL, RAN_FILL, RAN_NAMES, ms_text
from qcore.ir import Graph, Node, QParams
from qcore.labels import (
    COLORS,
    LEGEND,
    describe_status,
    format_shape,
    int8_tensor_qparams,
    status_key,
    tensor_shape,
)

STATUS_NAMES = {name: meaning for name, _, meaning in LEGEND}


def dtype_name(graph: Graph, tensor: str) -> str:
    if tensor in graph.initializers:
        return str(graph.initializers[tensor].dtype)
    info = graph.tensors.get(tensor)
    if info is None or not info.elem_type:
        return ""
    try:
        return str(onnx.helper.tensor_dtype_to_np_dtype(info.elem_type))
    except (KeyError, ValueError, TypeError):
        return onnx.TensorProto.DataType.Name(info.elem_type).lower()


def tensor_details(graph: Graph, tensor: str,
                   int8: dict[str, QParams] | None = None) -> list[tuple[str, str]]:
    """Rows about one tensor: its shape and dtype (a constant's value) and its scale."""
    shape = format_shape(tensor_shape(graph, tensor)) or "?"
    dtype = dtype_name(graph, tensor)
    if not dtype and int8 and tensor in int8:
        dtype = str(int8[tensor].dtype)
    rows = []
    if tensor in graph.initializers:
        array = graph.initializers[tensor]
        text = f"{shape} {dtype}"
        if array.size == 1:
            value = array.reshape(-1)[0]
            text += f" = {value:.6g}" if array.dtype.kind == "f" else f" = {value}"
        rows.append(("constant", text))
    else:
        rows.append(("shape", f"{shape} {dtype}".strip()))
    qparams = (graph.act_qparams.get(tensor) or graph.weight_qparams.get(tensor)
               or (int8 or {}).get(tensor))
    if qparams is not None:
        rows.append(("scale", qparams.describe()))
    return rows


def tensor_text(graph: Graph, tensor: str, int8: dict[str, QParams] | None = None) -> str:
    """``shape: 1x16x32x32 float32; scale: u8 s=0.02 zp=0`` on one line."""
    return "; ".join(f"{k}: {v}" for k, v in tensor_details(graph, tensor, int8))


def attr_text(value: Any, limit: int = 120) -> str:
    if isinstance(value, bytes):
        text = value.decode("utf-8", errors="replace")
    elif isinstance(value, float):
        text = f"{value:.6g}"
    elif isinstance(value, np.ndarray):
        text = f"array {format_shape(value.shape)} {value.dtype}"
        if value.size <= 8:
            text += f" {np.array2string(value.reshape(-1), precision=4)}"
    elif isinstance(value, onnx.TensorProto):
        text = f"tensor {format_shape(value.dims)}"
    elif isinstance(value, (list, tuple)):
        text = "[" + ", ".join(attr_text(v, 20) for v in value) + "]"
    elif isinstance(value, onnx.GraphProto):
        text = f"graph {value.name} ({len(value.node)} ops)"
    else:
        text = str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class PropertiesPanel(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.header = QLabel("Nothing selected")
        self.header.setObjectName("propsHeader")
        self.header.setWordWrap(True)
        self.header.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.tree = QTreeWidget(self)
        self.tree.setColumnCount(2)
        self.tree.setHeaderLabels(["Property", "Value"])
        self.tree.setRootIsDecorated(True)
        self.tree.setUniformRowHeights(True)
        self.tree.setWordWrap(False)
        self.tree.setAlternatingRowColors(True)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.tree.header().setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)
        self.tree.header().setStretchLastSection(True)
        self.tree.setColumnWidth(0, 130)
        column = QVBoxLayout(self)
        column.setContentsMargins(4, 4, 4, 4)
        column.addWidget(self.header)
        column.addWidget(self.tree, 1)
        self.op_id: int | None = None
        self.sqnr: dict[int, float] = {}
        self.per_op: Any = None  # a PerOpResult: what ran, listed with each op

    # ---- content --------------------------------------------------------------------------
    def set_sqnr(self, sqnr: dict[int, float]) -> None:
        """Op id -> output SQNR (dB) to list with each op (shown from the next ``show_op``)."""
        self.sqnr = sqnr

    def set_per_op(self, result: Any) -> None:
        """The per-op profile (``qcore.bench.per_op.PerOpResult``) whose row of each op is
        listed with it, or None (shown from the next ``show_op``)."""
        self.per_op = result

    def clear(self, message: str = "Nothing selected") -> None:
        self.op_id = None
        self.tree.clear()
        self.header.setText(message)

    def show_op(self, graph: Graph, node: Node, status: tuple[str, bool],
                note: str = "") -> None:
        self.op_id = node.id
        self.tree.clear()
        key, pending = status
        colour = COLORS.get(key, "#ffffff")
        self.header.setText(
            f"<span style='font-size:13pt'><b>{node.label}</b></span> "
            f"<span style='background:{colour}; padding:2px'>&nbsp;{STATUS_NAMES.get(key, key)}"
            f"&nbsp;</span>" + (" <i>(pending: press Convert)</i>" if pending else "")
            + (f"<br><i>{note}</i>" if note else ""))
        op = self._section("Op")
        self._row(op, "id", str(node.id))
        self._row(op, "name", node.name or "(none)")
        self._row(op, "op type", node.op_type + (f"  [{node.domain}]" if node.domain else ""))
        self._row(op, "status", describe_status(node), COLORS[status_key(node)])
        if node.reason:
            self._row(op, "reason", node.reason)
        if pending:
            self._row(op, "next convert", STATUS_NAMES.get(key, key), colour)
        if node.fused:
            self._row(op, "fused ops", ", ".join(node.fused))
        if node.id in self.sqnr:
            self._row(op, "SQNR", f"{self.sqnr[node.id]:.1f} dB")
        self._what_ran(node.id)
        int8 = int8_tensor_qparams(graph)
        for title, names in (("Inputs", node.inputs), ("Outputs", node.outputs)):
            section = self._section(f"{title} ({len([n for n in names if n])})")
            for i, name in enumerate(names):
                if name:
                    row = self._row(section, str(i), name, tip=tensor_text(graph, name, int8))
                    for key, value in tensor_details(graph, name, int8):
                        self._row(row, key, value)
        attrs = {k: v for k, v in node.attrs.items() if not k.startswith("_")}
        if attrs:
            section = self._section(f"Attributes ({len(attrs)})")
            for name in sorted(attrs):
                self._row(section, name, attr_text(attrs[name]))
        self.tree.expandAll()

    def _what_ran(self, op_id: int) -> None:
        """The op's row of the per-op profile: precision, kernel, time and its flag."""
        result = self.per_op
        if result is None:
            return
        run = result.op(op_id)
        section = self._section(f"What ran ({result.model} on {result.engine})")
        if run is None:
            self._row(section, "kernel", "none of its own (folded away, fused without a "
                      "trace, or not in the INT8 model)")
            return
        self._row(section, "ran", RAN_NAMES.get(run.precision, run.precision),
                  RAN_FILL.get(run.precision, ""))
        self._row(section, "kernel", run.kernel)
        self._row(section, "time", f"inside op {run.fused_into}" if run.fused_into is not None
                  else f"{ms_text(run.time_ms)} ms per inference")
        self._row(section, "our decision", {"int8": "INT8", "fp32": "FP32"}.get(run.decided,
                                                                                 "unknown"))
        if run.detail:
            self._row(section, "engine says", run.detail)
        if run.flag:
            self._row(section, "flag", run.flag, FLAG_FILL)

    def show_tensor(self, graph: Graph, tensor: str) -> None:
        self.op_id = None
        self.tree.clear()
        self.header.setText(f"<span style='font-size:12pt'><b>tensor</b></span> {tensor}")
        info = self._section("Tensor")
        self._row(info, "name", tensor)
        self._row(info, "shape", format_shape(tensor_shape(graph, tensor)) or "unknown")
        self._row(info, "dtype", dtype_name(graph, tensor) or "unknown")
        qparams = (graph.act_qparams.get(tensor) or graph.weight_qparams.get(tensor)
                   or int8_tensor_qparams(graph).get(tensor))
        self._row(info, "quantization", qparams.describe() if qparams else "none known")
        if tensor in graph.input_names:
            self._row(info, "graph input", "yes")
        if tensor in graph.output_names:
            self._row(info, "graph output", "yes")
        producer = graph.producers().get(tensor)
        self._row(info, "produced by", producer.label if producer else "(graph input)")
        users = graph.consumers().get(tensor, [])
        self._row(info, "used by", ", ".join(n.label for n in users) or "(none)")
        self.tree.expandAll()

    def show_missing(self, op_id: int, where: str) -> None:
        self.clear(f"<b>op {op_id}</b> is not in {where}")

    # ---- helpers --------------------------------------------------------------------------
    def _section(self, title: str) -> QTreeWidgetItem:
        item = QTreeWidgetItem(self.tree, [title])
        font = item.font(0)
        font.setBold(True)
        item.setFont(0, font)
        item.setFirstColumnSpanned(True)
        return item

    def _row(self, parent: QTreeWidgetItem, key: str, value: str, colour: str = "",
             tip: str = "") -> QTreeWidgetItem:
        item = QTreeWidgetItem(parent, [key, value])
        item.setToolTip(0, tip or key)
        item.setToolTip(1, tip or value)
        if colour:
            item.setBackground(1, QBrush(QColor(colour)))
            item.setForeground(1, QBrush(QColor("#111111")))
        return item

    def text(self) -> str:
        """All rows as indented ``key: value`` lines (for tests and Copy)."""
        lines: list[str] = []

        def walk(item: QTreeWidgetItem, depth: int) -> None:
            value = item.text(1)
            lines.append("  " * depth + item.text(0) + (f": {value}" if value else ""))
            for j in range(item.childCount()):
                walk(item.child(j), depth + 1)

        for i in range(self.tree.topLevelItemCount()):
            walk(self.tree.topLevelItem(i), 0)
        return "\n".join(lines)

    def keyPressEvent(self, event) -> None:
        if event.matches(QKeySequence.StandardKey.Copy):
            rows = [f"{i.text(0)}: {i.text(1)}" for i in self.tree.selectedItems()]
            QGuiApplication.clipboard().setText("\n".join(rows) or self.text())
            return
        super().keyPressEvent(event)
