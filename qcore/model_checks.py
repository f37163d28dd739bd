"""Checks that a loaded graph is one the passes can convert, each failing with a
``ModelError`` that names the op or tensor: subgraphs reusing outer names, op arity,
dataflow wiring (a model's ops out of order are sorted), and unsupported quantization."""

from __future__ import annotations

import heapq

import numpy as np
import onnx

from qcore.ir import Graph, Node, proto_bodies
from qcore.ops import QDQ_OPS
from qcore.safe_io import ModelError


def check_subgraphs(graph: onnx.GraphProto, source: str = "") -> None:
    """Refuse If / Loop / Scan bodies that define a tensor name of an enclosing graph.

    ONNX forbids it (names are unique across a graph and its subgraphs; the checker's
    complaint is only a warning here). The IR lists the outer tensors a body reads as the
    op's inputs and, on export, points the body at their new names; a body with a name of
    its own equal to an outer one would make that ambiguous.

    Raises:
        ModelError: Naming the op (``If(5)``), its attribute and the tensor.
    """
    scope = {v.name for v in graph.input} | {t.name for t in graph.initializer}
    scope |= {t.values.name for t in graph.sparse_initializer}
    scope |= {name for node in graph.node for name in node.output if name}
    for index, node in enumerate(graph.node):
        for attr in node.attribute:
            for body in [attr.g] if attr.HasField("g") else list(attr.graphs):
                clash = _shadowed(body, scope)
                if clash:
                    who = f"{node.op_type}({index})" + (f" {node.name!r}" if node.name else "")
                    raise ModelError(f"{source}{who}: its subgraph {attr.name!r} defines "
                                     f"{clash!r}, which the enclosing graph also defines; "
                                     "tensor names must be unique across a graph and its "
                                     "subgraphs")


def _shadowed(body: onnx.GraphProto, outer: set[str]) -> str | None:
    """The first name ``body`` (or a subgraph inside it) defines that ``outer`` has."""
    own = {v.name for v in body.input} | {t.name for t in body.initializer}
    own |= {t.values.name for t in body.sparse_initializer}
    own |= {name for node in body.node for name in node.output if name}
    clash = sorted(own & outer)
    if clash:
        return clash[0]
    inner = outer | own
    for node in body.node:
        for sub in proto_bodies(node):
            found = _shadowed(sub, inner)
            if found:
                return found
    return None


#: Ops whose second input becomes an (int8) weight; a zero-size one cannot be converted.
WEIGHT_OPS = frozenset({"Conv", "ConvTranspose", "MatMul", "Gemm"})


def check_quantization(graph: Graph, source: str = "") -> None:
    """Refuse quantization the passes cannot convert, naming the op.

    Blocked quantization (``block_size``), float16 (or other non-float32) scales, and
    zero-size constants read by a Q/DQ op (an empty quantized weight or Concat input) or as
    a weight.

    Raises:
        ModelError: One line naming the op and what is not supported.
    """
    for node in graph.nodes:
        if node.domain:
            continue
        if node.op_type in QDQ_OPS:
            block = node.attrs.get("block_size", 0)
            if block:
                raise ModelError(f"{source}{_who(node)}: blocked quantization "
                                 f"(block_size={block}) is not supported; use per-tensor or "
                                 "per-channel scales")
            scale = graph.initializers.get(node.inputs[1]) if len(node.inputs) > 1 else None
            if scale is not None and scale.dtype != np.float32:
                raise ModelError(f"{source}{_who(node)}: its scale {node.inputs[1]!r} is "
                                 f"{scale.dtype}; only float32 scales are supported (convert "
                                 "a float16 model to float32 first)")
        if node.op_type in QDQ_OPS or node.op_type in WEIGHT_OPS:
            for name in node.inputs if node.op_type in QDQ_OPS else node.inputs[1:2]:
                array = graph.initializers.get(name)
                if array is not None and array.size == 0:
                    raise ModelError(f"{source}{_who(node)} reads {name!r}, which has no "
                                     f"elements (shape {list(array.shape)}); zero-size "
                                     "weights and inputs cannot be converted")


def check_arity(graph: Graph, source: str = "") -> None:
    """Standard ops must have as many inputs and outputs as their ONNX schema allows.

    The ONNX checker says so too, but its complaints are only warnings here (runtimes
    tolerate some of them); an op with missing inputs cannot run anywhere.

    Raises:
        ModelError: An op with too few or too many inputs or outputs, or an empty required
            input; the message names the op.
    """
    version = graph.opsets.get("")
    if not version:
        if any(not node.domain for node in graph.nodes):
            raise ModelError(f"{source}the model uses standard ONNX ops but imports no opset "
                             "version for them (opset_import has no default domain)")
        return
    for node in graph.nodes:
        if node.domain:
            continue
        try:
            schema = onnx.defs.get_schema(node.op_type, version, "")
        except Exception:  # noqa: BLE001 - unknown ops stay FP32; nothing to check
            continue
        for kind, names, low, high in (
            ("inputs", node.own_inputs, schema.min_input, schema.max_input),
            ("outputs", node.outputs, schema.min_output, schema.max_output),
        ):
            if not low <= len(names) <= high:
                limit = f"{low}" if low == high else f"{low} to {high}"
                raise ModelError(f"{source}{_who(node)} has {len(names)} {kind}; "
                                 f"{node.op_type} (opset {version}) takes {limit}")
        single = onnx.defs.OpSchema.FormalParameterOption.Single
        for index, formal in enumerate(schema.inputs[: len(node.own_inputs)]):
            if not node.inputs[index] and formal.option == single:
                raise ModelError(f"{source}{_who(node)} has no input {index} "
                                 f"({formal.name}), which {node.op_type} requires")


