"""Accuracy of one model against a reference on the same inputs: outputs and every tensor.

- :func:`compare_models`: per graph output, cosine similarity, max / mean abs difference and,
  for classifier-shaped outputs, top-1 agreement and top-5 overlap.
- :func:`per_tensor_error`: ONNX Runtime's ``qdq_loss_debug`` recipe. Both models run with
  every intermediate tensor exposed, tensors are matched by name and shape (qcore keeps float
  tensor names through conversion), and each gets its SQNR in dB,
  ``10*log10(sum(ref**2) / sum((ref - test)**2))`` (``inf`` when identical), worst first, with
  the op that produced it in the test model and that op's qcore id (``name#id``) — the op a
  user would put in ``op_ids_to_skip``.
- :func:`records` / :func:`node_data` export per-tensor errors for the app: a list of dicts, or
  Model Explorer's node-data shape keyed by op id.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from qcore.bench.engines import Engine, NotRunnable, get_engine
from qcore.bench.errors import BenchCancelled
from qcore.bench.nodedata import SQNR_THRESHOLDS, graph_node_data
from qcore.bench.taps import Taps, dequantize
from qcore.status import RunStatus

Feed = dict[str, np.ndarray]
CancelCheck = Callable[[], bool]
CLASSIFIER_WORDS = ("logit", "prob", "score", "class", "softmax", "pred")


@dataclass
class OutputAccuracy:
    """One graph output compared over all samples (cosine is the mean over samples)."""

    name: str
    shape: list[int]
    cosine: float
    cosine_min: float
    max_abs_diff: float
    mean_abs_diff: float
    ref_max_abs: float
    top1_agreement: float | None = None
    top5_overlap: float | None = None
    rows: int = 0


@dataclass
class TensorError:
    """SQNR of one intermediate tensor; ``op_*`` describe its producer in the test model."""

    tensor: str
    shape: list[int]
    sqnr_db: float
    max_abs_diff: float
    op_type: str = ""
    op_id: int | None = None
    op_name: str = ""
    dequantized: bool = False


@dataclass
class AccuracyResult:
    """``test`` against ``reference`` on one engine; ``status`` is ok, skipped or failed."""

    reference: str
    test: str
    engine: str
    samples: int = 0
    outputs: list[OutputAccuracy] = field(default_factory=list)
    per_tensor: list[TensorError] | None = None
    per_tensor_note: str = ""
    status: RunStatus = RunStatus.OK
    reason: str = ""

    def __post_init__(self) -> None:
        self.status = RunStatus(self.status)  # also when read back from JSON

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def is_classifier(name: str, shape: Sequence[int]) -> bool:
    """[N, C] outputs, or any rank whose name says logits / probabilities / scores."""
    if len(shape) < 2 or shape[-1] < 2:
        return False
    return len(shape) == 2 or any(word in name.lower() for word in CLASSIFIER_WORDS)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine of two arrays as flat float64 vectors (1 for two zero arrays)."""
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 and nb == 0:
        return 1.0
    return float(a @ b / (na * nb)) if na and nb else 0.0


def compare_arrays(name: str, refs: list[np.ndarray], tests: list[np.ndarray]) -> OutputAccuracy:
    """Compare one output over samples (``refs[i]`` and ``tests[i]`` come from one feed)."""
    cos = [cosine(r, t) for r, t in zip(refs, tests, strict=True)]
    diffs = [np.abs(r.astype(np.float64) - t.astype(np.float64)) for r, t in
             zip(refs, tests, strict=True)]
    result = OutputAccuracy(
        name=name, shape=list(refs[0].shape), cosine=float(np.mean(cos)),
        cosine_min=float(np.min(cos)), max_abs_diff=float(max(d.max(initial=0) for d in diffs)),
        mean_abs_diff=float(np.mean([d.mean() if d.size else 0.0 for d in diffs])),
        ref_max_abs=float(max(np.abs(r).max(initial=0) for r in refs)),
    )
    if is_classifier(name, refs[0].shape):
        ref = np.concatenate([r.reshape(-1, r.shape[-1]) for r in refs])
        test = np.concatenate([t.reshape(-1, t.shape[-1]) for t in tests])
        k = min(5, ref.shape[-1])
        result.rows = int(ref.shape[0])
        result.top1_agreement = float(np.mean(ref.argmax(-1) == test.argmax(-1)))
        top_r = np.argsort(-ref, axis=-1, kind="stable")[:, :k]
        top_t = np.argsort(-test, axis=-1, kind="stable")[:, :k]
        overlap = [len(set(a) & set(b)) / k for a, b in zip(top_r, top_t, strict=True)]
        result.top5_overlap = float(np.mean(overlap))
    return result


def _check(cancelled: CancelCheck | None) -> None:
    if cancelled is not None and cancelled():
        raise BenchCancelled("accuracy comparison cancelled")


