"""Read an ONNX file into the IR with clear errors, and normalise how weights are stored."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from google.protobuf.message import DecodeError
from onnx import numpy_helper

from qcore.ir import Graph, from_onnx

QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")


class ModelError(ValueError):
    """The file is not a model we can read; the message says why in one line."""


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
    try:
        model = onnx.load(str(path), load_external_data=True)
    except (DecodeError, RuntimeWarning, ValueError) as exc:
        raise ModelError(f"{path}: not an ONNX model ({type(exc).__name__})") from None
    except OSError as exc:
        raise ModelError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if not model.graph.node:
        raise ModelError(f"{path}: not an ONNX model (no graph nodes)")
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "invalid"
        if warnings is None:
            raise ModelError(f"{path}: invalid ONNX model: {first}") from None
        warnings.append(f"onnx.checker: {first}")
    return model


def load_graph(model: onnx.ModelProto | str | Path) -> Graph:
    """The IR of a model, with Constant-node weights turned into initializers."""
    warnings: list[str] = []
    if not isinstance(model, onnx.ModelProto):
        model = read_model(model, warnings)
    graph = from_onnx(model)
    graph.warnings = warnings
    _constants_to_initializers(graph)
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


def _constant_value(node) -> np.ndarray | None:  # noqa: ANN001 - Node
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
