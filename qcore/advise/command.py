"""`qcore advise`: suggest op_ids_to_skip by measured accuracy and speed."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable

from qcore.advise.search import Advice, AdviseSettings, TunedStart, advise
from qcore.config import ConvertConfig
from qcore.files import OutputSet


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("advise", help="suggest op_ids_to_skip within an accuracy bound")
    p.add_argument("--quant_model_path", "--quant-model-path", dest="quant_model_path",
                   required=True, help="the QDQ .onnx quant model")
    p.add_argument("--ops_to_quantize", "--ops-to-quantize", dest="ops_to_quantize", default="")
    p.add_argument("--op_ids_to_skip", "--op-ids-to-skip", dest="op_ids_to_skip", default="",
                   help="ops to keep FP32 in every candidate")
    p.add_argument("--min-cosine", "--min_cosine", dest="min_cosine", type=float, default=0.999,
                   help="lowest cosine of any output against the FP32 model, or the --float-model "
                   "(default 0.999)")
    p.add_argument("--min-agreement", "--min_agreement", dest="min_agreement", type=float,
                   default=None, help="lowest top-1 agreement for classifier outputs")
    p.add_argument("--float-model", "--float_model", dest="float_model", default=None,
                   metavar="F.onnx", help="measure the bound against this float model (the "
                   "network before quantization) instead of the converter's FP32 model")
    p.add_argument("--inputs", default=None, help=".npy / .npz input data (default: generated)")
    p.add_argument("--samples", type=int, default=8, help="generated inputs (default 8)")
    p.add_argument("--engine", default="onnxruntime")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rounds", type=int, default=20, help="timed runs per speed comparison")
    p.add_argument("--tune-cache", "--tune_cache", dest="tune_cache", default="",
                   metavar="FILE", help="a <name>.qcore-tune.json of `qcore convert --tune` "
                   "(same model, config, engine, threads and inputs): start from the "
                   "configuration it measured instead of timing lone INT8 ops again")
    p.add_argument("--json", default="", help="write every candidate tried as JSON")
    p.add_argument("-q", "--quiet", action="store_true")


def _progress(done: int, total: int, message: str) -> None:
    print(f"[{done}/{total}] {message}", file=sys.stderr)


def text(advice: Advice) -> str:
    lines = ["ops that lose the most accuracy in INT8 (SQNR drop across the op):"]
    for s in advice.sensitive[:8]:
        lines.append(f"  {s.op_type}({s.op_id}):  output {s.sqnr_db:6.1f} dB, "
                     f"drop {s.drop_db:5.1f} dB")
    if advice.op_ms:
        slow = sorted(advice.op_ms.items(), key=lambda kv: -kv[1])[:5]
        total = sum(advice.op_ms.values())
        lines.append(f"slowest ops with everything INT8 (ONNX Runtime profile, {total:.2f} ms in "
                     "all): " + ", ".join(f"{op_id}: {ms:.3f} ms" for op_id, ms in slow))
    if advice.lone_ops:
        lines.append(f"lone INT8 ops (each pays its own Q and DQ): "
                     f"{', '.join(map(str, advice.lone_ops))}")
    lines.append("candidates:")
    for c in advice.candidates:
        ms = f"{c.latency_ms:8.3f} ms" if c.latency_ms is not None else " " * 11
        agree = f" top-1 {c.agreement:.3f}" if c.agreement is not None else ""
        mark = "ok " if c.meets_bound else "   "
        lines.append(f"  {mark}cos {c.cosine:.5f}{agree} {ms}  {c.note}")
    best = advice.best
    if best is not None:
        verdict = "meets" if best.meets_bound else "does NOT meet"
        lines.append(f"best ({verdict} the bound): qcore convert {advice.flags()}".rstrip())
        lines.append(speed_text(advice))
    return "\n".join(lines)


def speed_text(advice: Advice) -> str:
    """The best against FP32 and against everything INT8, timed side by side."""
    best = advice.best
    if best is None or best.latency_ms is None or advice.fp32_ms is None:
        return ""
    ratio = advice.fp32_ms / best.latency_ms
    text = (f"{best.latency_ms:.3f} ms: {ratio:.2f}x the speed of FP32 ({advice.fp32_ms:.3f} ms); "
            f"everything INT8 {advice.all_int8_ms:.3f} ms")
    if not advice.faster_than_fp32:
        text += (". No INT8 configuration within the bound is faster than FP32 here: keep the "
                 "FP32 model, or loosen the bound")
    return text


StartFn = Callable[[argparse.Namespace, ConvertConfig], TunedStart | None]


def run(args: argparse.Namespace, start: StartFn | None = None) -> int:
    """``start(args, base)``: what ``--tune`` measured, to start from and reuse (the CLI
    reads it from ``--tune-cache``; the advisor does not import the tuner)."""
    base = ConvertConfig.from_flags(args.ops_to_quantize, args.op_ids_to_skip)
    settings = AdviseSettings(min_cosine=args.min_cosine, min_agreement=args.min_agreement,
                              engine=args.engine, threads=args.threads, samples=args.samples,
                              inputs=args.inputs, rounds=args.rounds,
                              float_model=args.float_model)
    with OutputSet(args.quant_model_path, force=getattr(args, "force", False)) as outputs:
        out = outputs.plan(args.json) if args.json else None
        begin = start(args, base) if start is not None else None
        advice = advise(args.quant_model_path, base, settings,
                        progress=None if args.quiet else _progress, start=begin)
        print(text(advice))
        if out is not None:
            outputs.add_bytes(out, (json.dumps(advice.to_dict(), indent=2) + "\n").encode())
            outputs.commit()
    return 0
