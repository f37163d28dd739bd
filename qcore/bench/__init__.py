"""Benchmark and accuracy: FP32 vs QDQ vs INT8 on ONNX Runtime and OpenVINO (oneDNN).

Public API (stable; the app's worker uses it)::

    from qcore.bench import BenchSettings, run_benchmark

    report = run_benchmark({"fp32": f, "qdq": q, "int8": i}, BenchSettings(threads=[1, 2]),
                           progress=callback, cancelled=flag)
    report.text(); report.to_json(); report.to_csv()

Modules: :mod:`~qcore.bench.runner` (settings, the interleaved timing loop),
:mod:`~qcore.bench.engines` (engine interface; ``ort_engine``, ``openvino_engine``),
:mod:`~qcore.bench.inputs` (data files or generated feeds), :mod:`~qcore.bench.accuracy`
(output comparison and per-tensor SQNR), :mod:`~qcore.bench.report` (results and the
versioned JSON schema), :mod:`~qcore.bench.command` (the ``qcore bench`` subcommand).
"""

from __future__ import annotations

from qcore.bench.accuracy import (
    AccuracyResult,
    OutputAccuracy,
    TensorError,
    compare_models,
    node_data,
    per_tensor_error,
    records,
)
from qcore.bench.engines import ENGINES, Engine, WhatRan, get_engine
from qcore.bench.errors import BenchCancelled, EngineUnavailable, NotRunnable
from qcore.bench.inputs import InputError, InputSet, generate_inputs, load_inputs, model_inputs
from qcore.bench.report import SCHEMA_VERSION, BenchReport, BenchResult, EngineInfo, LatencyStats
from qcore.bench.runner import BenchSettings, run_benchmark

__all__ = [
    "ENGINES", "SCHEMA_VERSION", "AccuracyResult", "BenchCancelled", "BenchReport",
    "BenchResult", "BenchSettings", "Engine", "EngineInfo", "EngineUnavailable", "InputError",
    "InputSet", "LatencyStats", "NotRunnable", "OutputAccuracy", "TensorError", "WhatRan",
    "compare_models", "generate_inputs", "get_engine", "load_inputs", "model_inputs",
    "node_data", "per_tensor_error", "records", "run_benchmark",
]
