"""Read an ONNX file into the IR with clear errors, and normalise how weights are stored."""

from __future__ import annotations

import heapq
import os
import stat
from collections.abc import Iterator
from pathlib import Path, PurePosixPath, PureWindowsPath

import numpy as np
import onnx
from onnx import external_data_helper, helper, numpy_helper

from qcore.ir import Graph, GraphError, Node, from_onnx

QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")


class ModelError(ValueError):
    """The file is not a model we can read; the message says why in one line."""


def read_model(path: str | Path, warnings: list[str] | None = None) -> onnx.ModelProto:
    """Load an ONNX file, raising ``ModelError`` with a one-line reason.

    A Paddle model (a folder with ``__model__`` or ``*.pdmodel``, or a ``.pdmodel`` file) is
    imported as a QDQ ONNX model first (``qcore.paddle``; Paddle itself is not needed).

    Checker complaints that runtimes tolerate (ONNX Runtime's quantizer writes a per-axis
    DequantizeLinear into opset 12 models, say) are appended to ``warnings`` instead.
    """
    path = Path(path)
    if not path.exists():
        raise ModelError(f"{path}: no such file")
    from qcore import paddle  # light: the importer itself loads only for Paddle models

    if paddle.is_paddle_model(path):
        return paddle.import_paddle(path)
    if path.is_dir():
        raise ModelError(f"{path}: is a folder, not an .onnx file")
    regular_file_size(path, str(path))  # a FIFO or device would block or never end
    try:
        model = onnx.load(str(path), load_external_data=False)
    except OSError as exc:
        raise ModelError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except Exception as exc:  # noqa: BLE001 - protobuf / onnx raise many types on bad bytes
        if path.stat().st_size >= 2**31:
            raise ModelError(f"{path}: cannot read a 2 GiB protobuf; a model this big must "
                             "keep its weights in external data files") from None
        raise ModelError(f"{path}: not an ONNX model ({type(exc).__name__})") from None
    if not model.graph.node:
        raise ModelError(f"{path}: not an ONNX model (no graph nodes)")
    external = [t for t in _all_tensors(model.graph) if external_data_helper.uses_external_data(t)]
    for tensor in external:
        _external_span(path, tensor)
    # The checker reads the file itself: it then also checks external data files, works past
    # 2 GB, and holds the GIL for half as long as on a parsed model (a GUI stays responsive).
    _check_model(path, str(path), warnings)
    for tensor in external:
        _load_external(path, tensor)
    return model


def _first_line(exc: BaseException) -> str:
    """The first non-empty line of an exception's message (its type name if it has none)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def _check_model(path: Path, model: onnx.ModelProto | str, warnings: list[str] | None) -> None:
    """Run the ONNX checker; complaints raise ``ModelError`` or, given ``warnings``, go there."""
    try:
        onnx.checker.check_model(model)
    except Exception as exc:  # noqa: BLE001 - ValidationError, or ValueError for huge protos
        first = _first_line(exc)
        if warnings is None:
            raise ModelError(f"{path}: invalid ONNX model: {first}") from None
        warnings.append(f"onnx.checker: {first}")


def _all_tensors(graph: onnx.GraphProto) -> Iterator[onnx.TensorProto]:
    """Every tensor stored in ``graph``: initializers and attribute tensors, subgraphs too."""
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield sparse.values
        yield sparse.indices
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("t"):
                yield attr.t
            yield from attr.tensors
            if attr.HasField("g"):
                yield from _all_tensors(attr.g)
            for sub in attr.graphs:
                yield from _all_tensors(sub)


def confined_file(folder: Path, location: str, where: str) -> Path:
    """``location`` inside ``folder``, refusing any way out of it.

    Only a relative path to a file inside ``folder`` (or below it) is accepted: no absolute
    path, no drive, no ``..``, no symbolic link leading elsewhere. ONNX external data and
    Paddle parameter files both go through here.

    Raises:
        ModelError: The location leads outside ``folder``; ``where`` starts the message.
    """
    posix, windows = PurePosixPath(location), PureWindowsPath(location)
    if (not location or posix.is_absolute() or windows.is_absolute() or windows.drive
            or windows.root or "\x00" in location or ".." in posix.parts
            or ".." in windows.parts):
        raise ModelError(f"{where} is at {location!r}: refusing a location outside the "
                         "model's folder (it must be a relative path to a file beside the model)")
    target = folder / location
    try:
        escapes = not target.resolve().is_relative_to(folder.resolve())
    except (OSError, RuntimeError, ValueError):
        escapes = True
    if escapes:
        raise ModelError(f"{where} is at {location!r}, which leads outside the model's folder: "
                         "refused")
    return target


def regular_file_size(path: Path, where: str, hint: str = "") -> int:
    """The size of ``path``, which must be a regular file (not missing, not a FIFO, device
    or folder, which reading would block on or misread)."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise ModelError(f"{where} is missing{hint}") from None
    except OSError as exc:
        raise ModelError(f"{where}: cannot read {path.name!r} ({exc.strerror or exc})") from None
    if not stat.S_ISREG(info.st_mode):
        raise ModelError(f"{where}: {path.name!r} is {_file_kind(info.st_mode)}, not a regular "
                         "file: refused")
    return info.st_size


