"""Read an ONNX file into the IR with clear errors, and normalise how weights are stored.

The pieces live beside this module: :mod:`qcore.safe_io` (regular files inside the model's
folder, exact byte counts, :class:`ModelError`), :mod:`qcore.external_data` (checked external
data) and :mod:`qcore.model_checks` (what the passes can convert).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import external_data_helper, numpy_helper

from qcore.external_data import all_tensors, external_span, load_external
from qcore.ir import Graph, GraphError, Node
from qcore.ir_onnx import from_onnx
from qcore.model_checks import check_arity, check_quantization, check_subgraphs, check_wiring
from qcore.ops import QDQ_OPS
from qcore.safe_io import ModelError, regular_file_size

__all__ = ["ModelError", "load_graph", "quantization_summary", "read_model"]


def read_model(path: str | Path, warnings: list[str] | None = None) -> onnx.ModelProto:
    """Load an ONNX file, raising ``ModelError`` with a one-line reason.

    A Paddle model (a folder with ``__model__`` or ``*.pdmodel``, or a ``.pdmodel`` file) is
    imported as a QDQ ONNX model first (``qcore.paddle``; Paddle itself is not needed).

    Checker complaints that runtimes tolerate (ONNX Runtime's quantizer writes a per-axis
    DequantizeLinear into opset 12 models, say) are appended to ``warnings`` instead.
    """
    path = Path(path)
    if not path.exists():
        raise ModelError(f"{path}: no such file")
    from qcore import paddle  # light: the importer itself loads only for Paddle models

    if paddle.is_paddle_model(path):
        return paddle.import_paddle(path)
    if path.is_dir():
        raise ModelError(f"{path}: is a folder, not an .onnx file")
    regular_file_size(path, str(path))  # a FIFO or device would block or never end
    try:
        model = onnx.load(str(path), load_external_data=False)
    except OSError as exc:
        raise ModelError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except Exception as exc:  # noqa: BLE001 - protobuf / onnx raise many types on bad bytes
        if path.stat().st_size >= 2**31:
            raise ModelError(f"{path}: cannot read a 2 GiB protobuf; a model this big must "
                             "keep its weights in external data files") from None
        raise ModelError(f"{path}: not an ONNX model ({type(exc).__name__})") from None
    if not model.graph.node:
        raise ModelError(f"{path}: not an ONNX model (no graph nodes)")
    external = [t for t in all_tensors(model.graph) if external_data_helper.uses_external_data(t)]
    for tensor in external:
        external_span(path, tensor)
    # The checker reads the file itself: it then also checks external data files, works past
    # 2 GB, and holds the GIL for half as long as on a parsed model (a GUI stays responsive).
    _check_model(path, str(path), warnings)
    for tensor in external:
        load_external(path, tensor)
    return model


def _first_line(exc: BaseException) -> str:
    """The first non-empty line of an exception's message (its type name if it has none)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def _check_model(path: Path, model: onnx.ModelProto | str, warnings: list[str] | None) -> None:
    """Run the ONNX checker; complaints raise ``ModelError`` or, given ``warnings``, go there."""
    try:
        onnx.checker.check_model(model)
    except Exception as exc:  # noqa: BLE001 - ValidationError, or ValueError for huge protos
        first = _first_line(exc)
        if warnings is None:
            raise ModelError(f"{path}: invalid ONNX model: {first}") from None
        warnings.append(f"onnx.checker: {first}")


def load_graph(model: onnx.ModelProto | str | Path) -> Graph:
    """The IR of a model, with Constant-node weights turned into initializers."""
    warnings: list[str] = []
    source = ""
    if not isinstance(model, onnx.ModelProto):
        source = f"{model}: "
        model = read_model(model, warnings)
    check_subgraphs(model.graph, source)
    try:
        graph = from_onnx(model)
        _constants_to_initializers(graph)
    except (GraphError, ValueError, TypeError) as exc:
        raise ModelError(f"{source}not a usable ONNX model: {_first_line(exc)}") from None
    graph.warnings = warnings
    check_arity(graph, source)
    check_wiring(graph, source)
    check_quantization(graph, source)
    return graph


def _constants_to_initializers(graph: Graph) -> None:
    """Older exporters store every weight in a ``Constant`` node; make them initializers.

    The Constant nodes' ids are retired so every other op keeps its file position as id.
    """
    keep = []
    for node in graph.nodes:
        value = _constant_value(node)
        if value is None:
            keep.append(node)
            continue
        graph.initializers[node.outputs[0]] = value
    graph.nodes = keep


def _constant_value(node: Node) -> np.ndarray | None:
    if node.op_type != "Constant" or node.domain:
        return None
    attrs = node.attrs
    if "value" in attrs:
        return numpy_helper.to_array(attrs["value"])
    for key, dtype in (("value_float", np.float32), ("value_int", np.int64)):
        if key in attrs:
            return np.array(attrs[key], dtype=dtype)
    for key, dtype in (("value_floats", np.float32), ("value_ints", np.int64)):
        if key in attrs:
            return np.array(list(attrs[key]), dtype=dtype)
    return None


def quantization_summary(graph: Graph) -> dict[str, int]:
    """How many Q/DQ ops a model has, and of which kind."""
    consts = set(graph.initializers)
    counts = {"QuantizeLinear": 0, "DequantizeLinear": 0, "weight_dq": 0, "activation_dq": 0}
    for node in graph.nodes:
        if node.op_type in QDQ_OPS and not node.domain:
            counts[node.op_type] += 1
            if node.op_type == "DequantizeLinear":
                kind = "weight_dq" if node.inputs[0] in consts else "activation_dq"
                counts[kind] += 1
    return counts
