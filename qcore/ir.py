"""A small, mutable graph IR over ONNX that keeps a stable integer id on every op."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

from qcore.status import NO_REASON, OpStatus, Reason

MS_DOMAIN = "com.microsoft"


class GraphError(ValueError):
    """A graph that cannot be read into the IR, sorted, or written as ONNX; says why."""


@dataclass
class QParams:
    """Quantization parameters of one tensor: ``real = (q - zero_point) * scale``."""

    scale: np.ndarray
    zero_point: np.ndarray
    axis: int | None = None

    def __post_init__(self) -> None:
        self.scale = np.asarray(self.scale, dtype=np.float32)
        self.zero_point = np.asarray(self.zero_point)
        if self.zero_point.dtype not in (np.int8, np.uint8):
            raise ValueError(f"zero point must be int8 or uint8, not {self.zero_point.dtype}")
        if self.zero_point.shape != self.scale.shape:
            self.zero_point = np.broadcast_to(self.zero_point, self.scale.shape).copy()

    @property
    def dtype(self) -> np.dtype:
        return self.zero_point.dtype

    @property
    def per_channel(self) -> bool:
        return self.scale.ndim > 0 and self.scale.size > 1

    @property
    def qmin(self) -> int:
        return int(np.iinfo(self.dtype).min)

    @property
    def qmax(self) -> int:
        return int(np.iinfo(self.dtype).max)

    def real_range(self) -> tuple[float, float]:
        """The smallest and largest real value the tensor can hold (per-tensor params only)."""
        zp = self.zero_point.astype(np.int32)
        low = float(np.min((self.qmin - zp) * self.scale))
        high = float(np.max((self.qmax - zp) * self.scale))
        return low, high

    def same_as(self, other: QParams | None) -> bool:
        return (
            other is not None
            and self.dtype == other.dtype
            and self.scale.shape == other.scale.shape
            and bool(np.array_equal(self.scale, other.scale))
            and bool(np.array_equal(self.zero_point, other.zero_point))
            and (self.axis == other.axis or not self.per_channel)
        )

    def quantize(self, x: np.ndarray) -> np.ndarray:
        """Quantize ``x`` as ONNX QuantizeLinear does (round half to even, saturate)."""
        scale, zp = self._broadcast(x.ndim)
        q = np.rint(x.astype(np.float32) / scale) + zp
        result: np.ndarray = np.clip(q, self.qmin, self.qmax).astype(self.dtype)
        return result

    def dequantize(self, q: np.ndarray) -> np.ndarray:
        scale, zp = self._broadcast(q.ndim)
        result: np.ndarray = ((q.astype(np.int32) - zp) * scale).astype(np.float32)
        return result

    def _broadcast(self, ndim: int) -> tuple[np.ndarray, np.ndarray]:
        zp = self.zero_point.astype(np.int32)
        if not self.per_channel:
            return self.scale.reshape(()), zp.reshape(())
        axis = (self.axis if self.axis is not None else 1) % ndim
        shape = [1] * ndim
        shape[axis] = -1
        return self.scale.reshape(shape), zp.reshape(shape)

    def describe(self) -> str:
        kind = "u8" if self.dtype == np.uint8 else "s8"
        if self.per_channel:
            return f"{kind} per-channel[{self.scale.size}] axis={self.axis}"
        return f"{kind} s={float(self.scale):.4g} zp={int(self.zero_point)}"


@dataclass(frozen=True)
class FusedActivation:
    """A Relu / Clip folded into the op before it: its clamp and the id it had."""

    op_type: str
    low: float
    high: float
    op_id: int


@dataclass(eq=False)
class Node:
    """One op. ``id`` never changes; ``fused`` lists the ops folded into this one, ``act``
    the activation and ``bias_add`` the id of the bias Add a fusion folded into it."""

    id: int
    op_type: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict[str, Any] = field(default_factory=dict)
    domain: str = ""
    name: str = ""
    fused: list[str] = field(default_factory=list)
    status: OpStatus = OpStatus.UNDECIDED
    reason: Reason = NO_REASON
    act: FusedActivation | None = None
    bias_add: int | None = None

    def __post_init__(self) -> None:
        if type(self.status) is not OpStatus:
            self.status = OpStatus(self.status)
        if type(self.reason) is not Reason:
            self.reason = Reason.of(self.reason)

    @property
    def label(self) -> str:
        return f"{self.op_type}({self.id})"

    def clone(self) -> Node:
        """A copy whose lists and attribute dict can change freely (attribute values are
        never mutated in place, so they are shared)."""
        return self.replaced(self.op_type, list(self.inputs), list(self.outputs),
                             dict(self.attrs), self.domain)

    def replaced(self, op_type: str, inputs: list[str], outputs: list[str],
                 attrs: dict[str, Any] | None = None, domain: str = "") -> Node:
        """A new op that stands for this one: its id, name, history, status and reason."""
        return Node(self.id, op_type, inputs, outputs, dict(attrs or {}), domain, self.name,
                    list(self.fused), self.status, self.reason, self.act, self.bias_add)

    def decide(self, status: OpStatus, reason: Reason = NO_REASON) -> None:
        self.status, self.reason = status, Reason.of(reason)


@dataclass
class TensorInfo:
    elem_type: int
    shape: list[int | str | None] | None


@dataclass
class Graph:
    """Nodes in topological order, initializers as numpy arrays, and the scales found so far."""

    nodes: list[Node]
    initializers: dict[str, np.ndarray]
    inputs: list[onnx.ValueInfoProto]
    outputs: list[onnx.ValueInfoProto]
    tensors: dict[str, TensorInfo]
    opsets: dict[str, int]
    name: str = "graph"
    next_id: int = 0
    act_qparams: dict[str, QParams] = field(default_factory=dict)
    # (op id, tensor) -> params the source quantized that op's input with (its own Q/DQ pair)
    input_qparams: dict[tuple[int, str], QParams] = field(default_factory=dict)
    weight_qparams: dict[str, QParams] = field(default_factory=dict)
    weight_ints: dict[str, np.ndarray] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    light: bool = False  # weights are placeholders (see qcore.light): view, never export
    _names: set[str] | None = field(default=None, repr=False, compare=False)

    # ---- construction -------------------------------------------------------------------
    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id - 1

    def add_node(
        self,
        op_type: str,
        inputs: list[str],
        outputs: list[str],
        attrs: dict[str, Any] | None = None,
        domain: str = "",
        index: int | None = None,
    ) -> Node:
        node = Node(self.new_id(), op_type, list(inputs), list(outputs), dict(attrs or {}), domain)
        if index is None:
            self.nodes.append(node)
        else:
            self.nodes.insert(index, node)
        return node

    def unique_name(self, base: str) -> str:
        """A tensor name not used anywhere in the graph yet; it is reserved at once."""
        if self._names is None:
            self._names = self._all_names()
        name, k = base, 1
        while name in self._names:
            name, k = f"{base}_{k}", k + 1
        self._names.add(name)
        return name

    def _all_names(self) -> set[str]:
        names = set(self.initializers) | set(self.tensors)
        for node in self.nodes:
            names.update(node.inputs)
            names.update(node.outputs)
        return names

    # ---- queries ------------------------------------------------------------------------
    def producers(self) -> dict[str, Node]:
        return {out: node for node in self.nodes for out in node.outputs if out}

    def consumers(self) -> dict[str, list[Node]]:
        result: dict[str, list[Node]] = {}
        for node in self.nodes:
            for name in node.inputs:
                if name:
                    result.setdefault(name, []).append(node)
        return result

    def qparams_for(self, node: Node, name: str) -> QParams | None:
        """The params ``node`` reads ``name`` with: its own quantization of that input in the
        source (``input_qparams``), else the tensor's (``act_qparams``)."""
        return self.input_qparams.get((node.id, name)) or self.act_qparams.get(name)

    def source_quantized(self, node: Node, name: str) -> bool:
        """True when the source model read ``name`` into ``node`` through a Q/DQ pair."""
        return (node.id, name) in self.input_qparams

    def node_by_id(self, node_id: int) -> Node | None:
        return next((n for n in self.nodes if n.id == node_id), None)

    @property
    def output_names(self) -> list[str]:
        return [v.name for v in self.outputs]

    @property
    def input_names(self) -> list[str]:
        return [v.name for v in self.inputs if v.name not in self.initializers]

    def is_const(self, name: str) -> bool:
        return name in self.initializers

    def shape(self, name: str) -> list[int | str | None] | None:
        if name in self.initializers:
            return list(self.initializers[name].shape)
        info = self.tensors.get(name)
        return info.shape if info else None

    def rank(self, name: str) -> int | None:
        shape = self.shape(name)
        return None if shape is None else len(shape)

    # ---- edits --------------------------------------------------------------------------
    def remove_nodes(self, doomed: list[Node]) -> None:
        ids = {n.id for n in doomed}
        self.nodes = [n for n in self.nodes if n.id not in ids]

    def replace_input(self, old: str, new: str) -> None:
        """Every consumer of ``old`` reads ``new`` instead."""
        for node in self.nodes:
            node.inputs = [new if name == old else name for name in node.inputs]
        self._rekey_inputs(old, new)

    def replace_inputs(self, mapping: dict[str, str]) -> None:
        """``replace_input`` for many tensors in one pass over the ops."""
        if not mapping:
            return
        for node in self.nodes:
            if any(name in mapping for name in node.inputs):
                node.inputs = [mapping.get(name, name) for name in node.inputs]
        for key in [k for k in self.input_qparams if k[1] in mapping]:
            self.input_qparams.setdefault((key[0], mapping[key[1]]), self.input_qparams.pop(key))

    def _rekey_inputs(self, old: str, new: str) -> None:
        for key in [k for k in self.input_qparams if k[1] == old]:
            self.input_qparams.setdefault((key[0], new), self.input_qparams.pop(key))

    def rename_tensor(self, old: str, new: str) -> None:
        """Rename a tensor everywhere: producers, consumers, scales and shape info."""
        for node in self.nodes:
            node.inputs = [new if n == old else n for n in node.inputs]
            node.outputs = [new if n == old else n for n in node.outputs]
        if old in self.act_qparams:
            self.act_qparams[new] = self.act_qparams.pop(old)
        if old in self.tensors:
            self.tensors[new] = self.tensors.pop(old)
        self._rekey_inputs(old, new)

    def copy(self) -> Graph:
        """A copy whose nodes and tables can change freely; arrays are shared (never mutated)."""
        clone = copy.copy(self)
        clone.nodes = [n.clone() for n in self.nodes]
        clone.initializers = dict(self.initializers)
        clone.tensors = dict(self.tensors)
        clone.act_qparams = dict(self.act_qparams)
        clone.input_qparams = dict(self.input_qparams)
        clone.weight_qparams = dict(self.weight_qparams)
        clone.weight_ints = dict(self.weight_ints)
        clone.opsets = dict(self.opsets)
        clone._names = None
        return clone

    def toposort(self) -> None:
        """Order nodes so every input is produced before use (stable for ready nodes)."""
        available = set(self.initializers) | {v.name for v in self.inputs} | {""}
        pending = list(self.nodes)
        ordered: list[Node] = []
        while pending:
            progress = False
            rest = []
            for node in pending:
                if all(name in available for name in node.inputs):
                    ordered.append(node)
                    available.update(node.outputs)
                    progress = True
                else:
                    rest.append(node)
            if not progress:
                missing = sorted({i for n in rest for i in n.inputs if i not in available})
                raise GraphError(f"graph has a cycle or missing tensors: {missing[:5]}")
            pending = rest
        self.nodes = ordered

    def op_histogram(self) -> dict[str, int]:
        hist: dict[str, int] = {}
        for node in self.nodes:
            hist[node.op_type] = hist.get(node.op_type, 0) + 1
        return dict(sorted(hist.items(), key=lambda kv: (-kv[1], kv[0])))


