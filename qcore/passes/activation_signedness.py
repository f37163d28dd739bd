"""Choose the 8-bit type of every activation: uint8, which integer CPU kernels are fast with."""

from __future__ import annotations

import numpy as np

from qcore.ir import FusedActivation, Graph, Node, QParams
from qcore.ops import keeps_scale
from qcore.passes.base import Context, Pass, PassResult
from qcore.passes.util import activation_bounds


def _non_negative_outputs(g: Graph) -> set[str]:
    result = set()
    for node in g.nodes:
        low = node.act.low if node.act else None
        if low is None:
            bounds = activation_bounds(g, node)
            low = bounds[0] if bounds else None
        if low is not None and low >= 0:
            result.update(node.outputs)
    return result


class ActivationSignedness(Pass):
    """For ONNX Runtime, whose fast integer kernels take uint8 activations, every signed int8
    activation becomes uint8 with the zero point shifted by 128: the same values and the same
    saturation. For oneDNN, which runs u8 x s8 fastest, outputs of Relu / Clip(>=0) become
    uint8 with zero point 0 and the same scale, where the source's saturation at 127 steps
    is kept (``_clamp_kept``: a fused Relu becomes Clip(0, 127 * scale)); not on ONNX Runtime,
    where the shift below is exact anyway. oneDNN runs other signed
    symmetric int8 natively, so they stay as they are (a zero point costs it extra work), except
    around a Concat. OpenVINO 2026.4 miscomputes a signed Concat of inputs with different
    scales (PP-OCRv4 det: all zeros after it, cosine to float 0.08; u8 with zero point 128:
    0.959), and a convolution reading a signed Concat of inputs with equal scales and no
    output quantizer (NNCF's placement, the YOLOv8n C2f block Split -> Concat -> Conv: cosine
    to ONNX Runtime on the same QDQ file 0.976 after the first block, 0.02 on the class
    scores; u8 with zero point 128: 1.0). So every tensor of a Concat's region
    (``_concat_regions``) is shifted, and the region keeps one type (PP-OCRv4 rec / det, whose
    Concats have an output quantizer, compute the same with only the output shifted). Both
    rewrites keep every value the quant model could represent."""

    name = "activation_signedness"

    def apply(self, ctx: Context) -> PassResult:
        g = ctx.graph
        non_negative = _non_negative_outputs(g)
        ort = ctx.config.target == "onnxruntime"
        concats = set() if ort else _concat_regions(g)
        counts = {"unsigned": 0, "shifted": 0}
        widened: set[str] = set()
        links = (g.producers(), g.consumers())
        for tensor, params in list(g.act_qparams.items()):
            widen = not ort and tensor in non_negative and \
                _clamp_kept(g, links, tensor, params)
            new = _retyped(params, widen, ort or tensor in concats, counts)
            if new is not None:
                g.act_qparams[tensor] = new
            if widen:
                widened.add(tensor)
        for key, params in list(g.input_qparams.items()):
            widen = key[1] in widened and params.same_as(_signed(g.act_qparams[key[1]]))
            new = _retyped(params, widen, ort or key[1] in concats, {})
            if new is not None:
                g.input_qparams[key] = new
        return PassResult(
            modified=bool(counts["unsigned"] or counts["shifted"]),
            summary=f"{counts['unsigned']} unsigned after activation, "
            f"{counts['shifted']} shifted s8->u8",
        )


Links = tuple[dict[str, Node], dict[str, list[Node]]]  # producers, consumers


def _signed(params: QParams) -> QParams:
    """The int8 form of params widened by ``_retyped`` (u8, zero point 0, same scale)."""
    if params.dtype == np.uint8 and not params.per_channel and int(params.zero_point) == 0:
        return QParams(params.scale, np.zeros_like(params.zero_point, np.int8))
    return params


def _clamp_kept(g: Graph, links: Links, tensor: str, params: QParams) -> bool:
    """Whether ``tensor``, a non-negative s8 tensor, can become u8 (zero point 0, same scale)
    and still saturate where the source's s8 saturates, at 127 steps. True when the clamp
    before it ends there already (a ReLU6 calibrated to 6); or when it is an activation
    fused into its producer and every reader reads the tensor through that quantization:
    the clamp then ends at 127 steps (a Relu becomes Clip(0, 127 * scale), the values the
    source's int8 holds; oneDNN fuses it into the convolution). Otherwise it stays s8:
    widened, a Relu's output saturated at 255 steps instead of 127 (PP-OCRv4 det s8:
    cosine to the source 0.995)."""
    if params.dtype != np.int8 or params.per_channel or int(params.zero_point) != 0:
        return False
    top = float(np.float32(params.qmax) * params.scale)
    producers, consumers = links
    producer = producers.get(tensor)
    if producer is None:
        return False
    act = producer.act
    bounds = (act.low, act.high) if act is not None else activation_bounds(g, producer)
    if bounds is None:
        return False
    if bounds[1] <= top:
        return True
    readers = consumers.get(tensor, [])
    if act is None or tensor in g.output_names or not all(
            g.source_quantized(r, tensor) and params.same_as(g.qparams_for(r, tensor))
            for r in readers):
        return False
    producer.act = FusedActivation("Clip", act.low, top, act.op_id)
    return True


def _keeps_values(node: Node) -> bool:
    return keeps_scale(node) or (node.op_type == "Concat" and not node.domain)


def _data_inputs(node: Node) -> list[str]:
    return node.inputs if node.op_type == "Concat" else node.inputs[:1]


def _concat_regions(g: Graph) -> set[str]:
    """Every tensor joined to a Concat through ops that keep values (the Concat's inputs and
    output, and on through Split / Slice / Resize / MaxPool / other Concats, both ways): the
    tensors propagate_scales may give one scale, which must share one 8-bit type so that no
    requantization separates them."""
    producers, consumers = g.producers(), g.consumers()
    todo = [t for n in g.nodes if n.op_type == "Concat" and not n.domain
            for t in [*n.inputs, *n.outputs] if t and t not in g.initializers]
    region: set[str] = set()
    while todo:
        tensor = todo.pop()
        if tensor in region:
            continue
        region.add(tensor)
        producer = producers.get(tensor)
        if producer is not None and _keeps_values(producer):
            todo += [t for t in _data_inputs(producer) if t and t not in g.initializers]
        for reader in consumers.get(tensor, []):
            if _keeps_values(reader) and tensor in _data_inputs(reader):
                todo += [t for t in reader.outputs if t]
    return region


def _retyped(params: QParams, widen: bool, shift: bool,
             counts: dict[str, int]) -> QParams | None:
    """The uint8 form of int8 ``params`` (None to keep them): ``widen`` reads a non-negative
    tensor as uint8 with zero point 0, ``shift`` adds 128 to the zero point."""
    if params.dtype != np.int8 or params.per_channel:
        return None
    if widen and int(params.zero_point) == 0:
        counts["unsigned"] = counts.get("unsigned", 0) + 1
        return QParams(params.scale, np.zeros_like(params.zero_point, np.uint8))
    if not shift:
        return None
    counts["shifted"] = counts.get("shifted", 0) + 1
    zp = params.zero_point.astype(np.int32) + 128
    return QParams(params.scale, zp.astype(np.uint8))
