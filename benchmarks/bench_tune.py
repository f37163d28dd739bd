"""``qcore convert --tune`` on the real-model zoo (tests/zoo.py): what it chose, how long it took,
and default vs tuned timed side by side with FP32 and the source QDQ in one run.

    python benchmarks/bench_tune.py [--pairs efficientnet_lite0:ort-u8:onnxruntime,...]
                                    [--budget 120] [--iterations 100]

For each (model, producer, engine): the first test sample is the tuning input (``--inputs``)
and the timing input; ``qcore convert`` writes the default INT8 model and the ``--tune`` one
(then runs ``--tune`` again to show the cached run); qcore.bench times FP32, the QDQ model,
default and tuned round-robin (1 thread, batch 1). Speed columns are ``other ms / tuned
ms`` (above 1: tuned is faster). Cosines are means over the test samples, against the FP32
model and against the QDQ model (both run on ONNX Runtime). Asserts nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import zoo  # noqa: E402

from qcore.bench import BenchSettings, run_benchmark  # noqa: E402
from qcore.cli import main as qcore  # noqa: E402

TARGET = {"onnxruntime": "onnxruntime", "openvino": "onednn"}
DEFAULT_PAIRS = ("efficientnet_lite0:ort-u8:onnxruntime,pplcnet_orientation:ort-u8:onnxruntime,"
                 "yolov8n_nudenet:nncf:openvino")
HEADER = ("| model | producer | engine | FP32 ms | QDQ ms | default ms | tuned ms | tuned vs "
          "default | tuned vs QDQ | tuned vs FP32 | kept FP32 | cos FP32 default / tuned "
          "| cos QDQ default / tuned | tune s | cached s | not tried |")


def _run(args: list[str]) -> tuple[str, float]:
    out = io.StringIO()
    start = time.perf_counter()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        code = qcore(args)
    if code:
        raise RuntimeError(f"qcore {' '.join(args[:3])}... exited {code}")
    return out.getvalue(), time.perf_counter() - start


def _cos(path: Path, feeds: list, engine: str, ref: list[np.ndarray]) -> float:
    outs = zoo.outputs(path, feeds, engine)
    return float(np.mean([zoo.cosine(a, b) for a, b in zip(outs, ref, strict=True)]))


def bench(name: str, producer: str, engine: str, budget: float, iterations: int,
          work: Path) -> str:
    e = zoo.entry(name, producer)
    target = TARGET[engine]
    feeds = work / f"{name}.{producer}.npz"
    np.savez(feeds, **e.test[0])
    default, tuned = (work / f"{name}.{producer}.{engine}.{k}.onnx" for k in ("default", "tuned"))
    base = ["convert", "--quant_model_path", str(e.qdq_path), "--target", target, "-f"]
    _run([*base, "--int8_model_save_path", str(default)])
    tune_flags = ["--tune", "--engine", engine, "--inputs", str(feeds), "--tune-budget",
                  str(budget)]
    text, tune_s = _run([*base, "--int8_model_save_path", str(tuned), *tune_flags])
    _, cached_s = _run([*base, "--int8_model_save_path", str(tuned), *tune_flags])
    print(text, file=sys.stderr)
    kept = next((ln.split("--op_ids_to_skip ")[1] for ln in text.splitlines()
                 if ln.startswith("the same model without --tune")), "")
    untried = "not tried (" in text
    models = {"fp32": e.float_path, "qdq": e.qdq_path, "default": default, "tuned": tuned}
    report = run_benchmark(models, BenchSettings(engines=[engine], threads=[1],
                                                 iters=iterations, warmup=5, inputs=feeds))
    ms = {k: report.result(k, engine, 1).latency_ms.p50 for k in models}
    ref_fp32 = zoo.outputs(e.float_path, e.test)
    ref_qdq = zoo.outputs(e.qdq_path, e.test)
    cos = {k: (_cos(models[k], e.test, engine, ref_fp32), _cos(models[k], e.test, engine, ref_qdq))
           for k in ("default", "tuned")}
    cells = [name, producer, engine, *(f"{ms[k]:.2f}" for k in models),
             *(f"{ms[k] / ms['tuned']:.2f}x" for k in ("default", "qdq", "fp32")),
             (str(len(kept.split(","))) if kept else "0") +
             (" (same file)" if default.read_bytes() == tuned.read_bytes() else ""),
             f"{cos['default'][0]:.4f} / {cos['tuned'][0]:.4f}",
             f"{cos['default'][1]:.4f} / {cos['tuned'][1]:.4f}",
             f"{tune_s:.0f}", f"{cached_s:.1f}", "some" if untried else "-"]
    return "| " + " | ".join(cells) + " |"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", default=DEFAULT_PAIRS,
                        help="comma-separated model:producer:engine")
    parser.add_argument("--budget", type=float, default=120.0, help="--tune-budget seconds")
    parser.add_argument("--iterations", type=int, default=100,
                        help="measured runs per model in the side-by-side table")
    args = parser.parse_args(argv)
    print(HEADER)
    print("|" + "---|" * HEADER.count(" | ") + "---|")
    with tempfile.TemporaryDirectory(prefix="bench_tune_") as tmp:
        for item in args.pairs.split(","):
            name, producer, engine = item.split(":")
            try:
                print(bench(name, producer, engine, args.budget, args.iterations, Path(tmp)),
                      flush=True)
            except Exception as exc:  # noqa: BLE001 - one failing model must not stop the table
                print(f"| {name} | {producer} | {engine} | failed: {str(exc)[:160]} |",
                      flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
