"""``qcore verify``: run the source model and every pass snapshot on the same inputs.

Every snapshot up to ``quantize`` must compute the source's function (QDQ semantics): it is
exported with a fake-quant pair on every tensor that has activation qparams and runs on ONNX
Runtime with graph optimizations off, as the source does (:mod:`qcore.verify_model`). From
``quantize`` on, the real INT8 model of the target runs on the chosen engine. Each snapshot is
compared with the one before it and with the source; the first pass whose drift exceeds the
tolerance stops the check, and :mod:`qcore.verify_search` finds the first op whose output
drifts. Before quantize that search runs each op on the previous snapshot's quantized values,
so it tells a pass that changes the function from float rounding that flipped a value at a
quantizer tie (which deep models amplify): the latter pass holds, with status ``rounding``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import onnx

from qcore.bench.engines import first_line
from qcore.bench.inputs import InputSet, generate_inputs, load_inputs, model_inputs
from qcore.config import ConvertConfig
from qcore.convert import Snapshot, convert
from qcore.paddle import is_paddle_model
from qcore.passes import Pass
from qcore.passes.base import Cancelled
from qcore.verify_model import (
    FQ_SUFFIX,
    CancelCheck,
    Feed,
    Runner,
    Runs,
    check_cancelled,
    insert_fake_quant,
    runnable_model,
)
from qcore.verify_search import (
    Bound,
    Diff,
    DriftingOp,
    SearchResult,
    compare_runs,
    diff_arrays,
    find_first_drift,
)

__all__ = ["FQ_SUFFIX", "Bound", "Diff", "DriftingOp", "PassCheck", "Runner", "Stage",
           "Status", "Tolerance", "VerifyReport", "compare_runs", "diff_arrays",
           "insert_fake_quant", "runnable_model", "verify"]

ProgressFn = Callable[[int, int, str], None]
QUANTIZE_PASS = "quantize"


class Status(str, Enum):
    OK = "ok"
    ROUNDING = "rounding"  # holds: the outputs moved only by rounding flips at quantizer ties
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
    """

    qdq: Bound = field(default_factory=lambda: Bound(0.9999, 0.01))
    int8: Bound = field(default_factory=lambda: Bound(0.999, 0.05))

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
    first_op: DriftingOp | None = None
    reason: str = ""
    engine: str = "onnxruntime"
    flips: int = 0  # values the op search saw move one step at a quantizer tie

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


# ---- the check -----------------------------------------------------------------------------
def prepare_inputs(source: str | Path, inputs: InputSet | str | Path | None, samples: int = 4,
                   seed: int = 0) -> InputSet:
    """The user's ``.npz`` / ``.npy`` data, or ``samples`` seeded feeds fitted to the model."""
    specs = model_inputs(source)
    if isinstance(inputs, InputSet):
        return inputs
    if inputs:
        return load_inputs(inputs, specs)
    return generate_inputs(specs, count=samples, seed=seed)


def verify(
    source: str | Path,
    config: ConvertConfig | None = None,
    inputs: InputSet | str | Path | None = None,
    tolerance: Tolerance | None = None,
    float_model: str | Path | None = None,
    cancelled: CancelCheck | None = None,
    progress: ProgressFn | None = None,
    engine: str = "onnxruntime",
    passes: list[Pass] | None = None,
    samples: int = 4,
) -> VerifyReport:
    """Convert ``source`` and check every snapshot numerically (see the module docstring).

    ``engine`` runs the INT8 snapshots (``openvino`` for the onednn target); the source and
    the snapshots before ``quantize`` always run on ONNX Runtime without optimizations.
    """
    config = config or ConvertConfig()
    tolerance = tolerance or Tolerance()
    source = Path(source)
    if is_paddle_model(source):
        raise ValueError(f"{source}: qcore verify runs the ONNX quant model; write one first "
                         "with qcore import-paddle")
    result = convert(source, config, passes=passes, cancelled=cancelled)
    data = prepare_inputs(source, inputs, samples)
    feeds = data.feeds
    report = VerifyReport(str(source), config.target, engine, data.source,
                          data.source.startswith("generated"), len(feeds), tolerance,
                          notes=list(data.notes))
    reference, int8_runner = Runner(reference=True), Runner(engine)
    total = len(result.snapshots) + 1
    source_model = onnx.load(str(source))
    source_runs = reference.run(source_model, feeds, cancelled)
    float_runs = None
    if float_model:
        report.float_model = str(float_model)
        float_runs = reference.run(onnx.load(str(float_model)), feeds, cancelled)
        report.source_vs_float = compare_runs(float_runs, source_runs)
    if progress is not None:
        progress(1, total, "source")
    names = [s.name for s in result.snapshots]
    first_int8 = names.index(QUANTIZE_PASS) if QUANTIZE_PASS in names else len(names)
    prev = (source_model, source_runs, reference)
    rounded = False  # an earlier pass held with rounding flips: the source is further away
    for position, snap in enumerate(result.snapshots):
        check_cancelled(cancelled)
        stage = Stage.INT8 if position >= first_int8 else Stage.QDQ
        runner = int8_runner if stage == Stage.INT8 else reference
        if report.failed is not None:
            report.rows.append(PassCheck(snap.index, snap.name, stage, Status.SKIPPED,
                                         reason="an earlier pass failed", engine=runner.engine))
            continue
        row, current = _check_snapshot(snap, stage, runner, feeds, prev, source_runs,
                                       float_runs, tolerance.for_stage(stage), rounded,
                                       cancelled)
        rounded = rounded or row.status == Status.ROUNDING
        report.rows.append(row)
        if current is not None:
            prev = current
        if progress is not None:
            progress(position + 2, total, snap.name)
    return report


