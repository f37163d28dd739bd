"""What an op is, in one table: which float ops run INT8, in what form, with which kernel.

``SPECS`` maps a float op type to its :class:`OpSpec`: its :class:`Form` (which inputs need
scales, whether its output needs one), the integer kernel ONNX Runtime runs it with, the
targets that have a kernel for it, and how its weight and values behave. ``KERNELS`` maps
every integer op we write or read (QLinearConv, QGemm, ...) to its input layout: which
inputs are (tensor, scale, zero point) triples, where its output's scale is, its weight and
its int32 bias. Placement, both emitters, squash, the DOT writer and the accuracy taps read
these tables; adding an INT8 op type is one entry here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from qcore.ir import MS_DOMAIN, Graph, Node

QUANTIZE = "QuantizeLinear"
DEQUANTIZE = "DequantizeLinear"
QDQ_OPS = frozenset({QUANTIZE, DEQUANTIZE})

ONNXRUNTIME = "onnxruntime"
ONEDNN = "onednn"
TARGETS = (ONNXRUNTIME, ONEDNN)


class Form(Enum):
    """How an op runs INT8: what its inputs and output must carry."""

    LINEAR = "linear"  # constant weight (input 1) and bias (input 2); output scale optional
    MATMUL = "matmul"  # two activations; output scale optional (float output otherwise)
    BINARY = "binary"  # two activations and an output scale
    UNARY = "unary"  # one activation and an output scale
    CONCAT = "concat"  # any number of activations and an output scale
    MOVEMENT = "movement"  # moves int8 values unchanged: the output keeps the input's scale
    # one activation and an output scale, a function of the input's codes alone: written as
    # the exact integer ops the emitter derives (HardSwish: qcore.emit.hardswish)
    ELEMENTWISE = "elementwise"


# ---- integer kernels ----------------------------------------------------------------------

@dataclass(frozen=True)
class QSlot:
    """Input positions of one quantized tensor of an integer op and its scale / zero point."""

    tensor: int
    scale: int
    zero_point: int


@dataclass(frozen=True)
class Kernel:
    """An integer op: its quantized activation inputs (their scales are inputs too, so a
    requantization in front can be folded into them), where its output's scale / zero point
    are, which input holds its weight or constant operand, and its int32 bias input."""

    op_type: str
    domain: str = ""
    inputs: tuple[QSlot, ...] = ()
    output: tuple[int, int] | None = None
    weight: int | None = None
    int32_bias: int | None = None
    variadic: bool = False  # QLinearConcat: (Y_scale, Y_zp, then one triple per input)

    def input_slots(self, node: Node) -> list[QSlot]:
        """The quantized-input triples of ``node`` (an op of this kernel's type)."""
        if self.variadic:
            count = (len(node.inputs) - 2) // 3
            return [QSlot(2 + 3 * i, 3 + 3 * i, 4 + 3 * i) for i in range(count)]
        return list(self.inputs)


_X = QSlot(0, 1, 2)
_B = QSlot(3, 4, 5)

KERNELS: dict[str, Kernel] = {k.op_type: k for k in (
    Kernel(QUANTIZE, output=(1, 2), weight=0),
    Kernel(DEQUANTIZE, inputs=(_X,), weight=0),
    Kernel("QLinearConv", inputs=(_X,), output=(6, 7), weight=3, int32_bias=8),
    Kernel("QGemm", MS_DOMAIN, inputs=(_X,), output=(7, 8), weight=3, int32_bias=6),
    Kernel("QLinearMatMul", inputs=(_X, _B), output=(6, 7), weight=3),
    Kernel("MatMulIntegerToFloat", MS_DOMAIN, inputs=(QSlot(0, 2, 4),), weight=1),
    Kernel("QLinearAdd", MS_DOMAIN, inputs=(_X, _B), output=(6, 7), weight=3),
    Kernel("QLinearMul", MS_DOMAIN, inputs=(_X, _B), output=(6, 7), weight=3),
    Kernel("QLinearConcat", MS_DOMAIN, output=(0, 1), variadic=True),
    Kernel("QLinearAveragePool", MS_DOMAIN, inputs=(_X,), output=(3, 4)),
    Kernel("QLinearGlobalAveragePool", MS_DOMAIN, inputs=(_X,), output=(3, 4)),
    Kernel("QLinearSigmoid", MS_DOMAIN, inputs=(_X,), output=(3, 4)),
    Kernel("QLinearLeakyRelu", MS_DOMAIN, inputs=(_X,), output=(3, 4)),
    Kernel("QLinearSoftmax", MS_DOMAIN, inputs=(_X,), output=(3, 4)),
)}


def kernel_of(node: Node) -> Kernel | None:
    return KERNELS.get(node.op_type)


# ---- float ops with an INT8 form ----------------------------------------------------------

AttrsFn = Callable[[Node, Graph], dict[str, Any]]


def own_attrs(node: Node, graph: Graph) -> dict[str, Any]:
    """The op's own attributes (its private, underscored ones left out)."""
    return {k: v for k, v in node.attrs.items() if not k.startswith("_")}


def _no_attrs(node: Node, graph: Graph) -> dict[str, Any]:
    return {}


def _always(node: Node) -> bool:
    return True


@dataclass(frozen=True)
class OpSpec:
    """A float op type with an INT8 form.

    ``ort`` is the integer kernel ONNX Runtime runs it with (``""`` for movement ops, which run
    unchanged on int8 data) and ``ort_attrs`` that kernel's attributes. ``keeps_scale`` says
    when a movement op's output really equals its input values (nearest Resize only);
    ``keeps_channels`` when per-channel params stay valid through it. ``fuses_activation``:
    the op absorbs a following Relu / Clip. ``weight_axis``: the output-channel axis of a
    linear op's weight.
    """

    op_type: str
    form: Form
    ort: str = ""
    ort_attrs: AttrsFn = own_attrs
    targets: frozenset[str] = field(default=frozenset(TARGETS))
    keeps_scale: Callable[[Node], bool] = _always
    keeps_channels: bool = False
    fuses_activation: bool = False
    weight_axis: Callable[[Node], int] | None = None


def _nearest(node: Node) -> bool:
    return node.attrs.get("mode", b"nearest") in (b"nearest", "nearest")


def _single_output(node: Node) -> bool:
    return len(node.outputs) == 1 or not node.outputs[1]


def _gemm_weight_axis(node: Node) -> int:
    return 0 if node.attrs.get("transB", 0) else 1


def _softmax_attrs(node: Node, graph: Graph) -> dict[str, Any]:
    """QLinearSoftmax needs the opset its Softmax was defined in (the axis default changed
    from 1 to -1 in opset 13)."""
    opset = graph.opsets.get("", 13)
    return {"axis": int(node.attrs.get("axis", -1 if opset >= 13 else 1)), "opset": opset}




def _movement(op_type: str, **kw: Any) -> OpSpec:
    return OpSpec(op_type, Form.MOVEMENT, **kw)


SPECS: dict[str, OpSpec] = {s.op_type: s for s in (
    OpSpec("Conv", Form.LINEAR, "QLinearConv", fuses_activation=True,
           weight_axis=lambda node: 0),
    # OpenVINO runs a Q/DQ'd ConvTranspose as an INT8 Deconvolution (PP-OCRv4 det's head);
    # ONNX Runtime's CPU provider has no integer ConvTranspose
    OpSpec("ConvTranspose", Form.LINEAR, targets=frozenset({ONEDNN}),
           weight_axis=lambda node: 1),
    OpSpec("Gemm", Form.LINEAR, "QGemm", fuses_activation=True, weight_axis=_gemm_weight_axis),
    # MatMul is LINEAR when its B is a constant weight (see spec_of), MATMUL otherwise
    OpSpec("MatMul", Form.MATMUL, "QLinearMatMul", fuses_activation=True,
           weight_axis=lambda node: 1),
    OpSpec("Add", Form.BINARY, "QLinearAdd", fuses_activation=True),
    OpSpec("Mul", Form.BINARY, "QLinearMul", fuses_activation=True),
    OpSpec("Concat", Form.CONCAT, "QLinearConcat"),
    OpSpec("AveragePool", Form.UNARY, "QLinearAveragePool"),
    OpSpec("GlobalAveragePool", Form.UNARY, "QLinearGlobalAveragePool",
           ort_attrs=lambda node, graph: {"channels_last": 0}),
    OpSpec("Sigmoid", Form.UNARY, "QLinearSigmoid", ort_attrs=_no_attrs),
    OpSpec("LeakyRelu", Form.UNARY, "QLinearLeakyRelu",
           ort_attrs=lambda node, graph: {"alpha": float(node.attrs.get("alpha", 0.01))}),
    # OpenVINO has no int8 Softmax: on onednn it keeps the source's Q/DQ and runs float
    OpSpec("Softmax", Form.UNARY, "QLinearSoftmax", ort_attrs=_softmax_attrs,
           targets=frozenset({ONNXRUNTIME})),
    # QLinearAdd (gate) + QLinearMul (product) on ONNX Runtime; Q/DQ'd float ops on onednn
    OpSpec("HardSwish", Form.ELEMENTWISE, "QLinearMul", ort_attrs=_no_attrs),
    _movement("Reshape"),
    _movement("Transpose"),
    _movement("Flatten"),
    _movement("Squeeze"),
    _movement("Unsqueeze"),
    _movement("MaxPool", keeps_scale=_single_output, keeps_channels=True),
    _movement("Slice"),
    _movement("Split"),
    _movement("Resize", keeps_scale=_nearest, keeps_channels=True),
    _movement("Gather"),
)}

LINEAR_MATMUL = OpSpec("MatMul", Form.LINEAR, "MatMulIntegerToFloat", fuses_activation=True,
                       weight_axis=lambda node: 1)

#: Every float op type with an INT8 form on some target.
SUPPORTED_OPS = frozenset(SPECS)
#: Ops engines insert or run between integer ops that move int8 values unchanged too.
ENGINE_MOVEMENT_OPS = frozenset(
    {s.op_type for s in SPECS.values() if s.form is Form.MOVEMENT} | {"Identity", "NhwcMaxPool"})


def spec_of(node: Node, graph: Graph | None = None) -> OpSpec | None:
    """The INT8 spec of a float op (None: no INT8 form). A MatMul whose B is a constant of
    ``graph`` is a linear op with a weight."""
    if node.domain:
        return None
    spec = SPECS.get(node.op_type)
    if spec is not None and spec.form is Form.ELEMENTWISE and node.program is None:
        return None  # only a HardSwish carrying its source's inner quantization is INT8
    if spec is not None and spec.form is Form.MATMUL and graph is not None and \
            len(node.inputs) > 1 and node.inputs[1] in graph.initializers:
        return LINEAR_MATMUL
    return spec


def is_movement(node: Node) -> bool:
    spec = spec_of(node)
    return spec is not None and spec.form is Form.MOVEMENT


def keeps_scale(node: Node) -> bool:
    """True for a movement op whose output holds exactly its input's values."""
    spec = spec_of(node)
    return spec is not None and spec.form is Form.MOVEMENT and spec.keeps_scale(node)


def weight_axis(node: Node) -> int | None:
    """The output-channel axis of the op's weight (input 1), or None for ops without one."""
    spec = spec_of(node)
    return spec.weight_axis(node) if spec is not None and spec.weight_axis else None