def _file_kind(mode: int) -> str:
    for test, kind in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return kind
    return "a special file"


def read_regular(path: Path, offset: int, length: int, where: str) -> bytes:
    """Exactly ``length`` bytes at ``offset`` of the regular file ``path``, never more.

    Opened without blocking and checked again once open, so a file swapped for a FIFO after
    the first check cannot hang the reader."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise ModelError(f"{where}: cannot read {path.name!r} ({exc.strerror or exc})") from None
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ModelError(f"{where}: {path.name!r} is not a regular file: refused")
        handle.seek(offset)
        data = handle.read(length)
    if len(data) != length:
        raise ModelError(f"{where}: {path.name!r} ends early ({len(data)} of {length} bytes)")
    return data


def tensor_nbytes(tensor: onnx.TensorProto) -> int | None:
    """The bytes a tensor's data takes by its dims and type (None for strings / unknown)."""
    count = 1
    for dim in tensor.dims:
        count *= int(dim)
    bits = _ELEMENT_BITS.get(tensor.data_type)
    if bits is None:
        try:
            bits = 8 * np.dtype(helper.tensor_dtype_to_np_dtype(tensor.data_type)).itemsize
        except (KeyError, TypeError, ValueError):
            return None
    return (count * bits + 7) // 8


#: Element sizes numpy's dtypes do not tell (packed sub-byte types; strings have none).
_ELEMENT_BITS = {onnx.TensorProto.STRING: None}
for _name in ("INT4", "UINT4", "FLOAT4E2M1", "INT2", "UINT2"):
    if hasattr(onnx.TensorProto, _name):
        _ELEMENT_BITS[getattr(onnx.TensorProto, _name)] = 2 if _name.endswith("2") else 4


def _external_span(path: Path, tensor: onnx.TensorProto) -> tuple[Path, int, int]:
    """Where a tensor's external data is: (file, offset, length), every part checked.

    The length is the size the tensor's dims and type imply; a ``length`` entry must agree,
    and the file must hold that many bytes after ``offset`` (checked before reading)."""
    info = {entry.key: entry.value for entry in tensor.external_data}
    location = info.get("location", "")
    where = f"{path}: external data of tensor {tensor.name!r}"
    if not location:
        raise ModelError(f"{where} has no location")
    target = confined_file(path.parent, location, where)
    size = regular_file_size(target, where, f": {location!r} must sit beside the model "
                             f"in {path.parent}")
    try:
        offset = int(info.get("offset") or 0)
        length = int(info["length"]) if info.get("length") else None
    except ValueError:
        raise ModelError(f"{where}: offset / length are not integers") from None
    needed = tensor_nbytes(tensor)
    if needed is None:
        raise ModelError(f"{where}: external data of this element type is not supported")
    if length is not None and length != needed:
        raise ModelError(f"{where}: length {length} does not match its shape "
                         f"{list(tensor.dims)}, which needs {needed} bytes")
    if offset < 0 or offset + needed > size:
        raise ModelError(f"{where}: {location!r} holds {size} bytes, too few for "
                         f"{needed} bytes at offset {offset}")
    return target, offset, needed


def _load_external(path: Path, tensor: onnx.TensorProto) -> None:
    """Read a tensor's external data into ``raw_data`` (only its own bytes)."""
    target, offset, length = _external_span(path, tensor)
    where = f"{path}: external data of tensor {tensor.name!r}"
    tensor.raw_data = read_regular(target, offset, length, where)
    tensor.data_location = onnx.TensorProto.DEFAULT
    del tensor.external_data[:]


def load_graph(model: onnx.ModelProto | str | Path) -> Graph:
    """The IR of a model, with Constant-node weights turned into initializers."""
    warnings: list[str] = []
    source = ""
    if not isinstance(model, onnx.ModelProto):
        source = f"{model}: "
        model = read_model(model, warnings)
    check_subgraphs(model.graph, source)
    try:
        graph = from_onnx(model)
        _constants_to_initializers(graph)
    except (GraphError, ValueError, TypeError) as exc:
        raise ModelError(f"{source}not a usable ONNX model: {_first_line(exc)}") from None
    graph.warnings = warnings
    check_arity(graph, source)
    check_wiring(graph, source)
    check_quantization(graph, source)
    return graph