def _check_snapshot(snap: Snapshot, stage: Stage, runner: Runner, feeds: Sequence[Feed],
                    prev: tuple[onnx.ModelProto, Runs, Runner], source_runs: Runs,
                    float_runs: Runs | None, bound: Bound, rounded: bool,
                    cancelled: CancelCheck | None,
                    ) -> tuple[PassCheck, tuple[onnx.ModelProto, Runs, Runner] | None]:
    row = PassCheck(snap.index, snap.name, stage, Status.OK, engine=runner.engine)
    try:
        model = runnable_model(snap.graph, fake_quant=stage == Stage.QDQ)
        runs = runner.run(model, feeds, cancelled)
    except Cancelled:
        raise
    except Exception as exc:  # noqa: BLE001 - any export or engine failure is the finding
        row.status, row.reason = Status.NOT_RUNNABLE, first_line(exc)
        return row, None
    try:
        row.vs_previous = compare_runs(prev[1], runs)
        row.vs_source = compare_runs(source_runs, runs)
        if float_runs is not None:
            row.vs_float = compare_runs(float_runs, runs)
    except ValueError as exc:
        row.status, row.reason = Status.NOT_RUNNABLE, str(exc)
        return row, None
    current = (model, runs, runner)
    if bound.holds(row.vs_previous):
        if not bound.holds(row.vs_source):
            if rounded:
                row.reason = "against the source: moved by the rounding flips of an earlier pass"
            else:
                row.status = Status.DRIFT
                row.reason = (_bound_text(row.vs_source, bound) + " against the source: small "
                              "drifts of the passes so far add up")
        return row, current
    row.status = Status.DRIFT
    row.reason = _bound_text(row.vs_previous, bound)
    try:
        found = find_first_drift(prev[0], model, feeds, bound, prev[2], runner, snap.graph,
                                 pinned=stage == Stage.QDQ, cancelled=cancelled)
    except Cancelled:
        raise
    except Exception as exc:  # noqa: BLE001 - the drift stands; the search is a bonus
        row.reason += f"; the drifting op could not be found ({first_line(exc)})"
        return row, current
    _apply_search(row, found, stage)
    return row, current


def _apply_search(row: PassCheck, found: SearchResult, stage: Stage) -> None:
    """A drift whose only cause is rounding flips holds (before quantize)."""
    row.first_op, row.flips = found.first, found.flips
    if found.first is not None or stage != Stage.QDQ or not found.compared:
        return
    row.status = Status.ROUNDING
    row.reason = "every op computes the source's function; "
    if found.flips:
        row.reason += (f"float rounding flipped {found.flips} values by one step at quantizer "
                       f"ties (first at {found.first_flip}), which moved the outputs")
    else:
        row.reason += "the outputs differ by float rounding"


def _bound_text(diff: Diff, bound: Bound) -> str:
    return (f"output {diff.worst}: cosine {diff.cosine:.6f}, max error {diff.max_error:.3g} "
            f"(bound: cosine >= {bound.min_cosine}, max error <= {bound.max_error})")
