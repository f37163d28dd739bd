"""Drop activation QuantizeLinear -> DequantizeLinear pairs; the scales stay by tensor."""

from __future__ import annotations

from qcore.passes.base import Context, Pass, PassResult
from qcore.passes.util import bypass

CLAMPING_PRODUCERS = ("Conv", "Gemm", "MatMul", "Add")


class RemoveFakeOps(Pass):
    """Readers of the DequantizeLinear output read the QuantizeLinear input instead.

    A quantizer whose range starts exactly at 0 (zero point at the type's minimum) clamps
    negative values, as a Relu would: exporters such as ONNX Runtime drop the Relu for that
    reason. After a Conv, Gemm, MatMul or Add the clamp is restored as an explicit Relu so the
    FP32 graph computes what the quant model computes.
    """

    name = "remove_fake_ops"

    def apply(self, ctx: Context) -> PassResult:
        g = ctx.graph
        producers = g.producers()
        outputs = set(g.output_names)
        alias: dict[str, str] = {}
        doomed = []
        at_outputs = []
        for dq in g.nodes:
            if dq.op_type != "DequantizeLinear" or dq.status != "fake":
                continue
            quant = producers.get(dq.inputs[0])
            if quant is None or quant.op_type != "QuantizeLinear":
                continue
            if dq.outputs[0] in outputs:
                at_outputs.append((dq, quant))
            else:
                alias[dq.outputs[0]] = quant.inputs[0]
                doomed.append(dq)
        def resolve(name: str) -> str:
            while name in alias:
                name = alias[name]
            return name

        for node in g.nodes:
            node.inputs = [resolve(name) for name in node.inputs]
        g.remove_nodes(doomed)
        removed = len(doomed)
        for dq, quant in at_outputs:
            removed += bypass(g, dq, quant.inputs[0], dq.outputs[0])
        consumers = g.consumers()
        dead = [
            n
            for n in g.nodes
            if n.op_type == "QuantizeLinear"
            and n.status == "fake"
            and not consumers.get(n.outputs[0])
            and n.outputs[0] not in outputs
        ]
        g.remove_nodes(dead)
        removed += len(dead)
        restored = self._restore_relus(g)
        return PassResult(
            modified=removed > 0, summary=f"removed {removed} Q/DQ ops, restored {restored} Relu"
        )

    @staticmethod
    def _restore_relus(g) -> int:  # noqa: ANN001
        producers = g.producers()
        restored = 0
        for tensor, params in list(g.act_qparams.items()):
            if params.per_channel or int(params.zero_point) != params.qmin:
                continue
            producer = producers.get(tensor)
            if producer is None or producer.op_type not in CLAMPING_PRODUCERS:
                continue
            if producer.domain or tensor not in producer.outputs:
                continue
            pre = g.unique_name(f"{tensor}_before_relu")
            producer.outputs = [pre if o == tensor else o for o in producer.outputs]
            if tensor in g.tensors:
                g.tensors[pre] = g.tensors[tensor]
            relu = g.add_node("Relu", [pre], [tensor], index=g.nodes.index(producer) + 1)
            relu.reason = "restored: the quantizer's range starts at 0"
            restored += 1
        return restored