def compare_models(
    reference: str | Path, test: str | Path, feeds: Sequence[Feed],
    engine: str | Engine = "onnxruntime", threads: int = 1,
    labels: tuple[str, str] | None = None, cancelled: CancelCheck | None = None,
) -> AccuracyResult:
    """Run both models on ``feeds`` with ``engine`` and compare their outputs.

    Outputs are matched by name, or by position when the names differ but the counts agree.
    A model the engine cannot run gives ``status="skipped"`` with the reason.
    """
    eng = get_engine(engine) if isinstance(engine, str) else engine
    ref_label, test_label = labels or (Path(reference).stem, Path(test).stem)
    result = AccuracyResult(ref_label, test_label, eng.name, samples=len(feeds))
    shapes = {k: tuple(v.shape) for k, v in feeds[0].items()}
    outputs: list[list[dict[str, np.ndarray]]] = []
    for path in (reference, test):
        try:
            session = eng.load(Path(path), threads, shapes)
        except NotRunnable as exc:
            result.status, result.reason = RunStatus.SKIPPED, str(exc)
            return result
        runs = []
        for feed in feeds:
            _check(cancelled)
            runs.append(session.run(feed))
        session.close()
        outputs.append(runs)
    ref_names, test_names = list(outputs[0][0]), list(outputs[1][0])
    pairs = [(n, n) for n in ref_names if n in test_names]
    if not pairs and len(ref_names) == len(test_names):
        pairs = list(zip(ref_names, test_names, strict=True))
    for ref_name, test_name in pairs:
        refs = [run[ref_name] for run in outputs[0]]
        tests = [run[test_name] for run in outputs[1]]
        if refs[0].shape != tests[0].shape:
            continue
        result.outputs.append(compare_arrays(ref_name, refs, tests))
    if not result.outputs:
        result.status, result.reason = RunStatus.FAILED, "no output of the same name and shape"
    return result


def sqnr_db(signal: float, noise: float) -> float:
    """10*log10(signal / noise) in dB: inf for no noise, -inf for a zero signal with noise."""
    if noise == 0:
        return math.inf
    if signal == 0:
        return -math.inf
    return 10.0 * math.log10(signal / noise)


def _run_exposed(taps: Taps, feeds: Sequence[Feed],
                 cancelled: CancelCheck | None) -> Iterator[dict[str, np.ndarray]]:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    opts.log_severity_level = 3
    session = ort.InferenceSession(taps.exposed().SerializeToString(), opts,
                                   providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    wanted = [i.name for i in session.get_inputs()]
    for feed in feeds:
        _check(cancelled)
        yield dict(zip(names, session.run(None, {k: feed[k] for k in wanted}), strict=True))


def per_tensor_error(
    reference: str | Path, test: str | Path, feeds: Sequence[Feed],
    cancelled: CancelCheck | None = None, labels: tuple[str, str] | None = None,
) -> tuple[list[TensorError], str]:
    """SQNR of every tensor both models compute (worst first), on ONNX Runtime.

    Returns:
        The errors, and a note saying how many float tensors of the test model were matched.
    """
    ref_taps = Taps(onnx.load(str(reference)))
    test_taps = Taps(onnx.load(str(test)))
    sums: dict[str, list[float]] = {}  # name -> [signal, noise, max abs diff]
    shapes: dict[str, list[int]] = {}
    source: dict[str, str] = {}  # matched name -> the test model's tensor it came from
    candidates: set[str] = set()
    for ref_run, test_run in zip(_run_exposed(ref_taps, feeds, cancelled),
                                 _run_exposed(test_taps, feeds, cancelled), strict=True):
        for name, value in test_run.items():
            base, array = name, value
            if value.dtype.kind in "iu":
                base = test_taps.float_name(name) or ""
                params = test_taps.qparams(name) if base else None
                if params is None or base in test_run:
                    continue
                array = dequantize(value, params)
            elif value.dtype.kind != "f":
                continue
            elif name in test_taps.requantized and test_taps.requantized[name] in test_run:
                array = test_run[test_taps.requantized[name]]  # what the next op reads
            candidates.add(base)
            ref = ref_run.get(base)
            if ref is None or ref.dtype.kind != "f" or ref.shape != array.shape:
                continue
            r, t = ref.astype(np.float64), array.astype(np.float64)
            acc = sums.setdefault(base, [0.0, 0.0, 0.0])
            acc[0] += float(np.sum(r * r))
            acc[1] += float(np.sum((r - t) ** 2))
            acc[2] = max(acc[2], float(np.max(np.abs(r - t), initial=0.0)))
            shapes[base] = list(ref.shape)
            source[base] = name
    errors = []
    for name, (signal, noise, max_diff) in sums.items():
        producer = test_taps.producer(source[name])
        errors.append(TensorError(
            name, shapes[name], sqnr_db(signal, noise), max_diff,
            producer.op_type if producer else "", producer.op_id if producer else None,
            producer.name if producer else "", source[name] != name))
    errors.sort(key=lambda e: (e.sqnr_db, e.tensor))
    from_int = sum(e.dequantized for e in errors)
    ref_label, test_label = labels or (Path(reference).stem, Path(test).stem)
    note = (f"{len(errors)} of {len(candidates)} float tensors of {test_label} matched a "
            f"tensor of {ref_label} by name and shape"
            + (f" ({from_int} of them dequantized from int8)" if from_int else ""))
    return errors, note


def records(errors: Sequence[TensorError]) -> list[dict[str, Any]]:
    """Per-tensor errors as plain dicts (the app's table rows), worst first."""
    return [asdict(e) for e in errors]


def node_data(errors: Sequence[TensorError], cap_db: float = 200.0) -> dict[str, Any]:
    """Model Explorer ``GraphNodeData``: the worst SQNR per op id, coloured by thresholds.

    Keys of ``results`` are op ids as strings; infinite SQNR is capped at ``cap_db``
    (the shape is :func:`qcore.bench.nodedata.graph_node_data`'s).
    """
    worst: dict[int, float] = {}
    for e in errors:
        if e.op_id is None:
            continue
        value = max(min(e.sqnr_db, cap_db), -cap_db)
        worst[e.op_id] = min(worst.get(e.op_id, value), value)
    return graph_node_data(worst, thresholds=SQNR_THRESHOLDS)
