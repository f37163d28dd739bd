"""Two models timed against each other on one engine, interleaved in one run.

The current model (the *base*) stays loaded from trial to trial; each trial model is
loaded, both are warmed up, then run in alternating order (A B, B A, ...) until both have
``min_rounds`` runs and ``seconds`` have passed, so drift and load hit both alike. A trial
wins only when its median is lower by more than ``margin`` **and** its interquartile range
lies wholly below the base's: noise never flips a decision. A trial whose answer is plain
early (the interquartile ranges apart and the medians more than ``CLEAR`` x the margin
apart, either way) stops after ``min_rounds``.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from qcore.bench.engines import Engine, Feeds, NotRunnable, Session

#: A trial must be faster than the base by more than this fraction of the base's median.
MARGIN = 0.03
#: The clock of every measurement (a test may swap it for a fake one).
clock = time.perf_counter
#: Timing stops early once the medians differ by this many margins, quartiles apart.
CLEAR = 3.0


@dataclass(frozen=True)
class Stats:
    """Latency of one model over the runs of a trial, in ms."""

    median: float
    q25: float
    q75: float
    runs: int

    @classmethod
    def of(cls, samples: Sequence[float]) -> Stats:
        if len(samples) < 2:
            value = samples[0] if samples else float("nan")
            return cls(value, value, value, len(samples))
        q25, median, q75 = statistics.quantiles(samples, n=4, method="inclusive")
        return cls(median, q25, q75, len(samples))

    @property
    def iqr(self) -> float:
        return self.q75 - self.q25


@dataclass(frozen=True)
class PairTiming:
    """The base and the trial model, timed side by side."""

    base: Stats
    trial: Stats

    def faster(self, margin: float = MARGIN) -> bool:
        """Is the trial faster by more than ``margin`` and beyond both spreads?"""
        return (self.trial.median < (1.0 - margin) * self.base.median
                and self.trial.q75 < self.base.q25)

    def clear(self, margin: float = MARGIN) -> bool:
        """Is the answer plain already: quartiles apart, medians ``CLEAR`` margins apart?"""
        a, b = self.base, self.trial
        apart = b.q75 < a.q25 or a.q75 < b.q25
        return apart and abs(b.median - a.median) > CLEAR * margin * a.median

    def reversed(self) -> PairTiming:
        """The same measurement with the roles swapped (is the base faster?)."""
        return PairTiming(self.trial, self.base)

    def to_dict(self) -> dict[str, Any]:
        return {"base": asdict(self.base), "trial": asdict(self.trial)}

    @classmethod
    def from_dict(cls, data: Any) -> PairTiming:
        """Read back :meth:`to_dict`; raises ``KeyError`` / ``TypeError`` / ``ValueError``
        on anything else."""
        def stats(d: Any) -> Stats:
            return Stats(float(d["median"]), float(d["q25"]), float(d["q75"]), int(d["runs"]))

        return cls(stats(data["base"]), stats(data["trial"]))


@dataclass
class TimerSettings:
    """How long one trial measures."""

    threads: int = 1
    seconds: float = 1.0  # both models together, after warm-up
    min_rounds: int = 10
    max_rounds: int = 400
    warmup: int = 3


CheckFn = Callable[[], None]


class PairTimer:
    """Times a base model against trial models on one engine (see the module docstring).

    Raises ``NotRunnable`` (from :meth:`measure`) when the engine cannot run a model.
    """

    def __init__(self, engine: Engine, feeds: Sequence[Feeds], settings: TimerSettings,
                 check: CheckFn | None = None) -> None:
        self.engine, self.feeds, self.settings = engine, list(feeds), settings
        self.check = check or (lambda: None)
        self.shapes = {k: tuple(v.shape) for k, v in self.feeds[0].items()}
        self._base: tuple[Path, Session] | None = None

    def _load(self, path: Path) -> Session:
        reason = self.engine.check(path)
        if reason:
            raise NotRunnable(reason)
        return self.engine.load(path, self.settings.threads, self.shapes)

    def _base_session(self, path: Path) -> Session:
        if self._base is not None and self._base[0] == path:
            return self._base[1]
        self.close()
        session = self._load(path)
        self._base = (path, session)
        return session

    def measure(self, base: Path, trial: Path) -> PairTiming:
        """Time ``base`` and ``trial`` interleaved; medians and quartiles of each."""
        a = self._base_session(base)
        b = self._load(trial)
        try:
            return self._interleave(a, b)
        finally:
            b.close()

    def _interleave(self, a: Session, b: Session) -> PairTiming:
        s = self.settings
        feeds = self.feeds
        for i in range(s.warmup):
            for session in (a, b):
                self.check()
                session.run(feeds[i % len(feeds)])
        times: tuple[list[float], list[float]] = ([], [])
        start = clock()
        rounds = 0
        while not self._done(rounds, start, times):
            feed = feeds[rounds % len(feeds)]
            order = ((0, a), (1, b)) if rounds % 2 == 0 else ((1, b), (0, a))
            for index, session in order:
                self.check()
                t0 = clock()
                session.run(feed)
                times[index].append(1e3 * (clock() - t0))
            rounds += 1
        return PairTiming(Stats.of(times[0]), Stats.of(times[1]))

    def _done(self, rounds: int, start: float, times: tuple[list[float], list[float]]) -> bool:
        s = self.settings
        if rounds >= s.max_rounds:
            return True
        if rounds < s.min_rounds:
            return False
        if clock() - start >= s.seconds:
            return True
        return rounds % 5 == 0 and PairTiming(Stats.of(times[0]), Stats.of(times[1])).clear()

    def close(self) -> None:
        if self._base is not None:
            self._base[1].close()
            self._base = None
