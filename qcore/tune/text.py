"""What ``qcore convert --tune`` prints about its measurements and choices."""

from __future__ import annotations

from collections import Counter

from qcore.convert import ConversionResult
from qcore.summary import printable
from qcore.tune.tuner import TuneResult, ms


def tune_text(tuned: TuneResult, result: ConversionResult) -> str:
    """Where it measured, what it kept FP32 and why, what stayed INT8, what was not tried,
    and the cache."""
    labels = {n.id: printable(n.label) for n in result.decisions}
    threads = f"{tuned.threads} thread{'s' if tuned.threads > 1 else ''}"
    kinds = Counter(u.kind for u in tuned.units)
    lines = [f"tune: measured on {tuned.engine} {tuned.engine_version}, {threads}, "
             f"{printable(tuned.inputs)}",
             f"tune: {len(tuned.units)} candidates ({_n(kinds['island'], 'small INT8 island')}, "
             f"{_n(kinds['border'], 'border op')}); {_n(len(tuned.trials), 'trial')}"
             f"{' and the final check' if tuned.final else ''} in {tuned.seconds:.1f} s "
             f"({tuned.timed} timed, {tuned.cached} from the cache)"]
    reasons = tuned.reasons()
    if reasons:
        lines.append("kept FP32 by --tune (whole-model medians, timed side by side):")
        lines += _rows({labels.get(i, str(i)): str(r) for i, r in reasons.items()})
    else:
        lines.append("kept FP32 by --tune: none (no candidate was measured faster in FP32)")
    stayed = tuned.stayed()
    if stayed:
        lines.append("stayed INT8 after a trial:")
        lines += _rows({labels.get(i, str(i)): text for i, text in stayed.items()})
    if tuned.final is not None:
        f = tuned.final
        lines.append(f"tuned vs default, side by side: {ms(f.trial.median)} vs "
                     f"{ms(f.base.median)} ({f.base.median / f.trial.median:.2f}x)")
    errors = [t for t in tuned.trials if t.error]
    for trial in errors[:3]:
        lines.append(f"trial failed ({', '.join(trial.units)[:60]}): {printable(trial.error)}")
    if tuned.untried:
        lines.append(f"not tried (--tune-budget {tuned.budget_s:g} s ran out):")
        lines += [f"  {printable(text)[:200]}" for text in tuned.untried]
    if tuned.pruned:
        lines.append("not split further (FP32 far slower for the group as a whole):")
        lines += [f"  {printable(text)[:200]}" for text in tuned.pruned]
    lines += [f"tune: {printable(note)}" for note in tuned.notes if note]
    lines.append(_cache_line(tuned))
    if tuned.tuned_ids:
        skip = ",".join(map(str, tuned.config.op_ids_to_skip))
        lines.append(f"the same model without --tune: --op_ids_to_skip {skip}")
    return "\n".join(lines)


def _n(count: int, what: str) -> str:
    return f"{count} {what}{'' if count == 1 else 's'}"


def _rows(rows: dict[str, str]) -> list[str]:
    """One line per distinct text (the ops of one trial share it), the ops listed first."""
    groups: dict[str, list[str]] = {}
    for label, text in rows.items():
        groups.setdefault(text, []).append(label)
    lines = []
    for text, labels in groups.items():
        shown = ", ".join(labels[:6]) + (f" +{len(labels) - 6} more" if len(labels) > 6 else "")
        lines.append(f"  {shown}:  {text}")
    return lines


def _cache_line(tuned: TuneResult) -> str:
    if tuned.cache_path is None:
        return "tune cache: none (measurements not kept)"
    if tuned.timed == 0 and (tuned.cached or tuned.trials):
        return (f"tune cache: used {tuned.cache_path} ({tuned.cached} measurements); "
                "nothing was timed")
    return f"tune cache: {tuned.timed} new measurements saved in {tuned.cache_path}"
