"""Comparing runs, and finding the first op whose output drifts (for ``qcore verify``)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import onnx

from qcore.bench.accuracy import cosine as array_cosine
from qcore.bench.engines import op_id_of
from qcore.bench.taps import Taps, dequantize
from qcore.ir import Graph
from qcore.ops import QDQ_OPS
from qcore.verify_model import FQ_SUFFIX, CancelCheck, Feed, Runner, Runs, check_cancelled

MAX_SEARCH_FEEDS = 4  # feeds run with every tensor exposed when looking for the drifting op


@dataclass
class Bound:
    """A drift holds when ``cosine >= min_cosine`` and ``max_error <= max_error``, where
    max error is ``max|test - ref| / max|ref|`` (a fraction of the reference's range)."""

    min_cosine: float
    max_error: float

    def holds(self, diff: Diff) -> bool:
        if diff.max_abs == 0:  # identical (cosine may still round below 1)
            return True
        return diff.cosine >= self.min_cosine and diff.max_error <= self.max_error


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


# ---- comparing -----------------------------------------------------------------------------
def diff_arrays(name: str, refs: Sequence[np.ndarray], tests: Sequence[np.ndarray]) -> Diff:
    """Worst cosine and max error of one tensor over samples."""
    cosine, max_abs, ref_max = 1.0, 0.0, 0.0
    for ref, test in zip(refs, tests, strict=True):
        r, t = ref.astype(np.float64), test.astype(np.float64)
        if not (np.all(np.isfinite(r)) and np.all(np.isfinite(t))):
            same = bool(np.array_equal(r, t, equal_nan=True))
            cosine, max_abs = (cosine, max_abs) if same else (0.0, math.inf)
            continue
        cosine = min(cosine, array_cosine(r, t))
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

    def quantized(self) -> set[str]:
        """Tensors whose float value here is an 8-bit one: DequantizeLinear outputs, and
        ``x`` where only ``x_quantized`` exists."""
        floats = {o for n in self.taps.model.graph.node for o in n.output}
        names = {n.output[0] for n in self.taps.model.graph.node
                 if n.op_type == "DequantizeLinear" and n.output}
        for tensor in floats:
            base = self.taps.float_name(tensor)
            if base and base not in floats:
                names.add(base)
        return names

    def producer(self, tensor: str) -> tuple[int | None, onnx.NodeProto] | None:
        """The op that computes ``tensor`` (through Quantize/DequantizeLinear)."""
        names = [tensor, f"{tensor}_quantized"]
        entry = next((self.taps.producers[n] for n in names if n in self.taps.producers), None)
        if entry is None:
            return None
        index, node = entry
        while (node.op_type in QDQ_OPS and node.input
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


@dataclass
class SearchResult:
    """The first drifting op (None when every op holds), and the rounding flips seen."""

    first: DriftingOp | None = None
    flips: int = 0
    first_flip: str = ""
    compared: int = 0  # tensors found in both models


#: Before quantize each op runs on the previous snapshot's quantized values, so only the op
#: itself can make its output differ: float rounding gives about 1e-6 of the range, a changed
#: function much more (half a step of a removed quantizer is about 2e-3).
LOCAL_BOUND = Bound(1 - 1e-7, 1e-4)
#: A quantized value that moved by at most one step, on at most this share of a tensor's
#: values, is a rounding flip at a tie (its input differs by float rounding only).
FLIP_SHARE = 0.01


def quant_points(model: onnx.ModelProto) -> dict[str, tuple[str, str, str]]:
    """Quantized float tensor -> (the DequantizeLinear output its readers see, the scale, the
    zero point).

    Keys are the QuantizeLinear inputs (``verify``'s ``_pre`` names of graph outputs
    stripped), so the same point has the same key in the source and in every snapshot."""
    taps = Taps(model)
    points: dict[str, tuple[str, str, str]] = {}
    for node in model.graph.node:
        if node.op_type != "QuantizeLinear" or node.input[0] in taps.constants:
            continue
        key = node.input[0].removesuffix(f"{FQ_SUFFIX}_pre")
        for dq in taps.consumers.get(node.output[0], []):
            if dq.op_type == "DequantizeLinear" and dq.input[0] == node.output[0]:
                zp = dq.input[2] if len(dq.input) > 2 else ""
                points.setdefault(key, (dq.output[0], dq.input[1], zp))
                break
    return points


def _pin(model: onnx.ModelProto, prev: onnx.ModelProto, sample: dict[str, np.ndarray],
         ) -> tuple[onnx.ModelProto, dict[str, str]]:
    """``model`` whose ops read the previous model's quantized values: every quantization
    point both have becomes a graph input. Returns the model and pin input -> prev tensor."""
    pinned = onnx.ModelProto()
    pinned.CopyFrom(model)
    prev_points = quant_points(prev)
    pins: dict[str, str] = {}
    for key, (dq_out, _, _) in quant_points(model).items():
        prev_dq = prev_points.get(key, ("", "", ""))[0]
        if prev_dq not in sample:
            continue
        pin = f"{dq_out}__pinned"
        for node in pinned.graph.node:
            if not (node.op_type == "DequantizeLinear" and dq_out in node.output):
                node.input[:] = [pin if i == dq_out else i for i in node.input]
        value = sample[prev_dq]
        pinned.graph.input.append(onnx.helper.make_tensor_value_info(
            pin, onnx.helper.np_dtype_to_tensor_dtype(value.dtype), list(value.shape)))
        pins[pin] = prev_dq
    return pinned, pins


def _real_range(taps: Taps, scale_name: str, zp_name: str) -> tuple[float, float] | None:
    """The real values a per-tensor quantizer can represent, or None."""
    scale = taps.constant(scale_name)
    zp = taps.constant(zp_name) if zp_name else np.zeros((), np.uint8)
    if scale is None or zp is None or scale.size != 1 or zp.dtype.kind not in "iu":
        return None
    info = np.iinfo(zp.dtype)
    step, zero = float(scale.reshape(())), int(zp.reshape(()))
    return (info.min - zero) * step, (info.max - zero) * step


@dataclass
class _Stats:
    """One tensor's agreement, accumulated over feeds."""

    cosine: float = 1.0
    max_abs: float = 0.0
    ref_max: float = 0.0
    moved: int = 0  # values that differ by up to one quantization step
    total: int = 0
    beyond_step: bool = False

    def add(self, ref: np.ndarray, test: np.ndarray, step: float | None) -> None:
        one = diff_arrays("", [ref], [test])
        self.cosine = min(self.cosine, one.cosine)
        self.max_abs = max(self.max_abs, one.max_abs)
        if np.all(np.isfinite(ref)):
            self.ref_max = max(self.ref_max, float(np.max(np.abs(ref), initial=0.0)))
        if step is not None:
            diff = np.abs(ref.astype(np.float64) - test.astype(np.float64))
            self.beyond_step |= bool(diff.size) and float(diff.max()) > 1.01 * step
            self.moved += int(np.count_nonzero(diff > 0.01 * step))
            self.total += diff.size

    def diff(self, name: str) -> Diff:
        if self.max_abs == 0:
            error = 0.0
        else:
            error = self.max_abs / self.ref_max if self.ref_max else math.inf
        return Diff(self.cosine, self.max_abs, error, name)

    def flips(self) -> int | None:
        """How many values moved by one quantization step at a tie (None if any moved more,
        or too many moved for rounding)."""
        if self.beyond_step or self.moved > FLIP_SHARE * max(self.total, 1):
            return None
        return self.moved


def find_first_drift(prev: onnx.ModelProto, cur: onnx.ModelProto, feeds: Sequence[Feed],
                     bound: Bound, prev_runner: Runner, cur_runner: Runner,
                     graph: Graph | None = None, pinned: bool = False,
                     cancelled: CancelCheck | None = None) -> SearchResult:
    """The first tensor of ``cur`` (in its topological order) whose value drifts from the
    tensor of the same name in ``prev``, charged to the op producing it.

    ``pinned`` (snapshots before quantize): ``cur`` reads ``prev``'s quantized values, each
    tensor must match within :data:`LOCAL_BOUND`, and quantized values may flip one step at
    a tie. Otherwise both run freely and a tensor must match within ``bound``.
    """
    feeds = list(feeds)[:MAX_SEARCH_FEEDS]
    prev_x = _Exposed(Taps(prev))
    prev_run = prev_runner.open(prev_x.taps.exposed(), feeds[0])
    first_prev = prev_x.float_values(prev_run(feeds[0]))
    model, pins = _pin(cur, prev, first_prev) if pinned else (cur, {})
    cur_x = _Exposed(Taps(model))
    cur_run = cur_runner.open(cur_x.taps.exposed(), feeds[0])
    points = quant_points(model)
    steps = {dq: scale for dq, scale, _ in points.values()} if pinned else {}
    ranges = {key: _real_range(cur_x.taps, scale, zp) for key, (_, scale, zp) in points.items()}
    order = [cur_x.taps.float_name(out) or out for node in cur.graph.node for out in node.output
             if _compared(out)]
    # free-running (INT8): an 8-bit tensor of cur is compared with prev's fake-quantized value
    as_quantized = set() if pinned else cur_x.quantized()
    stats: dict[str, _Stats] = {}
    for i, feed in enumerate(feeds):  # one feed at a time: exposed big models are big
        check_cancelled(cancelled)
        prev_vals = first_prev if i == 0 else prev_x.float_values(prev_run(feed))
        cur_vals = cur_x.float_values(cur_run({**feed, **{p: prev_vals[src]
                                                           for p, src in pins.items()}}))
        for base in order:
            ref_name = f"{base}{FQ_SUFFIX}" if base in as_quantized else base
            ref, test = prev_vals.get(ref_name, prev_vals.get(base)), cur_vals.get(base)
            if ref is None or test is None or ref.shape != test.shape:
                continue
            clamp = ranges.get(base)
            if clamp is not None:  # what the quantizer clamps cannot differ
                ref, test = np.clip(ref, *clamp), np.clip(test, *clamp)
            scale = cur_x.taps.constant(steps[base]) if base in steps else None
            step = float(np.max(scale)) if scale is not None else None
            stats.setdefault(base, _Stats()).add(ref, test, step)
    result = SearchResult(compared=len(stats))
    tensor_bound = LOCAL_BOUND if pinned else bound
    for base in dict.fromkeys(order):
        if base not in stats:
            continue
        diff = stats[base].diff(base)
        if tensor_bound.holds(diff):
            continue
        flips = stats[base].flips() if base in steps else None
        if flips is not None:
            result.flips += flips
            result.first_flip = result.first_flip or shown_tensor(base)
            continue
        result.first = _blame(prev_x, cur_x, base, diff, graph)
        break
    return result


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
    computed = {cur_x.taps.float_name(t) or t for t in cur_x.taps.producers}
    for tensor in old.input:
        if not tensor or tensor in cur_x.taps.producers or tensor in cur_x.taps.inits:
            continue
        if tensor.split(FQ_SUFFIX)[0] in computed:  # verify's fake-quant of a tensor cur has
            continue
        found = prev_x.producer(tensor)
        if found is None or found[0] is None or found[0] in cur_nodes:
            continue
        return found[0], found[1], tensor
    return None
