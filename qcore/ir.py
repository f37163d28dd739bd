"""A small, mutable graph IR over ONNX that keeps a stable integer id on every op."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx

from qcore.hardswish_program import Program
from qcore.qparams import QParams
from qcore.status import NO_REASON, OpStatus, Reason

__all__ = ["MS_DOMAIN", "FusedActivation", "Graph", "GraphError", "Node", "QParams", "TensorInfo",
           "bodies", "body_names", "outer_reads", "proto_bodies"]

MS_DOMAIN = "com.microsoft"


class GraphError(ValueError):
    """A graph that cannot be read into the IR, sorted, or written as ONNX; says why."""


@dataclass(frozen=True)
class FusedActivation:
    """A Relu / Clip folded into the op before it: its clamp and the id it had."""

    op_type: str
    low: float
    high: float
    op_id: int


def bodies(attrs: dict[str, Any]) -> list[onnx.GraphProto]:
    """The subgraphs among an op's attribute values (If's branches, a Loop or Scan body)."""
    found: list[onnx.GraphProto] = []
    for value in attrs.values():
        if isinstance(value, onnx.GraphProto):
            found.append(value)
        elif isinstance(value, list):
            found.extend(v for v in value if isinstance(v, onnx.GraphProto))
    return found


def proto_bodies(node: onnx.NodeProto) -> list[onnx.GraphProto]:
    """The subgraphs among an ONNX node's attributes."""
    return [g for attr in node.attribute for g in ([attr.g] if attr.HasField("g") else attr.graphs)]


def outer_reads(body: onnx.GraphProto) -> set[str]:
    """The tensors ``body`` (and the subgraphs inside it) read but does not define: the
    enclosing graphs' tensors it uses."""
    defined = {v.name for v in body.input} | {t.name for t in body.initializer}
    defined |= {t.values.name for t in body.sparse_initializer}
    reads: set[str] = set()
    for node in body.node:
        reads.update(name for name in node.input if name)
        for sub in proto_bodies(node):
            reads |= outer_reads(sub)
        defined.update(node.output)
    reads.update(v.name for v in body.output)
    return reads - defined


def body_names(body: onnx.GraphProto) -> set[str]:
    """Every tensor name ``body`` and the subgraphs inside it define (inputs, initializers,
    op outputs)."""
    names = {v.name for v in body.input} | {t.name for t in body.initializer}
    names |= {t.values.name for t in body.sparse_initializer}
    for node in body.node:
        names.update(name for name in node.output if name)
        for sub in proto_bodies(node):
            names |= body_names(sub)
    return names


@dataclass(eq=False)
class Node:
    """One op. ``id`` never changes; ``fused`` lists the ops folded into this one, ``act``
    the activation and ``bias_add`` the id of the bias Add a fusion folded into it.

    An op with subgraphs (If, Loop, Scan) lists the enclosing graph's tensors its bodies read
    as extra inputs after its own, so passes see them as any reader's inputs (and rename
    them); ``subgraph_reads`` holds those tensors' names as the bodies spell them, in the
    same order. Writing ONNX drops the extra inputs and points the bodies at the current
    names (``qcore.ir_onnx``)."""

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
    program: Program | None = None  # a fused HardSwish: the source's steps (fuse_hardswish)
    subgraph_reads: tuple[str, ...] = ()  # the last len() inputs: outer tensors bodies read

    def __post_init__(self) -> None:
        if type(self.status) is not OpStatus:
            self.status = OpStatus(self.status)
        if type(self.reason) is not Reason:
            self.reason = Reason.of(self.reason)

    @property
    def label(self) -> str:
        return f"{self.op_type}({self.id})"

    @property
    def own_inputs(self) -> list[str]:
        """The op's inputs as ONNX lists them: without the tensors its subgraphs read."""
        return self.inputs[: len(self.inputs) - len(self.subgraph_reads)]

    def clone(self) -> Node:
        """A copy whose lists and attribute dict can change freely (attribute values are
        never mutated in place, so they are shared)."""
        return self.replaced(self.op_type, list(self.inputs), list(self.outputs),
                             dict(self.attrs), self.domain)

    def replaced(self, op_type: str, inputs: list[str], outputs: list[str],
                 attrs: dict[str, Any] | None = None, domain: str = "") -> Node:
        """A new op that stands for this one: its id, name, history, status and reason."""
        return Node(self.id, op_type, inputs, outputs, dict(attrs or {}), domain, self.name,
                    list(self.fused), self.status, self.reason, self.act, self.bias_add,
                    self.program, self.subgraph_reads)

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
            for body in bodies(node.attrs):
                names |= body_names(body)  # a new main-graph tensor must not shadow them
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
