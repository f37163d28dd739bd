"""Two models timed against each other on one engine, interleaved in one run.

The current model (the *base*) stays loaded from trial to trial; each trial model is
loaded, both are warmed up, then run in alternating order (A B, B A, ...) until both have
``min_rounds`` runs (``HALF_RUNS`` unless the answer is plain) and ``seconds`` have passed,
so drift and load hit both alike. A trial wins only when its median is lower by more than
``margin`` **and** its interquartile range lies wholly below the base's, either over all
runs or over the *faster half* of each model's runs: other processes on a loaded machine
only ever add time, stretching some runs of both models and widening both ranges, and the
faster half still measures the models. Noise never flips a decision. A trial whose answer
is plain early (the interquartile ranges apart and the medians more than ``CLEAR`` x the
margin apart, either way) stops after ``min_rounds``.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from qcore.bench.engines import Engine, Feeds, NotRunnable, Session
from qcore.bench.runner import williams_rows

#: A trial must be faster than the base by more than this fraction of the base's median.
MARGIN = 0.03
#: The clock of every measurement (a test may swap it for a fake one).
clock = time.perf_counter
#: Timing stops early once the medians differ by this many margins, quartiles apart.
CLEAR = 3.0
#: The faster-half rule needs at least this many runs of each model.
HALF_RUNS = 20


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

    @classmethod
    def fast_half(cls, samples: Sequence[float]) -> Stats:
        """Of the faster half of ``samples`` (all of them when there are few)."""
        ordered = sorted(samples)
        return cls.of(ordered[: len(ordered) // 2] if len(ordered) >= HALF_RUNS else ordered)

    @property
    def iqr(self) -> float:
        return self.q75 - self.q25

    @classmethod
    def from_dict(cls, d: Any) -> Stats:
        """Read back ``asdict``; raises ``KeyError`` / ``TypeError`` / ``ValueError``."""
        return cls(float(d["median"]), float(d["q25"]), float(d["q75"]), int(d["runs"]))


@dataclass(frozen=True)
class PairTiming:
    """The base and the trial model, timed side by side."""

    base: Stats
    trial: Stats
    fast: tuple[Stats, Stats] | None = None  # the faster half of the runs of each

    @classmethod
    def of(cls, base: Sequence[float], trial: Sequence[float]) -> PairTiming:
        """From the runs of each model."""
        fast = None
        if min(len(base), len(trial)) >= HALF_RUNS:
            fast = (Stats.fast_half(base), Stats.fast_half(trial))
        return cls(Stats.of(base), Stats.of(trial), fast)

    def _pairs(self) -> list[tuple[Stats, Stats]]:
        return [(self.base, self.trial), *([self.fast] if self.fast else [])]

    def faster(self, margin: float = MARGIN) -> bool:
        """Is the trial faster by more than ``margin`` and beyond both spreads (over all
        runs, or over the faster half of each)?"""
        return any(b.median < (1.0 - margin) * a.median and b.q75 < a.q25
                   for a, b in self._pairs())

    def shown(self, margin: float = MARGIN) -> tuple[Stats, Stats]:
        """The (base, trial) statistics that tell one faster, either way (all runs first,
        then the faster halves); all runs when neither does."""
        for a, b in self._pairs():
            if any(y.median < (1.0 - margin) * x.median and y.q75 < x.q25
                   for x, y in ((a, b), (b, a))):
                return a, b
        return self.base, self.trial

    def clear(self, margin: float = MARGIN) -> bool:
        """Is the answer plain already: quartiles apart, medians ``CLEAR`` margins apart
        (over all runs, or over the faster half of each)?"""
        return any((b.q75 < a.q25 or a.q75 < b.q25)
                   and abs(b.median - a.median) > CLEAR * margin * a.median
                   for a, b in self._pairs())

    def reversed(self) -> PairTiming:
        """The same measurement with the roles swapped (is the base faster?)."""
        fast = (self.fast[1], self.fast[0]) if self.fast else None
        return PairTiming(self.trial, self.base, fast)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"base": asdict(self.base), "trial": asdict(self.trial)}
        if self.fast is not None:
            out["fast"] = [asdict(self.fast[0]), asdict(self.fast[1])]
        return out

    @classmethod
    def from_dict(cls, data: Any) -> PairTiming:
        """Read back :meth:`to_dict`; raises ``KeyError`` / ``TypeError`` / ``ValueError``
        on anything else."""
        fast = data.get("fast")
        halves = (Stats.from_dict(fast[0]), Stats.from_dict(fast[1])) if fast else None
        return cls(Stats.from_dict(data["base"]), Stats.from_dict(data["trial"]), halves)


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

    def measure(self, base: Path, trial: Path, longer: float = 1.0) -> PairTiming:
        """Time ``base`` and ``trial`` interleaved (``longer`` x the settings' seconds and
        rounds); medians and quartiles of each."""
        a = self._base_session(base)
        b = self._load(trial)
        try:
            first, second = self._interleave([a, b], longer=longer)
            return PairTiming.of(first, second)
        finally:
            b.close()

    def measure_all(self, paths: Sequence[Path], longer: float = 1.0) -> list[list[float]]:
        """Time every model of ``paths`` interleaved (each round in the next order of a
        Williams design: every model runs after every other equally often) for the
        whole ``longer`` x ``seconds``; the runs of each in ms, in order."""
        self.close()
        sessions: list[Session] = []
        try:
            for path in paths:
                sessions.append(self._load(path))
            return self._interleave(sessions, stop_early=False, longer=longer)
        finally:
            for session in sessions:
                session.close()

    def _interleave(self, sessions: list[Session], stop_early: bool = True,
                    longer: float = 1.0) -> list[list[float]]:
        """The runs of each session in ms, round by round."""
        s = self.settings
        feeds = self.feeds
        for i in range(s.warmup):
            for session in sessions:
                self.check()
                session.run(feeds[i % len(feeds)])
        times: list[list[float]] = [[] for _ in sessions]
        start = clock()
        rounds = 0
        orders = williams_rows(len(sessions))  # A B, B A for two; six orders for three
        while not self._done(rounds, start, times, stop_early, longer):
            feed = feeds[rounds % len(feeds)]
            for index in orders[rounds % len(orders)]:
                self.check()
                t0 = clock()
                sessions[index].run(feed)
                times[index].append(1e3 * (clock() - t0))
            rounds += 1
        return times

    def _done(self, rounds: int, start: float, times: list[list[float]],
              stop_early: bool, longer: float = 1.0) -> bool:
        s = self.settings
        if rounds >= s.max_rounds * longer:
            return True
        if rounds < s.min_rounds:
            return False
        if stop_early and rounds % 5 == 0 and PairTiming.of(times[0], times[1]).clear():
            return True
        # a slow model runs on past ``seconds`` until the faster-half rule can decide
        return rounds >= HALF_RUNS and clock() - start >= s.seconds * longer

    def close(self) -> None:
        if self._base is not None:
            self._base[1].close()
            self._base = None
