"""The advisor's job and its results (no Qt): the search (qcore.advise) runs in the conversion
process; its advice becomes configurations for the configuration panel and a summary line."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from app.headless import child_calls
from app.headless.input_source import InputSource, with_inputs
from qcore.advise import Advice, AdviseSettings, keep_float
from qcore.advise.command import speed_text
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


def bound_text(settings: AdviseSettings) -> str:
    """The accuracy bound the search must meet, as the summary words it."""
    text = f"cosine \u2265 {settings.min_cosine:g}"
    if settings.min_agreement is not None:
        text += f", top-1 \u2265 {100 * settings.min_agreement:g}%"
    return text


def advice_summary(advice: Advice, bound: str, inputs_text: str, html: bool = True) -> str:
    """One line on the best candidate: whether it meets ``bound``, its accuracy and speed,
    its flags, and what it was measured on (rich text with ``html``)."""
    best = advice.best
    if best is None:
        return "The advisor found no configuration."
    verdict = "meets" if best.meets_bound else "does NOT meet"
    if html:
        verdict = f"<b style='color:{'#1b6e20' if best.meets_bound else '#b3261e'}'>" \
                  f"{verdict}</b>"
    speed = f"; {speed_text(advice)}" if speed_text(advice) else ""
    top1 = f", top-1 {100 * best.agreement:.1f}%" if best.agreement is not None else ""
    flags = advice.flags() or "(no flags: quantize everything)"
    on = f" Measured on {inputs_text}." if inputs_text else ""
    if inputs_text.startswith("generated"):
        on += " Random inputs say little about accuracy on real data: choose your data in " \
              "Benchmark \u203a Inputs."
    return (f"Best {verdict} {bound}: cosine {best.cosine:.5f}{top1}{speed}. "
            f"Flags: {flags}.{on}")
