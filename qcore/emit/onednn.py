"""INT8 for oneDNN (OpenVINO): the fused FP32 ops between minimal QuantizeLinear /
DequantizeLinear pairs, with int8 weights, which OpenVINO turns into INT8 oneDNN primitives."""

from __future__ import annotations

import numpy as np

from qcore.emit.common import EmitterBase
from qcore.ir import Graph, Node, QParams
from qcore.ops import keeps_scale
from qcore.status import OpStatus


class QdqEmitter(EmitterBase):
    """Each INT8 op reads its activations through Q->DQ and its weight through DQ of an int8
    initializer; a quantized output goes through Q->DQ under its original name.

    An input that an INT8 data-movement op or Concat made from tensors read through Q->DQ
    with the very params its reader wants holds values of that grid already: it is read as
    it is, without a second Q->DQ (the source's placement: NNCF quantizes a Split's or a
    Concat's inputs, not their outputs, and OpenVINO moves the dequantization through them
    into the next convolution; a Q->DQ after them costs it an extra kernel each)."""

    def __init__(self, graph: Graph) -> None:
        super().__init__(graph)
        self._producers = graph.producers()

    def on_grid(self, name: str, params: QParams) -> bool:
        """True when ``name`` is the output of an INT8 value-keeping op whose data inputs
        are all read with ``params`` (so it holds exactly ``params``' values)."""
        producer = self._producers.get(name)
        if producer is None or producer.status is not OpStatus.INT8:
            return False
        if keeps_scale(producer):
            data = producer.inputs[:1]
        elif producer.op_type == "Concat" and not producer.domain:
            data = producer.inputs
        else:
            return False
        return all(params.same_as(self.g.qparams_for(producer, n)) for n in data)

    def _read_quantized(self, node: Node, index: int, params: QParams) -> str:
        """The name ``node`` reads its input ``index`` by, quantized with ``params``: the
        tensor itself when it is on that grid already and the source read it without a Q/DQ
        pair too (where the source has one, it stays: PP-OCRv4 rec s8 reading a Transpose's
        output without the source's pair before a Conv drifted on OpenVINO, cosine to the
        QDQ model 0.975 against 0.996)."""
        name = node.inputs[index]
        if not self.g.source_quantized(node, name) and self.on_grid(name, params):
            return name
        return super()._read_quantized(node, index, params)

    def emit(self, node: Node) -> list[Node]:
        self.out = []
        g = self.g
        inputs = list(node.inputs)
        for index, name in enumerate(node.inputs):
            if not name:
                continue
            if index == 1 and name in g.weight_qparams and name in g.weight_ints:
                params = g.weight_qparams[name]
                q = self.const(f"{name}_int8", g.weight_ints[name])
                scale, zp = self.params_inputs(name, params)
                inputs[index] = g.unique_name(f"{name}_dequantized")
                self.dequantize(q, scale, zp, inputs[index], params)
            elif (act_params := g.qparams_for(node, name)) is not None:
                act_params = self._shift_safe(node, name, act_params)
                inputs[index] = self._read_quantized(node, index, act_params)
        outputs = self.quantized_outputs(node)
        core = node.replaced(node.op_type, inputs, [o for o, _ in outputs], node.attrs,
                             node.domain)
        self.expand(core, bias=node.inputs[2] if len(node.inputs) > 2 else "")
        self.write_outputs(outputs, list(node.outputs))
        return self.out

    def _shift_safe(self, node: Node, name: str, params: QParams) -> QParams:
        """``params``, or the same grid as int8 with zero point -128 where OpenVINO would
        miscompute it: an Add / Sub of a constant reading a uint8 tensor with zero point 0,
        its output quantized with about the same scale. OpenVINO 2026.4 then truncates
        instead of rounding the shift ``c / scale + zero point``: every code one step off
        when its fraction is above one half (PP-OCRv5 rec ort-u8, Add.141: all 230,400),
        in the source QDQ file too. Int8 with zero point -128 holds the same values and
        OpenVINO computes it right."""
        g = self.g
        if (node.op_type not in ("Add", "Sub") or node.domain or params.per_channel
                or params.dtype != np.uint8 or int(params.zero_point) != 0):
            return params
        others = [n for n in node.inputs if n != name]
        out = g.act_qparams.get(node.outputs[0])
        if (len(others) != 1 or others[0] not in g.initializers or out is None
                or out.per_channel or not 0.9 < float(out.scale) / float(params.scale) < 1.1):
            return params
        return QParams(params.scale, np.array(-128, np.int8))

