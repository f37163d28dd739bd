"""INT8 for oneDNN (OpenVINO): the fused FP32 ops between minimal QuantizeLinear /
DequantizeLinear pairs, with int8 weights, which OpenVINO turns into INT8 oneDNN primitives."""

from __future__ import annotations

from qcore.emit.common import EmitterBase
from qcore.ir import Node


class QdqEmitter(EmitterBase):
    """Each INT8 op reads its activations through Q->DQ and its weight through DQ of an int8
    initializer; a quantized output goes through Q->DQ under its original name."""

    def keep_source_qdq(self, node: Node) -> list[Node]:
        """An FP32 op still reads through Q->DQ every activation input the source quantized
        for it (OpenVINO may run it in int8, as it would the source model)."""
        self.out = []
        inputs = list(node.inputs)
        for index, name in enumerate(node.inputs):
            params = self.g.qparams_for(node, name) if name else None
            if params is not None and self.g.source_quantized(node, name):
                q, scale, zp = self.quantize(name, params)
                inputs[index] = self.g.unique_name(f"{name}_dequantized")
                self.dequantize(q, scale, zp, inputs[index], params)
        node.inputs = inputs
        self.out.append(node)
        return self.out

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
                params = act_params
                q, scale, zp = self.quantize(name, params)
                inputs[index] = g.unique_name(f"{name}_dequantized")
                self.dequantize(q, scale, zp, inputs[index], params)
        core = node.replaced(node.op_type, inputs, list(node.outputs), node.attrs, node.domain)
        self.expand(core, bias=node.inputs[2] if len(node.inputs) > 2 else "")
        return self.out