def check_subgraphs(graph: onnx.GraphProto, source: str = "") -> None:
    """Refuse If / Loop / Scan bodies that read tensors of an enclosing graph.

    The passes rename and delete main-graph tensors without looking into subgraphs, so such
    a model would be written broken; bodies that only use their own tensors are kept as they
    are.

    Raises:
        ModelError: Naming the op (``If(5)``), its attribute and the outer tensor.
    """
    for index, node in enumerate(graph.node):
        for attr in node.attribute:
            for body in [attr.g] if attr.HasField("g") else list(attr.graphs):
                outer = _outer_reads(body)
                if outer:
                    who = f"{node.op_type}({index})" + (f" {node.name!r}" if node.name else "")
                    raise ModelError(f"{source}{who}: its subgraph {attr.name!r} reads the "
                                     f"outer tensor {sorted(outer)[0]!r}; subgraphs that use "
                                     "tensors of the enclosing graph are not supported")


def _outer_reads(body: onnx.GraphProto) -> set[str]:
    """The tensors ``body`` (and the subgraphs inside it) read but does not define."""
    defined = {v.name for v in body.input} | {t.name for t in body.initializer}
    defined |= {t.values.name for t in body.sparse_initializer}
    reads: set[str] = set()
    for node in body.node:
        reads.update(name for name in node.input if name)
        for attr in node.attribute:
            for sub in [attr.g] if attr.HasField("g") else list(attr.graphs):
                reads |= _outer_reads(sub)
        defined.update(node.output)
    reads.update(v.name for v in body.output)
    return reads - defined


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
            ("inputs", node.inputs, schema.min_input, schema.max_input),
            ("outputs", node.outputs, schema.min_output, schema.max_output),
        ):
            if not low <= len(names) <= high:
                limit = f"{low}" if low == high else f"{low} to {high}"
                raise ModelError(f"{source}{_who(node)} has {len(names)} {kind}; "
                                 f"{node.op_type} (opset {version}) takes {limit}")
        single = onnx.defs.OpSchema.FormalParameterOption.Single
        for index, formal in enumerate(schema.inputs[: len(node.inputs)]):
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
    producer: dict[str, int] = {}
    nodes = graph.nodes
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
    for node in nodes:
        for name in node.inputs:
            if name and name not in producer and name not in given:
                raise ModelError(f"{source}tensor {name!r} read by {_who(node)} is not "
                                 "produced by any op, initializer or graph input")
    for name in graph.output_names:
        if name not in producer and name not in given:
            raise ModelError(f"{source}graph output {name!r} is not produced by any op")
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
    if len(order) < len(nodes):
        raise ModelError(f"{source}{_cycle_text(nodes, producer, set(order))}")
    if order != list(range(len(nodes))):
        graph.nodes = [nodes[index] for index in order]
        graph.warnings.append("the ops were not in topological order; they were sorted")


def _cycle_text(nodes: list[Node], producer: dict[str, int], done: set[int]) -> str:
    """Describe one cycle among the ops not in ``done``, naming its tensors (networkx finds
    it; imported only here, as a broken model is rare and the import costs 0.2 s)."""
    import networkx as nx

    edges = nx.DiGraph()
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


def _constants_to_initializers(graph: Graph) -> None:
    """Older exporters store every weight in a ``Constant`` node; make them initializers.

    The Constant nodes' ids are retired so every other op keeps its file position as id.
    """
    keep = []
    for node in graph.nodes:
        value = _constant_value(node)
        if value is None:
            keep.append(node)
            continue
        graph.initializers[node.outputs[0]] = value
    graph.nodes = keep


def _constant_value(node) -> np.ndarray | None:  # noqa: ANN001 - Node
    if node.op_type != "Constant" or node.domain:
        return None
    attrs = node.attrs
    if "value" in attrs:
        return numpy_helper.to_array(attrs["value"])
    for key, dtype in (("value_float", np.float32), ("value_int", np.int64)):
        if key in attrs:
            return np.array(attrs[key], dtype=dtype)
    for key, dtype in (("value_floats", np.float32), ("value_ints", np.int64)):
        if key in attrs:
            return np.array(list(attrs[key]), dtype=dtype)
    return None


def quantization_summary(graph: Graph) -> dict[str, int]:
    """How many Q/DQ ops a model has, and of which kind."""
    consts = set(graph.initializers)
    counts = {"QuantizeLinear": 0, "DequantizeLinear": 0, "weight_dq": 0, "activation_dq": 0}
    for node in graph.nodes:
        if node.op_type in QDQ_OPS and not node.domain:
            counts[node.op_type] += 1
            if node.op_type == "DequantizeLinear":
                kind = "weight_dq" if node.inputs[0] in consts else "activation_dq"
                counts[kind] += 1
    return counts
