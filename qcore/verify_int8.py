"""The INT8 op search of ``qcore verify``, pinned to the reference's quantized values.

Free-running, an INT8 model drifts from its fake-quant reference even when every kernel
computes the source's op: an integer kernel accumulates exactly and requantizes once, the
float reference sums in float32 and rounds in QuantizeLinear, so the two round differently
where a value sits at a tie, and a deep model amplifies those one-step flips. Here every
8-bit tensor of the INT8 model that the reference also quantizes (a *quantization point*)
becomes a graph input fed with the reference's quantized value converted to integers with
the INT8 model's own scale and zero point, when those values lie exactly on its grid. Each
op then reads exactly what the reference's op read, and each 8-bit output must equal the
reference's quantized value but for one-step flips: any number where the reference's
unrounded value lies at a tie (within :data:`TIE_SLACK` of a half step, where float32
rounding decides which way it goes), others on at most :data:`FLIP_SHARE` of its values;
each float graph output must match within :data:`FLOAT_BOUND` (integer accumulation is
exact, the reference sums in float32). A shared tensor whose reference values are off its
grid is not pinned: the INT8 model quantizes it another way (a HardSwish written as
QLinearAdd + QLinearMul has a gate of its own scale, exact for every input code), and the
ops reading it must still compute the reference's outputs; when one does not, the finding
names that tensor. A float tensor the reference quantizes and the INT8 model computes from
unquantized is named too (a lost clamp).

On OpenVINO (the onednn target) only the quantization points and the graph outputs are
exposed: they are the boundaries of the kernels OpenVINO compiles (DequantizeLinear -> Conv
-> Relu -> QuantizeLinear runs as one INT8 convolution), so each kernel is the one the user's
model gets. Exposing the float tensors inside a kernel would make OpenVINO cut it there and
run other kernels. The integer pins are 8-bit graph inputs followed by the model's own
DequantizeLinear, the form OpenVINO's low-precision transformations read as quantized (the
INT8 model's convolutions still run as INT8 kernels). ONNX Runtime gets the same
boundaries, so its QDQ fusions (DequantizeLinear -> op -> QuantizeLinear into a QLinear op)
are the user's too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import onnx

from qcore.bench.taps import Taps, dequantize
from qcore.ir import Graph
from qcore.verify_model import FQ_SUFFIX, CancelCheck, Feed, Runner, check_cancelled
from qcore.verify_search import (
    FLIP_SHARE,
    MAX_SEARCH_FEEDS,
    Bound,
    Diff,
    DriftingOp,
    diff_arrays,
    shown_tensor,
)

PIN_SUFFIX = "__pinned"
#: A fake-quantized float32 value divided by the scale lies this close to an integer (float32
#: rounding of (q - zp) * scale, |q - zp| <= 255, is below 3e-5 of a step).
GRID_SLACK = 1e-3
#: Float graph outputs on pinned inputs: the reference's float32 sums against exact integer
#: accumulation and the engine's float ops. Measured on the zoo (3 samples): max error
#: 1.5e-9 (YOLOv8n NNCF output0, ONNX Runtime), 5.2e-8 (PP-OCR cls paddle-ptq softmax,
#: OpenVINO), 0 (PicoDet's outputs, both); one 8-bit step of an output is about 4e-3.
FLOAT_BOUND = Bound(1 - 1e-7, 1e-4)
#: An unrounded reference value this close to a half step (in steps) is a tie: which way it
#: rounds depends on the order of float32 operations. PP-OCRv5 rec ort-u8's HardSwish gate
#: x + 3 at the source's scale 0.023529414 (6/255): where x is 0, 3 / 0.023529414 is
#: 127.49999, so ONNX Runtime gives 127 and OpenVINO 128 on 1.67 % of the values. A bug
#: landing on ties only is not seen: one value in 500 lies this close to a half step.
TIE_SLACK = 1e-3
_BITS8 = (np.dtype(np.int8), np.dtype(np.uint8))


@dataclass(frozen=True)
class IntPoint:
    """An 8-bit activation tensor of an INT8 model and the grid it lives on."""

    tensor: str
    base: str  # the float tensor it quantizes: the name the reference knows
    params: tuple[np.ndarray, np.ndarray, int]  # scale, zero point, axis
    dtype: np.dtype

    def dequantize(self, ints: np.ndarray) -> np.ndarray:
        return dequantize(ints, self.params).astype(np.float32)

    def steps(self, values: np.ndarray) -> np.ndarray:
        """``values`` in steps of this grid, zero point added (float64, not rounded)."""
        scale, zp, axis = self.params
        shape = [1] * values.ndim
        if scale.size > 1 and values.ndim:
            shape[axis % values.ndim] = scale.size
        return (values.astype(np.float64) / scale.astype(np.float64).reshape(shape)
                + zp.astype(np.float64).reshape(shape))

    def integers(self, values: np.ndarray) -> tuple[np.ndarray, int]:
        """``values`` as integers on this grid (nearest, saturated), and how many values were
        not exactly on it."""
        exact = self.steps(values)
        nearest = np.rint(exact)
        info = np.iinfo(self.dtype)
        off = (np.abs(exact - nearest) > GRID_SLACK) | (nearest < info.min) | (nearest > info.max)
        ints = np.clip(nearest, info.min, info.max).astype(self.dtype)
        return ints, int(np.count_nonzero(off))


def int_points(taps: Taps) -> list[IntPoint]:
    """The 8-bit activation tensors ``x_quantized(_k)`` of a model, in topological order."""
    points = []
    for node in taps.model.graph.node:
        for tensor in node.output:
            if not tensor or tensor in taps.constants:
                continue
            base = taps.float_name(tensor)
            params = taps.qparams(tensor) if base else None
            if base is None or params is None:
                continue
            dtype = _dtype(params[1])
            if dtype is not None:
                points.append(IntPoint(tensor, base, params, dtype))
    return points


def _dtype(zero_point: np.ndarray) -> np.dtype | None:
    """The 8-bit type a zero point gives (no zero point: uint8, as in ONNX), else None."""
    if zero_point.dtype in _BITS8:
        return zero_point.dtype
    if zero_point.dtype == np.int32 and not np.any(zero_point):  # Taps: none in the graph
        return np.dtype(np.uint8)
    return None


def fake_quant_outputs(taps: Taps) -> list[tuple[str, str]]:
    """(float tensor, DequantizeLinear output) of every activation Q -> DQ pair."""
    pairs = []
    for node in taps.model.graph.node:
        if node.op_type != "QuantizeLinear" or node.input[0] in taps.constants:
            continue
        key = node.input[0].removesuffix(f"{FQ_SUFFIX}_pre")
        for dq in taps.consumers.get(node.output[0], []):
            if dq.op_type == "DequantizeLinear" and dq.input[0] == node.output[0]:
                pairs.append((key, dq.output[0]))
    return pairs


@dataclass
class _Reference:
    """Where the reference model keeps each float tensor's quantized value."""

    taps: Taps
    fake_quant: dict[str, list[str]] = field(default_factory=dict)  # base -> DQ outputs
    unrounded: dict[str, str] = field(default_factory=dict)  # base -> its QuantizeLinear's input
    ints: dict[str, list[IntPoint]] = field(default_factory=dict)  # base -> 8-bit tensors

    @classmethod
    def of(cls, model: onnx.ModelProto) -> _Reference:
        ref = cls(Taps(model))
        for key, dq_out in fake_quant_outputs(ref.taps):
            ref.fake_quant.setdefault(key, []).append(dq_out)
        for node in ref.taps.model.graph.node:  # a pair's key, and x for x_quantized
            if node.op_type == "QuantizeLinear" and node.input[0] not in ref.taps.constants:
                for base in (node.input[0].removesuffix(f"{FQ_SUFFIX}_pre"),
                             ref.taps.float_name(node.output[0])):
                    if base:
                        ref.unrounded.setdefault(base, node.input[0])
        for point in int_points(ref.taps):
            ref.ints.setdefault(point.base, []).append(point)
        return ref

    def tensors(self, bases: set[str], unrounded: bool) -> set[str]:
        """The reference tensors a run must return for these bases, and its outputs; with
        ``unrounded``, the inputs of its QuantizeLinears too (only for a float reference: in
        an INT8 model on OpenVINO they lie inside kernels, and exposing them cuts the kernel
        there and rounds another way)."""
        names = {o.name for o in self.taps.model.graph.output}
        for base in bases:
            names.update(self.fake_quant.get(base, []))
            names.update(p.tensor for p in self.ints.get(base, []))
            if unrounded and base in self.unrounded:
                names.add(self.unrounded[base])
            if base in self.taps.producers:
                names.add(base)
        return names

    def candidates(self, base: str, run: dict[str, np.ndarray]) -> list[np.ndarray]:
        """The reference's quantized values of ``base`` (then its plain float value, which
        lies on a grid when a movement op computed it from quantized values)."""
        found = [run[n] for n in self.fake_quant.get(base, []) if n in run]
        found += [p.dequantize(run[p.tensor]) for p in self.ints.get(base, []) if p.tensor in run]
        if base in run and run[base].dtype.kind == "f":
            found.append(run[base])
        return found


