"""The ``qcore verify`` subcommand: arguments, the per-pass table and the verdict."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from qcore.bench.engines import parse_engines
from qcore.config import TARGETS, ConvertConfig
from qcore.files import OutputError, check_output
from qcore.temporaries import write_bytes_atomic
from qcore.verify import (
    ENGINE_OF_TARGET,
    Bound,
    Diff,
    PassCheck,
    Status,
    Tolerance,
    VerifyReport,
    verify,
)

DEFAULT = Tolerance()


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    """Add ``verify`` to the ``qcore`` subcommands."""
    p = sub.add_parser(
        "verify", help="run the source and every pass snapshot on the same inputs; name the "
        "first pass and op that drift",
        description="Convert MODEL and run the source QDQ model and every snapshot on the "
        "same inputs: before quantize each snapshot runs with fake-quant on every tensor that "
        "has a scale (the source's semantics, ONNX Runtime without optimizations), from "
        "quantize on the INT8 model of the target runs on the target's engine. Stops at the "
        "first pass that drifts beyond the bounds and names the first op whose output drifts. "
        "An INT8 snapshot is judged against two references: the fake-quant source, and the "
        "engine running the source QDQ model as a user would (ONNX Runtime with its default "
        "optimizations, or OpenVINO), whose integer kernels round differently from float "
        "fake-quant. It holds when it is within the INT8 bounds of the fake-quant source; or "
        "of the engine on the source; or no further from the fake-quant source than "
        "--engine-margin times the engine on the source is (widening the cosine bound down to "
        "0.99 at most): status 'rounding' then. The same holds for an INT8 snapshot against "
        "the INT8 one before it (the engine compiles each anew). A drift names the reference "
        "it failed. Exit 0: every pass holds; 1: a pass drifts or cannot run; 2: bad input. Max "
        "error is max|snapshot - reference| / max|reference|.")
    p.add_argument("model", help="the QDQ .onnx quant model")
    p.add_argument("--inputs", help=".npy (one input) or .npz (arrays keyed by input name); "
                   "default: generated N(0, 1) data fitted to the input shapes")
    p.add_argument("--float-model", dest="float_model",
                   help="the float model: also print every snapshot's cosine against it")
    p.add_argument("--target", choices=TARGETS, default=None,
                   help="the INT8 form checked after quantize (default: onnxruntime, or onednn "
                   "with --engine openvino)")
    p.add_argument("--engine", default=None,
                   help="engine for the INT8 snapshots and the source as a user runs it: "
                   "onnxruntime or openvino (alias onednn); default: the target's (openvino "
                   "for onednn); the fake-quant reference and the snapshots before quantize "
                   "run on ONNX Runtime")
    p.add_argument("--min-cosine", dest="min_cosine", type=float,
                   default=DEFAULT.qdq.min_cosine, help="before quantize (default %(default)s)")
    p.add_argument("--max-error", dest="max_error", type=float,
                   default=DEFAULT.qdq.max_error, help="before quantize (default %(default)s)")
    p.add_argument("--int8-min-cosine", dest="int8_min_cosine", type=float,
                   default=DEFAULT.int8.min_cosine,
                   help="quantize and after, against the previous snapshot and the source "
                   "(default %(default)s)")
    p.add_argument("--int8-max-error", dest="int8_max_error", type=float,
                   default=DEFAULT.int8.max_error, help="quantize and after (default "
                   "%(default)s)")
    p.add_argument("--engine-margin", dest="engine_margin", type=float,
                   default=DEFAULT.engine_margin,
                   help="an INT8 snapshot may be this many times as far from the fake-quant "
                   "source as the engine running the source is (default %(default)s)")
    p.add_argument("--samples", type=int, default=4, help="generated feeds (default 4)")
    p.add_argument("--ops_to_quantize", "--ops-to-quantize", dest="ops_to_quantize", default="",
                   help="comma-separated op types (default: all)")
    p.add_argument("--op_ids_to_skip", "--op-ids-to-skip", dest="op_ids_to_skip", default="",
                   help="comma-separated op ids to keep FP32")
    p.add_argument("--json", help="also write the report as JSON")
    p.add_argument("-f", "--force", action="store_true", help="replace an existing --json file")
    return p


def _bound(cosine: float, error: float, flag: str) -> Bound:
    if not 0.0 <= cosine <= 1.0 or error < 0 or math.isnan(error):
        raise ValueError(f"{flag}: cosine must be in [0, 1] and max error >= 0")
    return Bound(cosine, error)


def run(args: argparse.Namespace) -> int:
    """Run ``qcore verify``; 0 when every pass holds, 1 when one drifts (ValueError -> 2)."""
    model = Path(args.model)
    if not model.is_file():
        raise ValueError(f"{model}: no such model file")
    if args.float_model and not Path(args.float_model).is_file():
        raise ValueError(f"{args.float_model}: no such model file (--float-model)")
    if args.samples < 1:
        raise ValueError("--samples takes an integer >= 1")
    if args.json:
        check_output(args.json, model)
        if Path(args.json).exists() and not args.force:
            raise OutputError(f"{args.json} exists; pass --force to replace it")
    engines = parse_engines(args.engine or ENGINE_OF_TARGET[args.target or "onnxruntime"])
    if len(engines) != 1:
        raise ValueError("--engine takes one engine")
    target = args.target or ("onednn" if engines[0] == "openvino" else "onnxruntime")
    if not args.engine_margin >= 1.0:
        raise ValueError("--engine-margin takes a number >= 1")
    if engines[0] == "openvino" and target != "onednn":
        raise ValueError("OpenVINO cannot read the onnxruntime target's com.microsoft ops: "
                         "use --target onednn with --engine openvino")
    tolerance = Tolerance(_bound(args.min_cosine, args.max_error, "--min-cosine/--max-error"),
                          _bound(args.int8_min_cosine, args.int8_max_error,
                                 "--int8-min-cosine/--int8-max-error"),
                          engine_margin=args.engine_margin)
    config = ConvertConfig.from_flags(args.ops_to_quantize, args.op_ids_to_skip, target)
    report = verify(model, config, args.inputs, tolerance, args.float_model,
                    engine=engines[0], samples=args.samples)
    sys.stdout.write(report_text(report))
    if args.json:
        text = json.dumps(report.to_dict(), indent=2, default=str)
        write_bytes_atomic(args.json, (text + "\n").encode())
        print(f"wrote {args.json}")
    return 0 if report.ok else 1


def _num(diff: Diff | None, what: str) -> str:
    if diff is None:
        return "-"
    if what == "cosine":
        return f"{diff.cosine:.7f}"
    return "0" if diff.max_error == 0 else f"{diff.max_error:.2e}"


def _row(row: PassCheck, with_float: bool) -> str:
    number = "--" if row.index < 0 else f"{row.index:02d}"
    cells = [f"{number:>3}", f"{row.name:<22}", f"{row.stage.value:<5}", f"{row.status.value:<12}",
             f"{_num(row.vs_previous, 'cosine'):>10}", f"{_num(row.vs_previous, 'error'):>9}",
             f"{_num(row.vs_source, 'cosine'):>10}", f"{_num(row.vs_source, 'error'):>9}",
             f"{_num(row.vs_engine, 'cosine'):>10}", f"{_num(row.vs_engine, 'error'):>9}"]
    if with_float:
        cells.append(f"{_num(row.vs_float, 'cosine'):>10}")
    return "  ".join(cells).rstrip()


def verdict(report: VerifyReport) -> str:
    """One line: every pass holds, or the pass (and op) that drifted."""
    failed = report.failed
    if failed is None:
        return f"verdict: every pass holds ({len(report.rows)} snapshots)"
    where = f"pass {failed.index:02d} {failed.name}" if failed.index >= 0 else "quant_orig"
    if failed.status == Status.NOT_RUNNABLE:
        return f"verdict: NOT RUNNABLE at {where}: {failed.reason}"
    text = f"verdict: DRIFT at {where}"
    op = failed.first_op
    if op is None:
        return f"{text}: {failed.reason}; no single op's output drifts beyond the bound"
    text += (f": first drifting op {op.label} '{op.name}', tensor {op.tensor} (cosine "
             f"{op.cosine:.7f}, max error {op.max_error:.2e})")
    if op.note:
        text += f"; {op.note}"
    return f"{text}; {failed.reason}"


def report_text(report: VerifyReport) -> str:
    """The table the command prints: one row per snapshot, then the verdict."""
    tol = report.tolerance
    data = f"{report.inputs}, {report.samples} samples"
    if report.generated:
        data += " - generated N(0, 1) data, not real inputs: pass --inputs X.npz"
    lines = [f"qcore verify {report.model}: target {report.target}, INT8 snapshots on "
             f"{report.engine}",
             f"inputs: {data}",
             *[f"note: {n}" for n in report.notes],
             f"bounds: before quantize cosine >= {tol.qdq.min_cosine} and max error <= "
             f"{tol.qdq.max_error}; quantize and after cosine >= {tol.int8.min_cosine} and max "
             f"error <= {tol.int8.max_error}",
             f"INT8 may also be within the bounds of {report.engine} running the source, or "
             f"within {tol.engine_margin}x that engine's own distance from the source",
             "max error = max|snapshot - reference| / max|reference| over the outputs; "
             "prev = the snapshot before, source = the QDQ model with fake-quant, engine = "
             f"{report.engine} running the QDQ model"]
    if report.engine_vs_source is not None:
        lines.append(f"{report.engine} on the source QDQ model vs its fake-quant reference "
                     f"(the engine's integer rounding): cosine "
                     f"{report.engine_vs_source.cosine:.7f}, max error "
                     f"{_num(report.engine_vs_source, 'error')}")
    with_float = bool(report.float_model)
    if with_float and report.source_vs_float is not None:
        lines.append(f"float model {report.float_model}: the source QDQ model's cosine "
                     f"against it is {report.source_vs_float.cosine:.7f}")
    header = ["  #", f"{'pass':<22}", "stage", f"{'status':<12}", f"{'cos prev':>10}",
              f"{'err prev':>9}", f"{'cos source':>10}", f"{'err src':>9}",
              f"{'cos engine':>10}", f"{'err eng':>9}"]
    if with_float:
        header.append(f"{'cos float':>10}")
    lines.append("  ".join(header))
    lines.extend(_row(row, with_float) for row in report.rows)
    for row in report.rows:
        if row.status == Status.ROUNDING:
            lines.append(f"rounding at pass {row.index:02d} {row.name}: {row.reason}")
    lines.append(verdict(report))
    return "\n".join(lines) + "\n"
