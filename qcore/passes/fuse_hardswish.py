"""Fuse the decomposed hard-swish that exporters write back into one HardSwish op."""

from __future__ import annotations

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


class FuseHardSwish(Pass):
    """``x * relu6(x + 3) / 6`` (Add, Clip, Mul, Div as paddle2onnx writes it) and
    ``x * HardSigmoid(x)`` become one ``HardSwish``, which runs as one cheap float op between
    INT8 ops instead of four ops and their requantizations."""

    name = "fuse_hardswish"

    def apply(self, ctx: Context) -> PassResult:
        g = ctx.graph
        fused = 0
        removed: set[int] = set()
        match = _Matcher(g)
        for mul in list(g.nodes):
            if mul.op_type != "Mul" or mul.domain or mul.id in removed:
                continue
            found = self._match(match, mul)
            if found is None:
                continue
            x, last, doomed = found
            others = [n for n in doomed if n is not last]
            for node in others:
                g.tensors.pop(node.outputs[0], None)
                g.act_qparams.pop(node.outputs[0], None)
                removed.add(node.id)
            last.fused.extend(n.label for n in others)
            _keep_input_quantization(g, doomed, last, x)
            last.op_type, last.inputs, last.attrs = "HardSwish", [x], {}
            g.remove_nodes(others)
            match = _Matcher(g)
            fused += 1
        return PassResult(modified=fused > 0, summary=f"fused {fused} HardSwish")

    @staticmethod
    def _match(m: _Matcher, mul: Node) -> tuple[str, Node, list[Node]] | None:
        """(x, the op whose output is the hard-swish, every op of the pattern)."""
        for x, gate in (mul.inputs, mul.inputs[::-1]):
            found = m.hard_sigmoid_of(gate)
            if found and found[0] == x:
                return x, mul, [mul] + found[1]
            found = m.relu6_of_x_plus_3(gate)
            if found and found[0] == x:
                reader = m.only_reader(mul.outputs[0])
                if reader is not None and m.scaled_by(reader, 6.0) == mul.outputs[0]:
                    return x, reader, [reader, mul] + found[1]
        return None


def _keep_input_quantization(g: Graph, pattern: list[Node], fused: Node, x: str) -> None:
    """The fused op reads ``x`` quantized as the pattern's first reader of it did."""
    params = next((g.input_qparams[(n.id, x)] for n in pattern if (n.id, x) in g.input_qparams),
                  None)
    if params is not None:
        g.input_qparams[(fused.id, x)] = params
