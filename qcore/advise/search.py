"""The advisor: rank the ops that hurt accuracy, find lone INT8 ops, and search greedily for
the fastest configuration that stays within the user's accuracy bound."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import onnx

from qcore.advise.islands import Island, find_islands
from qcore.advise.profile import op_times
from qcore.bench.accuracy import Feed, compare_models, per_tensor_error
from qcore.bench.engines import get_engine
from qcore.bench.inputs import check_finite, generate_inputs, load_inputs, model_inputs
from qcore.config import ConvertConfig
from qcore.convert import ConversionResult, convert
from qcore.passes.base import Cancelled
from qcore.status import RunStatus
from qcore.temporaries import temporary_folder

# What an unquantized input counts as: about the SQNR of a well-used 8-bit grid, so the first
# INT8 op after float is charged for quantizing its input, but not infinitely.
CLEAN_SQNR_DB = 40.0

ProgressFn = Callable[[int, int, str], None]
CancelFn = Callable[[], bool]


@dataclass
class AdviseSettings:
    """Accuracy bound and how much work the search may do. The bound is measured against
    ``float_model`` when one is given (the true float network), else against the
    converter's FP32 model."""

    min_cosine: float = 0.999
    min_agreement: float | None = None  # top-1 agreement, for classifier outputs
    engine: str = "onnxruntime"
    threads: int = 1
    samples: int = 8
    inputs: str | None = None
    rounds: int = 20  # timed runs per model when comparing speed
    candidates: int = 4  # sensitive ops tried per greedy step
    max_steps: int = 6
    seed: int = 0
    float_model: str | None = None

    def __post_init__(self) -> None:
        if not -1.0 <= self.min_cosine <= 1.0:  # False for NaN too
            raise ValueError(f"--min-cosine must be a number from -1 to 1, not {self.min_cosine}")
        if self.min_agreement is not None and not 0.0 <= self.min_agreement <= 1.0:
            raise ValueError("--min-agreement must be a number from 0 to 1, not "
                             f"{self.min_agreement}")


@dataclass(frozen=True)
class MeasuredPair:
    """Two configurations timed side by side before, by ``qcore convert --tune``."""

    base_ms: float
    trial_ms: float
    faster: bool  # the trial won by the tuner's rule (beyond the noise)


@dataclass
class TunedStart:
    """What ``qcore convert --tune`` measured on this machine for the same key (model,
    config, engine, threads, inputs): its configuration, and every pair it timed, by the two
    full ``op_ids_to_skip`` sets compared."""

    op_ids_to_skip: list[int]
    note: str
    pairs: dict[tuple[tuple[int, ...], tuple[int, ...]], MeasuredPair] = field(
        default_factory=dict)

    def measured(self, base: list[int], trial: list[int]) -> MeasuredPair | None:
        return self.pairs.get((tuple(sorted(base)), tuple(sorted(trial))))


@dataclass
class Candidate:
    """One configuration tried, with what it measured."""

    op_ids_to_skip: list[int]
    cosine: float
    agreement: float | None
    latency_ms: float | None
    meets_bound: bool
    note: str
    ops_to_quantize: list[str] = field(default_factory=list)


@dataclass
class Sensitivity:
    """How much error an op adds: SQNR of its output against the SQNR of its inputs."""

    op_id: int
    op_type: str
    sqnr_db: float
    drop_db: float


