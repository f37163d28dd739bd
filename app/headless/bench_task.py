"""The benchmark job (no Qt): write the FP32 / INT8 models, then run qcore's benchmark.

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
from qcore.convert import ConversionResult

MODEL_ROLES = {
    "fp32": "FP32 (clean, fused)",
    "qdq": "QDQ (the input model)",
    "int8": "INT8 for ONNX Runtime",
    "int8-onednn": "INT8 for oneDNN (OpenVINO)",
}
TARGET_OF = {"int8": "onnxruntime", "int8-onednn": "onednn"}


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
    """Benchmark on ``inputs`` (generated data by default); on Cancel the partial report
    comes back with ``cancelled`` set."""
    from qcore.bench.errors import BenchCancelled
    from qcore.bench.runner import run_benchmark

    folder = Path(tempfile.mkdtemp(prefix="quant-inspector-bench-"))
    try:
        if progress is not None:
            progress(0, 1, "writing the models")
        if inputs is not None and not inputs.generated:
            if progress is not None:
                progress(0, 1, "reading the inputs")
            settings = with_inputs(settings, inputs, source, folder)
        paths = write_models(Path(source), result, roles, folder, cancelled)
        try:
            report = run_benchmark(paths, settings, progress=progress, cancelled=cancelled)
        except BenchCancelled as exc:
            if exc.partial is None:
                raise
            report = exc.partial
        if inputs is not None and inputs.kind == "images" and not inputs.generated:
            report.inputs["source"] = f"{inputs.path} (images, preset {inputs.preset})"
        for role, path in paths.items():  # the temporary files are gone after this
            report.models[role] = str(source) if role == "qdq" else f"(temporary) {path.name}"
        return report
    finally:
        shutil.rmtree(folder, ignore_errors=True)