# ---- ONNX <-> IR --------------------------------------------------------------------------


#: Initializers bigger than this are written straight into the model proto (protobuf copies
#: a message it appends by serializing it, which fails at 2 GiB).
BIG_TENSOR_BYTES = 1 << 26
#: Shape inference serializes the model (holding the GIL, so a GUI thread stalls meanwhile);
#: past this total it runs on a copy without the weights.
SHAPE_INFERENCE_MAX_BYTES = 1 << 24
#: Weights at least this big are left out of that copy (small ones, e.g. Reshape's target
#: shapes, stay: inference needs their values).
SHAPE_VIEW_MIN_BYTES = 1 << 12


def _shape_view(model: onnx.ModelProto, arrays: dict[str, np.ndarray]) -> onnx.ModelProto:
    """``model`` with its big initializers turned into typed graph inputs (no data)."""
    from qcore.files import copy_without_initializers

    light = copy_without_initializers(model)
    listed = {v.name for v in light.graph.input}
    for init in model.graph.initializer:
        array = arrays.get(init.name)
        if array is None or array.nbytes < SHAPE_VIEW_MIN_BYTES or array.dtype == np.int64:
            light.graph.initializer.append(init)
        elif init.name not in listed:
            light.graph.input.append(
                helper.make_tensor_value_info(init.name, init.data_type, list(init.dims)))
    return light


