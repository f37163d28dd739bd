"""Which accuracy comparisons a benchmark run makes, and running them with progress/cancel.

The reference is ``fp32`` (else ``qdq``). Every other model is compared with it on every
engine that can run both; with ``fp32`` as reference, INT8 models (labels starting with
``int8``) are also compared with ``qdq``, the model they were converted from. Per-tensor SQNR
runs on ONNX Runtime against the reference only, on the first :data:`PER_TENSOR_FEEDS` feeds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from qcore.bench.accuracy import AccuracyResult, compare_models, per_tensor_error
from qcore.bench.engines import Engine, first_line
from qcore.bench.errors import BenchCancelled
from qcore.bench.inputs import InputSet
from qcore.status import RunStatus

if TYPE_CHECKING:
    from qcore.bench.progress import CancelCheck, Progress
    from qcore.bench.runner import BenchSettings

PER_TENSOR_FEEDS = 4


def reference_label(labels: list[str]) -> str | None:
    """The model others are compared with: ``fp32``, else ``qdq``, else None."""
    return next((name for name in ("fp32", "qdq") if name in labels), None)


@dataclass
class AccuracyJob:
    """Compare ``test`` with ``reference`` on ``engine`` (None: per-tensor only)."""

    reference: str
    test: str
    engine: Engine | None
    per_tensor: bool

    def units(self, feeds: int) -> int:
        return ((2 * feeds if self.engine else 0)
                + (2 * min(feeds, PER_TENSOR_FEEDS) if self.per_tensor else 0))


def accuracy_jobs(labels: list[str], engines: list[Engine],
                  settings: BenchSettings) -> list[AccuracyJob]:
    """The comparisons ``settings`` asks for, in report order."""
    ref = reference_label(labels)
    if ref is None or not (settings.accuracy or settings.per_tensor):
        return []
    pairs = [(ref, x) for x in labels if x != ref]
    if ref == "fp32" and "qdq" in labels:
        pairs += [("qdq", x) for x in labels if x.startswith("int8")]
    jobs = []
    ort = next((e for e in engines if e.name == "onnxruntime"), None)
    for a, b in pairs:
        tensors = settings.per_tensor and a == ref
        if settings.accuracy:
            jobs += [AccuracyJob(a, b, e, tensors and e is ort) for e in engines]
        if tensors and (ort is None or not settings.accuracy):
            jobs.append(AccuracyJob(a, b, None, True))
    return jobs


def _run_job(job: AccuracyJob, paths: Mapping[str, Path], inputs: InputSet, threads: int,
             tick: CancelCheck) -> AccuracyResult:
    ref, test = paths[job.reference], paths[job.test]
    labels = (job.reference, job.test)
    if job.engine is not None:
        result = compare_models(ref, test, inputs.feeds, job.engine, threads, labels, tick)
    else:
        result = AccuracyResult(*labels, "onnxruntime", samples=len(inputs.feeds))
    if job.per_tensor and result.status is not RunStatus.SKIPPED:
        feeds = inputs.feeds[:PER_TENSOR_FEEDS]
        try:
            result.per_tensor, note = per_tensor_error(ref, test, feeds, tick, labels)
            result.per_tensor_note = f"{note}; {len(feeds)} feed(s), ONNX Runtime"
        except BenchCancelled:
            raise
        except Exception as exc:  # noqa: BLE001
            result.per_tensor_note = f"per-tensor comparison failed: {first_line(exc)}"
    return result


def run_accuracy(jobs: list[AccuracyJob], paths: Mapping[str, Path], inputs: InputSet,
                 settings: BenchSettings, tracker: Progress) -> list[AccuracyResult]:
    """Run ``jobs``; each inference advances ``tracker`` and polls its cancel check."""
    results = []
    threads = max(int(t) for t in settings.threads)
    for job in jobs:
        where = job.engine.name if job.engine else "onnxruntime"
        message = f"accuracy {job.test} vs {job.reference} on {where}"
        start = tracker.done

        def tick(message: str = message) -> bool:
            tracker.check()
            tracker.advance(1, message)
            return False

        try:
            results.append(_run_job(job, paths, inputs, threads, tick))
        except BenchCancelled:
            raise
        except Exception as exc:  # noqa: BLE001 - a failed comparison is a result
            results.append(AccuracyResult(job.reference, job.test, where, len(inputs.feeds),
                                          status=RunStatus.FAILED, reason=first_line(exc)))
        tracker.advance(max(0, start + job.units(len(inputs.feeds)) - tracker.done))
    return results
