"""What ran, per op, as the graph and the tables show it (no Qt): fills by ran precision or by
time, the flag marks, tooltip and table texts of one :class:`qcore.bench.per_op.PerOpResult`.

The colours are those of the node-data files qcore exports (``qcore.bench.nodedata``), so
the graph looks the same here and in Model Explorer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from qcore.bench.nodedata import RAN_THRESHOLDS, TIME_GRADIENT
from qcore.bench.per_op_text import cpu_line, summary_line
from qcore.status import RunStatus

if TYPE_CHECKING:
    from qcore.bench.per_op import OpRun, PerOpResult

COLOUR_MODES = {"status": "Conversion status", "ran": "What ran (INT8 / float)",
                "time": "Time per op"}
RAN_FILL = {"float": RAN_THRESHOLDS[0][1], "q/dq": RAN_THRESHOLDS[1][1],
            "other": RAN_THRESHOLDS[1][1], "int8": RAN_THRESHOLDS[2][1]}
RAN_NAMES = {"int8": "ran INT8", "float": "ran float", "q/dq": "Q/DQ", "other": "other"}
NOT_RUN_FILL = "#f6f6f6"
FLAG_COLOUR = "#c2185b"
FLAG_FILL = "#f8bbd0"  # behind a flag's text in tables


@dataclass
class OpMark:
    """How one op is drawn from the profile: ``fill`` ("" keeps the status colour), the
    time badge text, the flag and the tooltip lines."""

    fill: str = ""
    badge: str = ""
    flag: str = ""
    tip: list[str] = field(default_factory=list)


def ms_text(ms: float) -> str:
    return f"{ms:.3f}" if ms < 10 else f"{ms:.1f}"


def _mix(a: str, b: str, t: float) -> str:
    ca = [int(a[i:i + 2], 16) for i in (1, 3, 5)]
    cb = [int(b[i:i + 2], 16) for i in (1, 3, 5)]
    return "#" + "".join(f"{round(x + (y - x) * t):02x}" for x, y in zip(ca, cb, strict=True))


def time_fill(ms: float, longest: float) -> str:
    """The gradient colour of ``ms`` between 0 and the longest op's time."""
    t = min(1.0, max(0.0, ms / longest)) if longest > 0 else 0.0
    stops = list(TIME_GRADIENT)
    for (s0, c0), (s1, c1) in zip(stops, stops[1:], strict=False):
        if t <= s1:
            return _mix(c0, c1, (t - s0) / (s1 - s0) if s1 > s0 else 0.0)
    return stops[-1][1]


def longest_ms(result: PerOpResult) -> float:
    return max((r.time_ms for r in result.ops), default=0.0)


def run_lines(run: OpRun, engine: str) -> list[str]:
    """What ran for one op, for its tooltip."""
    where = f"ran inside op {run.fused_into}" if run.fused_into is not None \
        else f"{ms_text(run.time_ms)} ms"
    lines = [f"on {engine}: {RAN_NAMES.get(run.precision, run.precision)} \u00b7 "
             f"{run.kernel} \u00b7 {where}"]
    if run.flag:
        lines.append(f"FLAG: {run.flag}")
    return lines


def marks(result: PerOpResult | None, mode: str, op_ids: set[int]) -> dict[int, OpMark]:
    """Op id -> mark for the ops ``op_ids`` of a view; every op gets one while a profile is
    shown (an op with no kernel of its own says so), none without a profile."""
    if result is None or result.status is not RunStatus.OK:
        return {}
    rows = {r.op_id: r for r in result.ops if r.op_id is not None}
    longest = longest_ms(result)
    out: dict[int, OpMark] = {}
    for op_id in op_ids:
        run = rows.get(op_id)
        if run is None:
            out[op_id] = OpMark(NOT_RUN_FILL if mode != "status" else "",
                                tip=[f"on {result.engine}: no kernel of its own (folded away, "
                                     "fused without a trace, or not in the INT8 model)"])
            continue
        fill = {"ran": RAN_FILL.get(run.precision, NOT_RUN_FILL),
                "time": time_fill(run.time_ms, longest)}.get(mode, "")
        badge = f"{ms_text(run.time_ms)} ms" if mode == "time" and run.fused_into is None \
            else ""
        out[op_id] = OpMark(fill, badge, run.flag, run_lines(run, result.engine))
    return out


def summary_text(result: PerOpResult) -> str:
    """The summary line of one profile and the CPU's INT8 features."""
    if result.status is not RunStatus.OK:
        return f"{result.model} on {result.engine}: {result.status}: {result.reason}"
    runs = f"{result.runs} profiled run{'s' if result.runs != 1 else ''}"
    return (f"{result.model} on {result.engine}, {result.threads} thread(s), {runs}: "
            f"{summary_line(result)}. CPU INT8 features: {cpu_line(result.cpu_flags)}")


def row_texts(run: OpRun) -> list[str]:
    """Op id, op type, our decision, ran precision, kernel, time ms, flag."""
    time = f"in {run.fused_into}" if run.fused_into is not None else ms_text(run.time_ms)
    return [str(run.op_id), run.op_type, {"int8": "INT8", "fp32": "FP32"}.get(run.decided, "-"),
            RAN_NAMES.get(run.precision, run.precision), run.kernel, time, run.flag]


def label(result: PerOpResult) -> str:
    """How a profile is named in a chooser."""
    flagged = f", {result.summary.flagged} flagged" if result.summary.flagged else ""
    state = "" if result.status is RunStatus.OK else f" ({result.status})"
    return f"{result.model} on {result.engine}{state}{flagged}"
