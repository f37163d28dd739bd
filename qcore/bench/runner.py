"""Run a benchmark: several models on several engines and thread counts, interleaved.

The API the app's worker calls::

    from qcore.bench import BenchSettings, run_benchmark

    report = run_benchmark(
        {"fp32": "m_fp32.onnx", "qdq": "m_qdq.onnx", "int8": "m_int8.onnx",
         "int8-onednn": "m_int8_onednn.onnx"},
        BenchSettings(engines=["onnxruntime", "openvino"], threads=[1], iters=100),
        progress=lambda done, total, message: ...,   # from the calling thread, <= 20 per s
        cancelled=lambda: False,                      # polled before every single inference
    )
    print(report.text())

For every (engine, threads) all models are loaded, warmed up round-robin, then measured
round-robin, so machine drift hits every model alike; the order of each round follows a
balanced (Williams) Latin square, so every model runs after every other model equally often: a
model always run after the same other one pays that one's leftovers in the caches (a copy of
PP-OCR cls's float model timed after our INT8 model measured 1.04-1.11x the float file on
OpenVINO with plain rotation, where the float file always ran after the copy; 0.97-1.03x with
this order).
A model the engine cannot run is reported ``skipped`` with the reason; one that raises is
``failed`` with the message; neither stops the run. ``cancelled()`` returning True raises
:class:`BenchCancelled` (a :class:`qcore.passes.base.Cancelled`) within one inference, with the
results so far in ``exc.partial``; loading / compiling a model cannot be interrupted.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from qcore.bench.compare import accuracy_jobs, reference_label, run_accuracy
from qcore.bench.engines import (
    ENGINES,
    Engine,
    EngineUnavailable,
    Feeds,
    NotRunnable,
    Session,
    WhatRan,
    first_line,
    get_engine,
)
from qcore.bench.errors import BenchCancelled
from qcore.bench.inputs import InputSet, check_feeds, generate_inputs, load_inputs, model_inputs
from qcore.bench.per_op import Decided, run_per_op
from qcore.bench.progress import CancelCheck, Progress, ProgressFn
from qcore.bench.report import BenchReport, BenchResult, EngineInfo, LatencyStats
from qcore.bench.system import system_info
from qcore.status import RunStatus

MIN_ROUNDS = 3
TINY_MS = 0.1


@dataclass
class BenchSettings:
    """What to measure and how.

    Attributes:
        engines: Engine names (``onnxruntime``, ``openvino``).
        threads: Thread counts; every engine runs every count.
        batch: Value of batch-like dynamic dimensions of generated inputs.
        warmup: Unmeasured runs per model before measuring.
        iters: Measured runs per model (ignored when ``seconds`` is set).
        seconds: Time budget per model and (engine, threads) instead of ``iters``
            (at least 3 runs each).
        seed: Seed of the generated inputs.
        inputs: ``.npy`` / ``.npz`` data file, or None to generate data.
        dims: Values of named dynamic dimensions, e.g. ``{"seq": 128}``.
        samples: Number of generated feeds (timing cycles through them; accuracy uses all).
        accuracy: Also compare outputs of every model with the reference (fp32, else qdq).
        per_tensor: Also compute per-tensor SQNR against the reference (ONNX Runtime).
        per_op: Also profile every model on every engine at the first thread count: the
            precision, kernel and time of each op id (:mod:`qcore.bench.per_op`).
        per_op_runs: Profiled inferences per model and engine (after one warm-up).
    """

    engines: list[str] = field(default_factory=lambda: list(ENGINES))
    threads: list[int] = field(default_factory=lambda: [1])
    batch: int = 1
    warmup: int = 10
    iters: int = 100
    seconds: float | None = None
    seed: int = 0
    inputs: str | Path | None = None
    dims: dict[str, int] = field(default_factory=dict)
    samples: int = 8
    accuracy: bool = False
    per_tensor: bool = False
    per_op: bool = False
    per_op_runs: int = 10

    def __post_init__(self) -> None:
        if not self.engines:
            raise ValueError("no engine given")
        for name in self.engines:
            if name not in ENGINES:
                raise ValueError(f"unknown engine {name!r}; choose from {', '.join(ENGINES)}")
        if not self.threads or any(int(t) < 1 for t in self.threads):
            raise ValueError("threads must be a list of integers >= 1")
        for name in ("batch", "iters", "samples", "per_op_runs"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1")
        if self.warmup < 0:
            raise ValueError("warmup must be >= 0")
        if self.seconds is not None and self.seconds <= 0:
            raise ValueError("seconds must be > 0")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["inputs"] = str(self.inputs) if self.inputs else None
        return data


def _model_paths(models: Mapping[str, str | Path]) -> dict[str, Path]:
    if not models:
        raise ValueError("no model to benchmark")
    paths = {}
    for label, path in models.items():
        p = Path(path)
        if not p.is_file():
            raise ValueError(f"{p}: no such model file (for '{label}')")
        paths[str(label)] = p
    return paths


def prepare_inputs(paths: Mapping[str, Path], settings: BenchSettings) -> InputSet:
    """Feeds fitted to the reference model and checked against every other model."""
    specs = {label: model_inputs(path) for label, path in paths.items()}
    ref = reference_label(list(paths)) or next(iter(paths))
    if settings.inputs:
        inputs = load_inputs(settings.inputs, specs[ref], settings.batch)
        if settings.dims:
            inputs.notes.append("--dims ignored: the input data sets every shape")
    else:
        inputs = generate_inputs(specs[ref], settings.samples, settings.batch, settings.dims,
                                 settings.seed)
    for label, model_specs in specs.items():
        check_feeds(inputs.feeds[0], model_specs, label)
    return inputs


def _open_engines(names: list[str]) -> tuple[list[Engine], list[EngineInfo]]:
    engines, infos = [], []
    for name in names:
        try:
            engine = get_engine(name)
        except EngineUnavailable as exc:
            infos.append(EngineInfo(name, False, reason=str(exc)))
            continue
        engines.append(engine)
        infos.append(EngineInfo(name, True, engine.version(), "", engine.settings(),
                                engine.notes()))
    return engines, infos


def _measure_units(settings: BenchSettings, models: int) -> int:
    return models * (1 + settings.warmup + settings.iters)


def williams_rows(count: int) -> list[list[int]]:
    """A Williams design of ``count`` items: rows (orders) in which every item comes right
    after every other item equally often (``count`` rows when even, ``2 * count`` when odd)."""
    first, low, high = [0], 1, count - 1
    while len(first) < count:
        first.append(low)
        low += 1
        if len(first) < count:
            first.append(high)
            high -= 1
    rows = [[(i + shift) % count for i in first] for shift in range(count)]
    return rows if count % 2 == 0 else rows + [row[::-1] for row in rows]


def round_order(labels: list[str], round_index: int) -> list[str]:
    """The order of ``labels`` in round ``round_index``: the rows of a Williams design in
    turn (see :func:`williams_rows`)."""
    if len(labels) < 2:
        return list(labels)
    rows = williams_rows(len(labels))
    return [labels[i] for i in rows[round_index % len(rows)]]


class _Group:
    """All models on one engine with one thread count."""

    def __init__(self, engine: Engine, threads: int, paths: Mapping[str, Path],
                 inputs: InputSet, settings: BenchSettings, tracker: Progress) -> None:
        self.engine, self.threads, self.paths = engine, threads, paths
        self.inputs, self.settings, self.tracker = inputs, settings, tracker
        self.results = {label: BenchResult(label, str(path), engine.name, threads, inputs.batch)
                        for label, path in paths.items()}
        self.sessions: dict[str, Session] = {}
        self.samples: dict[str, list[float]] = {}
        self.where = f"{engine.name}, {threads} thread{'s' if threads > 1 else ''}"

    def _fail(self, label: str, status: RunStatus, reason: str) -> None:
        result = self.results[label]
        result.status, result.reason = status, reason
        session = self.sessions.pop(label, None)
        if session is not None:
            session.close()

    def load(self) -> None:
        shapes = {k: tuple(v.shape) for k, v in self.inputs.feeds[0].items()}
        for label, path in self.paths.items():
            self.tracker.check()
            self.tracker.advance(0, f"loading {label} on {self.where}")
            reason = self.engine.check(path)
            start = time.perf_counter()
            try:
                if reason:
                    raise NotRunnable(reason)
                session = self.engine.load(path, self.threads, shapes)
                self.results[label].load_s = time.perf_counter() - start
                session.run(self.inputs.feeds[0])
                self.sessions[label] = session
            except NotRunnable as exc:
                self._fail(label, RunStatus.SKIPPED, f"not runnable on {self.engine.name}: {exc}")
            except Exception as exc:  # noqa: BLE001 - an engine error is a result, not a crash
                self._fail(label, RunStatus.FAILED, first_line(exc))
            self.tracker.advance(1)

    def _run(self, label: str, feed: Feeds) -> float | None:
        self.tracker.check()
        session = self.sessions[label]
        start = time.perf_counter()
        try:
            session.run(feed)
        except Exception as exc:  # noqa: BLE001
            self._fail(label, RunStatus.FAILED, first_line(exc))
            return None
        return (time.perf_counter() - start) * 1000.0

    def warm_up(self) -> None:
        for i in range(self.settings.warmup):
            for label in list(self.sessions):
                self._run(label, self.inputs.feeds[i % len(self.inputs.feeds)])
                self.tracker.advance(1, f"warming up on {self.where}")

    def measure(self) -> None:
        s = self.settings
        self.samples = {label: [] for label in self.sessions}
        units = len(self.paths) * s.iters
        budget = s.seconds * max(1, len(self.sessions)) if s.seconds else None
        start, rounds, reported = time.perf_counter(), 0, 0
        while self.sessions:
            elapsed = time.perf_counter() - start
            if budget is None and rounds >= s.iters:
                break
            if budget is not None and rounds >= MIN_ROUNDS and elapsed >= budget:
                break
            labels = list(self.sessions)
            feed = self.inputs.feeds[rounds % len(self.inputs.feeds)]
            for label in round_order(labels, rounds):
                ms = self._run(label, feed)
                if ms is not None:
                    self.samples[label].append(ms)
            rounds += 1
            done = (min(units, int(units * elapsed / budget)) if budget
                    else len(self.paths) * rounds)
            self.tracker.advance(done - reported, f"measuring on {self.where}")
            reported = done

    def finish(self, cancelled: bool = False) -> list[BenchResult]:
        """Statistics and what ran; after a cancel, only the statistics of the runs so far."""
        for label, session in list(self.sessions.items()):
            result = self.results[label]
            samples = self.samples.get(label, [])
            if samples:
                result.samples_ms = samples
                result.latency_ms = LatencyStats.from_samples(samples)
                mean = result.latency_ms.mean
                result.throughput_per_s = result.batch * 1000.0 / mean if mean > 0 else None
            if cancelled:
                result.reason = f"partial: cancelled after {len(samples)} measured runs"
            else:
                try:
                    result.what_ran = session.what_ran()
                except Exception as exc:  # noqa: BLE001
                    result.what_ran = WhatRan(summary=f"unknown ({first_line(exc)})")
            session.close()
        self.sessions.clear()
        return [r for r in self.results.values() if not cancelled or r.latency_ms]


def _speedups(results: list[BenchResult]) -> None:
    for r in results:
        base = next((b for b in results if b.model == "fp32" and b.engine == r.engine
                     and b.threads == r.threads), None)
        if base and base.latency_ms and r.latency_ms and r.latency_ms.p50 > 0:
            r.speedup_vs_fp32 = base.latency_ms.p50 / r.latency_ms.p50


def _run_notes(report: BenchReport) -> None:
    tiny = [r for r in report.results if r.latency_ms and r.latency_ms.p50 < TINY_MS]
    if tiny:
        report.notes.append(
            f"{len(tiny)} result(s) under {TINY_MS} ms: call overhead dominates such times, so "
            "their ratios say little about the kernels; use a larger model or batch")
    noisy = [r for r in report.results
             if r.latency_ms and r.latency_ms.p90 > 1.5 * r.latency_ms.p50]
    if noisy:
        names = ", ".join(f"{r.model}/{r.engine}/{r.threads}T" for r in noisy[:4])
        report.notes.append(f"noisy timings (p90 > 1.5 x p50) for {names}: is the machine busy?")


def run_benchmark(
    models: Mapping[str, str | Path],
    settings: BenchSettings | None = None,
    progress: ProgressFn | None = None,
    cancelled: CancelCheck | None = None,
    decisions: Mapping[str, Mapping[int, Decided]] | None = None,
) -> BenchReport:
    """Measure ``models`` (label -> .onnx path) with ``settings``.

    Args:
        models: Role or label -> model path. ``fp32`` is the speedup baseline and, with
            ``qdq`` as fallback, the accuracy reference. Typical labels: ``fp32``, ``qdq``,
            ``int8`` (``--target onnxruntime``), ``int8-onednn`` (``--target onednn``).
        settings: What to measure; :class:`BenchSettings` defaults when None.
        progress: Called as ``progress(done, total, message)`` while running.
        cancelled: Polled before every inference; True stops the run.
        decisions: Model label -> op id -> the conversion's decision for that op (see
            :func:`qcore.bench.per_op.decisions_by_id`); with ``settings.per_op``, flags
            the ops whose engine precision contradicts it.

    Returns:
        The report; engines that are not installed are listed as unavailable.

    Raises:
        ValueError: a model file is missing or the settings are invalid.
        qcore.bench.inputs.InputError: the input data does not fit the models.
        BenchCancelled: ``cancelled()`` returned True (``exc.partial`` is the report so far).
    """
    settings = settings or BenchSettings()
    paths = _model_paths(models)
    inputs = prepare_inputs(paths, settings)
    engines, infos = _open_engines(settings.engines)
    report = BenchReport(
        settings=settings.to_dict(), system=system_info(), engines=infos,
        models={k: str(v) for k, v in paths.items()},
        inputs={"source": inputs.source, "shapes": inputs.shapes, "dtypes": inputs.dtypes,
                "batch": inputs.batch, "feeds": len(inputs.feeds), "notes": inputs.notes},
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )
    jobs = accuracy_jobs(list(paths), engines, settings)
    per_op_units = len(engines) * len(paths) * settings.per_op_runs if settings.per_op else 0
    total = (len(engines) * len(settings.threads) * _measure_units(settings, len(paths))
             + per_op_units + sum(job.units(len(inputs.feeds)) for job in jobs))
    tracker = Progress(progress, cancelled, total)
    group: _Group | None = None
    try:
        for engine in engines:
            for threads in settings.threads:
                start = tracker.done
                group = _Group(engine, int(threads), paths, inputs, settings, tracker)
                group.load()
                group.warm_up()
                group.measure()
                report.results.extend(group.finish())
                group = None
                tracker.advance(start + _measure_units(settings, len(paths)) - tracker.done)
        _speedups(report.results)
        if settings.per_op:
            report.per_op = run_per_op(paths, engines, inputs.feeds, int(settings.threads[0]),
                                       settings.per_op_runs, decisions or {}, tracker,
                                       report.system.get("cpu_flags", []))
        report.accuracy = run_accuracy(jobs, paths, inputs, settings, tracker)
    except BenchCancelled as exc:
        if group is not None:
            report.results.extend(group.finish(cancelled=True))
        _speedups(report.results)
        report.cancelled = True
        exc.partial = report
        raise
    _run_notes(report)
    tracker.finish()
    return report
