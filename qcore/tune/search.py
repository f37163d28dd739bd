"""The ``--tune`` search: which candidate units to keep FP32, by measurement in the model.

The units (:mod:`qcore.tune.candidates`) start INT8, as the pipeline placed them. The
search is top-down, like a bisection: all units are tried FP32 at once against the current
model; if that is faster (beyond the margin and the spreads, :meth:`PairTiming.faster`), it is
kept and each half is then tried back in INT8, else each half is tried FP32, and so on down to
single units. Every change is kept only when measured faster, so a group's gain that no
single op shows on its own (each of 30 islands paying its own Q/DQ) is found, and an op that
is faster INT8 inside an accepted group is put back. At most ``2n - 1`` trials for ``n``
units; the budget stops the search earlier and the result says what was not tried. Last,
the tuned model is timed against the default side by side and kept only if it is faster.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from qcore.config import ConvertConfig
from qcore.convert import convert
from qcore.files import save_model
from qcore.passes.base import Cancelled
from qcore.tune import timing as clocks  # clocks.clock: swapped by tests
from qcore.tune.cache import TuneCache
from qcore.tune.candidates import Unit
from qcore.tune.timing import MARGIN, PairTimer, PairTiming

ProgressFn = Callable[[int, int, str], None]
TimerFactory = Callable[[], PairTimer]


@dataclass
class Trial:
    """One measurement: ``op_ids`` switched to ``to`` (``fp32`` / ``int8``) against the
    current model; ``accepted`` when the switched model was faster and was kept."""

    op_ids: list[int]
    units: list[str]
    to: str
    timing: PairTiming | None
    accepted: bool
    cached: bool
    error: str = ""

    def _ms(self, precision: str) -> float | None:
        if self.timing is None:
            return None
        return (self.timing.trial if self.to == precision else self.timing.base).median

    def fp32_faster(self, margin: float) -> bool:
        """Was the model with these ops FP32 the faster, beyond ``margin`` and the spreads
        (whichever way the trial switched them)?"""
        if self.timing is None:
            return False
        return (self.timing if self.to == "fp32" else self.timing.reversed()).faster(margin)

    @property
    def fp32_ms(self) -> float | None:
        """The whole model's median with these ops FP32."""
        return self._ms("fp32")

    @property
    def int8_ms(self) -> float | None:
        """The whole model's median with these ops INT8."""
        return self._ms("int8")


def halves(units: list[Unit]) -> list[list[Unit]]:
    middle = len(units) // 2
    return [units[:middle], units[middle:]]


