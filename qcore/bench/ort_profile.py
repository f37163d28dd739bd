"""ONNX Runtime's profiler trace -> :class:`~qcore.bench.engines.Kernel` records.

With ``SessionOptions.enable_profiling`` ONNX Runtime writes a Chrome-trace JSON file: one
``Session`` event ``model_run`` per inference and one ``Node`` event per executed node,
named ``<node name>_kernel_time``, with ``dur`` in microseconds and ``args`` holding
``op_name``, ``provider`` and ``input_type_shape``. The node names are those of the
*optimized* graph: ONNX Runtime renames the nodes it rewrites (``conv#12_token_3`` for a
layout change, ``pw.relu_nchwc`` for an NCHWc convolution, named after its output) and adds
nodes of its own (``Transpose_token_5``, ``ReorderInput``). The optimized graph saved with
``optimized_model_filepath`` gives each node's domain and tensors, which
:mod:`qcore.bench.per_op` uses to map renamed nodes back to op ids.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import onnx

from qcore import ops
from qcore.bench.engines import Kernel

#: Compute ops that run on integer kernels (any domain).
INTEGER_OPS = frozenset({
    "QLinearConv", "ConvInteger", "QLinearMatMul", "MatMulInteger", "MatMulIntegerToFloat",
    "DynamicQuantizeMatMul", "QGemm", "QAttention", "QOrderedMatMul", "MatMulNBits",
    "NhwcQLinearConv", "DynamicQuantizeLSTM",
})
#: Integer element-wise / pooling ops (shown in the histogram, not counted as compute).
INTEGER_OTHER = frozenset({
    "QLinearAdd", "QLinearMul", "QLinearConcat", "QLinearGlobalAveragePool",
    "QLinearAveragePool", "QLinearLeakyRelu", "QLinearSigmoid", "QLinearSoftmax",
    "QLinearReduceMean", "QLinearWhere", "QEmbedLayerNormalization",
})
#: Compute ops that run in floating point.
FLOAT_OPS = frozenset({
    "Conv", "FusedConv", "ConvTranspose", "MatMul", "FusedMatMul", "Gemm", "FusedGemm",
    "Attention", "MultiHeadAttention", "TransposeMatMul", "FusedMatMulActivation",
})
QDQ_OPS = ops.QDQ_OPS | {"DynamicQuantizeLinear"}
INT8_TYPES = frozenset({"int8", "uint8"})
FLOAT_TYPES = frozenset({"float", "float16", "bfloat16", "double"})
SUFFIX = "_kernel_time"


def precision(op: str, input_types: Iterable[str]) -> str:
    """``int8``, ``float``, ``q/dq`` or ``other`` for an op and the element types it read."""
    if op in QDQ_OPS:
        return "q/dq"
    if op in INTEGER_OPS or op in INTEGER_OTHER or op.startswith("QLinear") or "Integer" in op:
        return "int8"
    if op in FLOAT_OPS:
        return "float"
    first = next(iter(input_types), "")
    if first in INT8_TYPES:
        return "int8"
    return "float" if first in FLOAT_TYPES else "other"


def _types(entries: object) -> list[str]:
    """``[{"uint8": [1, 3]}, {"float": []}]`` -> ``["uint8", "float"]``."""
    if not isinstance(entries, list):
        return []
    return [next(iter(e)) for e in entries if isinstance(e, dict) and e]


def measured_window(events: list[dict[str, Any]]) -> tuple[float, int]:
    """(start time of the measured runs, their number): the first ``model_run`` is the
    unmeasured warm-up."""
    runs = sorted((e for e in events
                   if e.get("cat") == "Session" and e.get("name") == "model_run"),
                  key=lambda e: float(e.get("ts", 0)))
    if len(runs) < 2:
        return 0.0, len(runs)
    first = runs[0]
    return float(first.get("ts", 0)) + float(first.get("dur", 0)), len(runs) - 1


def _domain(node: onnx.NodeProto | None) -> str:
    return node.domain if node is not None and node.domain not in ("", "ai.onnx") else ""


def kernels_from_trace(events: list[dict[str, Any]],
                       graph: Mapping[str, onnx.NodeProto]) -> tuple[list[Kernel], int]:
    """The measured runs' node events summed per node, as kernels in execution order.

    Args:
        events: The parsed trace.
        graph: Node name -> node of the optimized graph (empty when it was not saved).

    Returns:
        The kernels (``time_ms`` is the mean per measured run) and the number of runs.
    """
    start, runs = measured_window(events)
    total: dict[str, float] = defaultdict(float)
    first: dict[str, dict[str, Any]] = {}
    for e in events:
        name = str(e.get("name", ""))
        if e.get("cat") != "Node" or not name.endswith(SUFFIX):
            continue
        if float(e.get("ts", 0)) < start:
            continue
        name = name[: -len(SUFFIX)]
        total[name] += float(e.get("dur", 0)) / 1000.0
        first.setdefault(name, e)
    kernels = []
    for name, event in first.items():
        args = event.get("args", {})
        op = str(args.get("op_name", ""))
        node = graph.get(name)
        domain = _domain(node)
        types = _types(args.get("input_type_shape"))
        provider = str(args.get("provider", ""))
        kernels.append(Kernel(
            name=name, op_type=op, kernel=f"{domain}.{op}" if domain else op,
            precision=precision(op, types), time_ms=total[name] / max(1, runs),
            originals=[name], inputs=list(node.input) if node is not None else [],
            outputs=list(node.output) if node is not None else [],
            detail=f"{op} on {provider.removesuffix('ExecutionProvider') or '?'}, reads "
                   f"{', '.join(t for t in types if t) or 'nothing'}"))
    return kernels, runs


def read_trace(path: str | Path) -> list[dict[str, Any]]:
    """The events of a profile file (ONNX Runtime writes a JSON list)."""
    data = json.loads(Path(path).read_text())
    if isinstance(data, dict):  # the Chrome trace object form
        data = data.get("traceEvents", [])
    return [e for e in data if isinstance(e, dict)]


def optimized_nodes(path: str | Path) -> dict[str, onnx.NodeProto]:
    """Node name -> node of the saved optimized graph; empty when it cannot be read."""
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception:  # noqa: BLE001 - only a help for mapping names
        return {}
    return {n.name: n for n in model.graph.node}