@dataclass
class Advice:
    """What the advisor found and proposes."""

    base: ConvertConfig
    sensitive: list[Sensitivity]
    lone_ops: list[int]
    islands: list[Island]
    candidates: list[Candidate] = field(default_factory=list)
    best: Candidate | None = None
    op_ms: dict[int, float] = field(default_factory=dict)  # ONNX Runtime profile, all INT8
    fp32_ms: float | None = None  # timed with the finalists, side by side
    all_int8_ms: float | None = None  # ... and so is everything INT8

    @property
    def all_int8(self) -> Candidate | None:
        """The first candidate: everything ``base`` allows INT8."""
        return self.candidates[0] if self.candidates else None

    @property
    def faster_than_fp32(self) -> bool | None:
        """Does the best configuration beat plain FP32 (None when not timed)?"""
        if self.best is None or self.best.latency_ms is None or self.fp32_ms is None:
            return None
        return self.best.latency_ms < self.fp32_ms

    def flags(self) -> str:
        """The `qcore convert` flags of the best configuration."""
        parts = []
        types = self.best.ops_to_quantize if self.best else self.base.ops_to_quantize
        if types:
            parts.append(f"--ops_to_quantize {','.join(types)}")
        if self.best is not None and self.best.op_ids_to_skip:
            parts.append(f"--op_ids_to_skip {','.join(map(str, self.best.op_ids_to_skip))}")
        return " ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "base": asdict(self.base),
            "sensitive": [asdict(s) for s in self.sensitive],
            "lone_ops": self.lone_ops,
            "islands": [asdict(i) for i in self.islands],
            "candidates": [asdict(c) for c in self.candidates],
            "best": asdict(self.best) if self.best else None,
            "fp32_ms": self.fp32_ms,
            "all_int8_ms": self.all_int8_ms,
            "op_ms": {str(k): v for k, v in self.op_ms.items()},
            "flags": self.flags(),
        }


class _Evaluator:
    """Converts a configuration and measures it against the FP32 reference."""

    def __init__(self, quant: str, base: ConvertConfig, settings: AdviseSettings,
                 work: Path, cancelled: CancelFn | None) -> None:
        self.quant, self.base, self.settings, self.work = quant, base, settings, work
        self.cancelled = cancelled
        first = convert(quant, base)
        self.fp32 = work / "fp32.onnx"
        onnx.save(first.fp32_model(), str(self.fp32))
        self.reference = Path(settings.float_model) if settings.float_model else self.fp32
        specs = model_inputs(self.fp32)
        self.feeds = (load_inputs(settings.inputs, specs) if settings.inputs else
                      generate_inputs(specs, count=settings.samples, seed=settings.seed)).feeds
        check_finite(self.feeds, str(settings.inputs or "generated inputs"))
        self.first = first
        self._count = 0

    def config(self, skip: list[int], types: list[str] | None = None) -> ConvertConfig:
        types = self.base.ops_to_quantize if types is None else types
        return ConvertConfig(types, sorted(set(self.base.op_ids_to_skip) | set(skip)),
                             self.base.target)

    def model(self, skip: list[int], types: list[str] | None = None,
              ) -> tuple[Path, ConversionResult]:
        self._check()
        result = convert(self.quant, self.config(skip, types))
        self._count += 1
        path = self.work / f"candidate_{self._count}.onnx"
        onnx.save(result.int8_model(), str(path))
        return path, result

    def accuracy(self, path: Path) -> tuple[float, float | None]:
        result = compare_models(self.reference, path, self.feeds, engine=self.settings.engine,
                                threads=self.settings.threads, cancelled=self.cancelled)
        if result.status is not RunStatus.OK:
            raise RuntimeError(f"accuracy check failed: {result.reason}")
        cosine = min(o.cosine_min for o in result.outputs)
        agreements = [o.top1_agreement for o in result.outputs if o.top1_agreement is not None]
        return cosine, (min(agreements) if agreements else None)

    def meets(self, cosine: float, agreement: float | None) -> bool:
        s = self.settings
        if not cosine >= s.min_cosine:  # a NaN cosine never meets the bound
            return False
        return s.min_agreement is None or agreement is None or agreement >= s.min_agreement

    def latencies(self, paths: list[Path]) -> list[float]:
        """Median latency of each model, timed round-robin so drift hits all alike."""
        engine = get_engine(self.settings.engine)
        shapes = {k: tuple(v.shape) for k, v in self.feeds[0].items()}
        sessions = [engine.load(p, self.settings.threads, shapes) for p in paths]
        feed = self.feeds[0]
        for s in sessions:
            for _ in range(3):
                s.run(feed)
        times: list[list[float]] = [[] for _ in sessions]
        for _ in range(self.settings.rounds):
            for i, s in enumerate(sessions):
                self._check()
                start = time.perf_counter()
                s.run(feed)
                times[i].append(1e3 * (time.perf_counter() - start))
        for s in sessions:
            s.close()
        return [statistics.median(t) for t in times]

    def _check(self) -> None:
        if self.cancelled is not None and self.cancelled():
            raise Cancelled("advisor cancelled")


