"""The ``--tune`` search: which INT8 ops to keep FP32, by measurement in the model.

Top-down over the levels of :mod:`qcore.tune.candidates` (the whole model, regions, small
units), each found on the placement the level before left. A unit that is INT8 is tried
FP32 against the current model; if that is faster (beyond the margin and the spreads,
:meth:`PairTiming.faster`) it is kept and its parts are then tried back in INT8, else its
parts are tried FP32, and so on down. Every change is kept only when measured faster, so a
group's gain that no single op shows on its own (each of 30 islands paying its own Q/DQ) is
found, and a part that is faster INT8 inside an accepted group is put back. A model INT8 does
not pay on ends after one trial (everything FP32) and one try back per kind. The budget
stops the search earlier and the result says what was not tried. Last, the default, the
tuned and the FP32 model are timed side by side; the tuned one is kept only if it is faster
than the default.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from qcore.config import ConvertConfig
from qcore.convert import ConversionResult, convert
from qcore.files import save_model
from qcore.passes.base import Cancelled
from qcore.tune import timing as clocks  # clocks.clock: swapped by tests
from qcore.tune.cache import TuneCache
from qcore.tune.candidates import ISLAND_OPS, LEVELS, LevelFn, Unit, leaves
from qcore.tune.timing import MARGIN, PairTimer, PairTiming, Stats

ProgressFn = Callable[[int, int, str], None]
#: A group whose switch made the model this much slower is not split further.
PRUNE = 0.25
#: The trial of everything FP32 and the final check decide the most: they time this many
#: times longer than the other trials.
LONGER = 3.0
TimerFactory = Callable[[], PairTimer]


@dataclass
class Trial:
    """One measurement: ``op_ids`` switched to ``to`` (``fp32`` / ``int8``) against the
    current model; ``accepted`` when the switched model was faster and was kept. ``units``
    names the smallest units inside, ``kind`` / ``label`` the unit tried."""

    op_ids: list[int]
    units: list[str]
    to: str
    timing: PairTiming | None
    accepted: bool
    cached: bool
    error: str = ""
    kind: str = ""
    label: str = ""

    def _ms(self, precision: str) -> float | None:
        if self.timing is None:
            return None
        base, trial = self.timing.shown()
        return (trial if self.to == precision else base).median

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


@dataclass(frozen=True)
class Final:
    """The default, the tuned and the FP32 model timed side by side at the end: over all
    runs, and over the faster half of each model's runs (see :mod:`qcore.tune.timing`)."""

    default: Stats
    tuned: Stats
    fp32: Stats
    fast: tuple[Stats, Stats, Stats]
    cached: bool = False

    @classmethod
    def of(cls, stats: list[Stats], cached: bool = False) -> Final:
        """From the six :class:`Stats` the cache keeps (all runs, then faster halves)."""
        return cls(stats[0], stats[1], stats[2], (stats[3], stats[4], stats[5]), cached)

    def stats(self) -> list[Stats]:
        return [self.default, self.tuned, self.fp32, *self.fast]

    @property
    def tuned_faster(self) -> bool:
        """Is the tuned model's median, or its faster half's, below the default's?"""
        return (self.tuned.median < self.default.median
                or self.fast[1].median < self.fast[0].median)


def _size(unit: Unit) -> int:
    return 1 + sum(_size(p) for p in unit.parts)


