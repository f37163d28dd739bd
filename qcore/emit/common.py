"""What both INT8 writers share: constants, Q/DQ insertion and activation re-emission."""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from qcore.emit.hardswish import expand as expand_hardswish
from qcore.emit.hardswish import program_of, simplify
from qcore.ir import FusedActivation, Graph, Node, QParams
from qcore.ops import DEQUANTIZE, QUANTIZE
from qcore.status import OpStatus, Reason, ReasonKind


class EmitterBase:
    """Builds replacement nodes for one INT8 op at a time, into ``self.out``."""

    def __init__(self, graph: Graph) -> None:
        self.g = graph
        self.out: list[Node] = []
        self._quantized: dict[tuple[str, bytes, bytes], str] = {}
        self._triples: dict[str, tuple[str, str]] = {}

    # ---- small builders -----------------------------------------------------------------
    def const(self, hint: str, value: np.ndarray) -> str:
        name = self.g.unique_name(hint)
        self.g.initializers[name] = np.array(value)
        return name

    def params_inputs(self, tensor: str, params: QParams) -> tuple[str, str]:
        """New initializers for ``params``' scale and zero point (cleanup merges equal ones)."""
        scale = self.const(f"{tensor}_scale", params.scale)
        zp = self.const(f"{tensor}_zero_point", params.zero_point)
        return scale, zp

    def node(
        self,
        op_type: str,
        inputs: list[str],
        outputs: list[str],
        attrs: dict[str, Any] | None = None,
        domain: str = "",
        like: Node | None = None,
    ) -> Node:
        """A new node; ``like`` gives it that op's id, name and history instead of a new id."""
        if like is None:
            new = Node(self.g.new_id(), op_type, inputs, outputs, dict(attrs or {}), domain)
        else:
            new = like.replaced(op_type, inputs, outputs, attrs, domain)
            new.act = new.bias_add = new.program = None  # the writers re-emit them as ops
        if domain and domain not in self.g.opsets:
            self.g.opsets[domain] = 1
        self.out.append(new)
        return new

    def quantize(self, tensor: str, params: QParams) -> tuple[str, str, str]:
        """(int8 tensor, scale, zero point) for a float tensor, one QuantizeLinear per params."""
        key = (tensor, params.scale.tobytes(), params.zero_point.tobytes())
        if key in self._quantized:
            q = self._quantized[key]
            return q, *self._triples[q]
        scale, zp = self.params_inputs(tensor, params)
        q = self.g.unique_name(f"{tensor}_quantized")
        self.node(QUANTIZE, [tensor, scale, zp], [q], self._axis(params))
        self._quantized[key] = q
        self._triples[q] = (scale, zp)
        return q, scale, zp

    def dequantize(self, q: str, scale: str, zp: str, out: str, params: QParams) -> None:
        self.node(DEQUANTIZE, [q, scale, zp], [out], self._axis(params))

    def _read_quantized(self, node: Node, index: int, params: QParams) -> str:
        """The name ``node`` reads its input ``index`` by, quantized with ``params``: the
        tensor through a new Q -> DQ pair."""
        name = node.inputs[index]
        q, scale, zp = self.quantize(name, params)
        dequantized = self.g.unique_name(f"{name}_dequantized")
        self.dequantize(q, scale, zp, dequantized, params)
        return dequantized

    def keep_source_qdq(self, node: Node) -> list[Node]:
        """An FP32 op reads every activation the source quantized for it through Q -> DQ
        with the source's params: the rounded and clamped values the quant model computes
        with (after an INT8 op the pair squashes away: its output is on that grid; OpenVINO
        may run the op in int8, as it would the source model). A graph output it writes that
        the source quantized keeps its Q -> DQ too (PP-OCRv5 rec ort-u8's Softmax, FP32 on
        onednn: the source's probabilities are 1/255 steps)."""
        self.out = []
        inputs = list(node.inputs)
        for index, name in enumerate(node.inputs):
            params = self.g.qparams_for(node, name) if name else None
            if params is not None and self.g.source_quantized(node, name):
                inputs[index] = self._read_quantized(node, index, params)
        outputs, finals = self.quantized_outputs(node), list(node.outputs)
        node.inputs, node.outputs = inputs, [o for o, _ in outputs]
        self.out.append(node)
        self.write_outputs(outputs, finals)
        return self.out

    def quantized_outputs(self, node: Node) -> list[tuple[str, QParams | None]]:
        """The names ``node`` writes its outputs by, with the params of each graph output the
        source quantized: no INT8 reader puts a Q -> DQ after those, so the op writes a new
        name and a Q -> DQ gives the output its name, rounded and saturated as in the source
        (without it a Gemm's logits passed the range the source clamps them to)."""
        outputs: list[tuple[str, QParams | None]] = []
        for name in node.outputs:
            params = self.g.act_qparams.get(name) if name in self.g.output_names else None
            if params is None or params.per_channel:
                outputs.append((name, None))
            else:
                outputs.append((self.g.unique_name(f"{name}_before_quant"), params))
        return outputs

    def write_outputs(self, outputs: list[tuple[str, QParams | None]], finals: list[str],
                      ) -> None:
        """Q -> DQ from each output :meth:`quantized_outputs` renamed to its graph output."""
        for (name, params), final in zip(outputs, finals, strict=True):
            if params is not None:
                q, scale, zp = self.quantize(name, params)
                self.dequantize(q, scale, zp, final, params)

    @staticmethod
    def _axis(params: QParams) -> dict[str, Any]:
        return {"axis": int(params.axis)} if params.per_channel and params.axis is not None else {}

    def activation(self, act: FusedActivation, src: str, dst: str,
                   owner: Node | None = None) -> None:
        """Re-emit a fused Relu / Clip as its own op, keeping its original id and the status of
        the op it was fused into (without one: FP32 after an INT8 op with a float output)."""
        inputs = [src]
        if act.op_type == "Clip":
            low, high = act.low, act.high
            lo = self.const("clip_min", np.array(low, np.float32)) if np.isfinite(low) else ""
            hi = self.const("clip_max", np.array(high, np.float32)) if np.isfinite(high) else ""
            inputs += [lo, hi]
            while inputs and inputs[-1] == "":
                inputs.pop()
        node = Node(act.op_id, act.op_type, inputs, [dst])
        if owner is not None:
            node.decide(owner.status, owner.reason)
        else:
            node.decide(OpStatus.FP32, Reason(ReasonKind.FLOAT_ACTIVATION))
        self.out.append(node)

    def expand(self, core: Node, bias: str = "") -> None:
        """Append ``core`` as plain ONNX: a fused bias Add and activation become ops again,
        with the ids they had before fusion."""
        g = self.g
        program = program_of(core)
        if program is not None:  # a HardSwish with its source's inner fake-quants
            output = g.act_qparams.get(core.outputs[0])
            self.out.extend(expand_hardswish(g, core, simplify(program, output)))
            return
        self.out.append(core)
        bias_add, act = core.bias_add, core.act
        core.bias_add = core.act = None
        final = core.outputs[0]
        if bias_add is not None:
            core.inputs = core.inputs[:2]
            tmp = g.unique_name(f"{final}_matmul")
            bias_out = g.unique_name(f"{final}_biased") if act else final
            core.outputs = [tmp]
            add = Node(bias_add, "Add", [tmp, bias], [bias_out])
            add.decide(core.status, core.reason)
            self.out.append(add)
            if act:
                self.activation(act, bias_out, final, owner=core)
        elif act:
            tmp = g.unique_name(f"{final}_preact")
            core.outputs = [tmp]
            self.activation(act, tmp, final, owner=core)


