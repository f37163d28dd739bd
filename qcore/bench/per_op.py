"""What ran, per op id: the precision, kernel and time of every op on one engine.

:func:`profile_model` runs a model with the engine's per-op profiler
(:meth:`qcore.bench.engines.Engine.profile`: ONNX Runtime's trace, OpenVINO's ``PERF_COUNT``)
and maps each engine kernel back to the model's op ids:

- by name: qcore writes ``name#id`` into every node name, which survives ONNX Runtime's
  renames (``conv#12_token_3``) and is listed in OpenVINO's ``originalLayersNames``
  (every op fused into a layer: the first is the layer's own op, the others ran inside it);
  a model not written by qcore gets the ids qcore's loader gives it (the ids a conversion of
  it uses);
- by tensor: a node the engine renamed after its output (ONNX Runtime's NCHWc
  ``pw.relu_nchwc``, OpenVINO's ``logits``) maps to that tensor's producer; a node fused
  from others maps to the op that reads its weights;
- engine-made kernels (layout Transposes, reorders) map to no op: they are ``unmapped``.

With the conversion's decisions, an op skipped by id that still ran INT8, and an op made
INT8 that the engine ran in float, are flagged with the engine's own words.

The mapping itself is :class:`qcore.bench.op_map.ModelOps`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from qcore.bench.engines import Engine, Feeds, Kernel, NotRunnable, first_line
from qcore.bench.errors import BenchCancelled
from qcore.bench.op_map import (
    COMPUTE_TYPES,
    LAYOUT_TYPES,
    QDQ_TYPES,
    REORDER_TYPES,
    ModelOps,
)
from qcore.bench.progress import Progress
from qcore.files import temporary_folder
from qcore.status import ReasonKind, RunStatus

PRECISIONS = ("int8", "float", "q/dq", "other")
SKIPPED_PREFIX = "skipped by id"  # the text of ReasonKind.SKIPPED, for plain-str reasons
class Decided(Protocol):
    """One op's conversion decision (a :class:`qcore.ir.Node` of ``ConversionResult.decisions``)."""

    @property
    def id(self) -> int: ...

    @property
    def status(self) -> str: ...

    @property
    def reason(self) -> str: ...


@dataclass
class OpRun:
    """One op (or, with ``op_id`` None, one engine-made kernel) as it ran.

    Attributes:
        op_id: The qcore op id, None for a kernel that maps to no op.
        op_type: The op's type in the model (the engine's type when unmapped).
        name: The op's name in the model (the engine's name when unmapped).
        precision: One of :data:`PRECISIONS`.
        kernel: The engine's kernel (``+``-joined when several ran for the op).
        time_ms: Mean time per inference of its kernels (0 when it ran inside another op).
        kind: ``compute``, ``q/dq``, ``reorder`` or ``other``.
        fused_into: The op id whose kernel this op ran inside, if any.
        decided: ``int8`` / ``fp32``: the conversion's decision ("" when unknown).
        detail: The engine's words about the kernel (layer type, precisions, provider).
        flag: Why this op is flagged ("" when it is not).
    """

    op_id: int | None
    op_type: str
    name: str
    precision: str
    kernel: str
    time_ms: float
    kind: str = "other"
    fused_into: int | None = None
    decided: str = ""
    detail: str = ""
    flag: str = ""


@dataclass
class Count:
    """How many kernels of one kind ran, and their time per inference."""

    count: int = 0
    ms: float = 0.0

    def add(self, ms: float) -> None:
        self.count += 1
        self.ms += ms


@dataclass
class PerOpSummary:
    """Totals of one :class:`PerOpResult` ("why is INT8 slower here")."""

    total_ms: float = 0.0
    ops: dict[str, int] = field(default_factory=dict)  # precision -> ops (mapped)
    compute_int8: int = 0
    compute_float: int = 0
    qdq: Count = field(default_factory=Count)
    reorder: Count = field(default_factory=Count)
    unmapped: Count = field(default_factory=Count)
    flagged: int = 0
    not_seen: int = 0  # the model's ops (no Q/DQ) with no kernel at all: folded away


@dataclass
class PerOpResult:
    """One model on one engine: every op id with what ran, sorted by time."""

    model: str
    path: str
    engine: str
    threads: int
    runs: int = 0
    status: RunStatus = RunStatus.OK
    reason: str = ""
    ops: list[OpRun] = field(default_factory=list)
    unmapped: list[OpRun] = field(default_factory=list)
    summary: PerOpSummary = field(default_factory=PerOpSummary)
    cpu_flags: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.status = RunStatus(self.status)  # also when read back from JSON
    flags_checked: bool = False  # the conversion's decisions were known
    notes: list[str] = field(default_factory=list)

    def op(self, op_id: int) -> OpRun | None:
        return next((r for r in self.ops if r.op_id == op_id), None)