def _who(node: Node) -> str:
    return f"{node.label} {node.name!r}" if node.name else node.label


def check_wiring(graph: Graph, source: str = "") -> None:
    """Check that the ops of ``graph`` form a dataflow graph, and sort them if they are not.

    Every tensor an op reads must come from an op, an initializer or a graph input; every
    tensor has at most one producer; the ops form no cycle. Ops listed out of topological
    order are sorted (their ids stay the same) and a warning says so.

    Args:
        graph: The graph, changed only by sorting its op list.
        source: Prefix of error messages (``"path: "``).

    Raises:
        ModelError: A dangling input, a doubly written tensor or a cycle; the message names
            the tensor.
    """
    given = set(graph.initializers) | {v.name for v in graph.inputs}
    producer = _producers(graph.nodes, given, source)
    _check_reads(graph, producer, given, source)
    nodes = graph.nodes
    order = _topological_order(nodes, producer)
    if len(order) < len(nodes):
        raise ModelError(f"{source}{_cycle_text(nodes, producer, set(order))}")
    if order != list(range(len(nodes))):
        graph.nodes = [nodes[index] for index in order]
        graph.warnings.append("the ops were not in topological order; they were sorted")


def _producers(nodes: list[Node], given: set[str], source: str) -> dict[str, int]:
    """The index of the op writing each tensor; a tensor written twice, or written and also
    a graph input or initializer, is refused."""
    producer: dict[str, int] = {}
    for index, node in enumerate(nodes):
        for name in node.outputs:
            if not name:
                continue
            if name in producer:
                raise ModelError(f"{source}tensor {name!r} is written by two ops: "
                                 f"{_who(nodes[producer[name]])} and {_who(node)}")
            if name in given:
                raise ModelError(f"{source}tensor {name!r} is written by {_who(node)} but is "
                                 "also a graph input or initializer")
            producer[name] = index
    return producer


def _check_reads(graph: Graph, producer: dict[str, int], given: set[str], source: str) -> None:
    """Every tensor an op or the graph's outputs read has a source."""
    for node in graph.nodes:
        own = len(node.own_inputs)
        for index, name in enumerate(node.inputs):
            if name and name not in producer and name not in given:
                where = " (in its subgraph)" if index >= own else ""
                raise ModelError(f"{source}tensor {name!r} read by {_who(node)}{where} is not "
                                 "produced by any op, initializer or graph input")
    for name in graph.output_names:
        if name not in producer and name not in given:
            raise ModelError(f"{source}graph output {name!r} is not produced by any op")


def _topological_order(nodes: list[Node], producer: dict[str, int]) -> list[int]:
    """Op indices in dataflow order, the lowest ready index first (so a sorted list stays
    as it is); ops on a cycle are missing."""
    users: list[list[int]] = [[] for _ in nodes]
    waiting = [0] * len(nodes)
    for index, node in enumerate(nodes):
        deps = {producer[name] for name in node.inputs if name in producer}
        waiting[index] = len(deps)
        for dep in deps:
            users[dep].append(index)
    ready = [index for index, count in enumerate(waiting) if count == 0]
    heapq.heapify(ready)
    order: list[int] = []
    while ready:
        index = heapq.heappop(ready)
        order.append(index)
        for user in users[index]:
            waiting[user] -= 1
            if waiting[user] == 0:
                heapq.heappush(ready, user)
    return order


def _cycle_text(nodes: list[Node], producer: dict[str, int], done: set[int]) -> str:
    """Describe one cycle among the ops not in ``done``, naming its tensors (networkx finds
    it; imported only here, as a broken model is rare and the import costs 0.2 s)."""
    import networkx as nx

    edges: nx.DiGraph[int] = nx.DiGraph()
    for index, node in enumerate(nodes):
        if index not in done:
            for name in node.inputs:
                if name in producer and producer[name] not in done:
                    edges.add_edge(producer[name], index, tensor=name)
    loop = [edges.edges[u, v]["tensor"] for u, v in nx.find_cycle(edges)]
    first = min(range(len(loop)), key=lambda i: producer[loop[i]])  # start at the first op
    loop = loop[first:] + loop[:first]
    steps = [f"{name!r} ({_who(nodes[producer[name]])})" for name in loop]
    if len(steps) > 6:
        steps = steps[:5] + ["..."]
    return (f"the ops form a cycle through tensor {loop[0]!r}: "
            + " -> ".join(steps) + f" -> {loop[0]!r}")
