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

from qcore.convert import ConversionResult, convert

MODEL_ROLES = {
    "fp32": "FP32 (clean, fused)",
    "qdq": "QDQ (the input model)",
    "int8": "INT8 for ONNX Runtime",
    "int8-onednn": "INT8 for oneDNN (OpenVINO)",
}
TARGET_OF = {"int8": "onnxruntime", "int8-onednn": "onednn"}


def write_models(source: Path, result: ConversionResult, roles: list[str],
                 folder: Path) -> dict[str, Path]:
    """Role -> .onnx path for every role asked for (the QDQ model is the input file)."""
    paths: dict[str, Path] = {}
    for role in roles:
        if role == "qdq":
            paths[role] = source
            continue
        if role == "fp32":
            model = result.fp32_model()
        else:
            target = TARGET_OF[role]
            same = result.config.target == target
            other = result if same else convert(
                source, dataclasses.replace(result.config, target=target))
            model = other.int8_model()
        path = folder / f"{role}.onnx"
        path.write_bytes(model.SerializeToString())
        paths[role] = path
    return paths


def run_bench(source: Path, result: ConversionResult, roles: list[str], settings: Any,
              progress: Any = None, cancelled: Any = None) -> Any:
    """Benchmark; on Cancel the partial report comes back with ``cancelled`` set."""
    from qcore.bench.errors import BenchCancelled
    from qcore.bench.runner import run_benchmark

    folder = Path(tempfile.mkdtemp(prefix="quant-inspector-bench-"))
    try:
        if progress is not None:
            progress(0, 1, "writing the models")
        paths = write_models(Path(source), result, roles, folder)
        try:
            report = run_benchmark(paths, settings, progress=progress, cancelled=cancelled)
        except BenchCancelled as exc:
            if exc.partial is None:
                raise
            report = exc.partial
        for role, path in paths.items():  # the temporary files are gone after this
            report.models[role] = str(source) if role == "qdq" else f"(temporary) {path.name}"
        return report
    finally:
        shutil.rmtree(folder, ignore_errors=True)
