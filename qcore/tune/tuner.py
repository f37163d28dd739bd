"""``tune``: measure the unsure INT8 choices of a conversion on one engine and keep the faster.

    from qcore.tune import TuneSettings, tune, apply_reasons
    tuned = tune("m_qdq.onnx", ConvertConfig(), TuneSettings(budget_s=60),
                 cache_file=cache_path("out/int8.onnx"))
    result = convert("m_qdq.onnx", tuned.config)
    apply_reasons(result, tuned)        # tuned ops: FP32, "measured 0.41 ms vs 0.58 ms ..."
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from qcore.bench.accuracy import compare_models
from qcore.bench.engines import Engine, get_engine, parse_engines
from qcore.bench.inputs import InputSet, generate_inputs, load_inputs, model_inputs
from qcore.bench.system import system_info
from qcore.config import ConvertConfig
from qcore.convert import ConversionResult, convert
from qcore.files import save_model, temporary_folder
from qcore.passes.base import Cancelled
from qcore.status import OpStatus, Reason, ReasonKind, RunStatus
from qcore.tune import timing
from qcore.tune.cache import TuneCache, sha256_file
from qcore.tune.candidates import ISLAND_OPS, Unit
from qcore.tune.search import Final, ProgressFn, Search, Trial
from qcore.tune.timing import MARGIN, TimerSettings

#: The tuned model may be this much further from float (cosine) than the default.
ACCURACY_SLACK = 1e-3
#: The zoo's accuracy acceptance: INT8 at most this far below the source QDQ's cosine to float
SOURCE_SLACK = 5e-3

#: The engine each target's INT8 model is written for.
NATURAL_ENGINE = {"onnxruntime": "onnxruntime", "onednn": "openvino"}


@dataclass
class TuneSettings:
    """Where and how long to measure. ``engine`` None: the target's natural engine."""

    engine: str | None = None
    threads: int = 1
    budget_s: float = 120.0  # the whole search; the final side-by-side check may exceed it
    margin: float = MARGIN
    trial_seconds: float = 1.0  # timed runs per trial, both models together
    island_ops: int = ISLAND_OPS
    inputs: str | Path | None = None  # .npy / .npz; None: generated
    float_model: str | Path | None = None  # the accuracy guard's reference (None: our FP32)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.threads < 1:
            raise ValueError("--threads must be at least 1")
        if not self.budget_s >= 0:
            raise ValueError(f"--tune-budget must be a number of seconds >= 0, not "
                             f"{self.budget_s}")

    def engine_for(self, target: str) -> str:
        if self.engine is None:
            return NATURAL_ENGINE[target]
        names = parse_engines(self.engine)
        if len(names) != 1:
            raise ValueError("--tune measures on one engine; give one of onnxruntime, openvino")
        return names[0]