def expand_fused(graph: Graph, inner_quant: bool = False) -> None:
    """Rewrite every op that still carries a fused bias or activation as plain ONNX ops, and
    HardSwish as x * HardSigmoid(x) below opset 14. With ``inner_quant`` (the source's QDQ
    semantics), a HardSwish that keeps its source's inner quantization becomes the source's
    ops with those Q/DQ pairs."""
    emitter = EmitterBase(graph)
    nodes: list[Node] = []
    if graph.opsets.get("") == 13 and any(n.op_type == "HardSwish" for n in graph.nodes):
        graph.opsets[""] = 14  # 13 -> 14 changes no inference semantics; HardSwish is one op
    old_opset = graph.opsets.get("", 14) < 14
    for node in graph.nodes:
        program = program_of(node) if inner_quant else None
        if program is not None:
            nodes.extend(expand_hardswish(graph, node, program))
            continue
        if node.op_type == "HardSwish" and not node.domain and old_opset:
            gate = graph.unique_name(f"{node.outputs[0]}_gate")
            nodes.append(Node(graph.new_id(), "HardSigmoid", [node.inputs[0]], [gate],
                              {"alpha": 1.0 / 6.0, "beta": 0.5}))
            node.op_type, node.inputs = "Mul", [node.inputs[0], gate]
        if node.act is None and node.bias_add is None:
            nodes.append(node)
            continue
        emitter.out = []
        emitter.expand(node, bias=node.inputs[2] if len(node.inputs) > 2 else "")
        nodes.extend(emitter.out)
    graph.nodes = nodes


# ONNX Runtime's MatMulAddFusion (ORT_ENABLE_EXTENDED) adds shape initializers named
# gemm_input_shape / gemm_output_shape[_token_N]. Models from quant_pre_process already hold
# such names (its own run of that fusion), and ONNX Runtime then fails with "Attempt to replace
# the existing tensor" once a float MatMul + Add is left to fuse: MiniLM-L6 quantized by
# quantize_static, whose QDQ model loads, gave an FP32 and an onednn model that did not.
ORT_GENERATED_NAME = re.compile(r"gemm_(input|output)_shape(_token_\d+)?")


def rename_ort_generated_initializers(graph: Graph) -> int:
    """Give every initializer named like ONNX Runtime's own generated shapes a name of the
    model's own (same value, same readers). Returns how many were renamed."""
    io = set(graph.input_names) | set(graph.output_names)
    mapping = {name: graph.unique_name(f"model_{name}") for name in graph.initializers
               if ORT_GENERATED_NAME.fullmatch(name) and name not in io}
    for old, new in mapping.items():
        graph.initializers[new] = graph.initializers.pop(old)
    if mapping:
        graph.replace_inputs(mapping)
    return len(mapping)


def act_absorbed(act: FusedActivation | None, params: QParams) -> bool:
    """True when saturating to ``params`` already clamps like the fused activation."""
    if act is None:
        return True
    real_low, real_high = params.real_range()
    step = float(np.max(params.scale))
    return real_low >= act.low - 1e-6 and real_high <= act.high + step / 2
