"""The benchmark job (no Qt): write the FP32 / INT8 models, then run qcore's benchmark, and
with ``settings.per_op`` the per-op profile of the INT8 model on each engine after it.

The INT8 model for the other target is converted on the fly with the same ops and skips, so
ONNX Runtime gets its QLinear model and OpenVINO (oneDNN) its squashed-QDQ model.
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from pathlib import Path
from typing import Any

from app.headless import child_calls
from app.headless.input_source import InputSource, with_inputs
from app.headless.per_op_task import (
    TARGET_OF,
    TwoPhases,
    decisions_for,
    per_op_roles,
    profile_engines,
    units,
)
from qcore.convert import ConversionResult

MODEL_ROLES = {
    "fp32": "FP32 (clean, fused)",
    "qdq": "QDQ (the input model)",
    "int8": "INT8 for ONNX Runtime",
    "int8-onednn": "INT8 for oneDNN (OpenVINO)",
}


def write_models(source: Path, result: ConversionResult, roles: list[str],
                 folder: Path, cancelled: Any = None) -> dict[str, Path]:
    """Role -> .onnx path for every role asked for (the QDQ model is the input file).

    The models are converted and written by the conversion process (``qcore.child``): the
    app holds the graphs without their weights.
    """
    paths: dict[str, Path] = {}
    by_target: dict[str, dict[str, Path]] = {}  # one conversion per target writes its models
    for role in roles:
        if role == "qdq":
            paths[role] = source
            continue
        paths[role] = folder / f"{role}.onnx"
        target, kind = ((result.config.target, "fp32") if role == "fp32"
                        else (TARGET_OF[role], "int8"))
        by_target.setdefault(target, {})[kind] = paths[role]
    for target, outputs in by_target.items():
        config = dataclasses.replace(result.config, target=target)
        child_calls.write_converted(source, config, outputs, cancelled=cancelled)
    return paths


def run_bench(source: Path, result: ConversionResult, roles: list[str], settings: Any,
              inputs: InputSource | None = None, progress: Any = None,
              cancelled: Any = None) -> Any:
    """Benchmark ``roles`` on ``inputs`` (generated data by default), then with
    ``settings.per_op`` profile the INT8 model of every engine (``report.per_op``); on Cancel
    the partial report comes back with ``cancelled`` set."""
    from qcore.bench.runner import run_benchmark

    folder = Path(tempfile.mkdtemp(prefix="quant-inspector-bench-"))
    per_op = bool(getattr(settings, "per_op", False))
    profiled = per_op_roles(settings.engines) if per_op else []
    phases = TwoPhases(progress, units(settings.engines, settings.per_op_runs) if per_op else 0)
    try:
        _say(progress, "writing the models")
        if inputs is not None and not inputs.generated:
            _say(progress, "reading the inputs")
            settings = with_inputs(settings, inputs, source, folder)
        paths = write_models(Path(source), result, list(dict.fromkeys(roles + profiled)),
                             folder, cancelled)
        measured = dataclasses.replace(settings, per_op=False)
        report = _partial_on_cancel(lambda: run_benchmark(
            {r: paths[r] for r in roles}, measured, progress=phases.first, cancelled=cancelled))
        if per_op and not report.cancelled:
            _profile(report, source, result, paths, settings, phases, cancelled)
        if inputs is not None and inputs.kind == "images" and not inputs.generated:
            report.inputs["source"] = f"{inputs.path} (images, preset {inputs.preset})"
        for role, path in paths.items():  # the temporary files are gone after this
            if role in report.models or role in profiled:
                report.models[role] = (str(source) if role == "qdq"
                                       else f"(temporary) {path.name}")
        return report
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _say(progress: Any, message: str) -> None:
    if progress is not None:
        progress(0, 1, message)


def _partial_on_cancel(run: Any) -> Any:
    from qcore.bench.errors import BenchCancelled

    try:
        return run()
    except BenchCancelled as exc:
        if exc.partial is None:
            raise
        return exc.partial


def _profile(report: Any, source: Path, result: ConversionResult, paths: dict[str, Path],
             settings: Any, phases: TwoPhases, cancelled: Any) -> None:
    """The per-op profile into ``report.per_op``; a Cancel keeps the engines done."""
    from qcore.bench.progress import Progress
    from qcore.passes.base import Cancelled  # the benchmark's and the conversion's

    profiled = per_op_roles(settings.engines)
    tracker = Progress(phases.second, cancelled, units(settings.engines, settings.per_op_runs))
    report.settings.update(per_op=True, per_op_runs=settings.per_op_runs)
    try:
        phases.second(0, tracker.total, "reading the decisions of each target")
        decisions = decisions_for(source, result, profiled, cancelled)
        profile_engines(paths, settings.engines, settings, decisions, tracker,
                        report.system.get("cpu_flags", []), report.per_op)
    except Cancelled:
        report.cancelled = True
    else:
        tracker.finish()