@dataclass
class TuneResult:
    """What ``tune`` measured and chose; ``config`` is the tuned configuration."""

    base: ConvertConfig
    config: ConvertConfig
    engine: str
    engine_version: str
    threads: int
    inputs: str
    units: list[Unit]
    trials: list[Trial]
    untried: list[str] = field(default_factory=list)  # left when the budget ran out
    pruned: list[str] = field(default_factory=list)  # groups whose halves were not tried
    notes: list[str] = field(default_factory=list)
    cache_path: Path | None = None
    final: Final | None = None  # default, tuned and FP32, side by side
    kept: bool = False  # the tuned model was faster than the default in the final check
    seconds: float = 0.0
    margin: float = MARGIN
    budget_s: float = 0.0
    timed: int = 0  # pairs timed on the engine in this run (0: all from the cache)
    cached: int = 0  # pairs read from the cache

    int8_ids: list[int] = field(default_factory=list)  # INT8 in the default placement

    @property
    def tuned_ids(self) -> list[int]:
        """The ops INT8 by default that tuning keeps FP32."""
        tuned = set(self.config.op_ids_to_skip) - set(self.base.op_ids_to_skip)
        return sorted(tuned & set(self.int8_ids))

    def deciding_trial(self, op_id: int, fp32_faster: bool = False) -> Trial | None:
        """The last (most specific) trial that switched ``op_id`` (``fp32_faster``: the last
        one that measured the model faster with it FP32)."""
        return next((t for t in reversed(self.trials) if op_id in t.op_ids
                     and t.timing is not None
                     and (t.fp32_faster(self.margin) or not fp32_faster)), None)

    def reasons(self) -> dict[int, Reason]:
        """Op id -> ``ReasonKind.TUNED`` for every op the tuning keeps FP32, with the
        timings of the most specific trial that measured it faster FP32."""
        reasons = {}
        for op_id in self.tuned_ids:
            trial = self.deciding_trial(op_id, fp32_faster=True)
            if trial is not None and trial.fp32_ms is not None and trial.int8_ms is not None:
                reasons[op_id] = Reason(ReasonKind.TUNED,
                                        f"{ms(trial.fp32_ms)} vs {ms(trial.int8_ms)} INT8 in "
                                        f"this model{_together(trial)}")
        return reasons

    def summary(self) -> dict[str, Any]:
        """The result in a few numbers (JSON): what was kept FP32, how long it took, and
        the final check's medians with the speed of INT8 against FP32 on this machine."""
        out: dict[str, Any] = {
            "engine": self.engine, "engine_version": self.engine_version,
            "threads": self.threads, "inputs": self.inputs, "kept_fp32": self.tuned_ids,
            "op_ids_to_skip": self.config.op_ids_to_skip,
            "trials": len(self.trials), "timed": self.timed, "cached": self.cached,
            "seconds": round(self.seconds, 2), "budget_s": self.budget_s,
            "untried": len(self.untried)}
        f = self.final
        if f is not None:
            out.update(default_ms=f.default.median, tuned_ms=f.tuned.median,
                       fp32_ms=f.fp32.median, kept_tuned=self.kept,
                       fast_half_ms={"default": f.fast[0].median, "tuned": f.fast[1].median,
                                     "fp32": f.fast[2].median},
                       int8_speed_vs_fp32=round(f.fp32.median / self.chosen_ms, 3))
        return out

    @property
    def chosen_ms(self) -> float:
        """The final check's median of the model written (tuned if kept, else default)."""
        if self.final is None:
            return float("nan")
        return self.final.tuned.median if self.kept else self.final.default.median

    def stayed(self) -> dict[int, str]:
        """Op id -> why it stayed INT8, for the ops a trial switched that end INT8."""
        tuned = set(self.config.op_ids_to_skip)
        tried = sorted({i for t in self.trials for i in t.op_ids} - tuned)
        out = {}
        for op_id in tried:
            trial = self.deciding_trial(op_id)
            if trial is None or trial.fp32_ms is None or trial.int8_ms is None:
                continue
            why = ("INT8 faster beyond the noise" if trial.accepted else
                   f"FP32 not faster by more than {100 * self.margin:.0f}% and the spread")
            out[op_id] = (f"INT8: measured {ms(trial.int8_ms)} vs {ms(trial.fp32_ms)} FP32 in "
                          f"this model{_together(trial)} ({why})")
        return out


def ms(value: float) -> str:
    """A latency with the digits that matter: 0.412 ms, 5.50 ms, 41.2 ms."""
    return f"{value:.3f} ms" if value < 1 else f"{value:.2f} ms" if value < 10 else \
        f"{value:.1f} ms"


def _together(trial: Trial) -> str:
    if trial.kind == "everything":
        return ""
    others = len(trial.op_ids) - 1
    return f", with {others} other op{'s' if others > 1 else ''}" if others else ""


def apply_reasons(result: ConversionResult, tuned: TuneResult) -> None:
    """Give the tuned ops of ``result`` (converted with ``tuned.config``) their measured
    reason instead of "skipped by id", in the decisions and in every snapshot."""
    reasons = tuned.reasons()
    graphs = [s.graph for s in result.snapshots] + [result.int8]
    for node in [*result.decisions, *(n for g in graphs for n in g.nodes)]:
        if node.id in reasons and node.reason.kind is ReasonKind.SKIPPED:
            node.decide(OpStatus.FP32, reasons[node.id])


def _inputs(settings: TuneSettings, model: Path) -> tuple[InputSet, str, str]:
    """The feeds, how they are described, and how the cache key names them."""
    specs = model_inputs(model)
    if settings.inputs:
        inputs = load_inputs(settings.inputs, specs)
        return inputs, f"inputs from {settings.inputs}", f"file {sha256_file(settings.inputs)}"
    inputs = generate_inputs(specs, 1, seed=settings.seed)
    shapes = ", ".join(f"{k} {'x'.join(map(str, v))}" for k, v in inputs.shapes.items())
    text = f"generated inputs (seed {settings.seed}; {shapes}); give real ones with --inputs"
    return inputs, text, f"generated seed {settings.seed} {shapes}"