def _kind(op_type: str, engine_type: str, precision: str, mapped: bool) -> str:
    if precision == "q/dq" or op_type in QDQ_TYPES:
        return "q/dq"
    if op_type in COMPUTE_TYPES or engine_type in COMPUTE_TYPES:
        return "compute"
    if engine_type in REORDER_TYPES or (engine_type in LAYOUT_TYPES and not mapped):
        return "reorder"
    return "other"


def _merge(row: OpRun, k: Kernel, main_ms: dict[int, float]) -> None:
    """A second kernel of one op: add its time; the longest executed kernel sets the
    precision (a compile-time layer is replaced by the one that ran)."""
    assert row.op_id is not None
    row.time_ms += k.time_ms
    if not k.executed:
        return
    if main_ms[row.op_id] < 0:
        row.kernel, row.precision, row.detail = k.kernel, k.precision, k.detail
        main_ms[row.op_id] = k.time_ms
        return
    if k.kernel not in row.kernel.split("+"):
        row.kernel += f"+{k.kernel}"
    if k.time_ms > main_ms[row.op_id]:
        row.precision, row.detail, main_ms[row.op_id] = k.precision, k.detail, k.time_ms


def op_runs(kernels: Iterable[Kernel], ops: ModelOps) -> tuple[list[OpRun], list[OpRun]]:
    """Kernels -> one row per op id (sorted by time, longest first) and the unmapped ones."""
    rows: dict[int, OpRun] = {}
    main_ms: dict[int, float] = {}  # time of the kernel that set a row's precision; -1: none ran
    unmapped = []
    for k in kernels:
        ids = ops.resolve(k)
        if not ids and not k.executed:
            continue  # a layer the engine folded away: nothing ran
        if not ids:
            unmapped.append(OpRun(None, k.op_type, k.name, k.precision, k.kernel, k.time_ms,
                                  _kind("", k.op_type, k.precision, False), detail=k.detail))
            continue
        head, *inside = ids
        row = rows.get(head)
        if row is None or row.fused_into is not None:
            op_type, name = ops.types[head]
            rows[head] = OpRun(head, op_type, name, k.precision, k.kernel, k.time_ms,
                               _kind(op_type, k.op_type, k.precision, True), detail=k.detail)
            main_ms[head] = k.time_ms if k.executed else -1.0
        else:
            _merge(row, k, main_ms)
        for op_id in inside:
            if op_id not in rows:
                op_type, name = ops.types[op_id]
                rows[op_id] = OpRun(op_id, op_type, name, k.precision, k.kernel, 0.0,
                                    _kind(op_type, "", k.precision, True), fused_into=head,
                                    detail=f"ran inside op {head}: {k.detail}")
    for row in rows.values():
        if row.op_type in QDQ_TYPES:
            row.precision = "q/dq"
    ordered = sorted(rows.values(), key=lambda r: (-r.time_ms, r.op_id or 0))
    return ordered, sorted(unmapped, key=lambda r: -r.time_ms)


def flag_ops(rows: Iterable[OpRun], decisions: Mapping[int, Decided], engine: str) -> int:
    """Mark the conversion's decision on each row and flag the surprises; returns how many.

    Flagged: an op skipped by id (``op_ids_to_skip``) that ran INT8, and an op made INT8
    that ran in float.
    """
    flagged = 0
    for row in rows:
        decision = decisions.get(row.op_id) if row.op_id is not None else None
        if decision is None:
            continue
        row.decided = "int8" if decision.status == "int8" else \
            "fp32" if decision.status == "fp32" else ""
        if row.decided == "fp32" and skipped_by_id(decision.reason) and \
                row.precision == "int8":
            row.flag = f"skipped by id, but {engine} ran it INT8 ({row.detail})"
        elif row.decided == "int8" and row.precision == "float":
            row.flag = f"made INT8, but {engine} ran it in float ({row.detail})"
        flagged += bool(row.flag)
    return flagged


def skipped_by_id(reason: str) -> bool:
    """The reason is the user's ``op_ids_to_skip`` (by its kind; by its text for a plain
    string, e.g. one read back from JSON)."""
    kind = getattr(reason, "kind", None)
    if isinstance(kind, ReasonKind):
        return kind is ReasonKind.SKIPPED
    return isinstance(reason, str) and reason.startswith(SKIPPED_PREFIX)