def keep_float(result: ConversionResult, op_id: int) -> list[int]:
    """Ops to skip so that ``op_id``'s output stays float: the op and its INT8 readers (an
    INT8 reader would quantize the tensor again)."""
    node = next(n for n in result.decisions if n.id == op_id)
    readers = [n.id for n in result.decisions
               if n.status == "int8" and set(n.inputs) & set(node.outputs)]
    return sorted({op_id, *readers})


def rank_sensitive(fp32: Path, int8: Path, result: ConversionResult, feeds: list[Feed],
                   cancelled: CancelFn | None = None) -> list[Sensitivity]:
    """INT8 ops ranked by how much SQNR they lose between their inputs and their output."""
    errors, _ = per_tensor_error(fp32, int8, feeds, cancelled=cancelled)
    sqnr = {e.tensor: e.sqnr_db for e in errors}
    ranked = []
    for node in result.decisions:
        if node.status != "int8":
            continue
        outs = [sqnr[o] for o in node.outputs if o in sqnr]
        if not outs:
            continue
        ins = [min(sqnr[i], CLEAN_SQNR_DB) for i in node.inputs if i in sqnr]
        after = min(outs)
        drop = min(ins, default=CLEAN_SQNR_DB) - min(after, CLEAN_SQNR_DB)
        ranked.append(Sensitivity(node.id, node.op_type, after, drop))
    ranked.sort(key=lambda s: (-s.drop_db, s.sqnr_db, s.op_id))
    return ranked


