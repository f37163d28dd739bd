"""ONNX Runtime and OpenVINO (oneDNN) side by side: FP32 / source QDQ / our INT8, one run each.

    python benchmarks/bench_engines.py [--models resnet,bert] [--threads 1] [--seconds 3]

Builds the ResNet-50-like CNN and the BERT-like encoder of devtools.modelgen (the sizes of
benchmarks/bench_ort.py), quantizes each with ONNX Runtime's quantize_static (QDQ; u8
activations and s8 symmetric activations, s8 per-channel weights; BERT quantizes MatMul/Gemm
only), converts every QDQ model with qcore for both targets, and measures all of them with
qcore.bench (interleaved round-robin, batch 1). Prints p50 latencies, ratios to FP32 and to the
QDQ model on the same engine, output cosine vs FP32, and which kernels ran. Asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import onnx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from devtools import modelgen
from qcore.bench import BenchReport, BenchSettings, run_benchmark
from qcore.config import ConvertConfig
from qcore.convert import convert

VARIANTS = {
    "u8s8": dict(activation_type="uint8"),
    "s8s8": dict(activation_type="int8", symmetric_activations=True),
}
ENGINES = ("onnxruntime", "openvino")


def build(kind: str) -> tuple[onnx.ModelProto, list[str] | None, str]:
    if kind == "resnet":
        return modelgen.resnet_like(), None, "ResNet-50-like CNN, 224x224"
    return modelgen.bert_like(), ["MatMul", "Gemm"], "BERT-base-like encoder, seq 128"


def make_models(kind: str, work: Path) -> tuple[dict[str, Path], str]:
    fp32, op_types, title = build(kind)
    models = {"fp32": work / f"{kind}_fp32.onnx"}
    onnx.save(fp32, models["fp32"])
    for name, options in VARIANTS.items():
        t0 = time.perf_counter()
        quant = modelgen.quantize_qdq(fp32, per_channel=True, op_types=op_types, **options)
        models[f"qdq {name}"] = work / f"{kind}_qdq_{name}.onnx"
        onnx.save(quant, models[f"qdq {name}"])
        took = time.perf_counter() - t0
        for target, label in (("onnxruntime", "int8"), ("onednn", "int8-onednn")):
            t1 = time.perf_counter()
            result = convert(str(models[f"qdq {name}"]), ConvertConfig(target=target))
            path = work / f"{kind}_{label}_{name}.onnx"
            onnx.save(result.int8_model(), path)
            models[f"{label} {name}"] = path
            print(f"  {name}: quantized in {took:.0f} s, converted for {target} in "
                  f"{time.perf_counter() - t1:.1f} s: {len(result.quantized_ids)} ops INT8, "
                  f"{len(result.fp32_reasons())} FP32", flush=True)
    return models, title


def _cos(report: BenchReport, label: str, engine: str) -> str:
    for a in report.accuracy:
        if a.test == label and a.reference == "fp32" and a.engine == engine and a.outputs:
            return f"{a.outputs[0].cosine:.4f}"
    return "-"


def print_table(report: BenchReport, title: str, threads: int) -> None:
    versions = {e.name: e.version.split("-")[0] for e in report.engines if e.available}
    print(f"\n{title}: {threads} thread(s), batch 1; ONNX Runtime {versions.get('onnxruntime')}"
          f", OpenVINO {versions.get('openvino')} (f32 precision hint)")
    print(f"  {'model':<18} {'ORT ms':>8} {'vs FP32':>8} {'vs QDQ':>7}   {'OV ms':>8} "
          f"{'vs FP32':>8} {'vs QDQ':>7}   {'cos vs FP32 (ORT/OV)':>20}")
    for label in report.models:
        cells = []
        variant = label.split()[-1]
        for engine in ENGINES:
            r = report.result(label, engine, threads)
            qdq = report.result(f"qdq {variant}", engine, threads)
            if r is None or r.latency_ms is None:
                cells.append(f"{'n/a':>8} {'':>8} {'':>7}")
                continue
            vs_qdq = (qdq.latency_ms.p50 / r.latency_ms.p50
                      if qdq and qdq.latency_ms and label.startswith("int8") else None)
            cells.append(f"{r.latency_ms.p50:8.2f} {r.speedup_vs_fp32 or 0:7.2f}x "
                         f"{f'{vs_qdq:.2f}x' if vs_qdq else '':>7}")
        cos = f"{_cos(report, label, 'onnxruntime')} / {_cos(report, label, 'openvino')}"
        print(f"  {label:<18} {cells[0]}   {cells[1]}   {cos:>20}")
    print("  what ran:")
    for engine in ENGINES:
        for label in report.models:
            r = report.result(label, engine, threads)
            if r is None:
                continue
            text = r.what_ran.summary if r.what_ran else f"{r.status}: {r.reason}"
            print(f"    {engine:<11} {label:<18} {text[:150]}")
            if engine == "openvino" and r.what_ran and r.what_ran.histogram:
                kernels = ", ".join(f"{k} x{v}" for k, v in r.what_ran.histogram.items())
                print(f"    {'':<11} {'':<18} kernels: {kernels[:150]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="resnet,bert")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=3.0, help="time budget per model")
    parser.add_argument("--json-dir", default="", help="also save each report as JSON here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="qcore_bench_engines_") as tmp:
        for kind in [k.strip() for k in args.models.split(",") if k.strip()]:
            print(f"== {kind}", flush=True)
            models, title = make_models(kind, Path(tmp))
            settings = BenchSettings(engines=list(ENGINES), threads=[args.threads], warmup=3,
                                     seconds=args.seconds, samples=4, accuracy=True)
            t0 = time.perf_counter()
            report = run_benchmark(models, settings)
            print(f"  measured in {time.perf_counter() - t0:.0f} s", flush=True)
            print_table(report, title, args.threads)
            for note in report.notes:
                print(f"  note: {note}")
            if args.json_dir:
                out = Path(args.json_dir) / f"bench_engines_{kind}.json"
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_text(report.to_json() + "\n")


if __name__ == "__main__":
    main()
