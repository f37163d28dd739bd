"""The ``--tune`` flags of ``qcore convert``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from qcore.advise import TunedStart
from qcore.config import ConvertConfig
from qcore.tune.cache import cache_path
from qcore.tune.reuse import cached_measurements, tuned_start
from qcore.tune.tuner import TuneResult, TuneSettings, tune

#: Flags that only mean something with --tune, and their defaults.
TUNE_ONLY = {"engine": None, "inputs": None, "threads": 1, "tune_budget": 120.0,
             "float_model": None}


def add_arguments(conv: argparse.ArgumentParser) -> None:
    """Add ``--tune``, ``--engine``, ``--tune-budget``, ``--inputs`` and ``--threads``."""
    group = conv.add_argument_group(
        "measured decisions", "--tune times the choices the pipeline is unsure of (small INT8 "
        "islands, ops at the border of FP32) INT8 and FP32 in the whole model, side by side, "
        "and keeps an op FP32 only where that is measured faster; the measurements are cached "
        "beside the INT8 output (<name>.qcore-tune.json)")
    group.add_argument("--tune", action="store_true", help="measure and keep what is faster")
    group.add_argument("--engine", default=TUNE_ONLY["engine"],
                       help="engine to measure on: onnxruntime or openvino (default: the "
                       "target's, onnxruntime for --target onnxruntime, openvino for onednn)")
    group.add_argument("--tune-budget", "--tune_budget", dest="tune_budget", type=float,
                       default=TUNE_ONLY["tune_budget"], metavar="SECONDS",
                       help="time for the search (default 120); what it leaves is listed")
    group.add_argument("--inputs", default=TUNE_ONLY["inputs"],
                       help=".npy / .npz input data to time with (default: generated)")
    group.add_argument("--threads", type=int, default=TUNE_ONLY["threads"],
                       help="threads of the engine while timing (default 1)")
    group.add_argument("--float-model", "--float_model", dest="float_model",
                       default=TUNE_ONLY["float_model"], metavar="F.onnx",
                       help="the network before quantization: the tuned model must be no "
                       "further from it than the default (default: qcore's FP32 model)")


def check(args: argparse.Namespace) -> None:
    """The tune-only flags are refused without ``--tune`` (they would do nothing)."""
    if args.tune:
        return
    given = [f"--{k.replace('_', '-')}" for k, v in TUNE_ONLY.items() if getattr(args, k) != v]
    if given:
        raise ValueError(f"{', '.join(given)} only apply with --tune")


def _progress(done: int, total: int, message: str) -> None:
    print(f"[tune {done}/{total}] {message}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace, config: ConvertConfig, int8_path: Path) -> TuneResult:
    """Tune ``config`` for the model of ``args``; the cache sits beside ``int8_path``."""
    settings = TuneSettings(engine=args.engine, threads=args.threads,
                            budget_s=args.tune_budget, inputs=args.inputs,
                            float_model=args.float_model)
    return tune(args.quant_model_path, config, settings, cache_file=cache_path(int8_path),
                progress=None if args.quiet else _progress)


def advise_start(args: argparse.Namespace, base: ConvertConfig) -> TunedStart | None:
    """For ``qcore advise --tune-cache FILE``: the tuned configuration and every pair timed
    that FILE holds for this key (model, config, engine, threads, inputs), or None (and why,
    on stderr)."""
    if not args.tune_cache:
        return None
    settings = TuneSettings(engine=args.engine, threads=args.threads, inputs=args.inputs)
    summary, pairs, note = cached_measurements(args.quant_model_path, base, settings,
                                               args.tune_cache)
    if summary is None:
        print(f"qcore advise: --tune-cache not used: {note}", file=sys.stderr)
        return None
    return tuned_start(summary, pairs)