class _Search:
    """The state of one greedy search: the best configuration so far and every trial."""

    def __init__(self, ev: _Evaluator, advice: Advice,
                 tick: Callable[[str, Candidate], None]) -> None:
        self.ev, self.advice, self.tick = ev, advice, tick
        self.types = list(ev.base.ops_to_quantize)
        self.skip: list[int] = []
        self.paths: dict[int, Path] = {}  # id(candidate) -> its INT8 model
        self.op_type = {n.id: n.op_type for n in ev.first.decisions}
        path, result = ev.model(self.skip)
        cos, agree = ev.accuracy(path)
        self.path, self.result = path, result
        self.current = self._record(cos, agree, "quantize everything", timed=True)

    def _record(self, cos: float, agree: float | None, note: str, timed: bool = False,
                path: Path | None = None, skip: list[int] | None = None,
                types: list[str] | None = None) -> Candidate:
        latency = self.ev.latencies([path or self.path])[0] if timed else None
        types = list(self.types if types is None else types)
        skip = [i for i in (self.skip if skip is None else skip)  # no ids of an unticked type
                if not types or self.op_type.get(i) in types]
        candidate = Candidate(skip, cos, agree, latency, self.ev.meets(cos, agree), note, types)
        self.advice.candidates.append(candidate)
        self.paths[id(candidate)] = path or self.path
        verdict = "meets the bound" if candidate.meets_bound else "misses the bound"
        ms = f", {latency:.2f} ms" if latency is not None else ""
        self.tick(f"{note}: cosine {cos:.5f}{ms} ({verdict})", candidate)
        return candidate

    def start_from(self, skip: list[int], note: str) -> None:
        """Continue from a configuration measured before (``qcore convert --tune``'s): it
        becomes the current one when it meets the bound or is more accurate."""
        skip = sorted(set(skip) - set(self.ev.base.op_ids_to_skip))
        path, result = self.ev.model(skip, self.types)
        cos, agree = self.ev.accuracy(path)
        candidate = self._record(cos, agree, note, path=path, skip=skip)
        if candidate.meets_bound or self._better(cos, agree):
            self.skip, self.path, self.result, self.current = skip, path, result, candidate

    def _better(self, cos: float, agree: float | None) -> bool:
        return cos > self.current.cosine or (agree or 0) > (self.current.agreement or 0)

    def op_types(self) -> None:
        """Leave out whole op types while that helps (e.g. keep only MatMul / Gemm INT8)."""
        while not self.current.meets_bound:
            present = sorted({n.op_type for n in self.result.decisions if n.status == "int8"})
            if len(present) < 2:
                return
            trials = []
            for op_type in present:
                types = [t for t in present if t != op_type]
                path, result = self.ev.model(self.skip, types)
                cos, agree = self.ev.accuracy(path)
                self._record(cos, agree, f"try without {op_type}", path=path, types=types)
                trials.append((cos, agree or 0.0, types, op_type, path, result))
            cos, agree, types, op_type, path, result = max(trials, key=lambda t: t[:2])
            if not self._better(cos, agree):
                return
            self.types, self.path, self.result = types, path, result
            self.current = self._record(cos, agree or None, f"leave every {op_type} FP32",
                                        timed=True)

    def ops(self, settings: AdviseSettings, cancelled: CancelFn | None) -> None:
        """Keep the most sensitive op's output float while that helps and the bound is missed
        (each step re-ranks, since errors move once an op is FP32)."""
        ranked = rank_sensitive(self.ev.fp32, self.path, self.result, self.ev.feeds, cancelled)
        for _ in range(settings.max_steps):
            if self.current.meets_bound:
                return
            trials = []
            for s in [r for r in ranked if r.op_id not in self.skip][: settings.candidates]:
                skip = sorted(set(self.skip) | set(keep_float(self.result, s.op_id)))
                path, result = self.ev.model(skip, self.types)
                cos, agree = self.ev.accuracy(path)
                self._record(cos, agree, f"try {s.op_type}({s.op_id}) output float", path=path,
                             skip=skip)
                trials.append((cos, agree or 0.0, skip, s, path, result))
            if not trials:
                return
            cos, agree, skip, s, path, result = max(trials, key=lambda t: t[:2])
            if not self._better(cos, agree):
                return
            self.skip, self.path, self.result = skip, path, result
            self.current = self._record(cos, agree or None, f"keep {s.op_type}({s.op_id}) and "
                                        "its output FP32", timed=True)
            ranked = rank_sensitive(self.ev.fp32, path, result, self.ev.feeds, cancelled)

    def everything_fp32(self) -> None:
        """When no configuration tried meets the bound, try every op FP32: against the
        converter's FP32 model it always does; against a float model it tells whether the
        bound can be met at all (the weights stay quantized)."""
        if self.current.meets_bound:
            return
        # Every op by id, those without an INT8 kernel too: each then drops the Q/DQ the
        # source put on its inputs, and the model is the FP32 model.
        skip = sorted(n.id for n in self.ev.first.decisions)
        types = list(self.ev.base.ops_to_quantize)
        path, result = self.ev.model(skip, types)
        cos, agree = self.ev.accuracy(path)
        candidate = self._record(cos, agree, "keep every op FP32 (nothing INT8 met the bound)",
                                 timed=True, path=path, skip=skip, types=types)
        if candidate.meets_bound or self._better(cos, agree):
            self.skip, self.path, self.result, self.current = skip, path, result, candidate
            self.types = types

    def lone_ops(self, lone: list[int], tuned: TunedStart | None = None) -> None:
        """Keep a lone INT8 op FP32 when that is faster and still within the bound. A pair
        ``tuned`` timed already (the same two configurations) is taken from it, not timed
        again."""
        for op_id in lone:
            if op_id in self.skip:
                continue
            skip = sorted(self.skip + [op_id])
            path, result = self.ev.model(skip, self.types)
            cos, agree = self.ev.accuracy(path)
            pair = self._measured(tuned, skip)
            if pair is None:
                base_ms, trial_ms = self.ev.latencies([self.path, path])
                pair, how = MeasuredPair(base_ms, trial_ms, trial_ms < base_ms * 0.98), ""
            else:
                how = ", measured by --tune"
            candidate = self._record(cos, agree, f"lone INT8 op {op_id} kept FP32 "
                                     f"({pair.trial_ms:.2f} vs {pair.base_ms:.2f} ms{how})",
                                     path=path, skip=skip)
            candidate.latency_ms = pair.trial_ms
            if pair.faster and candidate.meets_bound:
                self.skip, self.path, self.result, self.current = skip, path, result, candidate

    def _measured(self, tuned: TunedStart | None, skip: list[int]) -> MeasuredPair | None:
        """The tuner's timing of the current configuration against ``skip``, when it timed
        exactly that pair (it tunes every op type of the base config)."""
        if tuned is None or self.types != list(self.ev.base.ops_to_quantize):
            return None
        return tuned.measured(self.ev.config(self.skip).op_ids_to_skip,
                              self.ev.config(skip).op_ids_to_skip)


    def finish(self) -> None:
        """The best is the fastest configuration within the bound: the distinct candidates
        that meet it are timed again side by side with FP32 and with everything INT8, in one
        round-robin run; every figure shown (table and summary) is from that run."""
        def key(c: Candidate) -> tuple[tuple[int, ...], tuple[str, ...]]:
            return tuple(c.op_ids_to_skip), tuple(c.ops_to_quantize)

        seen: dict[tuple[tuple[int, ...], tuple[str, ...]], Candidate] = {}
        for c in self.advice.candidates:
            if c.meets_bound:
                seen.setdefault(key(c), c)
        first = self.advice.candidates[0]  # everything INT8
        timed = [first] + [c for k, c in seen.items() if k != key(first)]  # each config once
        ms = self.ev.latencies([self.ev.fp32] + [self.paths[id(c)] for c in timed])
        self.advice.fp32_ms, self.advice.all_int8_ms = ms[0], ms[1]
        final = {key(c): latency for c, latency in zip(timed, ms[1:], strict=True)}
        for c in self.advice.candidates:  # a configuration tried twice shows one figure
            c.latency_ms = final.get(key(c), c.latency_ms)
        within = [c for c in timed if c.meets_bound]
        self.advice.best = (min(within, key=lambda c: c.latency_ms or 0.0) if within else
                            self.current)  # nothing meets it: the most accurate tried


