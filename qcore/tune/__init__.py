"""Measured INT8 decisions: ``qcore convert --tune``.

The pipeline's unsure choices (small INT8 islands, INT8 ops at the border of FP32) are timed
INT8 against FP32 in the whole model on one engine, interleaved, and an op is kept FP32
only where that is measured faster beyond the noise; each such op gets the reason
``ReasonKind.TUNED`` with both timings. Measurements are cached beside the INT8 output.

    from qcore.tune import TuneSettings, apply_reasons, cache_path, tune
    tuned = tune("m_qdq.onnx", settings=TuneSettings(budget_s=60),
                 cache_file=cache_path("out/int8.onnx"))
    result = convert("m_qdq.onnx", tuned.config)
    apply_reasons(result, tuned)
"""

from __future__ import annotations

from qcore.tune.cache import TuneCache, cache_path
from qcore.tune.candidates import Unit, find_units
from qcore.tune.search import Trial
from qcore.tune.text import tune_text
from qcore.tune.timing import PairTimer, PairTiming, Stats
from qcore.tune.tuner import (
    NATURAL_ENGINE,
    TuneResult,
    TuneSettings,
    apply_reasons,
    cached_summary,
    tune,
)

__all__ = ["NATURAL_ENGINE", "PairTimer", "PairTiming", "Stats", "Trial", "TuneCache",
           "TuneResult", "TuneSettings", "Unit", "apply_reasons", "cache_path", "cached_summary",
           "find_units",
           "tune", "tune_text"]