def _fields(quant: str | Path, default: Path, config: ConvertConfig, engine: Engine,
            threads: int, inputs_key: str) -> dict[str, Any]:
    machine = system_info()
    return {
        "model_sha256": sha256_file(quant) if Path(quant).is_file() else str(quant),
        "default_int8_sha256": sha256_file(default),
        "config": {"ops_to_quantize": config.ops_to_quantize,
                   "op_ids_to_skip": config.op_ids_to_skip, "target": config.target},
        "engine": engine.name, "engine_version": engine.version(),
        "machine": {k: machine[k] for k in ("cpu", "cpu_flags", "logical_cpus")},
        "threads": threads, "inputs": inputs_key,
    }


def _open(quant: str | Path, config: ConvertConfig, settings: TuneSettings, engine: Engine,
          work: Path, cache_file: str | Path | None,
          ) -> tuple[ConversionResult, Path, InputSet, str, TuneCache]:
    """The default conversion (and its file), the inputs, how they are described, and the
    cache of this key."""
    default = convert(quant, config)
    default_path = save_model(default.int8_model(), work / "default.onnx", quant)
    refused = engine.check(default_path)
    if refused:
        raise ValueError(f"--engine {engine.name} cannot run the --target {config.target} "
                         f"model: {refused}")
    inputs, described, inputs_key = _inputs(settings, default_path)
    fields = _fields(quant, default_path, config, engine, settings.threads, inputs_key)
    cache = TuneCache(Path(cache_file) if cache_file else None, fields, quant)
    return default, default_path, inputs, described, cache


def cached_summary(quant: str | Path, config: ConvertConfig, settings: TuneSettings,
                   cache_file: str | Path) -> tuple[dict[str, Any] | None, str]:
    """What the last ``--tune`` of this key (model, conversion, config, engine, machine,
    threads, inputs) left in ``cache_file`` (:meth:`TuneResult.summary`, with the tuned
    ``op_ids_to_skip``), timing nothing; None and the reason when there is none."""
    return finished_summary(open_cache(quant, config, settings, cache_file), cache_file)


def open_cache(quant: str | Path, config: ConvertConfig, settings: TuneSettings,
               cache_file: str | Path) -> TuneCache:
    """The cache entry of this key in ``cache_file``, timing nothing."""
    engine = get_engine(settings.engine_for(config.target))
    with temporary_folder("qcore-tune-") as tmp:
        return _open(quant, config, settings, engine, Path(tmp), cache_file)[-1]


def finished_summary(cache: TuneCache, cache_file: str | Path,
                     ) -> tuple[dict[str, Any] | None, str]:
    """The summary of the cache's last finished run, or None and why there is none."""
    summary = cache.summary if isinstance(cache.summary, dict) else {}
    if not isinstance(summary.get("op_ids_to_skip"), list):
        return None, cache.note if cache.note.startswith(("no ", "cache not")) else \
            f"{cache.note}; no finished --tune run in it"
    return summary, f"--tune's configuration from {cache_file} ({cache.note})"


def _cosine(fp32: Path, path: Path, engine: Engine, inputs: InputSet, threads: int) -> float:
    """The lowest cosine of any output of ``path`` against ``fp32`` on the tuning inputs."""
    found = compare_models(fp32, path, inputs.feeds, engine=engine, threads=threads)
    if found.status is not RunStatus.OK or not found.outputs:
        return float("nan")
    return min(o.cosine_min for o in found.outputs)


