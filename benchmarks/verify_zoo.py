"""``qcore verify`` on every real-model zoo entry (tests/zoo.py), both targets.

    python benchmarks/verify_zoo.py [--models ppocr_cls,minilm_l6] [--samples 3]

For every (model, producer, target): converts the zoo's QDQ model and runs the source and every
pass snapshot on the zoo's test samples (the INT8 snapshots on the target's engine: ONNX
Runtime, or OpenVINO for onednn). Prints one row each: the first pass that drifts (or "all
hold"), the worst cosine vs the source before ``quantize`` and of the final INT8 model, and the
source's own cosine vs the float model. Asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import zoo  # noqa: E402

from qcore.bench.inputs import InputSet  # noqa: E402
from qcore.config import ConvertConfig  # noqa: E402
from qcore.verify import Stage, verify  # noqa: E402

ENGINE = {"onnxruntime": "onnxruntime", "onednn": "openvino"}
HEADER = ("| model | producer | target | result | worst cos vs source, before quantize "
          "| INT8 cos vs source | source cos vs float |")


def verify_row(name: str, producer: str, target: str, samples: int) -> str:
    e = zoo.entry(name, producer)
    inputs = InputSet(e.test[:samples], "zoo test samples")
    report = verify(e.qdq_path, ConvertConfig(target=target), inputs,
                    float_model=e.float_path, engine=ENGINE[target])
    failed = report.failed
    result = "all hold" if failed is None else \
        f"{failed.status.value} at {failed.name}" + (
            f" ({failed.first_op.op_type}({failed.first_op.op_id}))" if failed.first_op else "")
    qdq = [r.vs_source.cosine for r in report.rows if r.stage is Stage.QDQ and r.vs_source]
    int8 = [r.vs_source.cosine for r in report.rows if r.stage is Stage.INT8 and r.vs_source]
    src = report.source_vs_float.cosine if report.source_vs_float else float("nan")
    return (f"| {name} | {producer} | {target} | {result} | "
            f"{min(qdq) if qdq else float('nan'):.4f} | {int8[-1] if int8 else float('nan'):.4f}"
            f" | {src:.4f} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="", help="comma-separated zoo model names "
                        "(default: all)")
    parser.add_argument("--samples", type=int, default=3, help="test samples per model")
    args = parser.parse_args(argv)
    wanted = {m for m in args.models.split(",") if m}
    print(HEADER)
    print("|" + "---|" * 7)
    for name, producer in zoo.PAIRS:
        if wanted and name not in wanted:
            continue
        for target in ENGINE:
            try:
                print(verify_row(name, producer, target, args.samples), flush=True)
            except Exception as exc:  # noqa: BLE001 - one failing model must not stop the table
                print(f"| {name} | {producer} | {target} | failed: {str(exc)[:120]} | | | |",
                      flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
