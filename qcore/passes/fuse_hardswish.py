"""Fuse the decomposed hard-swish that exporters write back into one HardSwish op."""

from __future__ import annotations

from dataclasses import dataclass, field

from qcore.hardswish_program import Program, Step, StepKind
from qcore.ir import Graph, Node
from qcore.passes.base import Context, Pass, PassResult
from qcore.passes.util import activation_bounds, const_scalar, single_consumer


def _close(value: float | None, target: float) -> bool:
    return value is not None and abs(value - target) <= 1e-4 * max(1.0, abs(target))


class _Matcher:
    """Pattern helpers over one graph; every matched intermediate has a single reader."""

    def __init__(self, g: Graph) -> None:
        self.g = g
        self.producers = g.producers()
        self.consumers = g.consumers()

    def only_reader(self, tensor: str) -> Node | None:
        return single_consumer(self.g, self.consumers, tensor)

    def producer(self, tensor: str, op_type: str) -> Node | None:
        node = self.producers.get(tensor)
        if node is None or node.op_type != op_type or node.domain:
            return None
        if self.only_reader(tensor) is None:
            return None
        return node

    def scaled_by(self, node: Node, value: float) -> str | None:
        """For ``x / value`` or ``x * (1/value)``, the tensor x."""
        if node.op_type == "Div" and _close(const_scalar(self.g, node.inputs[1]), value):
            return node.inputs[0]
        if node.op_type == "Mul":
            for a, b in (node.inputs, node.inputs[::-1]):
                if _close(const_scalar(self.g, b), 1.0 / value):
                    return a
        return None

    def relu6_of_x_plus_3(self, tensor: str) -> tuple[str, list[Node]] | None:
        """If ``tensor = Clip(x + 3, 0, 6)``: (x, [clip, add]). A Relu whose quantizer tops out
        at 6 counts too: ONNX Runtime drops the Clip and lets the quantizer clamp."""
        clip = self.producer(tensor, "Clip") or self.producer(tensor, "Relu")
        if clip is None:
            return None
        if clip.op_type == "Relu" and not self._quantizer_tops_at_6(tensor):
            return None
        bounds = activation_bounds(self.g, clip) if clip.op_type == "Clip" else None
        if clip.op_type == "Clip" and not (bounds and bounds[0] == 0 and _close(bounds[1], 6.0)):
            return None  # (a Clip restored from a quantizer's range ends at 6 up to float32)
        add = self.producer(clip.inputs[0], "Add")
        if add is None:
            return None
        for a, b in (add.inputs, add.inputs[::-1]):
            if _close(const_scalar(self.g, b), 3.0):
                return a, [clip, add]
        return None

    def _quantizer_tops_at_6(self, tensor: str) -> bool:
        params = self.g.act_qparams.get(tensor)
        if params is None or params.per_channel:
            return False
        low, high = params.real_range()
        return low == 0.0 and 5.5 <= high <= 6.0 + float(params.scale)

    def hard_sigmoid_of(self, tensor: str) -> tuple[str, list[Node]] | None:
        """If ``tensor = relu6(x + 3) / 6`` in any spelling: (x, the ops that compute it)."""
        node = self.producers.get(tensor)
        if node is None or self.only_reader(tensor) is None or node.domain:
            return None
        if node.op_type == "HardSigmoid":
            if _close(node.attrs.get("alpha", 0.2), 1 / 6) and _close(node.attrs.get("beta", 0.5),
                                                                      0.5):
                return node.inputs[0], [node]
            return None
        if node.op_type in ("Div", "Mul"):
            inner = self.scaled_by(node, 6.0)
            found = self.relu6_of_x_plus_3(inner) if inner else None
            if found:
                return found[0], [node] + found[1]
        return None


@dataclass
class _Pattern:
    """A matched hard-swish: ``x * gate`` by ``mul``; ``gate`` and ``product`` list the ops
    from x to the gate and from the product to the hard-swish, in order."""

    x: str
    mul: Node
    gate: list[Node]
    product: list[Node] = field(default_factory=list)

    @property
    def last(self) -> Node:
        return self.product[-1] if self.product else self.mul

    @property
    def nodes(self) -> list[Node]:
        return [*self.gate, self.mul, *self.product]


