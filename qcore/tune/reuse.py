"""What ``qcore advise --tune-cache`` reuses of a ``--tune`` run: its configuration and every
pair of configurations it timed, read from the cache without timing anything."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from qcore.advise import MeasuredPair
from qcore.config import ConvertConfig
from qcore.tune.cache import TuneCache
from qcore.tune.timing import PairTiming
from qcore.tune.tuner import TuneSettings, finished_summary, open_cache

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
