"""Side-by-side ONNX Runtime latency of FP32 / source QDQ / our INT8, measured in one run.

    python benchmarks/bench_ort.py [--models resnet,bert] [--threads 1] [--seconds 3]

Builds a ResNet-50-like CNN and a BERT-like encoder (devtools.modelgen), quantizes them with
ONNX Runtime's quantize_static (QDQ, u8 activations, s8 per-channel weights, and s8
symmetric activations), converts each with qcore, and times every model round-robin so that
machine drift hits all of them alike. Prints medians and ratios; asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from devtools import modelgen
from qcore.convert import convert


def session(path: Path, threads: int) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-30))


def build(kind: str) -> onnx.ModelProto:
    if kind == "resnet":
        return modelgen.resnet_like()
    return modelgen.bert_like()


def bench_family(kind: str, threads: int, seconds: float, work: Path) -> None:
    fp32 = build(kind)
    feeds = modelgen.random_inputs(fp32, count=1, seed=11, batch=1)[0]
    models: dict[str, Path] = {}
    onnx.save(fp32, work / f"{kind}_fp32.onnx")
    models["fp32 (original)"] = work / f"{kind}_fp32.onnx"
    variants = {"u8s8": dict(activation_type="uint8"),
                "s8s8": dict(activation_type="int8", symmetric_activations=True)}
    if kind == "bert":
        variants = {"u8s8": dict(activation_type="uint8", op_types=["MatMul", "Gemm"]),
                    "s8s8": dict(activation_type="int8", symmetric_activations=True,
                                 op_types=["MatMul", "Gemm"])}
    for name, options in variants.items():
        quant = modelgen.quantize_qdq(fp32, per_channel=True, **options)
        qpath = work / f"{kind}_qdq_{name}.onnx"
        onnx.save(quant, qpath)
        models[f"qdq {name} (ORT runs the QDQ)"] = qpath
        t0 = time.perf_counter()
        result = convert(str(qpath))
        took = time.perf_counter() - t0
        ipath = work / f"{kind}_int8_{name}.onnx"
        onnx.save(result.int8_model(), ipath)
        models[f"ours int8 from {name}"] = ipath
        print(f"  converted {name} in {took:.2f} s: {len(result.quantized_ids)} ops INT8, "
              f"{len(result.fp32_reasons())} FP32; size {qpath.stat().st_size >> 20} MiB -> "
              f"{ipath.stat().st_size >> 20} MiB", flush=True)
    sessions = {label: session(path, threads) for label, path in models.items()}
    outputs = {label: s.run(None, feeds)[0] for label, s in sessions.items()}
    for s in sessions.values():  # warm-up
        for _ in range(3):
            s.run(None, feeds)
    times: dict[str, list[float]] = {label: [] for label in sessions}
    deadline = time.perf_counter() + seconds * len(sessions)
    rounds = 0
    while rounds < 10 or time.perf_counter() < deadline:
        for label, s in sessions.items():
            t0 = time.perf_counter()
            s.run(None, feeds)
            times[label].append(time.perf_counter() - t0)
        rounds += 1
    base = statistics.median(times["fp32 (original)"])
    ref = outputs["fp32 (original)"]
    print(f"\n{kind}: ONNX Runtime {ort.__version__}, {threads} thread(s), batch 1, "
          f"{rounds} interleaved rounds")
    print(f"  {'model':<32} {'p50 ms':>8} {'p90 ms':>8} {'vs FP32':>8} {'cos vs FP32':>12}")
    for label, samples in times.items():
        p50 = statistics.median(samples)
        p90 = float(np.percentile(samples, 90))
        print(f"  {label:<32} {p50 * 1e3:8.2f} {p90 * 1e3:8.2f} {base / p50:7.2f}x "
              f"{cosine(ref, outputs[label]):12.4f}")
    for name in variants:
        qdq = statistics.median(times[f"qdq {name} (ORT runs the QDQ)"])
        ours = statistics.median(times[f"ours int8 from {name}"])
        print(f"  ours vs ORT-on-QDQ ({name}): {qdq / ours:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="resnet,bert")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=3.0, help="time budget per model")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for kind in args.models.split(","):
            print(f"== {kind}", flush=True)
            bench_family(kind.strip(), args.threads, args.seconds, Path(tmp))


if __name__ == "__main__":
    main()