def _accuracy_guard(search: Search, default: ConversionResult, fp32: Path, final: Final,
                    engine: Engine, inputs: InputSet, threads: int) -> tuple[Final, str]:
    """The tuned mix must be no further from float (``fp32``: the float model, else our
    FP32 model) than the source QDQ model is within ``SOURCE_SLACK`` (the QDQ semantics, run
    on ONNX Runtime), or than the default within ``ACCURACY_SLACK``: else everything FP32
    (when it was measured faster than the default and meets that bar too; its timing is our
    FP32 model's, the same graph) or the default is written. Measured against the default
    alone, PP-OCR cls quantized per tensor kept its 1.69 ms default on a sample where the
    INT8 model was at 0.9996 and everything FP32 (1.01 ms, the float model's speed) at
    0.9961, the QDQ model (ONNX Runtime) at 0.9996."""
    default_skip = sorted(search.user_skip)
    tuned, base = (_cosine(fp32, search.model(k), engine, inputs, threads)
                   for k in (search.skip, default_skip))
    if not tuned < base - ACCURACY_SLACK:  # a NaN (no answer) keeps the tuned model
        return final, ""
    source = _cosine(fp32, Path(search.quant), get_engine("onnxruntime"), inputs, threads)
    bar = min([base - ACCURACY_SLACK] + ([source - SOURCE_SLACK] if source == source else []))
    if not tuned < bar:
        return final, ""
    first = search.trials[0] if search.trials else None
    every = sorted(search.user_skip | {n.id for n in default.decisions})
    everything = (first is not None and first.kind == "everything" and first.accepted
                  and search.skip != every
                  and not _cosine(fp32, search.model(every), engine, inputs, threads) < bar)
    why = (f"the tuned mix was further from float than the default and the source (cosine "
           f"{tuned:.4f} vs {base:.4f} and {source:.4f} on the tuning inputs): ")
    if everything:
        search.skip = every
        return replace(final, tuned=final.fp32, fast=(final.fast[0], final.fast[2],
                                                      final.fast[2])), \
            why + "wrote everything FP32 (measured faster than the default)"
    search.skip = default_skip
    return final, why + "kept the default"


def tune(quant: str | Path, config: ConvertConfig | None = None,
         settings: TuneSettings | None = None, cache_file: str | Path | None = None,
         progress: ProgressFn | None = None, cancelled: Callable[[], bool] | None = None,
         ) -> TuneResult:
    """Time the candidate units of ``config``'s conversion FP32 against INT8 in the whole
    model on one engine (see :mod:`qcore.tune.search`), reusing and updating the
    measurements in ``cache_file``.

    Raises:
        ValueError: the engine cannot run the model, or bad inputs / settings.
        EngineUnavailable: the engine is not installed.
        Cancelled: ``cancelled()`` returned True.
    """
    start = time.perf_counter()
    config = config or ConvertConfig()
    settings = settings or TuneSettings()
    engine = get_engine(settings.engine_for(config.target))

    def check() -> None:
        if cancelled is not None and cancelled():
            raise Cancelled("tuning cancelled")

    with temporary_folder("qcore-tune-") as tmp:
        work = Path(tmp)
        default, default_path, inputs, described, cache = _open(quant, config, settings,
                                                                 engine, work, cache_file)
        fp32_path = save_model(default.fp32_model(), work / "fp32.onnx", quant)
        timer_settings = TimerSettings(threads=settings.threads, seconds=settings.trial_seconds)
        search = Search(quant, config, cache,
                        lambda: timing.PairTimer(engine, inputs.feeds, timer_settings, check),
                        work, settings.budget_s, settings.margin,
                        estimate_s=settings.trial_seconds + 1.0, progress=progress,
                        island_ops=settings.island_ops)
        key = tuple(sorted(config.op_ids_to_skip))
        search.paths[key], search.results[key] = default_path, default
        replay = 0 < settings.budget_s <= cache.stopped_at
        try:
            search.run()
            if search.untried:
                cache.stopped(settings.budget_s)
            final, kept = search.final(fp32_path)
            guard = ""
            if kept and final is not None:
                search.close()  # the timer's sessions: the guard loads its own
                reference = Path(settings.float_model) if settings.float_model else fp32_path
                final, guard = _accuracy_guard(search, default, reference, final, engine,
                                               inputs, settings.threads)
                kept = search.skip != sorted(config.op_ids_to_skip)
        finally:
            search.close()
    notes = [cache.note, *inputs.notes, guard]
    if replay and search.untried:
        notes.append(f"the cached search ran out of --tune-budget {cache.stopped_at:g} s here; "
                     "a larger budget continues it")
    if final is not None and not kept and not guard and any(t.accepted for t in search.trials):
        notes.append("the tuned model was not faster than the default side by side: kept the "
                     "default")
    tuned = ConvertConfig(config.ops_to_quantize, search.skip, config.target)
    result = TuneResult(config, tuned, engine.name, engine.version(), settings.threads,
                        described, search.units, search.trials, search.untried, search.pruned,
                        notes, cache.path, final, kept, time.perf_counter() - start,
                        settings.margin, settings.budget_s, search.timed, search.reused,
                        default.quantized_ids)
    cache.store_summary(result.summary())
    return result