def with_outputs(model: onnx.ModelProto, names: Sequence[str]) -> onnx.ModelProto:
    """A copy of ``model`` whose graph outputs also list ``names``."""
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    have = {o.name for o in copy.graph.output}
    for name in names:
        if name not in have:
            copy.graph.output.append(onnx.ValueInfoProto(name=name))
            have.add(name)
    return copy


def pin_inputs(model: onnx.ModelProto, pins: dict[str, IntPoint],
               shapes: dict[str, tuple[int, ...]]) -> onnx.ModelProto:
    """``model`` whose readers of each pinned tensor read a graph input ``<tensor>__pinned``
    instead (its producer still computes the tensor, exposed as an output)."""
    pinned = with_outputs(model, [p.tensor for p in pins.values()])
    for node in pinned.graph.node:
        node.input[:] = [f"{i}{PIN_SUFFIX}" if i in pins else i for i in node.input]
    for tensor, point in pins.items():
        pinned.graph.input.append(onnx.helper.make_tensor_value_info(
            f"{tensor}{PIN_SUFFIX}", onnx.helper.np_dtype_to_tensor_dtype(point.dtype),
            list(shapes[tensor])))
    return pinned


@dataclass
class _PointStats:
    """One 8-bit tensor's agreement with the reference, in steps, over feeds."""

    moved: int = 0
    at_tie: int = 0  # moved where the reference's unrounded value is at a tie
    total: int = 0
    max_steps: int = 0
    off_grid: int = 0  # reference values not on this tensor's grid
    diff: Diff = field(default_factory=Diff)

    def add(self, computed: np.ndarray, pinned: np.ndarray, off_grid: int,
            point: IntPoint, reference: np.ndarray, unrounded: np.ndarray | None) -> None:
        steps = np.abs(computed.astype(np.int64) - pinned.astype(np.int64))
        moved = int(np.count_nonzero(steps))
        self.moved += moved
        if moved and unrounded is not None and unrounded.shape == steps.shape:
            half = np.abs(point.steps(unrounded) % 1.0 - 0.5) < TIE_SLACK
            self.at_tie += int(np.count_nonzero((steps == 1) & half))
        self.total += steps.size
        self.max_steps = max(self.max_steps, int(steps.max(initial=0)))
        self.off_grid += off_grid
        self.diff = self.diff.merge(diff_arrays(point.base, [reference],
                                                [point.dequantize(computed)]))

    def flips(self) -> int | None:
        """Values flipped by one step at a tie; None when the op computes something else."""
        beside_ties = self.moved - self.at_tie
        if self.off_grid or self.max_steps > 1 or beside_ties > FLIP_SHARE * max(self.total, 1):
            return None
        return self.moved

    def finding(self) -> str:
        if self.off_grid:
            return (f"{self.off_grid} of the reference's quantized values are not on its "
                    "8-bit grid (another scale / zero point, or outside its range)")
        return (f"on the reference's quantized inputs {self.moved} of {self.total} values "
                f"differ, by up to {self.max_steps} steps")


