"""The advisor job (no Qt): run qcore's advisor on the open model, and turn its advice into
configurations for the configuration panel."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from qcore.advise import Advice, AdviseSettings, advise, keep_float
from qcore.config import ConvertConfig
from qcore.convert import ConversionResult


def run_advisor(source: Path, base: ConvertConfig, settings: AdviseSettings,
                progress: Any = None, cancelled: Any = None) -> Advice:
    """qcore's greedy search; raises (Cancelled) when the user cancels."""
    if progress is not None:
        progress(0, 1, "converting and measuring: quantize everything")
    return advise(str(source), base, settings, progress=progress, cancelled=cancelled)


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
