"""Plain-text tables of :class:`qcore.bench.per_op.PerOpResult` (``qcore bench --per-op``)."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence

from qcore.bench.per_op import OpRun, PerOpResult
from qcore.status import RunStatus

#: Rows shown per table (flagged rows are always shown); the JSON report has them all.
ROWS_SHOWN = 25
INT8_FEATURES = (("VNNI", ("avx512_vnni", "avx_vnni")), ("AMX", ("amx_int8", "amx_tile")))


def cpu_line(flags: Sequence[str]) -> str:
    """``VNNI: avx512_vnni yes, avx_vnni no; AMX: amx_int8 no, amx_tile no``."""
    have = set(flags)
    return "; ".join(f"{name}: " + ", ".join(f"{f} {'yes' if f in have else 'no'}"
                                             for f in names)
                     for name, names in INT8_FEATURES)


def _ms(value: float) -> str:
    return f"{value:.3f}" if value < 100 else f"{value:.1f}"


def summary_line(r: PerOpResult) -> str:
    """One line: precisions of the ops, kernel time, Q/DQ, reorders, unmapped, flags."""
    s = r.summary
    ops = ", ".join(f"{s.ops.get(p, 0)} {p}" for p in ("int8", "float", "q/dq")
                    if s.ops.get(p, 0))
    flagged = f"{s.flagged} flagged" if r.flags_checked else "not checked: no decisions"
    return (f"{ops or 'no ops'} (compute {s.compute_int8} int8, {s.compute_float} float); "
            f"{_ms(s.total_ms)} ms of kernels per inference: Q/DQ {s.qdq.count} "
            f"({_ms(s.qdq.ms)} ms), reorders {s.reorder.count} ({_ms(s.reorder.ms)} ms), "
            f"unmapped {s.unmapped.count} ({_ms(s.unmapped.ms)} ms); flags: {flagged}")


def _row(o: OpRun, width: int) -> str:
    time = f"in {o.fused_into}" if o.fused_into is not None else _ms(o.time_ms)
    op_id = "-" if o.op_id is None else str(o.op_id)
    return (f"  {op_id:>6}  {o.op_type[:18]:<18} {o.decided or '-':<5} {o.precision:<6} "
            f"{o.kernel[:width]:<{width}} {time:>9}  {o.flag}").rstrip()


def _unmapped(rows: Sequence[OpRun]) -> str:
    kinds: Counter[str] = Counter(o.op_type for o in rows)
    ms: dict[str, float] = defaultdict(float)
    for o in rows:
        ms[o.op_type] += o.time_ms
    return "; ".join(f"{k} x{n} ({_ms(ms[k])} ms)" for k, n in kinds.most_common())


def table(r: PerOpResult, rows_shown: int = ROWS_SHOWN) -> list[str]:
    """The per-op table of one model on one engine, longest first."""
    title = f"== {r.model} on {r.engine}, {r.threads} thread{'s' if r.threads > 1 else ''}"
    if r.status is not RunStatus.OK:
        return [title, f"  {r.status.upper()}: {r.reason}"]
    lines = [f"{title}, {r.runs} profiled runs: {summary_line(r)}"]
    fused_qdq = [o for o in r.ops if o.fused_into is not None and o.kind == "q/dq"]
    rows = [o for o in r.ops if o not in fused_qdq]
    width = min(40, max([len(o.kernel) for o in rows] + [6]))
    lines.append(f"  {'op id':>6}  {'op type':<18} {'ours':<5} {'ran':<6} "
                 f"{'kernel':<{width}} {'time ms':>9}  flag")
    shown = [o for i, o in enumerate(rows) if i < rows_shown or o.flag]
    lines += [_row(o, width) for o in shown]
    hidden = len(rows) - len(shown)
    if hidden:
        rest = sum(o.time_ms for o in rows) - sum(o.time_ms for o in shown)
        lines.append(f"  ... {hidden} more ops ({_ms(rest)} ms); all of them are in the "
                     "--json report")
    if fused_qdq:
        lines.append(f"  {len(fused_qdq)} Q/DQ ops ran inside their neighbours' kernels "
                     "(listed in the --json report)")
    if r.unmapped:
        lines.append(f"  unmapped (engine-made kernels, no op id): {_unmapped(r.unmapped)}")
    if r.summary.not_seen:
        lines.append(f"  {r.summary.not_seen} ops of the model ran in no kernel of their own "
                     "(folded away or fused without a trace)")
    return lines


def render_per_op(results: Sequence[PerOpResult], cpu_flags: Sequence[str]) -> list[str]:
    """The ``--per-op`` section: the CPU's INT8 features, then one table per result."""
    if not results:
        return []
    lines = ["", "what ran, per op id (ours: the conversion's decision; ran: the engine's "
             f"precision; sorted by time). CPU INT8 features: {cpu_line(cpu_flags)}"]
    for r in results:
        lines += table(r)
    notes = sorted({n for r in results for n in r.notes})
    lines += [f"  ({note})" for note in notes]
    return lines