def summarize(kernels: Sequence[Kernel], rows: Sequence[OpRun], unmapped: Sequence[OpRun],
              ops: ModelOps) -> PerOpSummary:
    """Totals over the kernels (Q/DQ, reorders, unmapped) and the op rows (precisions)."""
    s = PerOpSummary(total_ms=sum(k.time_ms for k in kernels))
    for k in kernels:
        head = ops.resolve(k)[:1]
        if not k.executed:
            continue
        if k.precision == "q/dq" or k.op_type in QDQ_TYPES or \
                (head and ops.types[head[0]][0] in QDQ_TYPES):
            s.qdq.add(k.time_ms)
        elif k.op_type in REORDER_TYPES:
            s.reorder.add(k.time_ms)
    for row in unmapped:
        s.unmapped.add(row.time_ms)
        if row.kind == "reorder" and row.op_type not in REORDER_TYPES:
            s.reorder.add(row.time_ms)  # a layout Transpose the engine added
    for p in PRECISIONS:
        s.ops[p] = sum(r.precision == p for r in rows)
    s.compute_int8 = sum(r.kind == "compute" and r.precision == "int8" for r in rows)
    s.compute_float = sum(r.kind == "compute" and r.precision == "float" for r in rows)
    seen = {r.op_id for r in rows}
    s.not_seen = sum(i not in seen and t not in QDQ_TYPES for i, (t, _) in ops.types.items())
    return s


def profile_model(engine: Engine, path: str | Path, feeds: Sequence[Feeds], threads: int = 1,
                  runs: int = 10, decisions: Mapping[int, Decided] | None = None,
                  label: str = "", tick: Callable[[], object] | None = None,
                  cpu_flags: Sequence[str] = ()) -> PerOpResult:
    """Run ``path`` on ``engine`` with its per-op profiler and map every kernel to op ids.

    Raises:
        NotRunnable: the engine cannot run the model (or has no profiler).
    """
    path = Path(path)
    ops = ModelOps.of(path)
    with temporary_folder("qcore_perop_") as tmp:
        prof = engine.profile(path, threads, feeds, runs, Path(tmp), tick)
    rows, unmapped = op_runs(prof.kernels, ops)
    result = PerOpResult(label or path.stem, str(path), engine.name, threads, prof.runs,
                         ops=rows, unmapped=unmapped, cpu_flags=list(cpu_flags),
                         notes=list(prof.notes))
    result.summary = summarize(prof.kernels, rows, unmapped, ops)
    if decisions is not None:
        result.flags_checked = True
        result.summary.flagged = flag_ops(rows, decisions, engine.name)
    if not ops.types:
        result.notes.append("no op ids: the model's node names carry none and qcore's "
                            "loader could not read it")
    return result


def run_per_op(paths: Mapping[str, Path], engines: Sequence[Engine], feeds: Sequence[Feeds],
               threads: int, runs: int, decisions: Mapping[str, Mapping[int, Decided]],
               tracker: Progress, cpu_flags: Sequence[str] = ()) -> list[PerOpResult]:
    """:func:`profile_model` for every model on every engine; ``tracker`` counts one unit
    per profiled run and polls the cancel check."""
    results = []
    for engine in engines:
        for label, path in paths.items():
            message = f"per-op profile of {label} on {engine.name}"
            start = tracker.done

            def tick(message: str = message) -> None:
                tracker.check()
                tracker.advance(1, message)

            tracker.check()
            try:
                results.append(profile_model(engine, path, feeds, threads, runs,
                                             decisions.get(label), label, tick, cpu_flags))
            except BenchCancelled:
                raise
            except NotRunnable as exc:
                results.append(PerOpResult(label, str(path), engine.name, threads,
                                           status=RunStatus.SKIPPED, reason=str(exc)))
            except Exception as exc:  # noqa: BLE001 - a failed profile is a result
                results.append(PerOpResult(label, str(path), engine.name, threads,
                                           status=RunStatus.FAILED, reason=first_line(exc)))
            tracker.advance(max(0, start + runs - tracker.done), message)
    return results


def decisions_by_id(nodes: Iterable[Decided]) -> dict[int, Decided]:
    """``ConversionResult.decisions`` keyed by op id."""
    return {n.id: n for n in nodes}


def from_dict(data: Mapping[str, Any]) -> PerOpResult:
    """A :class:`PerOpResult` from its ``dataclasses.asdict`` form (the report JSON)."""
    d = dict(data)
    d["ops"] = [OpRun(**r) for r in d.get("ops", [])]
    d["unmapped"] = [OpRun(**r) for r in d.get("unmapped", [])]
    s = dict(d.get("summary") or {})
    for key in ("qdq", "reorder", "unmapped"):
        s[key] = Count(**s.get(key, {}))
    d["summary"] = PerOpSummary(**s)
    return PerOpResult(**d)
