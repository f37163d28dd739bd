"""What ``qcore advise`` reuses of a ``--tune`` run: its configuration and every pair of
configurations it timed, read from the cache (``--tune-cache``) or from the run's
:class:`TuneResult` in memory (the app), without timing anything."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from qcore.advise import MeasuredPair, TunedStart
from qcore.config import ConvertConfig
from qcore.tune.cache import TuneCache
from qcore.tune.timing import PairTiming
from qcore.tune.tuner import TuneResult, TuneSettings, finished_summary, open_cache

Pairs = dict[tuple[tuple[int, ...], tuple[int, ...]], MeasuredPair]


def measured_pair(timing: PairTiming) -> MeasuredPair:
    """The medians the tuner's verdict rests on (all runs, or the faster halves)."""
    base, trial = timing.shown()
    return MeasuredPair(base.median, trial.median, timing.faster())


def cached_pairs(cache: TuneCache) -> Pairs:
    """Every trial of the cache's key, by its two full ``op_ids_to_skip`` sets."""
    return {key: measured_pair(timing) for key, timing in cache.trials.items()}


def cached_measurements(quant: str | Path, config: ConvertConfig, settings: TuneSettings,
                        cache_file: str | Path) -> tuple[dict[str, Any] | None, Pairs, str]:
    """The last finished ``--tune`` of this key in ``cache_file`` (its summary, None if
    there is none), the pairs it timed, and a note on what was found."""
    cache = open_cache(quant, config, settings, cache_file)
    summary, note = finished_summary(cache, cache_file)
    return summary, cached_pairs(cache) if summary is not None else {}, note


def result_pairs(tuned: TuneResult) -> Pairs:
    """Every pair ``tuned`` timed (or read from its cache) in this run, by its two full
    ``op_ids_to_skip`` sets: the search's trials replayed, each one switching its ops against
    the configuration kept so far (``qcore.tune.search.Search.trial``)."""
    current = sorted(tuned.base.op_ids_to_skip)
    pairs: Pairs = {}
    for trial in tuned.trials:
        ids = set(trial.op_ids)
        new = sorted(set(current) | ids) if trial.to == "fp32" else sorted(set(current) - ids)
        if trial.timing is not None:
            pairs[(tuple(current), tuple(new))] = measured_pair(trial.timing)
        if trial.accepted:
            current = new
    return pairs


def tuned_start(summary: dict[str, Any], pairs: Pairs) -> TunedStart:
    """The advisor's start from a ``--tune`` run's summary (:meth:`TuneResult.summary`):
    its ``op_ids_to_skip``, a note naming it, and the pairs it timed."""
    skip = [int(i) for i in summary["op_ids_to_skip"]]
    speed = summary.get("int8_speed_vs_fp32")
    measured = f", measured {speed}x the speed of FP32" if speed else ""
    kept = len(summary.get("kept_fp32", []))
    return TunedStart(skip, f"start from --tune's configuration ({kept} ops kept FP32"
                      f"{measured})", pairs)


def result_start(tuned: TuneResult) -> TunedStart:
    """The advisor's start from a ``--tune`` run in memory, as from its cache."""
    return tuned_start(tuned.summary(), result_pairs(tuned))
