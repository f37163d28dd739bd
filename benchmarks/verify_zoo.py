"""``qcore verify`` on every real-model zoo entry (tests/zoo.py), on both targets.

    python benchmarks/verify_zoo.py [--models ppocr_cls,minilm_l6] [--targets onednn]
                                    [--samples 3]

For every (model, producer, target): converts the zoo's QDQ model and runs the source and every
pass snapshot on the zoo's test samples (the INT8 snapshots, and the source as a user runs it,
on the target's engine: ONNX Runtime, or OpenVINO for onednn). Prints a line per run as it
finishes, then one summary table: the first pass that drifts (or "holds"; "holds, engine
rounding" when an INT8 snapshot is beyond the bound of the fake-quant source but within the
engine's own rounding on the source; "holds, INT8 tie rounding" when the op search pinned to
the reference's quantized values finds every INT8 op computing the source's op but for
one-step flips at ties), the worst cosine vs the source before ``quantize``, the
final INT8 model against the fake-quant source (cosine and max error) and against the engine
on the source, the engine on the source against the fake-quant source, and the source's
cosine vs the float model. Asserts nothing.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import zoo  # noqa: E402

from qcore.bench.inputs import InputSet  # noqa: E402
from qcore.config import TARGETS, ConvertConfig  # noqa: E402
from qcore.verify import ENGINE_OF_TARGET, Diff, Stage, Status, VerifyReport, verify  # noqa: E402

COLUMNS = ("model", "producer", "target", "result", "QDQ worst cos src", "INT8 cos src",
           "INT8 err src", "engine cos src", "engine err src", "INT8 cos engine", "src cos float")


def _cos(diff: Diff | None) -> str:
    return "-" if diff is None or math.isnan(diff.cosine) else f"{diff.cosine:.5f}"


def _err(diff: Diff | None) -> str:
    return "-" if diff is None else f"{diff.max_error:.3f}"


def result_text(report: VerifyReport) -> str:
    """holds / holds, engine rounding at PASS / STATUS at PASS (Op(id)): the reference."""
    failed = report.failed
    if failed is None:
        rounding = [r for r in report.rows
                    if r.stage is Stage.INT8 and r.status is Status.ROUNDING]
        if not rounding:
            return "holds"
        if rounding[0].pinned:
            return (f"holds, INT8 tie rounding at {rounding[0].name} ({rounding[0].flips} "
                    "flips on pinned inputs)")
        return f"holds, engine rounding at {rounding[0].name}"
    text = f"{failed.status.value} at {failed.name}"
    if failed.first_op is not None:
        text += f" ({failed.first_op.label}{', on pinned inputs' if failed.pinned else ''})"
    if failed.status is Status.DRIFT and failed.stage is Stage.INT8:
        text += " vs " + ("the snapshot before" if "snapshot before" in
                          failed.reason.split(";")[0] else "the source")
    return text


def summary_cells(name: str, producer: str, target: str, report: VerifyReport) -> list[str]:
    """One summary row: numbers of the last INT8 snapshot that ran (none when an earlier
    pass stopped the check)."""
    qdq = [r.vs_source for r in report.rows if r.stage is Stage.QDQ and r.vs_source]
    int8 = [r for r in report.rows if r.stage is Stage.INT8 and r.vs_source]
    last = int8[-1] if int8 else None
    worst = min(qdq, key=lambda d: d.cosine) if qdq else None
    int8_src = last.vs_source if last else None
    return [name, producer, target, result_text(report), _cos(worst), _cos(int8_src),
            _err(int8_src), _cos(report.engine_vs_source), _err(report.engine_vs_source),
            _cos(last.vs_engine if last else None), _cos(report.source_vs_float)]


def verify_entry(name: str, producer: str, target: str, samples: int) -> list[str]:
    e = zoo.entry(name, producer)
    inputs = InputSet(e.test[:samples], "zoo test samples")
    report = verify(e.qdq_path, ConvertConfig(target=target), inputs,
                    float_model=e.float_path, engine=ENGINE_OF_TARGET[target])
    return summary_cells(name, producer, target, report)


def table(rows: list[list[str]]) -> str:
    """A Markdown table, columns padded so it reads as plain text too."""
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(COLUMNS)]

    def line(cells: tuple[str, ...] | list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    return "\n".join([line(COLUMNS), line(["-" * w for w in widths]), *map(line, rows)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--models", default="", help="comma-separated zoo model names "
                        "(default: all)")
    parser.add_argument("--targets", default=",".join(TARGETS),
                        help="comma-separated targets (default: %(default)s)")
    parser.add_argument("--samples", type=int, default=3, help="test samples per model")
    args = parser.parse_args(argv)
    wanted = {m for m in args.models.split(",") if m}
    targets = [t for t in args.targets.split(",") if t]
    unknown = [t for t in targets if t not in TARGETS]
    if unknown or not targets:
        parser.error(f"--targets: choose from {', '.join(TARGETS)}")
    rows: list[list[str]] = []
    for name, producer in zoo.PAIRS:
        if wanted and name not in wanted:
            continue
        for target in targets:
            try:
                cells = verify_entry(name, producer, target, args.samples)
            except Exception as exc:  # noqa: BLE001 - one failing model must not stop the table
                reason = " ".join(str(exc).split())[:100]
                cells = [name, producer, target, f"failed: {reason}",
                         *["-"] * (len(COLUMNS) - 4)]
            rows.append(cells)
            print(" | ".join(cells), flush=True)
    print()
    print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
