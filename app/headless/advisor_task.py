"""The advisor's job and its results (no Qt): the search (qcore.advise) runs in the conversion
process; its advice becomes configurations for the configuration panel and a summary line."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from app.headless import child_calls
from app.headless.child_calls import TuneRun, model_stamp
from app.headless.input_source import InputSource, with_inputs
from qcore.advise import Advice, AdviseSettings, TunedStart, keep_float
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
                progress: Any = None, cancelled: Any = None,
                start: TunedStart | None = None) -> Advice:
    """The advisor's search in the conversion process, on the user's inputs (images are
    preprocessed here first, in the worker); ``start``: what Tune for speed measured (see
    :func:`tuned_start`)."""
    folder = Path(tempfile.mkdtemp(prefix="quant-inspector-advise-"))
    try:
        settings = with_inputs(settings, inputs, path, folder)
        return child_calls.advise(path, base, settings, progress=progress, cancelled=cancelled,
                                  start=start)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def tuned_start(run: TuneRun | None, path: Path, base: ConvertConfig,
                settings: AdviseSettings, inputs: InputSource) -> tuple[TunedStart | None, str]:
    """What the advisor reuses of the tuning of the result shown (``qcore advise
    --tune-cache``): its configuration and the pairs it timed, when the key is the tune's
    (the model, the configuration, the engine, the thread count and the inputs); else None,
    and why (empty when nothing was tuned)."""
    if run is None:
        return None, ""
    tuned = run.tuned
    same_inputs = inputs == run.inputs or inputs.generated and run.inputs.generated
    changed = [what for what, same in (
        ("the model", Path(path) == run.source and model_stamp(Path(path)) == run.stamp),
        ("the configuration", base == tuned.base),
        (f"the engine ({settings.engine}, tuned on {tuned.engine})",
         settings.engine == tuned.engine),
        (f"the thread count ({settings.threads}, tuned with {tuned.threads})",
         settings.threads == tuned.threads),
        ("the inputs", same_inputs)) if not same]
    if changed:
        return None, (f"Tune for speed's measurements not reused: {', '.join(changed)} "
                      "changed since it was measured")
    from qcore.tune.reuse import result_start  # the tuner's imports load on first use

    start = result_start(tuned)
    return start, (f"starts from Tune for speed's configuration (op_ids_to_skip="
                   f"{start.op_ids_to_skip}) and reuses the {len(start.pairs)} pairs it timed")


def reused_text(advice: Advice) -> str:
    """What the search took from Tune for speed (empty when nothing)."""
    notes = [c.note for c in advice.candidates]
    if not any(n.startswith("start from --tune") for n in notes):
        return ""
    lone = sum(n.endswith(", measured by --tune)") for n in notes)
    timed = (f"; {lone} lone-op decision{'s' if lone > 1 else ''} on its timings, not timed "
             "again" if lone else "")
    return f"Started from Tune for speed's configuration{timed}."


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
    reused = reused_text(advice)
    reused = f" {reused}" if reused else ""
    return (f"Best {verdict} {bound}: cosine {best.cosine:.5f}{top1}{speed}. "
            f"Flags: {flags}.{reused}{on}")
