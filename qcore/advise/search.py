"""The advisor: rank the ops that hurt accuracy, find lone INT8 ops, and search greedily for
the fastest configuration that stays within the user's accuracy bound."""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import onnx

from qcore.advise.islands import Island, find_islands
from qcore.bench.accuracy import compare_models, per_tensor_error
from qcore.bench.engines import get_engine
from qcore.bench.inputs import generate_inputs, load_inputs, model_inputs
from qcore.config import ConvertConfig
from qcore.convert import ConversionResult, convert
from qcore.passes.base import Cancelled

# What an unquantized input counts as: about the SQNR of a well-used 8-bit grid, so the first
# INT8 op after float is charged for quantizing its input, but not infinitely.
CLEAN_SQNR_DB = 40.0

ProgressFn = Callable[[int, int, str], None]
CancelFn = Callable[[], bool]


@dataclass
class AdviseSettings:
    """Accuracy bound (against the FP32 model) and how much work the search may do."""

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


@dataclass
class Candidate:
    """One configuration tried, with what it measured."""

    op_ids_to_skip: list[int]
    cosine: float
    agreement: float | None
    latency_ms: float | None
    meets_bound: bool
    note: str


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

    def flags(self) -> str:
        """The `qcore convert` flags of the best configuration."""
        parts = []
        if self.base.ops_to_quantize:
            parts.append(f"--ops_to_quantize {','.join(self.base.ops_to_quantize)}")
        if self.best is not None and self.best.op_ids_to_skip:
            parts.append(f"--op_ids_to_skip {','.join(map(str, self.best.op_ids_to_skip))}")
        return " ".join(parts)

    def to_dict(self) -> dict:
        return {
            "base": asdict(self.base),
            "sensitive": [asdict(s) for s in self.sensitive],
            "lone_ops": self.lone_ops,
            "islands": [asdict(i) for i in self.islands],
            "candidates": [asdict(c) for c in self.candidates],
            "best": asdict(self.best) if self.best else None,
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
        specs = model_inputs(self.fp32)
        self.feeds = (load_inputs(settings.inputs, specs) if settings.inputs else
                      generate_inputs(specs, count=settings.samples, seed=settings.seed)).feeds
        self.first = first
        self._count = 0

    def config(self, skip: list[int]) -> ConvertConfig:
        return ConvertConfig(self.base.ops_to_quantize, sorted(set(self.base.op_ids_to_skip)
                                                               | set(skip)), self.base.target)

    def model(self, skip: list[int]) -> tuple[Path, ConversionResult]:
        self._check()
        result = convert(self.quant, self.config(skip))
        self._count += 1
        path = self.work / f"candidate_{self._count}.onnx"
        onnx.save(result.int8_model(), str(path))
        return path, result

    def accuracy(self, path: Path) -> tuple[float, float | None]:
        result = compare_models(self.fp32, path, self.feeds, engine=self.settings.engine,
                                threads=self.settings.threads, cancelled=self.cancelled)
        if result.status != "ok":
            raise RuntimeError(f"accuracy check failed: {result.reason}")
        cosine = min(o.cosine_min for o in result.outputs)
        agreements = [o.top1_agreement for o in result.outputs if o.top1_agreement is not None]
        return cosine, (min(agreements) if agreements else None)

    def meets(self, cosine: float, agreement: float | None) -> bool:
        s = self.settings
        if cosine < s.min_cosine:
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


def rank_sensitive(fp32: Path, int8: Path, result: ConversionResult, feeds: list,
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


def advise(quant_model: str | Path, base: ConvertConfig | None = None,
           settings: AdviseSettings | None = None, progress: ProgressFn | None = None,
           cancelled: CancelFn | None = None) -> Advice:
    """Propose ``op_ids_to_skip`` for the fastest model within the accuracy bound.

    1. Quantize everything ``base`` allows; rank INT8 ops by the SQNR they lose.
    2. While the bound is missed, try skipping each of the few most sensitive ops and keep
       the one that helps most (re-ranking after each step).
    3. Try skipping each lone INT8 op (it pays its own Q and DQ) and keep it FP32 when that
       is faster and still within the bound.
    """
    base = base or ConvertConfig()
    settings = settings or AdviseSettings()
    steps = settings.max_steps * settings.candidates + 8
    done = 0

    def tick(message: str) -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(min(done, steps), steps, message)

    with tempfile.TemporaryDirectory(prefix="qcore-advise-") as tmp:
        ev = _Evaluator(str(quant_model), base, settings, Path(tmp), cancelled)
        skip: list[int] = []
        path, result = ev.model(skip)
        cos, agree = ev.accuracy(path)
        sensitive = rank_sensitive(ev.fp32, path, result, ev.feeds, cancelled)
        graph = result.snapshots[0].graph
        islands = find_islands(result.decisions, graph.input_names, graph.output_names)
        lone = [i.compute_ids[0] for i in islands if i.lone]
        advice = Advice(base, sensitive, lone, islands)
        current = Candidate([], cos, agree, ev.latencies([path])[0], ev.meets(cos, agree),
                            "quantize everything")
        advice.candidates.append(current)
        tick("measured: quantize everything")
        ranked, best_path, current_result = sensitive, path, result
        for _ in range(settings.max_steps):
            if current.meets_bound:
                break
            trials = []
            for s in [r for r in ranked if r.op_id not in skip][: settings.candidates]:
                trial_skip = sorted(set(skip) | set(keep_float(current_result, s.op_id)))
                trial_path, trial_result = ev.model(trial_skip)
                c, a = ev.accuracy(trial_path)
                trials.append((c, a, s, trial_skip, trial_path, trial_result))
                advice.candidates.append(Candidate(trial_skip, c, a, None, ev.meets(c, a),
                                                   f"try {s.op_type}({s.op_id}) output float"))
                tick(f"tried {s.op_type}({s.op_id}) in FP32")
            if not trials:
                break
            c, a, s, trial_skip, trial_path, trial_result = max(
                trials, key=lambda t: (t[0], t[1] or 0))
            if c <= current.cosine and (a or 0) <= (current.agreement or 0):
                break
            skip = trial_skip
            current = Candidate(skip, c, a, ev.latencies([trial_path])[0], ev.meets(c, a),
                                f"keep {s.op_type}({s.op_id}) and its output FP32")
            current_result = trial_result
            advice.candidates.append(current)
            best_path = trial_path
            ranked = rank_sensitive(ev.fp32, trial_path, trial_result, ev.feeds, cancelled)
        for op_id in lone:
            if op_id in skip:
                continue
            trial_path, _ = ev.model(skip + [op_id])
            c, a = ev.accuracy(trial_path)
            base_ms, trial_ms = ev.latencies([best_path, trial_path])
            faster = trial_ms < base_ms * 0.98
            candidate = Candidate(sorted(skip + [op_id]), c, a, trial_ms, ev.meets(c, a),
                                  f"lone INT8 op {op_id} kept FP32 "
                                  f"({trial_ms:.2f} vs {base_ms:.2f} ms)")
            advice.candidates.append(candidate)
            tick(f"tried the lone INT8 op {op_id} in FP32")
            if faster and candidate.meets_bound:
                skip, current, best_path = candidate.op_ids_to_skip, candidate, trial_path
        advice.best = current
        return advice
