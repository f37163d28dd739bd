"""Model Explorer node-data JSON: one value per op id, for overlays on the graph.

One builder, :func:`graph_node_data`, writes Model Explorer's ``GraphNodeData`` shape
(``results`` keyed by node id -> ``{"value": ...}``, plus ``thresholds`` or ``gradient``),
for every metric qcore exports: per-tensor SQNR (:func:`qcore.bench.accuracy.node_data`),
and per-op time and precision (:func:`per_op_node_data`). The keys are qcore op ids as
strings, the ids the app's graph and the ``name#id`` node names use. :func:`node_data_files`
names one file per metric of a benchmark report, each loadable in Model Explorer on its own.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from qcore.status import RunStatus

if TYPE_CHECKING:
    from qcore.bench.per_op import PerOpResult
    from qcore.bench.report import BenchReport

Colors = Sequence[tuple[float, str]]

#: ran precision -> value of the ``ran_int8`` overlay (1 int8, 0 float).
RAN_VALUE = {"int8": 1.0, "q/dq": 0.5, "other": 0.5, "float": 0.0}
RAN_THRESHOLDS: Colors = ((0.0, "#f4a582"), (0.5, "#dddddd"), (1.0, "#92c5de"))
TIME_GRADIENT: Colors = ((0.0, "#ffffff"), (0.5, "#fdae61"), (1.0, "#d7191c"))
SQNR_THRESHOLDS: Colors = ((10.0, "#d73027"), (20.0, "#fc8d59"), (30.0, "#fee08b"))


def graph_node_data(values: Mapping[int, float], thresholds: Colors = (),
                    gradient: Colors = (), descending: bool = False) -> dict[str, Any]:
    """``GraphNodeData`` for op id -> value (results ordered by value).

    Args:
        values: Op id -> number.
        thresholds: (upper bound, colour) pairs: a value <= bound gets that colour.
        gradient: (stop in 0..1, colour) pairs, interpolated between the values' min and max.
        descending: Order the results largest first (default smallest first).
    """
    ordered = sorted(values.items(), key=lambda kv: (-kv[1] if descending else kv[1], kv[0]))
    data: dict[str, Any] = {"results": {str(k): {"value": v} for k, v in ordered}}
    if thresholds:
        data["thresholds"] = [{"value": v, "bgColor": c} for v, c in thresholds]
    if gradient:
        data["gradient"] = [{"stop": s, "bgColor": c} for s, c in gradient]
    return data


def per_op_node_data(result: PerOpResult) -> dict[str, dict[str, Any]]:
    """``time_ms`` (ms per inference, a white-to-red gradient) and ``ran_int8`` (1 int8,
    0 float, 0.5 Q/DQ or other) for every op id of one per-op result."""
    ops = [r for r in result.ops if r.op_id is not None]
    times = {r.op_id: round(r.time_ms, 6) for r in ops if r.op_id is not None}
    ran = {r.op_id: RAN_VALUE.get(r.precision, 0.5) for r in ops if r.op_id is not None}
    return {"time_ms": graph_node_data(times, gradient=TIME_GRADIENT, descending=True),
            "ran_int8": graph_node_data(ran, thresholds=RAN_THRESHOLDS)}


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("._") or "model"


def node_data_files(report: BenchReport) -> dict[str, dict[str, Any]]:
    """File name -> ``GraphNodeData`` for every metric of ``report``: per-op
    ``<model>.<engine>.time_ms.json`` / ``.ran_int8.json`` and per-tensor
    ``<test>_vs_<reference>.sqnr_db.json``."""
    from qcore.bench.accuracy import node_data

    files: dict[str, dict[str, Any]] = {}
    for r in report.per_op:
        if r.status is not RunStatus.OK:
            continue
        for metric, data in per_op_node_data(r).items():
            files[f"{_safe(r.model)}.{_safe(r.engine)}.{metric}.json"] = data
    for a in report.accuracy:
        if a.per_tensor:
            files[f"{_safe(a.test)}_vs_{_safe(a.reference)}.sqnr_db.json"] = \
                node_data(a.per_tensor)
    return files


def planned_files(models: Sequence[str], engines: Sequence[str]) -> list[str]:
    """The per-op file names a run of ``models`` on ``engines`` can write (for planning)."""
    return [f"{_safe(m)}.{_safe(e)}.{metric}.json" for m in models for e in engines
            for metric in ("time_ms", "ran_int8")]