@dataclass
class PinnedResult:
    """The pinned search: the first op that fails on pinned inputs, or the flips seen."""

    pinned: int = 0  # quantization points fed with the reference's values
    first: DriftingOp | None = None
    flips: int = 0
    first_flip: str = ""
    worst_float: Diff = field(default_factory=Diff)  # float outputs on pinned inputs
    #: 8-bit tensors the reference has on another grid (a scale of their own, e.g. inside a
    #: HardSwish written as integer ops): not pinned, judged by the ops reading them
    regridded: list[str] = field(default_factory=list)
    why_not: str = ""  # why pinning was impossible (then ``pinned`` is 0)


@dataclass
class _Search:
    """One pinned search of ``cur`` (INT8) against ``prev`` (its reference)."""

    prev: onnx.ModelProto
    cur: onnx.ModelProto
    prev_runner: Runner
    cur_runner: Runner
    graph: Graph | None
    ref: _Reference = field(init=False)
    taps: Taps = field(init=False)
    points: list[IntPoint] = field(init=False)

    def __post_init__(self) -> None:
        self.regridded: list[str] = []  # shared points whose reference values are off grid
        self.ref = _Reference.of(self.prev)
        self.taps = Taps(self.cur)
        self.points = int_points(self.taps)

    def run(self, feeds: list[Feed], cancelled: CancelCheck | None) -> PinnedResult:
        if not self.points:
            return PinnedResult(why_not="the INT8 model has no 8-bit activation tensor")
        prev_model = with_outputs(self.prev, sorted(self.ref.tensors(
            {p.base for p in self.points}, unrounded=self.prev_runner.reference)))
        prev_run = self.prev_runner.open(prev_model, feeds[0])
        first_ref = prev_run(feeds[0])
        shared = {p.tensor: p for p in self.points if self.ref.candidates(p.base, first_ref)}
        off_first = self._pin_feed(shared, first_ref)[2]
        pins = {t: p for t, p in shared.items() if not off_first[t]}
        self.regridded = [t for t in shared if off_first[t]]
        if not pins:
            return PinnedResult(why_not="the INT8 model shares no quantization point with "
                                "the snapshot before")
        shapes = {t: self.ref.candidates(p.base, first_ref)[0].shape for t, p in pins.items()}
        model = pin_inputs(self.cur, pins, shapes)
        cur_run = self.cur_runner.open(model, {**feeds[0], **self._pin_feed(pins, first_ref)[0]})
        stats: dict[str, _PointStats] = {}
        floats: dict[str, Diff] = {}
        for i, feed in enumerate(feeds):
            check_cancelled(cancelled)
            ref_run = first_ref if i == 0 else prev_run(feed)
            pin_feed, chosen, off = self._pin_feed(pins, ref_run)
            out = cur_run({**feed, **pin_feed})
            for tensor, point in pins.items():
                if tensor in out:
                    stats.setdefault(tensor, _PointStats()).add(
                        out[tensor], pin_feed[f"{tensor}{PIN_SUFFIX}"], off[tensor], point,
                        chosen[tensor], ref_run.get(self.ref.unrounded.get(point.base, "")))
            self._compare_floats(floats, ref_run, out)
        return self._verdict(len(pins), stats, floats)

    def _pin_feed(self, pins: dict[str, IntPoint], ref_run: dict[str, np.ndarray],
                  ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, int]]:
        """Pin input -> integers, tensor -> the reference value used, tensor -> values off
        grid. The first candidate exactly on the grid is used, else the first one."""
        feed, chosen, off = {}, {}, {}
        for tensor, point in pins.items():
            best: tuple[np.ndarray, np.ndarray, int] | None = None
            for value in self.ref.candidates(point.base, ref_run):
                ints, missed = point.integers(value)
                if best is None or missed < best[2]:
                    best = (value, ints, missed)
                if missed == 0:
                    break
            assert best is not None
            chosen[tensor], feed[f"{tensor}{PIN_SUFFIX}"], off[tensor] = best
        return feed, chosen, off

    def _compare_floats(self, floats: dict[str, Diff], ref_run: dict[str, np.ndarray],
                        out: dict[str, np.ndarray]) -> None:
        for output in self.cur.graph.output:
            ref, test = ref_run.get(output.name), out.get(output.name)
            if ref is None or test is None or test.dtype.kind != "f" or ref.shape != test.shape:
                continue
            one = diff_arrays(output.name, [ref], [test])
            floats[output.name] = floats.get(output.name, Diff()).merge(one)

    def _verdict(self, pinned: int, stats: dict[str, _PointStats],
                 floats: dict[str, Diff]) -> PinnedResult:
        result = PinnedResult(pinned=pinned, regridded=[self._shown(t) for t in self.regridded])
        order = [o for node in self.cur.graph.node for o in node.output]
        for tensor in order:
            if tensor in stats:
                point_stats = stats[tensor]
                flips = point_stats.flips()
                if flips is None:
                    result.first = self._blame(tensor, point_stats.diff, point_stats.finding(),
                                               self._shown(tensor))
                    return result
                if flips:
                    result.flips += flips
                    result.first_flip = result.first_flip or self._label(tensor)
            if tensor in floats:
                diff = floats[tensor]
                result.worst_float = result.worst_float.merge(diff)
                if not FLOAT_BOUND.holds(diff):
                    result.first = self._blame(tensor, diff, (
                        f"float output on the reference's quantized inputs: cosine "
                        f"{diff.cosine:.7f}, max error {diff.max_error:.2e} (bound: cosine >= "
                        f"{FLOAT_BOUND.min_cosine}, max error <= {FLOAT_BOUND.max_error})"),
                        shown_tensor(tensor))
                    return result
        return result

    def _shown(self, tensor: str) -> str:
        return f"{self.taps.float_name(tensor) or tensor} (quantized)"

    def _label(self, tensor: str) -> str:
        producer = self.taps.producer(tensor)
        return f"{producer.op_type}({producer.op_id})" if producer else tensor

    def _blame(self, tensor: str, diff: Diff, note: str, shown: str) -> DriftingOp:
        """The op (with its fused activation) computing ``tensor``."""
        producer = self.taps.producer(tensor)
        op_id = producer.op_id if producer else None
        name = producer.name.split("#")[0] if producer else ""
        if self.graph is not None and op_id is not None:
            node = self.graph.node_by_id(op_id)
            name = node.name if node is not None and node.name else name
        skipped, regridded = self._inputs_unlike_the_reference(tensor)
        if skipped:
            note += (f"; it computes from {', '.join(skipped)} unquantized, which the "
                     "reference quantizes (its clamp and rounding are lost)")
        if regridded:
            note += (f"; it reads {', '.join(map(self._shown, regridded))} on another 8-bit "
                     "grid than the reference's (not pinned)")
        return DriftingOp(op_id, producer.op_type if producer else "", name, shown,
                          diff.cosine, diff.max_error, note)

    def _inputs_unlike_the_reference(self, tensor: str) -> tuple[list[str], list[str]]:
        """Between the 8-bit ``tensor`` and the 8-bit values it is computed from: float
        tensors the reference quantizes and this model does not, and the 8-bit inputs that
        are on another grid than the reference's."""
        ints = {p.tensor for p in self.points} - {tensor}
        own = self.taps.float_name(tensor)
        found: list[str] = []
        regridded: list[str] = []
        todo, seen = [tensor], set()
        while todo:
            name = todo.pop()
            if name in self.regridded and name != tensor and name not in regridded:
                regridded.append(name)
            entry = self.taps.producers.get(name)
            if name in seen or name in ints or entry is None:
                continue
            if entry[1].op_type == "DequantizeLinear":
                todo.append(entry[1].input[0])
                seen.add(name)
                continue
            seen.add(name)
            if name not in (tensor, own) and name in self.ref.fake_quant:
                found.append(name)
            todo.extend(i for i in entry[1].input if i and i not in self.taps.constants)
            if len(seen) > 64:  # a float island this long: name what was found so far
                break
        return found, regridded


def find_int8_drift(prev: onnx.ModelProto, cur: onnx.ModelProto, feeds: Sequence[Feed],
                    prev_runner: Runner, cur_runner: Runner, graph: Graph | None = None,
                    cancelled: CancelCheck | None = None) -> PinnedResult:
    """Run ``cur`` (INT8) with its quantization points pinned to ``prev``'s values and
    return the first op that fails locally (see the module docstring)."""
    search = _Search(prev, cur, prev_runner, cur_runner, graph)
    return search.run(list(feeds)[:MAX_SEARCH_FEEDS], cancelled)
