"""``qcore verify``: run the source model and every pass snapshot on the same inputs.

Every snapshot up to ``quantize`` must compute the source's function (QDQ semantics): it is
exported with a fake-quant pair (QuantizeLinear -> DequantizeLinear) on every tensor that has
recorded activation qparams (``Graph.act_qparams``) and no QuantizeLinear yet, and run on
ONNX Runtime with graph optimizations off, as the source is. From ``quantize`` on, the real
INT8 model of the target runs on the chosen engine. Each snapshot is compared with the one
before it and with the source; the first pass whose drift exceeds the tolerance stops the
check, and the first op whose output drifts is found by running both snapshots with every
intermediate tensor exposed and comparing them by name in topological order.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from enum import Enum
from pathlib import Path

import numpy as np
import onnx

from qcore.bench.engines import first_line, get_engine, op_id_of
from qcore.bench.inputs import InputSet, generate_inputs, load_inputs, model_inputs
from qcore.bench.taps import Taps, dequantize
from qcore.config import ConvertConfig
from qcore.convert import Snapshot, convert
from qcore.emit.common import expand_fused
from qcore.ir import Graph, to_onnx
from qcore.passes import Pass
from qcore.passes.base import Cancelled

Feed = dict[str, np.ndarray]
Runs = list[dict[str, np.ndarray]]
ProgressFn = Callable[[int, int, str], None]
CancelCheck = Callable[[], bool]

FQ_SUFFIX = "__verify_fq"  # tensors of the fake-quant pairs verify inserts
QUANTIZE_PASS = "quantize"
MAX_SEARCH_FEEDS = 4  # feeds run with every tensor exposed when looking for the drifting op


class Status(str, Enum):
    OK = "ok"
    DRIFT = "drift"
    NOT_RUNNABLE = "not-runnable"
    SKIPPED = "skipped"  # not checked: an earlier pass failed


class Stage(str, Enum):
    QDQ = "qdq"  # a snapshot before quantize, run with fake-quant (the source's semantics)
    INT8 = "int8"  # quantize and after: the target's INT8 model


@dataclass
class Bound:
    """A drift holds when ``cosine >= min_cosine`` and ``max_error <= max_error``, where
    max error is ``max|test - ref| / max|ref|`` (a fraction of the reference's range)."""

    min_cosine: float
    max_error: float

    def holds(self, diff: Diff) -> bool:
        return diff.cosine >= self.min_cosine and diff.max_error <= self.max_error

    def stricter(self, factor: float) -> Bound:
        """The bound with ``factor`` times less room (for single tensors, whose drift grows
        by the time it reaches the outputs)."""
        return Bound(1 - (1 - self.min_cosine) / factor, self.max_error / factor)


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
class Diff:
    """Worst agreement over outputs and samples: min cosine, max abs error, max error as a
    fraction of the reference's largest magnitude."""

    cosine: float = 1.0
    max_abs: float = 0.0
    max_error: float = 0.0
    worst: str = ""  # the output (or tensor) with the lowest cosine or largest error

    def merge(self, other: Diff) -> Diff:
        worst = self.worst
        if other.cosine < self.cosine or other.max_error > self.max_error:
            worst = other.worst
        return Diff(min(self.cosine, other.cosine), max(self.max_abs, other.max_abs),
                    max(self.max_error, other.max_error), worst)


@dataclass
class DriftingOp:
    """The first op (in topological order) whose output drifts, in the drifting snapshot."""

    op_id: int | None
    op_type: str
    name: str
    tensor: str
    cosine: float
    max_error: float
    note: str = ""

    @property
    def label(self) -> str:
        return f"{self.op_type}({self.op_id})" if self.op_id is not None else self.op_type


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

    def to_dict(self) -> dict:
        return asdict(self)


# ---- runnable snapshots --------------------------------------------------------------------
def insert_fake_quant(graph: Graph) -> int:
    """Put QuantizeLinear -> DequantizeLinear on every tensor with activation qparams that no
    QuantizeLinear reads yet, right after its producer; readers (and a graph output) get the
    fake-quantized value. Returns how many pairs were inserted."""
    quantized = {n.inputs[0] for n in graph.nodes if n.op_type == "QuantizeLinear" and n.inputs}
    producers = graph.producers()
    consumers = graph.consumers()
    outputs = set(graph.output_names)
    inserted = 0
    for tensor, params in list(graph.act_qparams.items()):
        if tensor in quantized or tensor in graph.initializers:
            continue
        producer = producers.get(tensor)
        if producer is None and tensor not in graph.input_names:
            continue
        readers = consumers.get(tensor, [])
        if not readers and tensor not in outputs:
            continue
        src, dst = tensor, f"{tensor}{FQ_SUFFIX}"
        if tensor in outputs:  # the output keeps its name and carries the quantized value
            if producer is None:  # a graph input that is also an output: leave it
                continue
            src, dst = f"{tensor}{FQ_SUFFIX}_pre", tensor
            for node in graph.nodes:
                node.outputs = [src if o == tensor else o for o in node.outputs]
                node.inputs = [src if i == tensor else i for i in node.inputs]
            readers = []
        scale, zp = f"{tensor}{FQ_SUFFIX}_scale", f"{tensor}{FQ_SUFFIX}_zp"
        graph.initializers[scale] = params.scale
        graph.initializers[zp] = params.zero_point
        q = f"{tensor}{FQ_SUFFIX}_q"
        axis = {"axis": int(params.axis)} if params.per_channel and params.axis is not None else {}
        at = graph.nodes.index(producer) + 1 if producer is not None else 0
        dq = graph.add_node("DequantizeLinear", [q, scale, zp], [dst], axis, index=at)
        quant = graph.add_node("QuantizeLinear", [src, scale, zp], [q], axis, index=at)
        quant.name = dq.name = "verify_fq"
        for node in readers:
            node.inputs = [dst if i == tensor else i for i in node.inputs]
        inserted += 1
    return inserted


def runnable_model(graph: Graph, fake_quant: bool) -> onnx.ModelProto:
    """The snapshot as a runnable ONNX model; with ``fake_quant``, activations are quantized
    where the graph records their qparams (the source's QDQ semantics)."""
    plain = graph.copy()
    expand_fused(plain)
    if fake_quant:
        insert_fake_quant(plain)
    plain.toposort()
    return to_onnx(plain)


# ---- running -------------------------------------------------------------------------------
class Runner:
    """Runs ONNX models on one engine: ``reference`` is ONNX Runtime without graph
    optimizations (QDQ runs as float fake-quant, exactly as specified)."""

    def __init__(self, engine: str = "onnxruntime", reference: bool = False) -> None:
        self.engine = engine
        self.reference = reference

    def run(self, model: onnx.ModelProto, feeds: Sequence[Feed],
            cancelled: CancelCheck | None = None) -> Runs:
        if self.engine == "openvino":
            return self._run_openvino(model, feeds, cancelled)
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        opts.intra_op_num_threads = 1
        opts.graph_optimization_level = (ort.GraphOptimizationLevel.ORT_DISABLE_ALL
                                         if self.reference
                                         else ort.GraphOptimizationLevel.ORT_ENABLE_ALL)
        session = ort.InferenceSession(model.SerializeToString(), opts,
                                       providers=["CPUExecutionProvider"])
        names = [o.name for o in session.get_outputs()]
        wanted = [i.name for i in session.get_inputs()]
        runs = []
        for feed in feeds:
            _check(cancelled)
            runs.append(dict(zip(names, session.run(None, {k: feed[k] for k in wanted}),
                                 strict=True)))
        return runs

    def _run_openvino(self, model: onnx.ModelProto, feeds: Sequence[Feed],
                      cancelled: CancelCheck | None) -> Runs:
        engine = get_engine("openvino")
        with tempfile.TemporaryDirectory(prefix="qcore_verify_") as tmp:
            path = Path(tmp) / "model.onnx"
            onnx.save(model, path)
            session = engine.load(path, 1, {k: tuple(v.shape) for k, v in feeds[0].items()})
            runs = []
            for feed in feeds:
                _check(cancelled)
                runs.append(session.run(feed))
            session.close()
        return runs


def _check(cancelled: CancelCheck | None) -> None:
    if cancelled is not None and cancelled():
        raise Cancelled("verify cancelled")


# ---- comparing -----------------------------------------------------------------------------
def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 and nb == 0:
        return 1.0
    return float(a @ b / (na * nb)) if na and nb else 0.0


def diff_arrays(name: str, refs: Sequence[np.ndarray], tests: Sequence[np.ndarray]) -> Diff:
    """Worst cosine and max error of one tensor over samples."""
    cosine, max_abs, ref_max = 1.0, 0.0, 0.0
    for ref, test in zip(refs, tests, strict=True):
        r, t = ref.astype(np.float64), test.astype(np.float64)
        if not (np.all(np.isfinite(r)) and np.all(np.isfinite(t))):
            same = bool(np.array_equal(r, t, equal_nan=True))
            cosine, max_abs = (cosine, max_abs) if same else (0.0, math.inf)
            continue
        cosine = min(cosine, _cosine(r, t))
        max_abs = max(max_abs, float(np.max(np.abs(r - t), initial=0.0)))
        ref_max = max(ref_max, float(np.max(np.abs(r), initial=0.0)))
    if max_abs == 0:
        error = 0.0
    else:
        error = max_abs / ref_max if ref_max else math.inf
    return Diff(cosine, max_abs, error, name)


def compare_runs(refs: Runs, tests: Runs) -> Diff:
    """Outputs matched by name (by position when no name matches and the counts agree)."""
    ref_names, test_names = list(refs[0]), list(tests[0])
    pairs = [(n, n) for n in ref_names if n in test_names]
    if not pairs and len(ref_names) == len(test_names):
        pairs = list(zip(ref_names, test_names, strict=True))
    if not pairs:
        raise ValueError(f"no output in common (reference: {', '.join(ref_names)}; "
                         f"test: {', '.join(test_names)})")
    total = Diff()
    for ref_name, test_name in pairs:
        ref = [run[ref_name] for run in refs]
        test = [run[test_name] for run in tests]
        if ref[0].shape != test[0].shape:
            raise ValueError(f"output {ref_name}: shape {list(test[0].shape)}, the reference "
                             f"has {list(ref[0].shape)}")
        total = total.merge(diff_arrays(ref_name, ref, test))
    return total


# ---- the first drifting op -----------------------------------------------------------------
@dataclass
class _Exposed:
    """A model with every intermediate tensor as an output, and the float view of them."""

    taps: Taps

    def float_values(self, run: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Tensor name -> float value; int8 tensors ``x_quantized`` are dequantized into
        ``x`` when the model has no float ``x``."""
        values: dict[str, np.ndarray] = {}
        for name, value in run.items():
            if value.dtype.kind == "f" and _compared(name):
                values[name] = value
        for name, value in run.items():
            if value.dtype.kind not in "iu" or FQ_SUFFIX in name:
                continue
            base = self.taps.float_name(name)
            params = self.taps.qparams(name) if base else None
            if base and params is not None and base not in values:
                values[base] = dequantize(value, params).astype(np.float32)
        return values

    def producer(self, tensor: str) -> tuple[int | None, onnx.NodeProto] | None:
        """The op that computes ``tensor`` (through Quantize/DequantizeLinear)."""
        names = [tensor, f"{tensor}_quantized"]
        entry = next((self.taps.producers[n] for n in names if n in self.taps.producers), None)
        if entry is None:
            return None
        index, node = entry
        while (node.op_type in ("QuantizeLinear", "DequantizeLinear") and node.input
               and node.input[0] in self.taps.producers):
            index, node = self.taps.producers[node.input[0]]
        op_id = op_id_of(node.name) if self.taps.has_ids else index
        return op_id, node


def _compared(name: str) -> bool:
    """Tensors the op search compares: the model's own, and the fake-quantized values."""
    return FQ_SUFFIX not in name or name.endswith(FQ_SUFFIX)


def shown_tensor(name: str) -> str:
    """A tensor name as the user knows it (the fake-quantized value says so)."""
    if name.endswith(FQ_SUFFIX):
        return f"{name[:-len(FQ_SUFFIX)]} (quantized)"
    return name.split(FQ_SUFFIX)[0]


def find_first_drift(prev: onnx.ModelProto, cur: onnx.ModelProto, feeds: Sequence[Feed],
                     bound: Bound, prev_runner: Runner, cur_runner: Runner,
                     graph: Graph | None = None, cancelled: CancelCheck | None = None,
                     ) -> DriftingOp | None:
    """The first tensor of ``cur`` (in its topological order) whose value drifts from the
    tensor of the same name in ``prev`` beyond ``bound``, charged to the op producing it."""
    feeds = list(feeds)[:MAX_SEARCH_FEEDS]
    prev_x, cur_x = _Exposed(Taps(prev)), _Exposed(Taps(cur))
    prev_vals = [prev_x.float_values(r) for r in
                 prev_runner.run(prev_x.taps.exposed(), feeds, cancelled)]
    cur_vals = [cur_x.float_values(r) for r in
                cur_runner.run(cur_x.taps.exposed(), feeds, cancelled)]
    for node in cur.graph.node:
        for out in node.output:
            if not _compared(out):
                continue
            base = cur_x.taps.float_name(out) or out
            if base not in cur_vals[0] or base not in prev_vals[0]:
                continue
            if cur_vals[0][base].shape != prev_vals[0][base].shape:
                continue
            diff = diff_arrays(base, [v[base] for v in prev_vals], [v[base] for v in cur_vals])
            if bound.holds(diff):
                continue
            return _blame(prev_x, cur_x, base, diff, graph)
    return None


#: The op search before quantize looks for a drift ten times smaller than the bound of the
#: outputs: a pass's change is smallest where it happens (e.g. a removed quantization point).
QDQ_SEARCH_FACTOR = 10.0


def _blame(prev_x: _Exposed, cur_x: _Exposed, tensor: str, diff: Diff,
           graph: Graph | None) -> DriftingOp:
    """The op whose output ``tensor`` drifts, or the op this pass removed from its inputs."""
    found = cur_x.producer(tensor)
    op_id, node = found if found else (None, None)
    op_type = node.op_type if node is not None else ""
    name = node.name.split("#")[0] if node is not None else ""
    note = ""
    if op_id is not None:
        removed = _removed_input(prev_x, cur_x, op_id)
        if removed is not None:
            old_id, old_node, old_tensor = removed
            note = (f"{op_type}({op_id}) now reads past {old_node.op_type}({old_id}), which "
                    f"this pass removed (its output {old_tensor})")
            op_id, op_type, name, tensor = old_id, old_node.op_type, old_node.name, old_tensor
            name = name.split("#")[0]
    if op_id is not None:
        old = _nodes_by_id(prev_x).get(op_id)
        if old is not None and old.name.split("#")[0] not in ("", old.op_type):
            name = old.name.split("#")[0]
    if graph is not None and op_id is not None:
        ir_node = graph.node_by_id(op_id)
        if ir_node is not None and ir_node.name:
            name = ir_node.name
        host = next((n for n in graph.nodes if any(f.endswith(f"({op_id})") for f in n.fused)),
                    None)
        if ir_node is None and host is not None:
            note = "; ".join(filter(None, [note, f"fused into {host.label} in this snapshot"]))
    return DriftingOp(op_id, op_type, name, shown_tensor(tensor), diff.cosine, diff.max_error,
                      note)


def _nodes_by_id(x: _Exposed) -> dict[int | None, onnx.NodeProto]:
    """The model's ops by qcore id (their position for a model qcore did not write)."""
    return {(op_id_of(n.name) if x.taps.has_ids else i): n
            for i, n in enumerate(x.taps.model.graph.node)
            if not n.name.startswith("verify_fq#")}


def _removed_input(prev_x: _Exposed, cur_x: _Exposed, op_id: int,
                   ) -> tuple[int, onnx.NodeProto, str] | None:
    """For an op that exists in both models: an input it read in ``prev`` whose producer
    is gone from ``cur`` and whose tensor ``cur`` no longer computes."""
    prev_nodes, cur_nodes = _nodes_by_id(prev_x), _nodes_by_id(cur_x)
    old = prev_nodes.get(op_id)
    if old is None:
        return None
    for tensor in old.input:
        if not tensor or tensor in cur_x.taps.producers or tensor in cur_x.taps.inits:
            continue
        found = prev_x.producer(tensor)
        if found is None or found[0] is None or found[0] in cur_nodes:
            continue
        return found[0], found[1], tensor
    return None


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
    for position, snap in enumerate(result.snapshots):
        _check(cancelled)
        stage = Stage.INT8 if position >= first_int8 else Stage.QDQ
        runner = int8_runner if stage == Stage.INT8 else reference
        if report.failed is not None:
            report.rows.append(PassCheck(snap.index, snap.name, stage, Status.SKIPPED,
                                         reason="an earlier pass failed", engine=runner.engine))
            continue
        row, current = _check_snapshot(snap, stage, runner, feeds, prev, source_runs,
                                       float_runs, tolerance.for_stage(stage), cancelled)
        report.rows.append(row)
        if current is not None:
            prev = current
        if progress is not None:
            progress(position + 2, total, snap.name)
    return report


def _check_snapshot(snap: Snapshot, stage: Stage, runner: Runner, feeds: Sequence[Feed],
                    prev: tuple[onnx.ModelProto, Runs, Runner], source_runs: Runs,
                    float_runs: Runs | None, bound: Bound, cancelled: CancelCheck | None,
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
    if not (bound.holds(row.vs_previous) and bound.holds(row.vs_source)):
        row.status = Status.DRIFT
        worse = row.vs_previous if not bound.holds(row.vs_previous) else row.vs_source
        row.reason = (f"output {worse.worst}: cosine {worse.cosine:.6f}, max error "
                      f"{worse.max_error:.3g} (bound: cosine >= {bound.min_cosine}, "
                      f"max error <= {bound.max_error})")
        search = bound.stricter(QDQ_SEARCH_FACTOR) if stage == Stage.QDQ else bound
        try:
            row.first_op = find_first_drift(prev[0], model, feeds, search, prev[2], runner,
                                            snap.graph, cancelled)
        except Cancelled:
            raise
        except Exception as exc:  # noqa: BLE001 - the drift stands; the search is a bonus
            row.reason += f"; the drifting op could not be found ({first_line(exc)})"
    return row, (model, runs, runner)