class FuseHardSwish(Pass):
    """``x * relu6(x + 3) / 6`` (Add, Clip, Mul, Div as paddle2onnx writes it) and
    ``x * HardSigmoid(x)`` become one ``HardSwish``. The quantization the source put on the
    pattern's inner tensors (quantize_static quantizes the gate and the product) is kept on
    it as a program (``qcore.emit.hardswish``), so every snapshot and both targets compute
    what the source computes; a pattern whose x is read two ways stays as it is."""

    name = "fuse_hardswish"

    def apply(self, ctx: Context) -> PassResult:
        g = ctx.graph
        fused = quantized = 0
        removed: set[int] = set()
        match = _Matcher(g)
        for mul in list(g.nodes):
            if mul.op_type != "Mul" or mul.domain or mul.id in removed:
                continue
            pattern = self._match(match, mul)
            program = _program(g, pattern) if pattern is not None else None
            if pattern is None or program is None:
                continue
            last, x = pattern.last, pattern.x
            others = [n for n in pattern.nodes if n is not last]
            for node in others:
                g.tensors.pop(node.outputs[0], None)
                g.act_qparams.pop(node.outputs[0], None)
                removed.add(node.id)
            last.fused.extend(n.label for n in others)
            _keep_input_quantization(g, pattern.nodes, last, x)
            keep = any(s.kind is StepKind.FAKE_QUANT for s in program.steps)
            last.op_type, last.inputs = "HardSwish", [x]
            last.attrs, last.program = {}, (program if keep else None)
            g.remove_nodes(others)
            match = _Matcher(g)
            fused += 1
            quantized += keep
        summary = f"fused {fused} HardSwish" + (
            f", {quantized} keep the quantization of their inner tensors" if quantized else "")
        return PassResult(modified=fused > 0, summary=summary)

    @staticmethod
    def _match(m: _Matcher, mul: Node) -> _Pattern | None:
        for x, gate in (mul.inputs, mul.inputs[::-1]):
            found = m.hard_sigmoid_of(gate)
            if found and found[0] == x:
                return _Pattern(x, mul, found[1][::-1])
            found = m.relu6_of_x_plus_3(gate)
            if found and found[0] == x:
                reader = m.only_reader(mul.outputs[0])
                if reader is not None and m.scaled_by(reader, 6.0) == mul.outputs[0]:
                    return _Pattern(x, mul, found[1][::-1], [reader])
        return None


def _step(g: Graph, node: Node, src: str) -> Step | None:
    """The op reading ``src`` (and constants) as a program step."""
    if node.op_type in ("Add", "Mul", "Div"):
        others = [n for n in node.inputs if n != src]
        if len(others) != 1 or (node.op_type == "Div" and node.inputs[0] != src):
            return None
        value = const_scalar(g, others[0])
        return None if value is None else Step(StepKind(node.op_type), value, op_id=node.id)
    if node.op_type == "HardSigmoid":
        return Step(StepKind.HARD_SIGMOID, float(node.attrs.get("alpha", 0.2)),
                    float(node.attrs.get("beta", 0.5)), op_id=node.id)
    bounds = activation_bounds(g, node)
    return None if bounds is None else Step(StepKind.CLIP, *bounds, op_id=node.id)


def _chain(g: Graph, nodes: list[Node], src: str, reader: Node | None) -> list[Step] | None:
    """Steps of ``nodes`` (a chain from ``src``), each followed by the fake-quant the source
    put on its output for the next reader (``reader`` after the last; None: no reader, the
    chain's output is the hard-swish, quantized as a tensor of its own)."""
    steps: list[Step] = []
    for i, node in enumerate(nodes):
        step = _step(g, node, src)
        if step is None:
            return None
        steps.append(step)
        src = node.outputs[0]
        nxt = nodes[i + 1] if i + 1 < len(nodes) else reader
        params = g.qparams_for(nxt, src) if nxt is not None else None
        if params is not None:
            if params.per_channel:
                return None
            steps.append(Step(StepKind.FAKE_QUANT, quant=params))
    return steps


def _program(g: Graph, p: _Pattern) -> Program | None:
    """What the pattern computes, its inner fake-quants included (None: it cannot be one op:
    x is read with different params by the gate and the product, or an inner tensor is
    quantized per channel)."""
    gate_x, mul_x = g.qparams_for(p.gate[0], p.x), g.qparams_for(p.mul, p.x)
    if (gate_x is None) != (mul_x is None) or (gate_x is not None and not gate_x.same_as(mul_x)):
        return None
    gate = _chain(g, p.gate, p.x, p.mul)
    if gate is None:
        return None
    product: list[Step] = []
    if p.product:
        params = g.qparams_for(p.product[0], p.mul.outputs[0])
        if params is not None:
            if params.per_channel:
                return None
            product.append(Step(StepKind.FAKE_QUANT, quant=params))
        rest = _chain(g, p.product, p.mul.outputs[0], None)
        if rest is None:
            return None
        product += rest
    return Program(tuple(gate), tuple(product))


def _keep_input_quantization(g: Graph, pattern: list[Node], fused: Node, x: str) -> None:
    """The fused op reads ``x`` quantized as the pattern's first reader of it did."""
    params = next((g.input_qparams[(n.id, x)] for n in pattern if (n.id, x) in g.input_qparams),
                  None)
    if params is not None:
        g.input_qparams[(fused.id, x)] = params
