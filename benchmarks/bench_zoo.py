"""The real-model zoo (tests/zoo.py) on both engines: FP32 / source QDQ / our INT8.

    python benchmarks/bench_zoo.py [--models efficientnet_lite0,minilm_l6] [--iterations 50]
                                   [--seconds 3] [--control] [--producers nncf]
                                   [--engines openvino] [--tune [--tune-budget 60]]

For every zoo (model, producer): ONNX Runtime runs the float model, the QDQ model and our
``--target onnxruntime`` INT8; OpenVINO runs the float model, the QDQ model and our
``--target onednn`` INT8. qcore.bench times the three round-robin in one run (1 thread,
batch 1, the first test sample as input). Prints p50 latencies, the latency ratios ours/QDQ and
ours/FP32 (below 1 is faster), the compute ops that ran INT8 ("what ran", from qcore.bench's
report: ONNX Runtime's optimized graph, OpenVINO's runtime precision) and the mean cosine vs
FP32 over the test samples of the QDQ model and of ours. Asserts nothing.

``--seconds S`` times each model for S seconds instead of ``--iterations`` runs (a 5 ms model
gets hundreds of runs, a 200 ms one tens). ``--control`` also times a byte copy of the QDQ
file in the same run: "copy/QDQ" is what the measurement says of two identical models, the
resolution of that row's ratios.

With ``--tune``, ``qcore.tune`` first tunes our INT8 model on the same engine (the first test
sample as ``--inputs``, the zoo's float model as ``--float-model``, 1 thread, a fresh cache:
the tuning time is a cold run), and the tuned
model is timed in the same interleaved run as the other three: the table gains its latency,
tuned/QDQ, tuned/FP32, the ops tuning kept FP32, the tuning seconds and its cosine vs FP32.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import zoo  # noqa: E402

from qcore.bench import BenchSettings, run_benchmark  # noqa: E402

ENGINES = {"onnxruntime": "onnxruntime", "openvino": "onednn"}  # engine -> our target
HEADER = ("| model | producer | engine | FP32 ms | QDQ ms | ours ms | ours/QDQ | ours/FP32 "
          "| INT8 ops QDQ | INT8 ops ours | cos QDQ | cos ours |")
TUNE_HEADER = " tuned ms | tuned/QDQ | tuned/FP32 | kept FP32 by tune | tune s | cos tuned |"
CONTROL_HEADER = " copy/QDQ |"


@dataclass
class Options:
    """How each row is measured."""

    iterations: int = 50
    seconds: float | None = None  # per model, instead of iterations
    tune_budget: float | None = None  # None: no tuned columns
    engines: list[str] | None = None  # None: both
    control: bool = False  # also time a byte copy of the QDQ file


def _ops(result) -> str:
    ran = result.what_ran if result is not None else None
    if ran is None or ran.int8_ops is None:
        return "-"
    return f"{ran.int8_ops}/{ran.compute_ops}"


def _ms(result) -> float | None:
    ok = result is not None and result.status == "ok" and result.latency_ms is not None
    return result.latency_ms.p50 if ok else None


def _cos(path: Path, e: zoo.ZooEntry, engine: str, ref: list[np.ndarray]) -> str:
    try:
        outs = zoo.outputs(path, e.test, engine)
    except Exception:  # noqa: BLE001 - an engine refusing a model shows as "-"
        return "-"
    return f"{np.mean([zoo.cosine(a, b) for a, b in zip(outs, ref, strict=True)]):.4f}"


def _ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}" if a and b else "-"


def tuned_model(e: zoo.ZooEntry, engine: str, target: str, feeds: Path, budget: float,
                work: Path) -> tuple[Path, str, float]:
    """Our INT8 model tuned on ``engine``: its path, the ops kept FP32 (``0 (= ours)``: the
    same model as ours), the tuning seconds."""
    from qcore.config import ConvertConfig
    from qcore.convert import convert
    from qcore.tune import TuneSettings, tune

    stem = f"{e.model.name}.{e.producer}.{engine}"
    cache = work / f"{stem}.qcore-tune.json"
    cache.unlink(missing_ok=True)
    settings = TuneSettings(engine=engine, budget_s=budget, inputs=feeds,
                            float_model=e.float_path)
    tuned = tune(str(e.qdq_path), ConvertConfig(target=target), settings, cache_file=cache)
    path = work / f"{stem}.tuned.onnx"
    onnx.save(convert(str(e.qdq_path), tuned.config).int8_model(), str(path))
    same = tuned.config.op_ids_to_skip == []
    return path, f"{len(tuned.tuned_ids)}{' (= ours)' if same else ''}", tuned.seconds


def bench_entry(e: zoo.ZooEntry, work: Path, options: Options) -> list[str]:
    """Table rows of one (model, producer), one per engine of ``options``."""
    tune_budget, engines = options.tune_budget, options.engines
    feeds = work / f"{e.model.name}.npz"
    np.savez(feeds, **e.test[0])
    ref = zoo.outputs(e.float_path, e.test)
    rows = []
    for engine, target in ENGINES.items():
        if engines and engine not in engines:
            continue
        ours = zoo.convert_entry(e, target)
        models = {"fp32": e.float_path, "qdq": e.qdq_path, "int8": ours.int8_path}
        kept, tune_s = "-", 0.0
        if tune_budget is not None:
            try:
                models["tuned"], kept, tune_s = tuned_model(e, engine, target, feeds,
                                                            tune_budget, work)
            except Exception as exc:  # noqa: BLE001 - show the failure in the row
                print(f"tune failed ({e.model.name} {e.producer} {engine}): {exc}",
                      file=sys.stderr)
        if options.control:
            models["copy"] = work / f"{e.model.name}.{e.producer}.qdq-copy.onnx"
            shutil.copyfile(e.qdq_path, models["copy"])
        settings = BenchSettings(engines=[engine], threads=[1], iters=options.iterations,
                                 seconds=options.seconds, warmup=5, inputs=feeds)
        report = run_benchmark(models, settings)
        res = {k: report.result(k, engine, 1) for k in models}
        fp32, qdq, int8 = (_ms(res[k]) for k in ("fp32", "qdq", "int8"))
        cells = [e.model.name, e.producer, engine, f"{fp32:.2f}" if fp32 else "-",
                 f"{qdq:.2f}" if qdq else "-", f"{int8:.2f}" if int8 else "-",
                 _ratio(int8, qdq), _ratio(int8, fp32), _ops(res["qdq"]), _ops(res["int8"]),
                 _cos(e.qdq_path, e, engine, ref), _cos(ours.int8_path, e, engine, ref)]
        if tune_budget is not None:
            tuned = _ms(res["tuned"]) if "tuned" in res else None
            cells += [f"{tuned:.2f}" if tuned else "-", _ratio(tuned, qdq), _ratio(tuned, fp32),
                      kept if tuned else "-", f"{tune_s:.0f}" if tuned else "-",
                      _cos(models["tuned"], e, engine, ref) if tuned else "-"]
        if options.control:
            cells.append(_ratio(_ms(res["copy"]), qdq))
        rows.append("| " + " | ".join(cells) + " |")
        print(rows[-1], flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="", help="comma-separated zoo model names "
                        f"(default: all of {', '.join(zoo.MODELS)})")
    parser.add_argument("--iterations", type=int, default=50,
                        help="measured runs per model and engine")
    parser.add_argument("--seconds", type=float, default=None,
                        help="time each model this long instead of --iterations runs")
    parser.add_argument("--control", action="store_true",
                        help="also time a byte copy of the QDQ file (copy/QDQ: the noise)")
    parser.add_argument("--tune", action="store_true",
                        help="also tune our INT8 model on each engine and time it too")
    parser.add_argument("--tune-budget", type=float, default=60.0, metavar="SECONDS",
                        help="--tune-budget of each tuning (default 60)")
    parser.add_argument("--producers", default="", help="comma-separated producers "
                        "(default: every producer of each model)")
    parser.add_argument("--engines", default="", help="onnxruntime, openvino (default both)")
    args = parser.parse_args(argv)
    producers = [p for p in args.producers.split(",") if p]
    engines = [e for e in args.engines.split(",") if e]
    names = [n for n in args.models.split(",") if n] or list(zoo.MODELS)
    unknown = [n for n in names if n not in zoo.MODELS]
    if unknown:
        parser.error(f"unknown models {unknown}; choose from {', '.join(zoo.MODELS)}")
    header = HEADER + (TUNE_HEADER if args.tune else "") + (CONTROL_HEADER if args.control
                                                              else "")
    options = Options(args.iterations, args.seconds, args.tune_budget if args.tune else None,
                      engines or None, args.control)
    print(header)
    print("|" + "---|" * header.count(" | ") + "---|")
    with tempfile.TemporaryDirectory(prefix="bench_zoo_") as tmp:
        for name, producer in zoo.PAIRS:
            if name not in names or (producers and producer not in producers):
                continue
            try:
                bench_entry(zoo.entry(name, producer), Path(tmp), options)
            except Exception as exc:  # noqa: BLE001 - one failing model must not stop the table
                print(f"| {name} | {producer} | - | failed: {str(exc)[:120]} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
