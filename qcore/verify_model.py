"""Snapshots as runnable ONNX models, and running them (for ``qcore verify``).

Before ``quantize`` a snapshot keeps activation scales by tensor (``Graph.act_qparams``)
instead of Q/DQ ops: :func:`runnable_model` puts a fake-quant pair back on every such tensor,
so the model computes the source's QDQ function. :class:`Runner` runs models on ONNX Runtime
(the reference: graph optimizations off, so QDQ runs as float fake-quant) or OpenVINO.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import onnx

from qcore.bench.engines import get_engine
from qcore.emit.common import expand_fused
from qcore.ir import Graph, QParams
from qcore.ir_onnx import to_onnx
from qcore.passes.base import Cancelled

Feed = dict[str, np.ndarray]
Runs = list[dict[str, np.ndarray]]
CancelCheck = Callable[[], bool]

FQ_SUFFIX = "__verify_fq"  # tensors of the fake-quant pairs verify inserts


# ---- runnable snapshots --------------------------------------------------------------------
def insert_fake_quant(graph: Graph) -> int:
    """Put QuantizeLinear -> DequantizeLinear on every tensor with activation qparams that no
    QuantizeLinear reads yet, right after its producer; readers (and a graph output) get the
    fake-quantized value, except readers that the source gave the tensor without a pair when
    others had one (silero VAD: an If reads its Sigmoid's output unquantized). Returns how
    many pairs were inserted."""
    quantized = {n.inputs[0] for n in graph.nodes if n.op_type == "QuantizeLinear" and n.inputs}
    paired = {name for _, name in graph.input_qparams}  # tensors the source had a pair on
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
        if tensor in paired:  # a reader the source gave the tensor without its pair keeps it
            readers = [r for r in readers if graph.source_quantized(r, tensor)
                       or r.op_type == "QuantizeLinear"]
        src, dst = tensor, f"{tensor}{FQ_SUFFIX}"
        if tensor in outputs:  # the output keeps its name and carries the quantized value
            if producer is None:  # a graph input that is also an output: leave it
                continue
            src, dst = f"{tensor}{FQ_SUFFIX}_pre", tensor
            for node in graph.nodes:  # its readers keep reading it: the quantized value
                node.outputs = [src if o == tensor else o for o in node.outputs]
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
    return inserted + _insert_reader_fake_quant(graph)


def _same(a: QParams | None, b: QParams | None) -> bool:
    return a is not None and b is not None and a.axis == b.axis and np.array_equal(
        a.scale, b.scale) and np.array_equal(a.zero_point, b.zero_point)


def _insert_reader_fake_quant(graph: Graph) -> int:
    """A reader that the source quantized with params of its own (a tensor quantized two
    ways: ``Graph.input_qparams``) gets its own fake-quant pair of the float tensor, right
    before it, instead of the tensor's shared one."""
    by_id = {n.id: n for n in graph.nodes}
    inserted = 0
    for (reader_id, tensor), params in list(graph.input_qparams.items()):
        reader = by_id.get(reader_id)
        if reader is None or _same(params, graph.act_qparams.get(tensor)):
            continue
        shared = f"{tensor}{FQ_SUFFIX}"
        if tensor not in reader.inputs and shared not in reader.inputs:
            continue
        base = f"{tensor}{FQ_SUFFIX}_r{reader_id}"
        scale, zp, q = f"{base}_scale", f"{base}_zp", f"{base}_q"
        graph.initializers[scale] = params.scale
        graph.initializers[zp] = params.zero_point
        axis = {"axis": int(params.axis)} if params.per_channel and params.axis is not None else {}
        at = graph.nodes.index(reader)
        dq = graph.add_node("DequantizeLinear", [q, scale, zp], [base], axis, index=at)
        quant = graph.add_node("QuantizeLinear", [tensor, scale, zp], [q], axis, index=at)
        quant.name = dq.name = "verify_fq"
        reader.inputs = [base if i in (tensor, shared) else i for i in reader.inputs]
        inserted += 1
    return inserted


def runnable_model(graph: Graph, fake_quant: bool) -> onnx.ModelProto:
    """The snapshot as a runnable ONNX model; with ``fake_quant``, activations are quantized
    where the graph records their qparams (the source's QDQ semantics)."""
    plain = graph.copy()
    expand_fused(plain, inner_quant=fake_quant)
    if fake_quant:
        insert_fake_quant(plain)
    plain.toposort()
    return to_onnx(plain)


class Runner:
    """Runs ONNX models on one engine: ``reference`` is ONNX Runtime without graph
    optimizations (QDQ runs as float fake-quant, exactly as specified)."""

    def __init__(self, engine: str = "onnxruntime", reference: bool = False) -> None:
        self.engine = engine
        self.reference = reference

    def run(self, model: onnx.ModelProto, feeds: Sequence[Feed],
            cancelled: CancelCheck | None = None) -> Runs:
        """Every feed through ``model``: output name -> value, per feed."""
        session = self.open(model, feeds[0])
        runs = []
        for feed in feeds:
            check_cancelled(cancelled)
            runs.append(session(feed))
        return runs

    def open(self, model: onnx.ModelProto,
             sample: Feed) -> Callable[[Feed], dict[str, np.ndarray]]:
        """A function running one feed through ``model`` (shaped like ``sample``)."""
        if self.engine == "openvino":
            engine = get_engine("openvino")
            with tempfile.TemporaryDirectory(prefix="qcore_verify_") as tmp:
                path = Path(tmp) / "model.onnx"
                onnx.save(model, path)  # read while compiling, not needed afterwards
                session = engine.load(path, 1, {k: tuple(v.shape) for k, v in sample.items()})
            return session.run
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        opts.intra_op_num_threads = 1
        opts.graph_optimization_level = (ort.GraphOptimizationLevel.ORT_DISABLE_ALL
                                         if self.reference
                                         else ort.GraphOptimizationLevel.ORT_ENABLE_ALL)
        ort_session = ort.InferenceSession(model.SerializeToString(), opts,
                                           providers=["CPUExecutionProvider"])
        names = [o.name for o in ort_session.get_outputs()]
        wanted = [i.name for i in ort_session.get_inputs()]

        def run(feed: Feed) -> dict[str, np.ndarray]:
            values = ort_session.run(None, {k: feed[k] for k in wanted})
            return dict(zip(names, values, strict=True))

        return run


def check_cancelled(cancelled: CancelCheck | None) -> None:
    if cancelled is not None and cancelled():
        raise Cancelled("verify cancelled")