def _tensor_infos(model: onnx.ModelProto,
                  arrays: dict[str, np.ndarray] | None = None) -> dict[str, TensorInfo]:
    arrays = arrays or {}
    listed = {v.name for v in model.graph.input}
    viewed = sum(a.nbytes for a in arrays.values()) > SHAPE_INFERENCE_MAX_BYTES
    try:
        if viewed:
            model = _shape_view(model, arrays)
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False)
    except Exception:  # noqa: BLE001 - shape inference is best effort
        inferred = model
    infos: dict[str, TensorInfo] = {}
    graph = inferred.graph
    for value in list(graph.value_info) + list(graph.input) + list(graph.output):
        ttype = value.type.tensor_type
        if not value.type.HasField("tensor_type"):
            continue
        if viewed and value.name in arrays and value.name not in listed:
            continue  # a weight the shape view listed as an input
        shape: list[int | str | None] | None = None
        if ttype.HasField("shape"):
            shape = [
                d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
                for d in ttype.shape.dim
            ]
        infos[value.name] = TensorInfo(ttype.elem_type, shape)
    return infos


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def _text(value: str | bytes, what: str) -> str:
    """A string field of the model; protobuf hands back bytes when they are not UTF-8."""
    if not isinstance(value, str):
        raise GraphError(f"{what} is not valid UTF-8: {bytes(value)[:40]!r}")
    return value


