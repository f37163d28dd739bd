"""A HardSwish that keeps the quantization its source put inside it, and its exact forms.

Exporters spell hard-swish out (``x * HardSigmoid(x)``; ``x * relu6(x + 3) / 6``) and
quantizers put Q/DQ pairs on the inner tensors: ONNX Runtime's ``quantize_static`` quantizes
the gate (HardSigmoid's output; ``x + 3``) and the product. ``fuse_hardswish`` makes one
``HardSwish`` of the pattern and records the pattern, those fake-quants included, as a
:class:`Program` on it (``Node.program``). Every form written
from it computes what the source computes:

- :func:`expand` writes the program as float ops with QuantizeLinear / DequantizeLinear
  pairs: the source's own ops for ``qcore verify``'s fake-quant snapshots, the
  :func:`simplify`-ed ones (exact in real arithmetic) for the ``onednn`` target and for an
  ONNX Runtime float island;
- :func:`integer_chain` finds integer ops for ONNX Runtime (QLinearAdd for the gate,
  QLinearMul for the product, a requantizing QLinearLeakyRelu if one is needed) and returns
  them only when they give the source's output code for every code of the 8-bit input.

ONNX Runtime has no QLinearHardSwish, and a 256-entry table (Gather over the u8 codes) is
exact but measured 4.5-6x slower than the float island in PP-LCNet: its Gather copies one
byte per index and stops the NHWC layout of the integer convolutions (2 Transposes per
table).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from qcore.hardswish_program import Program, Step, StepKind
from qcore.ir import Graph, Node, QParams
from qcore.ops import DEQUANTIZE, QUANTIZE


def program_of(node: Node) -> Program | None:
    return node.program


# ---- simplification, exact in real arithmetic ------------------------------------------------
def _code(params: QParams, value: float) -> int:
    return int(params.quantize(np.array(value, np.float32)).reshape(()))


def _clamps_like(params: QParams, low: float, high: float) -> bool:
    """True when quantizing with ``params`` clamps to [low, high] by itself: quantizing the
    bounds gives the end codes (so ``q(clip(v, low, high)) == q(v)`` for every v)."""
    return _code(params, low) == params.qmin and _code(params, high) == params.qmax


def _within(params: QParams, low: float, high: float) -> bool:
    """True when every value read back with ``params`` lies in [low, high]."""
    real_low, real_high = params.real_range()
    return real_low >= low and real_high <= high


def _scaled(params: QParams, factor: float) -> QParams:
    return QParams(params.scale * np.float32(factor), params.zero_point.copy(), params.axis)


def _rewrite(steps: list[Step]) -> bool:
    """One rewrite of adjacent steps that changes no value in real arithmetic; False when
    none applies."""
    for i in range(len(steps) - 1):
        first, second = steps[i], steps[i + 1]
        if second.kind is StepKind.FAKE_QUANT and second.quant is not None:
            q = second.quant
            if first.kind is StepKind.CLIP and _clamps_like(q, first.a, first.b):
                del steps[i]  # the quantizer clamps as the Clip did
                return True
            if first.kind is StepKind.HARD_SIGMOID and first.a > 0 and _clamps_like(q, 0, 1):
                # q(clip(alpha*v + beta, 0, 1)) == q'(v + beta/alpha), q' = q with scale/alpha
                steps[i:i + 2] = [Step(StepKind.ADD, first.b / first.a, op_id=first.op_id),
                                  replace(second, quant=_scaled(q, 1 / first.a),
                                          read=second.read or q)]
                return True
        if first.kind is StepKind.FAKE_QUANT and first.quant is not None:
            read = first.read or first.quant
            if second.kind is StepKind.CLIP and _within(read, second.a, second.b):
                del steps[i + 1]  # the codes read back lie within the Clip's bounds
                return True
            if second.kind in (StepKind.DIV, StepKind.MUL) and second.a > 0:
                factor = 1 / second.a if second.kind is StepKind.DIV else second.a
                steps[i] = replace(first, read=_scaled(read, factor))  # scale folded in
                del steps[i + 1]
                return True
    return False


def _simplified(steps: tuple[Step, ...]) -> tuple[Step, ...]:
    work = list(steps)
    while _rewrite(work):
        pass
    return tuple(work)


def simplify(program: Program, output: QParams | None = None) -> Program:
    """The program with every Clip its quantizers imply dropped, a HardSigmoid in front of a
    quantizer as an Add (the quantizer's saturation is its clamp) and every Div / Mul by a
    constant after a quantizer folded into the scale its codes are read with: the same
    function in real arithmetic, fewer float ops (OpenVINO runs ``x * q(HardSigmoid(x))``
    1.6x slower than ``x * q(x + 3)`` read with the gate's scale). A last quantizer whose
    codes ``output`` (the hard-swish's own params) would quantize back unchanged is read with
    ``output``: the reader's Q/DQ of the output then squashes away."""
    product = _simplified(program.product)
    last = product[-1] if product else None
    if output is not None and last is not None and last.kind is StepKind.FAKE_QUANT and \
            last.quant is not None and _same_type(last.quant, output):
        codes = _codes(last.quant)
        read_back = output.quantize((last.read or last.quant).dequantize(codes))
        if np.array_equal(read_back.astype(np.int32), codes):
            product = product[:-1] + (replace(last, read=output),)
    return Program(_simplified(program.gate), product)


# ---- the integer form for ONNX Runtime ---------------------------------------------------------
@dataclass(frozen=True)
class IntegerChain:
    """``gate = QLinearAdd(x, constant) -> gate_out`` (read back with ``gate_read``), then
    ``QLinearMul(x, gate) -> product_out``, then, if ``requant_in`` is set, a requantizing
    table from the product's codes read with ``requant_in`` to the output's params."""

    constant: float
    gate_out: QParams
    gate_read: QParams
    product_out: QParams
    requant_in: QParams | None = None


def _codes(params: QParams) -> np.ndarray:
    return np.arange(params.qmin, params.qmax + 1, dtype=np.int32)


def _requantize(codes: np.ndarray, src: QParams, dst: QParams) -> np.ndarray:
    """Codes read with ``src`` and quantized with ``dst`` (float64, round half to even)."""
    real = (codes - src.zero_point.astype(np.float64)) * src.scale.astype(np.float64)
    return _quantize64(real, dst)


def _quantize64(real: np.ndarray, dst: QParams) -> np.ndarray:
    q = np.rint(real / dst.scale.astype(np.float64)) + dst.zero_point.astype(np.float64)
    result: np.ndarray = np.clip(q, dst.qmin, dst.qmax).astype(np.int32)
    return result


def _real(codes: np.ndarray, params: QParams) -> np.ndarray:
    result: np.ndarray = (codes - params.zero_point.astype(np.float64)) * \
        params.scale.astype(np.float64)
    return result


def _chain_codes(chain: IntegerChain, x: QParams, y: QParams) -> np.ndarray:
    """What the chain computes for every input code, in the integer ops' real arithmetic."""
    codes = _codes(x)
    gate = _quantize64(_real(codes, x) + chain.constant, chain.gate_out)
    product = _quantize64(_real(codes, x) * _real(gate, chain.gate_read), chain.product_out)
    if chain.requant_in is None:
        return product
    return _requantize(product, chain.requant_in, y)


def reference_codes(program: Program, x: QParams, y: QParams) -> np.ndarray:
    """The source's output code for every input code: the program on the dequantized codes
    (float32, op by op), quantized with the output's params."""
    codes = _codes(x)
    values = program.evaluate(x.dequantize(codes))
    return y.quantize(values).astype(np.int32)


def _same_type(*params: QParams) -> bool:
    return all(p.dtype == params[0].dtype and not p.per_channel for p in params)


def _candidates(program: Program, y: QParams) -> list[IntegerChain]:
    """Integer chains of the simplified program's shape: ``x + c`` quantized, the product,
    then at most one more quantization (tried requantized, and folded into the output)."""
    gate, product = program.gate, program.product
    if len(gate) != 2 or gate[0].kind is not StepKind.ADD or \
            gate[1].kind is not StepKind.FAKE_QUANT or gate[1].quant is None:
        return []
    constant, gate_out = float(np.float32(gate[0].a)), gate[1].quant
    gate_read = gate[1].read or gate_out
    if not product:
        return [IntegerChain(constant, gate_out, gate_read, y)]
    if len(product) != 1 or product[0].kind is not StepKind.FAKE_QUANT or \
            product[0].quant is None:
        return []
    out = product[0].quant
    read = product[0].read or out
    # the product's codes read with `read`, or (when it equals that) quantized straight away
    return [IntegerChain(constant, gate_out, gate_read, out, read),
            IntegerChain(constant, gate_out, gate_read, _scaled(y, out.scale / read.scale))]


def integer_chain(program: Program, x: QParams, y: QParams) -> IntegerChain | None:
    """The cheapest integer chain that gives the source's output code for every input code
    (None: there is none, the op runs as an exact float island)."""
    simple = simplify(program)
    params = [p for s in simple.steps for p in (s.quant, s.read) if p is not None]
    if not _same_type(x, y, *params):
        return None
    wanted = reference_codes(program, x, y)
    candidates = _candidates(simple, y)
    for chain in sorted(candidates, key=lambda c: c.requant_in is not None):
        if np.array_equal(_chain_codes(chain, x, y), wanted):
            if chain.requant_in is not None and np.array_equal(
                    _requantize(_codes(chain.product_out), chain.requant_in, y),
                    _codes(chain.product_out)):
                return replace(chain, requant_in=None)  # an identity: the codes are y's
            return chain
    return None


# ---- float ops -----------------------------------------------------------------------------
class _Writer:
    """Float ops for one program, into ``nodes``."""

    def __init__(self, graph: Graph, node: Node) -> None:
        self.g, self.owner = graph, node
        self.nodes: list[Node] = []

    def const(self, hint: str, value: np.ndarray) -> str:
        name = self.g.unique_name(hint)
        self.g.initializers[name] = value
        return name

    def op(self, op_type: str, inputs: list[str], output: str, attrs: dict[str, float] | None
           = None, op_id: int | None = None) -> None:
        node = Node(self.g.new_id() if op_id is None else op_id, op_type, inputs, [output],
                    dict(attrs or {}))
        node.decide(self.owner.status, self.owner.reason)
        self.nodes.append(node)

    def step(self, step: Step, src: str, dst: str) -> None:
        base = self.owner.outputs[0]
        if step.kind is StepKind.FAKE_QUANT:
            assert step.quant is not None, "a fake-quant step has params"
            read = step.read or step.quant
            q = self.g.unique_name(f"{dst}_quantized")
            self.op(QUANTIZE, [src, self.const(f"{base}_scale", step.quant.scale),
                               self.const(f"{base}_zero_point", step.quant.zero_point)], q)
            self.op(DEQUANTIZE, [q, self.const(f"{base}_scale", read.scale),
                                 self.const(f"{base}_zero_point", read.zero_point)], dst)
            return
        if step.kind is StepKind.HARD_SIGMOID:
            self.op("HardSigmoid", [src], dst, {"alpha": step.a, "beta": step.b}, step.op_id)
            return
        if step.kind is StepKind.CLIP:
            bounds = [self.const(f"{base}_{k}", np.array(v, np.float32)) if np.isfinite(v)
                      else "" for k, v in (("min", step.a), ("max", step.b))]
            self.op("Clip", [src] + bounds, dst, op_id=step.op_id)
            return
        constant = self.const(f"{base}_{step.kind.value.lower()}", np.array(step.a, np.float32))
        self.op(step.kind.value, [src, constant], dst, op_id=step.op_id)


def expand(graph: Graph, node: Node, program: Program) -> list[Node]:
    """``node`` (a HardSwish reading x, writing y) as the program's float ops with Q/DQ pairs
    for its fake-quants. The product Mul takes ``node``'s id, the other ops the ids of the
    source ops they stand for (the fake-quants and an op whose id ``node`` took: new ids)."""
    w = _Writer(graph, node)
    x, y = node.inputs[0], node.outputs[0]
    value = x
    for step in program.gate:
        dst = graph.unique_name(f"{y}_gate")
        w.step(_own_id(step, node), value, dst)
        value = dst
    dst = graph.unique_name(f"{y}_product") if program.product else y
    w.op("Mul", [x, value], dst, op_id=node.id)
    w.nodes[-1].name = node.name
    for index, step in enumerate(program.product):
        value, dst = dst, y if index == len(program.product) - 1 else \
            graph.unique_name(f"{y}_product")
        w.step(_own_id(step, node), value, dst)
    return w.nodes


def _own_id(step: Step, node: Node) -> Step:
    return replace(step, op_id=None) if step.op_id == node.id else step