def advise(quant_model: str | Path, base: ConvertConfig | None = None,
           settings: AdviseSettings | None = None, progress: ProgressFn | None = None,
           cancelled: CancelFn | None = None,
           on_candidate: Callable[[Candidate], None] | None = None,
           start: TunedStart | None = None) -> Advice:
    """Propose ``ops_to_quantize`` and ``op_ids_to_skip`` for the fastest model within the
    accuracy bound.

    1. Quantize everything ``base`` allows; rank INT8 ops by the SQNR they lose.
    2. While the bound is missed, keep the most sensitive op (and its output) FP32,
       re-ranking after each step: the fewest ops lose their speed-up.
    3. If it is still missed (the error is spread out), leave out the op type whose removal
       helps most, repeatedly.
    4. Keep each lone INT8 op (it pays its own Q and DQ) FP32 when that is faster and still
       within the bound.
    5. Time the configurations that meet the bound again, side by side with FP32 and with
       everything INT8: the best is the fastest of them (``advice.faster_than_fp32`` says
       whether it beats FP32 at all).

    ``progress(done, total, message)`` gets one message per candidate with its numbers, and
    ``on_candidate(candidate)`` each candidate as soon as it is measured.

    ``start``: what ``qcore convert --tune`` measured on this machine before (passed in by
    the CLI from its cache). Steps 2-3 start from its configuration, and step 4 takes each
    pair's timing from it where the tuner timed that very pair.
    """
    base = base or ConvertConfig()
    settings = settings or AdviseSettings()
    steps = settings.max_steps * settings.candidates + 16
    done = 0

    def tick(message: str, candidate: Candidate) -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(min(done, steps), steps, message)
        if on_candidate is not None:
            on_candidate(candidate)

    with temporary_folder("qcore-advise-") as tmp:
        ev = _Evaluator(str(quant_model), base, settings, Path(tmp), cancelled)
        first_path, first = ev.model([])
        sensitive = rank_sensitive(ev.fp32, first_path, first, ev.feeds, cancelled)
        graph = first.snapshots[0].graph
        islands = find_islands(first.decisions, graph.input_names, graph.output_names)
        lone = [i.compute_ids[0] for i in islands if i.lone]
        advice = Advice(base, sensitive, lone, islands)
        if settings.engine == "onnxruntime":
            advice.op_ms = op_times(first_path, ev.feeds, runs=5, threads=settings.threads)
        search = _Search(ev, advice, tick)
        if start is not None:
            search.start_from(start.op_ids_to_skip, start.note)
        search.ops(settings, cancelled)
        search.op_types()
        search.everything_fp32()
        search.lone_ops(lone, start)
        search.finish()
        return advice