def _texts(values: Any, what: str) -> list[str]:
    return [_text(v, what) for v in values]


def _initializer_array(init: onnx.TensorProto) -> np.ndarray:
    name = _text(init.name, "an initializer name")
    try:
        return numpy_helper.to_array(init)
    except Exception as exc:  # noqa: BLE001 - onnx / numpy raise many types on bad tensors
        raise GraphError(f"initializer {name!r} cannot be read: {_first_line(exc)}") from None


def _node_from_proto(index: int, proto: onnx.NodeProto) -> Node:
    op_type = _text(proto.op_type, f"the op type of op {index}")
    label = f"{op_type}({index})"
    attrs = {}
    for attr in proto.attribute:
        key = _text(attr.name, f"an attribute name of {label}")
        try:
            attrs[key] = helper.get_attribute_value(attr)
        except Exception as exc:  # noqa: BLE001 - unknown attribute types, bad tensors
            raise GraphError(f"attribute {key!r} of {label} cannot be read: "
                             f"{_first_line(exc)}") from None
    domain = _text(proto.domain, f"the domain of {label}")
    return Node(
        id=index,
        op_type=op_type,
        inputs=_texts(proto.input, f"an input name of {label}"),
        outputs=_texts(proto.output, f"an output name of {label}"),
        attrs=attrs,
        domain=domain if domain != "ai.onnx" else "",
        name=_text(proto.name, f"the name of {label}"),
    )


