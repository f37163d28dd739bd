"""Plain-text rendering of a :class:`qcore.bench.report.BenchReport` for terminals and logs."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from qcore.bench.per_op_text import render_per_op
from qcore.status import RunStatus

if TYPE_CHECKING:
    from qcore.bench.accuracy import AccuracyResult, TensorError
    from qcore.bench.report import BenchReport, BenchResult

WORST_TENSORS = 10
FLOAT_OPS_SHOWN = 5


def _ms(value: float) -> str:
    return f"{value:.3f}" if value < 10 else f"{value:.2f}" if value < 100 else f"{value:.1f}"


def _header(report: BenchReport) -> list[str]:
    s, sysinfo, inputs = report.settings, report.system, report.inputs
    runs = (f"{s['seconds']:g} s per model" if s.get("seconds")
            else f"{s['iters']} measured runs per model")
    lines = [
        f"qcore bench: {len(report.models)} model(s), threads {','.join(map(str, s['threads']))},"
        f" batch {inputs.get('batch', s['batch'])}, {s['warmup']} warm-up + {runs}, "
        "interleaved round-robin",
        f"CPU: {sysinfo.get('cpu', '?')}, {sysinfo.get('logical_cpus', '?')} logical CPUs; flags: "
        f"{' '.join(sysinfo.get('cpu_flags', [])) or '(none of interest)'}",
        f"inputs: {inputs['source']}, {inputs['feeds']} feed(s): " + ", ".join(
            f"{k} {v} {inputs['dtypes'].get(k, '')}" for k, v in inputs["shapes"].items()),
    ]
    lines += [f"  {note}" for note in inputs.get("notes", [])]
    lines.append("models:")
    lines += [f"  {label:<12} {path}" for label, path in report.models.items()]
    return lines


def _engine_title(report: BenchReport, name: str) -> list[str]:
    info = report.engine(name)
    if info is None:
        return [f"== {name}"]
    if not info.available:
        return [f"== {name}: UNAVAILABLE - {info.reason}"]
    what = "oneDNN-based CPU plugin" if name == "openvino" else ""
    settings = ", ".join(f"{k}={v}" if k != "provider" else v for k, v in info.settings.items())
    lines = [f"== {name} {info.version} ({', '.join(x for x in (what, settings) if x)})"]
    lines += [f"   note: {note}" for note in info.notes]
    return lines


def _row(r: BenchResult) -> str:
    head = f"  {r.model:<12} {r.threads:>3}"
    if r.status is not RunStatus.OK or r.latency_ms is None:
        return f"{head}  {r.status.upper()}: {r.reason or 'no measurement'}"
    lat = r.latency_ms
    speed = f"{r.speedup_vs_fp32:6.2f}x" if r.speedup_vs_fp32 is not None else f"{'-':>7}"
    per_s = f"{r.throughput_per_s:9.1f}" if r.throughput_per_s else f"{'-':>9}"
    load = f"{r.load_s:7.2f}" if r.load_s is not None else f"{'-':>7}"
    return (f"{head} {_ms(lat.p50):>9} {_ms(lat.p90):>9} {_ms(lat.p99):>9} {_ms(lat.mean):>9}"
            f" {per_s} {speed} {load} {lat.count:>6}")


def _what_ran(results: list[BenchResult]) -> list[str]:
    lines = ["  what ran:"]
    for r in results:
        if r.what_ran is None:
            continue
        lines.append(f"    {r.model:<12} {r.what_ran.summary}")
        if r.engine == "openvino" and r.what_ran.histogram:
            kernels = ", ".join(f"{k} x{v}" for k, v in r.what_ran.histogram.items())
            lines.append(f"    {'':<12} kernels: {kernels}")
        floats = r.what_ran.float_ops
        if floats and r.what_ran.int8_ops:
            more = f" and {len(floats) - FLOAT_OPS_SHOWN} more" if len(floats) > FLOAT_OPS_SHOWN \
                else ""
            lines.append(f"    {'':<12} float remained in: "
                         f"{'; '.join(floats[:FLOAT_OPS_SHOWN])}{more}")
    notes = sorted({n for r in results if r.what_ran for n in r.what_ran.notes})
    lines += [f"    ({note})" for note in notes]
    return lines if len(lines) > 1 else []


def _engine_section(report: BenchReport, name: str) -> list[str]:
    lines = [""] + _engine_title(report, name)
    results = [r for r in report.results if r.engine == name]
    if not results:
        return lines
    lines.append(f"  {'model':<12} {'thr':>3} {'p50 ms':>9} {'p90 ms':>9} {'p99 ms':>9} "
                 f"{'mean ms':>9} {'per s':>9} {'vs fp32':>7} {'load s':>7} {'runs':>6}")
    lines += [_row(r) for r in sorted(results, key=lambda r: r.threads)]
    first = min(r.threads for r in results)
    return lines + _what_ran([r for r in results if r.threads == first])


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _accuracy(results: list[AccuracyResult]) -> list[str]:
    shown = [a for a in results if a.status is not RunStatus.SKIPPED
             and (a.outputs or a.status is not RunStatus.OK)]
    if not shown:
        return []
    lines = ["", f"accuracy: test vs reference on the same {shown[0].samples} input(s)",
             f"  {'engine':<12} {'test vs ref':<24} {'output':<10} {'cosine (min)':<20} "
             f"{'max|diff| (ref max)':<22} {'mean|diff|':>10} {'top-1':>7} {'top-5':>7}"]
    for a in shown:
        pair = f"{a.test} vs {a.reference}"
        if a.status is not RunStatus.OK:
            lines.append(f"  {a.engine:<12} {pair:<24} {a.status.upper()}: {a.reason}")
            continue
        for o in a.outputs:
            lines.append(
                f"  {a.engine:<12} {pair:<24} {o.name[:10]:<10} "
                f"{f'{o.cosine:.5f} ({o.cosine_min:.5f})':<20} "
                f"{f'{o.max_abs_diff:.4g} ({o.ref_max_abs:.3g})':<22} {o.mean_abs_diff:>10.4g} "
                f"{_pct(o.top1_agreement):>7} {_pct(o.top5_overlap):>7}")
    return lines


def _op_label(e: TensorError) -> str:
    return f"{e.op_type}({e.op_id})" if e.op_id is not None else (e.op_type or "?")


def _sqnr(value: float) -> str:
    return "identical" if value == math.inf else f"{value:.1f}"


def _per_tensor(results: list[AccuracyResult]) -> list[str]:
    lines: list[str] = []
    for a in results:
        if a.per_tensor is None and not a.per_tensor_note:
            continue
        if not lines:
            lines = ["", "per-tensor error (SQNR dB, worst first; low = large error; the op is "
                     "the test model's producer, use its id with --op_ids_to_skip):"]
        lines.append(f"  {a.test} vs {a.reference}: {a.per_tensor_note}")
        errors = a.per_tensor or []
        for e in errors[:WORST_TENSORS]:
            lines.append(f"    {_sqnr(e.sqnr_db):>9}  {_op_label(e):<24} {e.tensor}")
        if len(errors) > WORST_TENSORS:
            best = errors[-1].sqnr_db
            lines.append(f"    ... {len(errors) - WORST_TENSORS} more, up to {_sqnr(best)}")
    return lines


def _bottom_line(report: BenchReport) -> list[str]:
    parts = []
    for r in report.results:
        if r.model != "fp32" and r.speedup_vs_fp32 is not None:
            parts.append(f"{r.model} {r.speedup_vs_fp32:.2f}x on {r.engine} {r.threads}T")
    lines = []
    if parts:
        lines += ["", "speedup vs fp32 (p50): " + "; ".join(parts)]
    if report.cancelled:
        lines.append("CANCELLED: the results above are partial")
    lines += [f"note: {n}" for n in report.notes]
    return lines


def render(report: BenchReport) -> str:
    """The whole report as text."""
    lines = _header(report)
    for name in [e.name for e in report.engines]:
        lines += _engine_section(report, name)
    lines += _accuracy(report.accuracy)
    lines += _per_tensor(report.accuracy)
    lines += render_per_op(report.per_op, report.system.get("cpu_flags", []))
    lines += _bottom_line(report)
    return "\n".join(lines) + "\n"
