"""The IR read from and written to ONNX: op ids are the ops' positions in the file."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

from qcore.ir import (
    Graph,
    GraphError,
    Node,
    TensorInfo,
    bodies,
    body_names,
    outer_reads,
    proto_bodies,
)

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
    # The enclosing graph's tensors the subgraphs read become explicit inputs (sorted).
    reads = tuple(sorted(set().union(*map(outer_reads, bodies(attrs)))))
    return Node(
        id=index,
        op_type=op_type,
        inputs=_texts(proto.input, f"an input name of {label}") + list(reads),
        outputs=_texts(proto.output, f"an output name of {label}"),
        attrs=attrs,
        domain=domain if domain != "ai.onnx" else "",
        name=_text(proto.name, f"the name of {label}"),
        subgraph_reads=reads,
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


def _renamed_body(body: onnx.GraphProto, mapping: dict[str, str]) -> onnx.GraphProto:
    """A copy of ``body`` whose references to outer tensors follow ``mapping``, nested
    subgraphs too (the loader refuses bodies that redefine an outer name, so every
    reference to a key is to the outer tensor)."""
    copy = onnx.GraphProto()
    copy.CopyFrom(body)
    _rename_refs(copy, mapping)
    return copy


def _rename_refs(body: onnx.GraphProto, mapping: dict[str, str]) -> None:
    for node in body.node:
        for index, name in enumerate(node.input):
            if name in mapping:
                node.input[index] = mapping[name]
        for sub in proto_bodies(node):
            _rename_refs(sub, mapping)
    for value in list(body.output) + list(body.value_info):
        if value.name in mapping:
            value.name = mapping[value.name]


def _subgraph_attrs(node: Node) -> tuple[list[str], dict[str, Any]]:
    """The op's own inputs, and its attributes with the bodies reading the current names of
    the outer tensors they read (a pass may have renamed them in ``node.inputs``)."""
    reads = node.subgraph_reads
    if not reads:
        return node.inputs, node.attrs
    own, current = node.inputs[: -len(reads)], node.inputs[-len(reads):]
    if len(current) != len(reads) or not all(current) or not bodies(node.attrs):
        raise GraphError(f"op {node.label} lists {len(node.inputs)} inputs but its subgraphs "
                         f"read {len(reads)} outer tensors")
    mapping = {old: new for old, new in zip(reads, current, strict=True) if old != new}
    if not mapping:
        return own, node.attrs
    attrs: dict[str, Any] = {}
    for key, value in node.attrs.items():
        if isinstance(value, onnx.GraphProto) or (
                isinstance(value, list) and value and isinstance(value[0], onnx.GraphProto)):
            graphs = [value] if isinstance(value, onnx.GraphProto) else value
            for body in graphs:
                clash = body_names(body) & set(mapping.values())
                if clash:
                    raise GraphError(f"op {node.label}: its subgraph {key!r} defines "
                                     f"{sorted(clash)[0]!r}, the new name of a tensor it reads")
            renamed = [_renamed_body(body, mapping) for body in graphs]
            value = renamed[0] if isinstance(value, onnx.GraphProto) else renamed
        attrs[key] = value
    return own, attrs


def _node_to_proto(node: Node) -> onnx.NodeProto:
    inputs, node_attrs = _subgraph_attrs(node)
    try:
        attrs = {k: _make_attr_value(v) for k, v in node_attrs.items() if not k.startswith("_")}
        base = node.name or node.op_type
        return helper.make_node(
            node.op_type,
            inputs,
            node.outputs,
            name=f"{base}#{node.id}",
            domain=node.domain or None,
            **attrs,
        )
    except Exception as exc:  # noqa: BLE001 - onnx.helper raises many types on odd attributes
        raise GraphError(f"op {node.label} cannot be written as ONNX: "
                         f"{_first_line(exc)}") from None


def _body_domains(body: onnx.GraphProto) -> set[str]:
    """The op domains a subgraph (and those inside it) uses."""
    found: set[str] = set()
    for node in body.node:
        found.add(node.domain if node.domain != "ai.onnx" else "")
        for sub in proto_bodies(node):
            found |= _body_domains(sub)
    return found


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
    for node in graph.nodes:
        for body in bodies(node.attrs):
            domains |= _body_domains(body)
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