def from_onnx(model: onnx.ModelProto) -> Graph:
    """Build the IR. Op ids are the ops' positions in the file's ``graph.node`` list.

    Raises:
        GraphError: A tensor, attribute or name that cannot be read; the message names it.
    """
    g = model.graph
    initializers = {init.name: _initializer_array(init) for init in g.initializer}
    nodes = [_node_from_proto(index, proto) for index, proto in enumerate(g.node)]
    for value in list(g.input) + list(g.output):
        _text(value.name, "a graph input or output name")
    opsets = {
        (_text(o.domain, "an opset domain") if o.domain != "ai.onnx" else ""): o.version
        for o in model.opset_import
    }
    return Graph(
        nodes=nodes,
        initializers=initializers,
        inputs=[v for v in g.input if v.name not in initializers],
        outputs=list(g.output),
        tensors=_tensor_infos(model, initializers),
        opsets=opsets,
        name=_text(g.name, "the graph name") or "graph",
        next_id=len(nodes),
    )


def _make_attr_value(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return numpy_helper.from_array(value)
    return value


def _node_to_proto(node: Node) -> onnx.NodeProto:
    try:
        attrs = {k: _make_attr_value(v) for k, v in node.attrs.items() if not k.startswith("_")}
        base = node.name or node.op_type
        return helper.make_node(
            node.op_type,
            node.inputs,
            node.outputs,
            name=f"{base}#{node.id}",
            domain=node.domain or None,
            **attrs,
        )
    except Exception as exc:  # noqa: BLE001 - onnx.helper raises many types on odd attributes
        raise GraphError(f"op {node.label} cannot be written as ONNX: "
                         f"{_first_line(exc)}") from None


def _tensor_to_proto(name: str, array: np.ndarray) -> onnx.TensorProto:
    try:
        return numpy_helper.from_array(array, name)
    except Exception as exc:  # noqa: BLE001 - unsupported dtypes
        raise GraphError(f"initializer {name!r} ({array.dtype}) cannot be written as ONNX: "
                         f"{_first_line(exc)}") from None


def to_onnx(graph: Graph, producer: str = "quant-inspector") -> onnx.ModelProto:
    """Write the IR as a self-contained ONNX model; node names carry the op id.

    Raises:
        GraphError: An op or tensor that ONNX cannot hold, or no default opset.
    """
    if "" not in graph.opsets:
        raise GraphError("model has no default opset")
    used = {name for node in graph.nodes for name in node.inputs} | set(graph.output_names)
    protos = [_node_to_proto(node) for node in graph.nodes]
    domains = {""} | {node.domain for node in graph.nodes}
    onnx_graph = helper.make_graph(protos, graph.name, graph.inputs, graph.outputs)
    opsets = [helper.make_opsetid(d, graph.opsets.get(d, 1)) for d in sorted(domains)]
    model = helper.make_model(onnx_graph, opset_imports=opsets, producer_name=producer)
    model.ir_version = max(7, min(model.ir_version, 10))
    # Added in place, after make_model (which copies its graph): a model may exceed 2 GiB.
    for name, array in graph.initializers.items():
        if name in used:
            _add_initializer(model.graph, name, array)
    return model


def _add_initializer(graph: onnx.GraphProto, name: str, array: np.ndarray) -> None:
    """Append ``array`` to ``graph.initializer``; big plain arrays are filled in place."""
    if array.nbytes < BIG_TENSOR_BYTES or array.dtype.kind not in "biuf":
        graph.initializer.append(_tensor_to_proto(name, array))
        return
    try:
        data_type = helper.np_dtype_to_tensor_dtype(array.dtype)
    except Exception as exc:  # noqa: BLE001 - a dtype ONNX has no type for
        raise GraphError(f"initializer {name!r} ({array.dtype}) cannot be written as ONNX: "
                         f"{_first_line(exc)}") from None
    tensor = graph.initializer.add()
    tensor.name, tensor.data_type = name, data_type
    tensor.dims.extend(array.shape)
    tensor.raw_data = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()