class Search:
    """One search over ``units``; ``skip`` is the current ``op_ids_to_skip``."""

    def __init__(self, quant: str | Path, config: ConvertConfig, cache: TuneCache,
                 timer: TimerFactory, work: Path, budget_s: float, margin: float = MARGIN,
                 estimate_s: float = 2.0, progress: ProgressFn | None = None) -> None:
        self.quant, self.config, self.cache, self.work = quant, config, cache, work
        self.make_timer, self.budget_s, self.margin = timer, budget_s, margin
        self.estimate_s, self.progress = estimate_s, progress
        self.skip = list(config.op_ids_to_skip)
        self.paths: dict[tuple[int, ...], Path] = {}
        self.trials: list[Trial] = []
        self.untried: list[str] = []  # out of budget
        self.pruned: list[str] = []  # not worth trying (see hopeless)
        self.start = clocks.clock()
        self.total = 1
        self.timed = 0  # pairs measured on the engine
        self.reused = 0  # pairs read from the cache
        self._timer: PairTimer | None = None

    # ---- the search -------------------------------------------------------------------
    def run(self, units: list[Unit]) -> None:
        self.total = max(1, 2 * len(units) - 1)
        if units:
            self.settle(units)

    def settle(self, units: list[Unit]) -> None:
        """``units`` are INT8: try them FP32, then refine the halves."""
        trial = self.trial(units, "fp32")
        if trial is None:
            self.untried.append("never tried FP32: " + ", ".join(u.label for u in units))
            return
        if len(units) > 1 and not trial.accepted and self.hopeless(trial, len(units)):
            loss = self.slower(trial)
            self.pruned.append(f"FP32 made the model {loss:.0%} slower with them ("
                               f"{loss / len(units):.0%} per candidate), not tried alone: "
                               + ", ".join(u.label for u in units))
            return
        if len(units) > 1:
            for half in halves(units):
                (self.unsettle if trial.accepted else self.settle)(half)

    def slower(self, trial: Trial) -> float:
        """How much slower the model was with the trial's ops FP32 (a fraction of INT8)."""
        if trial.fp32_ms is None or trial.int8_ms is None or trial.int8_ms <= 0:
            return 0.0
        return trial.fp32_ms / trial.int8_ms - 1.0

    def hopeless(self, trial: Trial, units: int) -> bool:
        """FP32 lost so much per unit that one unit winning alone would have to beat its
        neighbours' average by twice the margin: the halves are not tried. A failed trial
        (no timing) is not refined either."""
        return trial.timing is None or self.slower(trial) / units > 2 * self.margin

    def unsettle(self, units: list[Unit]) -> None:
        """``units`` were kept FP32 with a group: try them back in INT8, then the halves."""
        trial = self.trial(units, "int8")
        if trial is None:
            self.untried.append("kept FP32 with their group, never tried back in INT8: "
                                + ", ".join(u.label for u in units))
            return
        if len(units) > 1:
            for half in halves(units):
                (self.settle if trial.accepted else self.unsettle)(half)

    def trial(self, units: list[Unit], to: str) -> Trial | None:
        """Measure ``units`` switched to ``to``; None when the budget has run out."""
        ids = sorted({i for u in units for i in u.op_ids})
        new = sorted(set(self.skip) | set(ids)) if to == "fp32" else \
            sorted(set(self.skip) - set(ids))
        timing = self.cache.lookup(self.skip, new)
        cached, error = timing is not None, ""
        self.reused += cached
        if timing is None:
            if not self.affordable():
                return None
            timing, error = self._timed(self.skip, new)
        accepted = timing is not None and timing.faster(self.margin)
        trial = Trial(ids, [u.label for u in units], to, timing, accepted, cached, error)
        self.trials.append(trial)
        if accepted:
            self.skip = new
        if self.progress is not None:
            verdict = "kept" if accepted else "not kept"
            self.progress(min(len(self.trials), self.total), self.total,
                          f"{to.upper()} {', '.join(trial.units)[:80]}: {verdict}")
        return trial

    def final(self) -> tuple[PairTiming | None, bool]:
        """The default against the tuned model, side by side (even over budget: it is the
        check that tuning never made the model slower). Returns the timing and whether the
        tuned model is kept; if it is not faster, the default is restored."""
        default = list(self.config.op_ids_to_skip)
        if self.skip == default:
            return None, False
        timing = self.cache.lookup(default, self.skip)
        self.reused += timing is not None
        if timing is None:
            timing, _ = self._timed(default, self.skip)
        if timing is None or timing.trial.median >= timing.base.median:
            self.skip = default
            return timing, False
        return timing, True

    # ---- measuring ----------------------------------------------------------------------
    def affordable(self) -> bool:
        """Is there time for one more trial? Never when an earlier search of this cache key
        ran out of a budget at least as large: the same inputs give the same result, at
        once (a larger budget continues that search)."""
        if 0 < self.budget_s <= self.cache.stopped_at:
            return False
        return clocks.clock() - self.start + self.estimate_s <= self.budget_s

    def _timed(self, base: list[int], trial: list[int]) -> tuple[PairTiming | None, str]:
        """Convert, time and cache one pair (a model the engine refuses is an error)."""
        start = clocks.clock()
        self.timed += 1
        try:
            timing = self.timer().measure(self.model(base), self.model(trial))
        except Cancelled:
            raise
        except Exception as exc:  # noqa: BLE001 - an engine failing a trial model rejects it
            return None, " ".join(str(exc).split())[:200]
        self.estimate_s = max(self.estimate_s, clocks.clock() - start)
        self.cache.store(base, trial, timing)
        return timing, ""

    def timer(self) -> PairTimer:
        if self._timer is None:
            self._timer = self.make_timer()
        return self._timer

    def model(self, skip: list[int]) -> Path:
        """The INT8 model converted with ``skip``, written once into the work folder."""
        key = tuple(sorted(skip))
        if key not in self.paths:
            cfg = ConvertConfig(self.config.ops_to_quantize, list(key), self.config.target)
            path = self.work / f"trial_{len(self.paths)}.onnx"
            save_model(convert(self.quant, cfg).int8_model(), path, self.quant)
            self.paths[key] = path
        return self.paths[key]

    def close(self) -> None:
        if self._timer is not None:
            self._timer.close()
            self._timer = None
