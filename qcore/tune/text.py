"""What ``qcore convert --tune`` prints about its measurements and choices."""

from __future__ import annotations

from collections import Counter

from qcore.convert import ConversionResult
from qcore.summary import printable
from qcore.tune.candidates import Unit
from qcore.tune.tuner import TuneResult, ms


def tune_text(tuned: TuneResult, result: ConversionResult) -> str:
    """Where it measured, what it kept FP32 and why, what stayed INT8, what was not tried,
    and the cache."""
    labels = {n.id: printable(n.label) for n in result.decisions}
    threads = f"{tuned.threads} thread{'s' if tuned.threads > 1 else ''}"
    lines = [f"tune: measured on {tuned.engine} {tuned.engine_version}, {threads}, "
             f"{printable(tuned.inputs)}",
             f"tune: candidates {_candidates(tuned.units)}; {_n(len(tuned.trials), 'trial')}"
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
        lines += _final_lines(tuned)
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


def _candidates(units: list[Unit]) -> str:
    """``everything, float-output ops, 3 op types, 2 regions, 4 small INT8 islands``."""
    kinds = Counter(u.kind for top in units for u in _tree(top) if u.kind != "group")
    words = [("everything", "everything", "everything"),
             ("float-output", "the float-output ops", "the float-output ops"),
             ("type", "1 op type", "{} op types"), ("region", "1 region", "{} regions"),
             ("island", "1 small INT8 island", "{} small INT8 islands"),
             ("border", "1 border op", "{} border ops")]
    found = [(one if kinds[k] == 1 else many.format(kinds[k])) for k, one, many in words
             if kinds[k]]
    return ", ".join(found) or "none (no INT8 op)"


def _tree(unit: Unit) -> list[Unit]:
    return [unit, *(u for part in unit.parts for u in _tree(part))]


def _final_lines(tuned: TuneResult) -> list[str]:
    """The final check: the three medians, and INT8 against FP32 in a few words."""
    f = tuned.final
    assert f is not None
    same = f.tuned == f.default  # nothing was kept FP32: two models timed
    fd, ft, ff = f.fast
    three = (f"default {ms(f.default.median)}, FP32 {ms(f.fp32.median)} (faster halves "
             f"{ms(fd.median)}, {ms(ff.median)})" if same else
             f"tuned {ms(f.tuned.median)}, default {ms(f.default.median)}, "
             f"FP32 {ms(f.fp32.median)} (faster halves {ms(ft.median)}, {ms(fd.median)}, "
             f"{ms(ff.median)})")
    speed = f.fp32.median / tuned.chosen_ms
    written = "the tuned" if tuned.kept else "the default"
    verdict = ("faster than" if speed > 1 + tuned.margin else
               "slower than" if speed < 1 - tuned.margin else "as fast as")
    return [f"final check, side by side{' (from the cache)' if f.cached else ''}: {three}",
            f"INT8 ({written} model written) is {speed:.2f}x the speed of FP32 on this "
            f"machine ({verdict} FP32)"]


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
