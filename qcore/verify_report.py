"""The results of ``qcore verify`` (one row per pass), and how an INT8 snapshot is judged.

An INT8 snapshot is compared with two references: the source run as fake-quant (the
specification) and the engine running the source QDQ model as a user would. Integer kernels
round accumulators and requantize differently from float fake-quant, so the second says how
far the engine's own rounding moves this model; :func:`int8_allowance` turns that into a
bound, and :func:`int8_verdict` applies both.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any

from qcore.verify_search import Bound, Diff, DriftingOp

__all__ = ["PassCheck", "Stage", "Status", "Tolerance", "VerifyReport", "bound_text",
           "int8_allowance", "int8_failure", "int8_rounding", "int8_verdict"]


class Status(str, Enum):
    OK = "ok"
    # holds: moved only by rounding (before quantize: flips at quantizer ties; from quantize
    # on: within the engine's own integer rounding of the source)
    # on quantize: the op search pinned to the reference's quantized values found only
    # integer rounding at ties (:mod:`qcore.verify_int8`)
    ROUNDING = "rounding"
    DRIFT = "drift"
    NOT_RUNNABLE = "not-runnable"
    SKIPPED = "skipped"  # not checked: an earlier pass failed


class Stage(str, Enum):
    QDQ = "qdq"  # a snapshot before quantize, run with fake-quant (the source's semantics)
    INT8 = "int8"  # quantize and after: the target's INT8 model


@dataclass
class Tolerance:
    """One bound for the snapshots before ``quantize``, one for the INT8 ones.

    Before quantize a snapshot computes the source's function; only float rounding differs
    (BatchNorm folding, fused bias), and a rounding change at a fake-quant tie moves one
    value by one quantization step: that is why max error is allowed 1% of the range.
    INT8 kernels round their accumulators and requantize differently from the QDQ
    reference: a few 8-bit steps (one step is 1/255 of a u8 range, 0.004) on some values,
    hence 5% of the range and cosine >= 0.999.


    The engine's own integer rounding on the source (``engine_vs_source``) widens the INT8
    bound against the fake-quant reference to ``engine_margin`` times it, down to cosine
    ``engine_floor`` at most: an engine further off than that computes something else than
    the source, and widens it no further.
    """

    qdq: Bound = field(default_factory=lambda: Bound(0.9999, 0.01))
    int8: Bound = field(default_factory=lambda: Bound(0.999, 0.05))
    engine_margin: float = 1.5
    engine_floor: float = 0.99

    def for_stage(self, stage: Stage) -> Bound:
        return self.int8 if stage == Stage.INT8 else self.qdq


@dataclass
class PassCheck:
    """One row: a snapshot against the previous one and against the source."""

    index: int
    name: str
    stage: Stage
    status: Status
    vs_previous: Diff | None = None
    vs_source: Diff | None = None
    vs_float: Diff | None = None
    vs_engine: Diff | None = None  # INT8: against the engine running the source QDQ model
    first_op: DriftingOp | None = None
    reason: str = ""
    engine: str = "onnxruntime"
    flips: int = 0  # values the op search saw move one step at a quantizer tie
    pinned: int = 0  # INT8: tensors the op search fed the reference's quantized values

    @property
    def stem(self) -> str:
        return "quant_orig" if self.index < 0 else f"int8_{self.index:02d}_{self.name}"


@dataclass
class VerifyReport:
    """Every pass's check, in pipeline order, and what they ran on."""

    model: str
    target: str
    engine: str
    inputs: str
    generated: bool
    samples: int
    tolerance: Tolerance
    rows: list[PassCheck] = field(default_factory=list)
    float_model: str = ""
    source_vs_float: Diff | None = None
    engine_vs_source: Diff | None = None  # the engine on the source vs the fake-quant one
    notes: list[str] = field(default_factory=list)

    @property
    def failed(self) -> PassCheck | None:
        """The first pass that drifted or could not run, if any."""
        return next((r for r in self.rows if r.status in (Status.DRIFT, Status.NOT_RUNNABLE)),
                    None)

    @property
    def ok(self) -> bool:
        return self.failed is None and bool(self.rows)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---- judging INT8 snapshots ---------------------------------------------------------------
def int8_allowance(bound: Bound, engine: Diff | None, tolerance: Tolerance) -> Bound | None:
    """How far an INT8 snapshot may be from the fake-quant reference when the engine running
    the source is that far itself: ``engine_margin`` times the engine's cosine distance and
    max error, never tighter than ``bound`` and never below cosine ``engine_floor`` (an
    engine further off than that computes something else; it widens the bound no further).
    None when the engine could not run the source."""
    if engine is None:
        return None
    margin = tolerance.engine_margin
    cosine = min(bound.min_cosine, 1.0 - margin * (1.0 - engine.cosine))
    return Bound(max(cosine, min(tolerance.engine_floor, bound.min_cosine)),
                 max(bound.max_error, margin * engine.max_error))


def int8_verdict(diff: Diff, bound: Bound, allowance: Bound | None, on_engine: bool) -> Status:
    """OK within the INT8 bound of the fake-quant reference; ROUNDING when only the engine's
    rounding explains the distance; DRIFT otherwise."""
    if bound.holds(diff):
        return Status.OK
    if on_engine or (allowance is not None and allowance.holds(diff)):
        return Status.ROUNDING
    return Status.DRIFT


def _diff_text(diff: Diff) -> str:
    return f"cosine {diff.cosine:.6f}, max error {diff.max_error:.3g}"


def int8_failure(row: PassCheck, diff: Diff, bound: Bound, allowance: Bound | None,
                  engine: str, against: str) -> str:
    """Which references an INT8 snapshot failed, with their numbers."""
    text = f"against {against}: " + bound_text(diff, bound)
    if allowance is not None:
        text += (f", beyond {engine}'s own rounding on the source (allowed: cosine >= "
                 f"{allowance.min_cosine:.6f}, max error <= {allowance.max_error:.3g})")
    if row.vs_engine is not None:
        text += f"; against {engine} running the source QDQ model: {_diff_text(row.vs_engine)}"
    return text


def int8_rounding(row: PassCheck, diff: Diff, against: str, on_engine: bool, engine: str,
                  report: VerifyReport) -> str:
    """Why an INT8 snapshot ``diff`` away from ``against`` (fake-quant) holds."""
    text = f"INT8 vs {against}: {_diff_text(diff)}; "
    if on_engine and row.vs_engine is not None:
        return text + (f"it agrees with {engine} running the source QDQ model "
                       f"({_diff_text(row.vs_engine)}): the engine's integer rounding")
    assert report.engine_vs_source is not None
    return text + (f"{engine} running the source QDQ model is {_diff_text(report.engine_vs_source)}"
                   f" from the fake-quant source: within {report.tolerance.engine_margin}x the "
                   "engine's own integer rounding")


def bound_text(diff: Diff, bound: Bound) -> str:
    return (f"output {diff.worst}: cosine {diff.cosine:.6f}, max error {diff.max_error:.3g} "
            f"(bound: cosine >= {bound.min_cosine}, max error <= {bound.max_error})")
