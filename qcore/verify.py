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

An INT8 snapshot is judged as a user would judge it: against the fake-quant reference and
against the engine running the *source* QDQ model (ONNX Runtime with its default
optimizations, or OpenVINO), whose integer kernels round differently from float fake-quant
(:func:`int8_allowance`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import onnx

from qcore.bench.engines import first_line
from qcore.bench.inputs import InputSet, generate_inputs, load_inputs, model_inputs
from qcore.config import ConvertConfig
from qcore.convert import Snapshot, convert
from qcore.paddle import is_paddle_model
from qcore.passes import Pass
from qcore.passes.base import Cancelled
from qcore.verify_int8 import PinnedResult, find_int8_drift
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
from qcore.verify_report import (
    PassCheck,
    Stage,
    Status,
    Tolerance,
    VerifyReport,
    bound_text,
    int8_allowance,
    int8_failure,
    int8_rounding,
    int8_verdict,
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

__all__ = ["ENGINE_OF_TARGET", "FQ_SUFFIX", "Bound", "Diff", "DriftingOp", "PassCheck",
           "Runner", "Stage", "Status", "Tolerance", "VerifyReport", "compare_runs", "diff_arrays",
           "insert_fake_quant", "int8_allowance", "runnable_model", "verify"]

ProgressFn = Callable[[int, int, str], None]
QUANTIZE_PASS = "quantize"
#: The engine a user runs each target's models on.
ENGINE_OF_TARGET = {"onnxruntime": "onnxruntime", "onednn": "openvino"}


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
    engine: str | None = None,
    passes: list[Pass] | None = None,
    samples: int = 4,
) -> VerifyReport:
    """Convert ``source`` and check every snapshot numerically (see the module docstring).

    ``engine`` runs the INT8 snapshots and the source as a user runs it (default: OpenVINO
    for the onednn target, ONNX Runtime otherwise); the fake-quant reference and the
    snapshots before ``quantize`` always run on ONNX Runtime without optimizations.
    """
    config = config or ConvertConfig()
    engine = engine or ENGINE_OF_TARGET[config.target]
    source = Path(source)
    if is_paddle_model(source):
        raise ValueError(f"{source}: qcore verify runs the ONNX quant model; write one first "
                         "with qcore import-paddle")
    result = convert(source, config, passes=passes, cancelled=cancelled)
    data = prepare_inputs(source, inputs, samples)
    report = VerifyReport(str(source), config.target, engine, data.source,
                          data.source.startswith("generated"), len(data.feeds),
                          tolerance or Tolerance(), notes=list(data.notes))
    names = [s.name for s in result.snapshots]
    first_int8 = names.index(QUANTIZE_PASS) if QUANTIZE_PASS in names else len(names)
    check = _Checker(report, list(data.feeds), Runner(reference=True), Runner(engine), cancelled)
    check.run_sources(onnx.load(str(source)), float_model, first_int8 < len(names))
    if progress is not None:
        progress(1, len(names) + 1, "source")
    for position, snap in enumerate(result.snapshots):
        check_cancelled(cancelled)
        check.snapshot(snap, Stage.INT8 if position >= first_int8 else Stage.QDQ)
        if progress is not None:
            progress(position + 2, len(names) + 1, snap.name)
    return report


Previous = tuple[onnx.ModelProto, Runs, Runner]


@dataclass
class _Checker:
    """The state of one verify run: the runs every snapshot is compared with."""

    report: VerifyReport
    feeds: list[Feed]
    reference: Runner
    int8_runner: Runner
    cancelled: CancelCheck | None
    source_runs: Runs = field(default_factory=list)
    float_runs: Runs | None = None
    engine_runs: Runs | None = None  # the INT8 engine running the source QDQ model
    prev: Previous | None = None
    last_qdq: Previous | None = None  # the last fake-quant snapshot (or the source)
    rounded: bool = False  # an earlier pass held with rounding flips: the source is further

    def run_sources(self, source: onnx.ModelProto, float_model: str | Path | None,
                    int8: bool) -> None:
        """The fake-quant reference, the float model, and the engine on the source."""
        report = self.report
        self.source_runs = self.reference.run(source, self.feeds, self.cancelled)
        self.prev = self.last_qdq = (source, self.source_runs, self.reference)
        if float_model:
            report.float_model = str(float_model)
            self.float_runs = self.reference.run(onnx.load(str(float_model)), self.feeds,
                                                 self.cancelled)
            report.source_vs_float = compare_runs(self.float_runs, self.source_runs)
        if not int8:
            return
        try:
            self.engine_runs = self.int8_runner.run(source, self.feeds, self.cancelled)
            report.engine_vs_source = compare_runs(self.source_runs, self.engine_runs)
        except Cancelled:
            raise
        except Exception as exc:  # noqa: BLE001 - then INT8 is judged on the reference only
            report.notes.append(f"{self.int8_runner.engine} cannot run the source QDQ model "
                                f"({first_line(exc)}): INT8 is judged against the fake-quant "
                                "reference only")
            return
        if report.engine_vs_source.cosine < report.tolerance.engine_floor:
            report.notes.append(f"{self.int8_runner.engine} on the source QDQ model is beyond "
                                f"cosine {report.tolerance.engine_floor} of the fake-quant "
                                "reference: its rounding widens the INT8 bound only to that")

    def snapshot(self, snap: Snapshot, stage: Stage) -> None:
        """Check one snapshot and append its row."""
        runner = self.int8_runner if stage == Stage.INT8 else self.reference
        if self.report.failed is not None:
            self.report.rows.append(PassCheck(snap.index, snap.name, stage, Status.SKIPPED,
                                              reason="an earlier pass failed",
                                              engine=runner.engine))
            return
        row, current = self._check(snap, stage, runner)
        self.rounded = self.rounded or (stage == Stage.QDQ and row.status == Status.ROUNDING)
        self.report.rows.append(row)
        if current is not None:
            self.prev = current
            if stage == Stage.QDQ:
                self.last_qdq = current

    def _check(self, snap: Snapshot, stage: Stage, runner: Runner,
               ) -> tuple[PassCheck, Previous | None]:
        assert self.prev is not None
        row = PassCheck(snap.index, snap.name, stage, Status.OK, engine=runner.engine)
        try:
            model = runnable_model(snap.graph, fake_quant=stage == Stage.QDQ)
            runs = runner.run(model, self.feeds, self.cancelled)
        except Cancelled:
            raise
        except Exception as exc:  # noqa: BLE001 - any export or engine failure is the finding
            row.status, row.reason = Status.NOT_RUNNABLE, first_line(exc)
            return row, None
        try:
            self._compare(row, runs)
        except ValueError as exc:
            row.status, row.reason = Status.NOT_RUNNABLE, str(exc)
            return row, None
        current = (model, runs, runner)
        if stage == Stage.INT8:
            judged = self._judge_int8(row)
        else:
            judged = self._judge_qdq(row)
        if judged:
            return row, current
        self._search(row, snap, model, runner)
        return row, current

    def _compare(self, row: PassCheck, runs: Runs) -> None:
        assert self.prev is not None
        row.vs_previous = compare_runs(self.prev[1], runs)
        row.vs_source = compare_runs(self.source_runs, runs)
        if self.float_runs is not None:
            row.vs_float = compare_runs(self.float_runs, runs)
        if row.stage == Stage.INT8 and self.engine_runs is not None:
            row.vs_engine = compare_runs(self.engine_runs, runs)

    def _judge_qdq(self, row: PassCheck) -> bool:
        """True when the row is decided without the op search (it may still drift)."""
        assert row.vs_previous is not None and row.vs_source is not None
        bound = self.report.tolerance.qdq
        if not bound.holds(row.vs_previous):
            row.status, row.reason = Status.DRIFT, bound_text(row.vs_previous, bound)
            return False
        self._judge_source(row, bound.holds(row.vs_source), bound_text(row.vs_source, bound))
        return True

    def _judge_source(self, row: PassCheck, holds: bool, failure: str) -> None:
        if holds:
            return
        if self.rounded:
            row.reason = "against the source: moved by the rounding flips of an earlier pass"
        else:
            row.status = Status.DRIFT
            row.reason = failure + " against the source: small drifts of the passes so far add up"

    def _judge_int8(self, row: PassCheck) -> bool:
        """An INT8 snapshot holds against the previous snapshot and the source when within
        the INT8 bound, or within the engine's own rounding (see :func:`int8_allowance`)."""
        assert self.prev is not None and row.vs_previous is not None
        tolerance, engine = self.report.tolerance, self.int8_runner.engine
        bound = tolerance.int8
        allowance = int8_allowance(bound, self.report.engine_vs_source, tolerance)
        on_engine = row.vs_engine is not None and bound.holds(row.vs_engine)
        # quantize: the snapshot before is fake-quant; later, INT8 that the engine compiles
        # anew (OpenVINO fuses a cleaned-up graph differently): both move by its rounding
        verdict = int8_verdict(row.vs_previous, bound, allowance, on_engine)
        if verdict == Status.DRIFT:
            row.status = Status.DRIFT
            before = "the snapshot before" + (" (fake-quant)" if self.prev[2].reference else "")
            row.reason = int8_failure(row, row.vs_previous, bound, allowance, engine, before)
            return False
        assert row.vs_source is not None
        source = int8_verdict(row.vs_source, bound, allowance, on_engine)
        self._judge_source(row, source != Status.DRIFT,
                           int8_failure(row, row.vs_source, bound, allowance, engine,
                                         "the source's fake-quant reference"))
        if row.status != Status.DRIFT and Status.ROUNDING in (verdict, source):
            row.status = Status.ROUNDING
            if source == Status.ROUNDING:
                row.reason = int8_rounding(row, row.vs_source, "the fake-quant reference",
                                           on_engine, engine, self.report)
            else:  # vs the source: OK, or moved by the rounding flips of an earlier pass
                excuse = f"; {row.reason}" if row.reason else ""
                row.reason = int8_rounding(row, row.vs_previous, "the snapshot before",
                                           on_engine, engine, self.report) + excuse
        return True

    def _search(self, row: PassCheck, snap: Snapshot, model: onnx.ModelProto,
                runner: Runner) -> None:
        assert self.prev is not None
        if row.stage == Stage.INT8 and self._search_pinned(row, snap, model, runner):
            return
        bound = self.report.tolerance.for_stage(row.stage)
        try:
            found = find_first_drift(self.prev[0], model, self.feeds, bound, self.prev[2],
                                     runner, snap.graph, pinned=row.stage == Stage.QDQ,
                                     cancelled=self.cancelled)
        except Cancelled:
            raise
        except Exception as exc:  # noqa: BLE001 - the drift stands; the search is a bonus
            row.reason += f"; the drifting op could not be found ({first_line(exc)})"
            return
        _apply_search(row, found, row.stage)


    def _search_pinned(self, row: PassCheck, snap: Snapshot, model: onnx.ModelProto,
                       runner: Runner) -> bool:
        """The INT8 search on the reference's quantized values (:mod:`qcore.verify_int8`);
        False (with the reason in the row) when pinning is impossible. After an INT8
        snapshot, an op that fails against it is searched again against the last fake-quant
        snapshot: the engine compiles each INT8 snapshot anew and may round a tie of the
        new graph the other way (OpenVINO on PP-OCRv5 rec after cleanup merged constants:
        6.5 % of a HardSwish gate's values, where its input is 0), and what must hold is
        that every op computes the source's op."""
        assert self.prev is not None and self.last_qdq is not None
        try:
            found = find_int8_drift(self.prev[0], model, self.feeds, self.prev[2], runner,
                                    snap.graph, cancelled=self.cancelled)
            whose = "the source's" if self.prev[2].reference else "the snapshot before's"
            if found.first is not None and self.prev is not self.last_qdq:
                again = find_int8_drift(self.last_qdq[0], model, self.feeds,
                                        self.last_qdq[2], runner, snap.graph,
                                        cancelled=self.cancelled)
                if again.pinned and again.first is None:
                    row.reason += (f"; on the snapshot before's quantized values "
                                   f"{found.first.label} differs, by the engine's rounding "
                                   "of the recompiled graph")
                    found, whose = again, "the source's"
        except Cancelled:
            raise
        except Exception as exc:  # noqa: BLE001 - then the free search names the op
            row.reason += f"; the pinned op search could not run ({first_line(exc)})"
            return False
        if not found.pinned:
            row.reason += f"; no pinned op search: {found.why_not}"
            return False
        _apply_pinned(row, found, whose)
        self.rounded = self.rounded or row.status == Status.ROUNDING
        return True


def _apply_pinned(row: PassCheck, found: PinnedResult, whose: str) -> None:
    """Every INT8 op holding on pinned inputs makes the drift integer rounding."""
    row.first_op, row.flips, row.pinned = found.first, found.flips, found.pinned
    if found.first is not None:
        row.reason += (f"; on {whose} quantized values ({found.pinned} tensors pinned) the "
                       f"first op that fails is {found.first.label}")
        return
    free = row.reason
    row.status = Status.ROUNDING
    row.reason = (f"every INT8 op computes the source's op on {whose} quantized inputs "
                  f"({found.pinned} tensors pinned); ")
    if found.flips:
        row.reason += (f"integer rounding flipped {found.flips} values by one step at ties "
                       f"(first at {found.first_flip}), which moved the outputs")
    else:
        row.reason += "the outputs differ by float rounding"
    if found.regridded:
        row.reason += (f"; {len(found.regridded)} 8-bit tensors are on another grid than the "
                       f"reference's (first {found.regridded[0]}): not pinned, and the ops "
                       "reading them hold")
    row.reason += f" (free-running {free})"


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
