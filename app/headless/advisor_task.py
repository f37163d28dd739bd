"""The advisor's results (no Qt) turned into configurations for the configuration panel (the
search itself, qcore.advise, runs in the conversion process: see AdvisorPanel.make_job)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from app.headless import child_calls
from app.headless.input_source import InputSource, with_inputs
from qcore.advise import Advice, keep_float
from qcore.config import ConvertConfig
from qcore.convert import ConversionResult


def best_config(advice: Advice, target: str) -> ConvertConfig | None:
    """The best candidate as a full configuration: its op types, and the base skips plus its
    own (a candidate lists only the ops the search added)."""
    best = advice.best
    if best is None:
        return None
    skip = sorted(set(advice.base.op_ids_to_skip) | set(best.op_ids_to_skip))
    return ConvertConfig(list(best.ops_to_quantize), skip, target)


def keep_output_float(result: ConversionResult | None, op_id: int) -> list[int]:
    """The op and its INT8 readers: skipping only the op would let a reader quantize its
    output again (with the same poor scale). Just the op when the result does not know it."""
    if result is None or not any(n.id == op_id for n in result.decisions):
        return [op_id]
    return keep_float(result, op_id)


def run_advisor(path: Path, base: ConvertConfig, settings: Any, inputs: InputSource,
                progress: Any = None, cancelled: Any = None) -> Advice:
    """The advisor's search in the conversion process, on the user's inputs (images are
    preprocessed here first, in the worker)."""
    folder = Path(tempfile.mkdtemp(prefix="quant-inspector-advise-"))
    try:
        settings = with_inputs(settings, inputs, path, folder)
        return child_calls.advise(path, base, settings, progress=progress, cancelled=cancelled)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