class Search:
    """One search; ``skip`` is the current ``op_ids_to_skip``."""

    def __init__(self, quant: str | Path, config: ConvertConfig, cache: TuneCache,
                 timer: TimerFactory, work: Path, budget_s: float, margin: float = MARGIN,
                 estimate_s: float = 2.0, progress: ProgressFn | None = None,
                 island_ops: int = ISLAND_OPS) -> None:
        self.quant, self.config, self.cache, self.work = quant, config, cache, work
        self.make_timer, self.budget_s, self.margin = timer, budget_s, margin
        self.estimate_s, self.progress, self.island_ops = estimate_s, progress, island_ops
        self.user_skip = set(config.op_ids_to_skip)
        self.skip = sorted(self.user_skip)
        self.paths: dict[tuple[int, ...], Path] = {}
        self.results: dict[tuple[int, ...], ConversionResult] = {}
        self.units: list[Unit] = []  # every unit searched, level by level
        self.trials: list[Trial] = []
        self.untried: list[str] = []  # out of budget
        self.pruned: list[str] = []  # not worth trying (see hopeless)
        self.start = clocks.clock()
        self.total = 1
        self.timed = 0  # pairs measured on the engine
        self.reused = 0  # pairs read from the cache
        self._timer: PairTimer | None = None

    # ---- the search -------------------------------------------------------------------
    def run(self, levels: dict[str, LevelFn] | None = None) -> None:
        """Search each level of ``levels`` (default :data:`LEVELS`) in turn."""
        for find in (levels or LEVELS).values():
            units = find(self.placement(), self.island_ops, set(self.skip) - self.user_skip)
            self.units += units
            self.total = len(self.trials) + sum(_size(u) for u in units)
            for unit in units:  # INT8 units are tried FP32, units tuned FP32 back in INT8
                self._switch(unit, "fp32" if self._switches(unit, "fp32") else "int8")

    def settle(self, unit: Unit) -> None:
        """``unit`` is INT8 (in part): try it FP32, then its parts."""
        self._switch(unit, "fp32")

    def unsettle(self, unit: Unit) -> None:
        """``unit`` was kept FP32 with a larger one: try it back in INT8, then its parts."""
        self._switch(unit, "int8")

    def _switch(self, unit: Unit, to: str) -> None:
        """Try ``unit`` switched ``to``; then its parts: switched back if it was kept (a part
        may be faster as it was), else each switched alone (unless hopeless)."""
        if not self._switches(unit, to):
            return
        trial = self.trial(unit, to)
        if trial is None:
            self.untried.append(("never tried FP32: " if to == "fp32" else
                                 "kept FP32 with their group, never tried back in INT8: ")
                                + ", ".join(u.label for u in leaves(unit)))
            return
        if not unit.parts:
            return
        if not trial.accepted and unit.kind != "everything" and self.hopeless(trial, unit):
            loss, count = self.loss(trial), len(leaves(unit))
            self.pruned.append(f"{to.upper()} made the model {loss:.0%} slower with them ("
                               f"{loss / count:.0%} per candidate), not tried alone: "
                               + ", ".join(u.label for u in leaves(unit)))
            return
        back = "int8" if to == "fp32" else "fp32"
        for part in unit.parts:
            self._switch(part, back if trial.accepted else to)

    def loss(self, trial: Trial) -> float:
        """How much slower the switched model was than the current one (a fraction)."""
        if trial.timing is None:
            return 0.0
        base, switched = trial.timing.shown(self.margin)
        return switched.median / base.median - 1.0 if base.median > 0 else 0.0

    def hopeless(self, trial: Trial, unit: Unit) -> bool:
        """The switch lost so much that one part winning alone is not worth a trial: more
        than ``PRUNE`` of the model's time, or twice the margin per smallest unit inside. A
        failed trial (no timing) is not refined either."""
        if trial.timing is None:
            return True
        loss = self.loss(trial)
        return loss > PRUNE or loss / len(leaves(unit)) > 2 * self.margin

    def _switches(self, unit: Unit, to: str) -> list[int]:
        """The ops of ``unit`` that trying it ``to`` would switch (never the user's)."""
        ids = set(unit.op_ids) - self.user_skip
        return sorted(ids - set(self.skip) if to == "fp32" else ids & set(self.skip))

    def trial(self, unit: Unit, to: str) -> Trial | None:
        """Measure ``unit`` switched to ``to``; None when the budget has run out."""
        ids = self._switches(unit, to)
        new = sorted(set(self.skip) | set(ids)) if to == "fp32" else \
            sorted(set(self.skip) - set(ids))
        timing = self.cache.lookup(self.skip, new)
        cached, error = timing is not None, ""
        self.reused += cached
        if timing is None:
            if not self.affordable():
                return None
            timing, error = self._timed(self.skip, new,
                                        LONGER if unit.kind == "everything" else 1.0)
        accepted = timing is not None and timing.faster(self.margin)
        trial = Trial(ids, [u.label for u in leaves(unit)], to, timing, accepted, cached, error,
                      unit.kind, unit.label)
        self.trials.append(trial)
        if accepted:
            self.skip = new
        if self.progress is not None:
            verdict = "kept" if accepted else "not kept"
            self.total = max(self.total, len(self.trials))
            self.progress(len(self.trials), self.total,
                          f"{to.upper()} {unit.label[:80]}: {verdict}")
        return trial

    def final(self, fp32: Path) -> tuple[Final | None, bool]:
        """The default, the tuned and the ``fp32`` model side by side (even over budget: it
        is the check that tuning never made the model slower, and what INT8 is worth here).
        Returns the timings and whether the tuned model is kept; if it is not faster than the
        default, the default is restored. None when the budget was 0."""
        default = sorted(self.user_skip)
        if self.budget_s <= 0:
            return None, False
        stats = self.cache.final(self.skip)
        cached = stats is not None
        self.reused += cached
        if stats is None:
            paths = [self.model(default), fp32] if self.skip == default else \
                [self.model(default), self.model(self.skip), fp32]
            try:
                self.timed += 1
                runs = self.timer().measure_all(paths, LONGER)
            except Cancelled:
                raise
            except Exception:  # noqa: BLE001 - the trials ran these models; report no check
                return None, self.skip != default
            if len(runs) == 2:  # nothing tuned: the default is the tuned model
                runs = [runs[0], runs[0], runs[1]]
            stats = [Stats.of(r) for r in runs] + [Stats.fast_half(r) for r in runs]
            self.cache.store_final(self.skip, stats)
        final = Final.of(stats, cached)
        if self.skip == default:
            return final, False
        if not final.tuned_faster:
            self.skip = default
            return final, False
        return final, True

    # ---- measuring ----------------------------------------------------------------------
    def affordable(self) -> bool:
        """Is there time for one more trial? Never when an earlier search of this cache key
        ran out of a budget at least as large: the same inputs give the same result, at
        once (a larger budget continues that search)."""
        if 0 < self.budget_s <= self.cache.stopped_at:
            return False
        return clocks.clock() - self.start + self.estimate_s <= self.budget_s

    def _timed(self, base: list[int], trial: list[int], longer: float = 1.0
               ) -> tuple[PairTiming | None, str]:
        """Convert, time and cache one pair (a model the engine refuses is an error)."""
        start = clocks.clock()
        self.timed += 1
        try:
            timing = self.timer().measure(self.model(base), self.model(trial), longer)
        except Cancelled:
            raise
        except Exception as exc:  # noqa: BLE001 - an engine failing a trial model rejects it
            return None, " ".join(str(exc).split())[:200]
        self.estimate_s = max(self.estimate_s, (clocks.clock() - start) / longer)
        self.cache.store(base, trial, timing)
        return timing, ""

    def timer(self) -> PairTimer:
        if self._timer is None:
            self._timer = self.make_timer()
        return self._timer

    def placement(self) -> ConversionResult:
        """The conversion with the current ``skip`` (its decisions: what is INT8 now)."""
        key = tuple(sorted(self.skip))
        if key not in self.results:
            cfg = ConvertConfig(self.config.ops_to_quantize, list(key), self.config.target)
            self.results = {key: convert(self.quant, cfg)}  # keep one: they are large
        return self.results[key]

    def model(self, skip: list[int]) -> Path:
        """The INT8 model converted with ``skip``, written once into the work folder."""
        key = tuple(sorted(skip))
        if key not in self.paths:
            cfg = ConvertConfig(self.config.ops_to_quantize, list(key), self.config.target)
            path = self.work / f"trial_{len(self.paths)}.onnx"
            result = self.results.get(key) or convert(self.quant, cfg)
            save_model(result.int8_model(), path, self.quant)
            self.paths[key] = path
        return self.paths[key]

    def close(self) -> None:
        if self._timer is not None:
            self._timer.close()
            self._timer = None
