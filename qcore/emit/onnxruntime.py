"""INT8 ops for ONNX Runtime: QLinearConv, QGemm, MatMulIntegerToFloat, QLinearAdd, ...

Every INT8 op reads QuantizeLinear outputs and its output goes through DequantizeLinear, as
Paddle's cpu_quantize_pass does; the squash pass then removes the pairs between INT8 ops.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from qcore.emit.common import EmitterBase, act_absorbed
from qcore.emit.hardswish import IntegerChain, expand, integer_chain, program_of, simplify
from qcore.ir import MS_DOMAIN, FusedActivation, Graph, Node, QParams
from qcore.ops import (
    DEQUANTIZE,
    KERNELS,
    LINEAR_MATMUL,
    Form,
    OpSpec,
    own_attrs,
    spec_of,
    weight_axis,
)
from qcore.status import OpStatus, Reason, ReasonKind

# How far (in output steps) QLinearConv's int32 bias rounding may move an output: the float
# rounding of the source's own float Conv.
BIAS_TOLERANCE = 1e-5
# Ops whose constants a fusion folds into a Conv's bias (fold_batch_norm, fuse_matmul_bias).
FOLDED_INTO_BIAS = ("BatchNormalization(", "Add(")


def _asymmetric_u8(value: np.ndarray) -> QParams:
    low, high = min(0.0, float(value.min())), max(0.0, float(value.max()))
    scale = (high - low) / 255.0 or 1.0
    zp = np.clip(np.rint(-low / scale), 0, 255)
    return QParams(np.array(scale, np.float32), np.array(zp, np.uint8))


def constant_u8(value: np.ndarray) -> tuple[np.ndarray, QParams]:
    """(codes, params) of a constant input of QLinearAdd / QLinearMul: a scalar exactly (code
    1 or -1 of scale |value|), anything else asymmetric uint8 over its range."""
    if value.size == 1:
        code, scale, zero = _exact_scalar(float(value.reshape(())), QParams(
            np.array(1.0, np.float32), np.array(0, np.uint8)))
        return code.reshape(value.shape), QParams(scale, zero)
    params = _asymmetric_u8(value)
    return params.quantize(value), params


def exact_constant(value: np.ndarray) -> bool:
    """True when ``constant_u8`` holds every value of the constant exactly (float32): only
    then do QLinearAdd / QLinearMul compute with the constant the source adds or multiplies
    in float."""
    codes, params = constant_u8(value)
    return bool(np.array_equal(params.dequantize(codes), value.astype(np.float32)))


def _exact_scalar(value: float, like: QParams) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(code, scale, zero point) of ``like``'s type whose real value is exactly ``value``."""
    dtype = like.dtype
    scale = np.array(abs(value) or 1.0, np.float32)
    if value >= 0:
        return np.array(1 if value else 0, dtype), scale, np.array(0, dtype)
    if dtype == np.uint8:
        return np.array(0, dtype), scale, np.array(1, dtype)
    return np.array(-1, dtype), scale, np.array(0, dtype)


class OrtEmitter(EmitterBase):
    """Writes each INT8 op as the ONNX / com.microsoft integer op ONNX Runtime runs fastest."""

    def emit(self, node: Node) -> list[Node]:
        """The integer ops for one op the placement marked INT8 (its spec says which)."""
        spec = spec_of(node, self.g)
        if spec is None:
            raise ValueError(f"{node.label} has no INT8 form (placement marked it INT8)")
        handlers: dict[Form, Callable[[Node, OpSpec], None]] = {
            Form.LINEAR: self._linear, Form.MATMUL: self._matmul, Form.BINARY: self._binary,
            Form.UNARY: self._unary, Form.CONCAT: self._concat, Form.MOVEMENT: self._movement,
            Form.ELEMENTWISE: self._elementwise,
        }
        self.out = []
        handlers[spec.form](node, spec)
        return self.out

    # ---- helpers ------------------------------------------------------------------------
    def _act_in(self, node: Node, name: str) -> tuple[str, str, str]:
        """The int8 form of an input of ``node``: activations get a QuantizeLinear with the
        params ``node`` reads them with, constants are quantized now (``constant_u8``)."""
        if name in self.g.initializers:
            codes, params = constant_u8(self.g.initializers[name])
            q = self.const(f"{name}_quantized", codes)
            return q, *self.params_inputs(name, params)
        return self.quantize(name, self._in_params(node, name))

    def _in_params(self, node: Node, name: str) -> QParams:
        params = self.g.qparams_for(node, name)
        assert params is not None, f"{node.label} has no scale for {name}"
        return params

    def _out(self, node: Node, name: str) -> tuple[str, str, str, QParams]:
        params = self.g.act_qparams[name]
        scale, zp = self.params_inputs(name, params)
        return self.g.unique_name(f"{name}_quantized"), scale, zp, params

    def _finish(self, node: Node, q_out: str, scale: str, zp: str, params: QParams) -> None:
        """DequantizeLinear back to the float name, re-emitting an activation if needed."""
        out = node.outputs[0]
        act = node.act
        if act is None or act_absorbed(act, params):
            self.dequantize(q_out, scale, zp, out, params)
            return
        tmp = self.g.unique_name(f"{out}_preact")
        self.dequantize(q_out, scale, zp, tmp, params)
        self.activation(act, tmp, out)

    def _int8_output(self, name: str) -> bool:
        """True when ``name`` has per-tensor params (QLinear ops take no per-channel output
        scale; NNCF quantizes a depthwise Conv's input, an expand Conv's output, per channel)."""
        params = self.g.act_qparams.get(name)
        return params is not None and not params.per_channel

    def _float_out(self, node: Node) -> str:
        """Where a float-output INT8 op writes: the output, or a temp before its activation."""
        if node.act is None:
            return node.outputs[0]
        return self.g.unique_name(f"{node.outputs[0]}_preact")

    def _weight(self, node: Node) -> tuple[str, str, str, QParams]:
        name = node.inputs[1]
        params = self.g.weight_qparams[name]
        ints = self.g.weight_ints[name]
        q = self.const(f"{name}_int8", ints)
        scale = self.const(f"{name}_scale", params.scale)
        zp = self.const(f"{name}_zero_point", params.zero_point)
        return q, scale, zp, params

    def _bias_int32(
        self, bias_name: str, x_scale: QParams, w: QParams, n: int, mult: float = 1.0
    ) -> str:
        bias = self.g.initializers[bias_name].astype(np.float64).reshape(-1) * mult
        bias = np.broadcast_to(bias, (n,))
        scale = float(x_scale.scale) * np.broadcast_to(w.scale.astype(np.float64), (n,))
        ints = np.clip(np.rint(bias / scale), -(2**31), 2**31 - 1).astype(np.int32)
        return self.const(f"{bias_name}_int32", ints)

    def _qlinear_conv_exact(self, node: Node, x_params: QParams, w_params: QParams,
                            channels: int) -> bool:
        """True when QLinearConv's int32 bias (rounded to input scale x weight scale) is what
        ONNX Runtime computes from the source: the bias is the source Conv's own (ONNX
        Runtime rounds a float bias of a Conv reading a DequantizeLinear to int32 itself), it
        moves no output by more than ``BIAS_TOLERANCE`` of a step, or the op writes a graph
        output. A bias from a folded BatchNormalization or bias Add is float on ONNX Runtime:
        rounded, it flipped 0.1-0.4 % of PP-OCR cls's Relu outputs (Paddle's PTQ) by a step and
        moved the logits to cosine 0.98 vs ONNX Runtime on the source."""
        bias = node.inputs[2] if len(node.inputs) > 2 else ""
        folded = any(label.startswith(FOLDED_INTO_BIAS) for label in node.fused)
        if not bias or not folded or node.outputs[0] in self.g.output_names:
            return True
        values = np.broadcast_to(self.g.initializers[bias].astype(np.float64).reshape(-1),
                                 (channels,))
        step = float(x_params.scale) * np.broadcast_to(w_params.scale.astype(np.float64),
                                                       (channels,))
        codes = values / step
        moved = np.abs(np.rint(codes) - codes) * step / float(
            self.g.act_qparams[node.outputs[0]].scale)
        return bool(np.all(moved <= BIAS_TOLERANCE))

    def _activation_after(self, node: Node, src: str) -> None:
        """The op's fused activation, re-emitted in float from ``src`` to its output."""
        if src != node.outputs[0]:
            act: FusedActivation | None = node.act
            assert act is not None, f"{node.label} writes a temp without an activation"
            self.activation(act, src, node.outputs[0])

    @staticmethod
    def _kernel_domain(spec: OpSpec) -> str:
        return KERNELS[spec.ort].domain

    # ---- op handlers --------------------------------------------------------------------
    def _linear(self, node: Node, spec: OpSpec) -> None:
        x, xs, xz = self._act_in(node, node.inputs[0])
        x_params = self._in_params(node, node.inputs[0])
        w, ws, wz, w_params = self._weight(node)
        weight = self.g.weight_ints[node.inputs[1]]
        axis = weight_axis(node)
        assert axis is not None, f"{node.label} has no weight axis"
        channels = weight.shape[axis % weight.ndim]
        bias = node.inputs[2] if len(node.inputs) > 2 and node.inputs[2] else ""
        out_name = node.outputs[0]
        has_out = self._int8_output(out_name)
        if node.op_type == "Conv" and not (has_out and self._qlinear_conv_exact(
                node, x_params, w_params, channels)):
            self._conv_integer(node, x, xz, x_params, w_params, bias)
            return
        if node.op_type == "Conv":
            inputs = [x, xs, xz, w, ws, wz]
            q_out, ys, yz, y_params = self._out(node, out_name)
            inputs += [ys, yz]
            if bias:
                inputs.append(self._bias_int32(bias, x_params, w_params, channels))
            attrs = own_attrs(node, self.g)
            self.node(spec.ort, inputs, [q_out], attrs, like=node)
            self._finish(node, q_out, ys, yz, y_params)
            return
        if node.op_type == "Gemm":
            alpha = float(node.attrs.get("alpha", 1.0))
            beta = float(node.attrs.get("beta", 1.0))
            c = self._bias_int32(bias, x_params, w_params, channels, beta / alpha) if bias else ""
            attrs = {"alpha": alpha, "transA": 0, "transB": int(node.attrs.get("transB", 0))}
            inputs = [x, xs, xz, w, ws, wz, c]
            if has_out:
                q_out, ys, yz, y_params = self._out(node, out_name)
                self.node(spec.ort, inputs + [ys, yz], [q_out], attrs, MS_DOMAIN, like=node)
                self._finish(node, q_out, ys, yz, y_params)
            else:
                dst = self._float_out(node)
                self.node(spec.ort, inputs, [dst], attrs, MS_DOMAIN, like=node)
                self._activation_after(node, dst)
            return
        # MatMul with a constant weight: integer matmul with a float output and fused bias.
        dst = self._float_out(node)
        inputs = [x, w, xs, ws, xz, wz] + ([bias] if bias else [])
        self.node(spec.ort, inputs, [dst], {}, self._kernel_domain(spec), like=node)
        self._activation_after(node, dst)

    def _conv_integer(self, node: Node, x: str, xz: str, x_params: QParams,
                      w_params: QParams, bias: str) -> None:
        """A Conv whose folded bias QLinearConv would round (see ``_qlinear_conv_exact``), or
        whose output has no scale (the placement keeps those FP32 on this target, as ONNX
        Runtime runs them: see ``_float_output_conv_reason``): ConvInteger (exact int32
        sums; uint8 weights, i.e. int8 + 128, take ONNX Runtime's fast u8u8 path, 5x faster
        than its s8 one), then Cast, one Mul by input x weight scale per channel, and the
        bias Add: what the quant model computes, up to float rounding. ONNX Runtime has no
        depthwise or NCHWc ConvInteger kernel."""
        g = self.g
        ints = g.weight_ints[node.inputs[1]]
        w = self.const(f"{node.inputs[1]}_uint8", (ints.astype(np.int16) + 128).astype(np.uint8))
        wz = self.const(f"{node.inputs[1]}_zero_point", np.array(128, np.uint8))
        attrs = own_attrs(node, self.g)
        out = node.outputs[0]
        acc = g.unique_name(f"{out}_int32")
        self.node("ConvInteger", [x, w, xz, wz], [acc], attrs, like=node)
        real = g.unique_name(f"{out}_sum")
        self.node("Cast", [acc], [real], {"to": 1})
        shape = [1, -1] + [1] * (ints.ndim - 2)
        scale = np.float32(x_params.scale) * np.broadcast_to(w_params.scale, (ints.shape[0],))
        multiplier = self.const(f"{out}_multiplier", scale.astype(np.float32).reshape(shape))
        final = self._float_out(node)
        scaled = g.unique_name(f"{out}_scaled") if bias else final
        self.node("Mul", [real, multiplier], [scaled])
        if bias:
            b = self.g.initializers[bias].astype(np.float32).reshape(shape)
            self.node("Add", [scaled, self.const(f"{bias}_channels", b)], [final])
        self._activation_after(node, final)

    def _matmul(self, node: Node, spec: OpSpec) -> None:
        a, as_, az = self._act_in(node, node.inputs[0])
        b, bs, bz = self._act_in(node, node.inputs[1])
        out = node.outputs[0]
        if self._int8_output(out):
            q_out, ys, yz, y_params = self._out(node, out)
            self.node(spec.ort, [a, as_, az, b, bs, bz, ys, yz], [q_out], like=node)
            self._finish(node, q_out, ys, yz, y_params)
        else:
            self.node(LINEAR_MATMUL.ort, [a, b, as_, bs, az, bz], [out], {}, MS_DOMAIN,
                      like=node)

    def _binary(self, node: Node, spec: OpSpec) -> None:
        a, as_, az = self._act_in(node, node.inputs[0])
        b, bs, bz = self._act_in(node, node.inputs[1])
        q_out, ys, yz, y_params = self._out(node, node.outputs[0])
        self.node(spec.ort, [a, as_, az, b, bs, bz, ys, yz], [q_out], {},
                  self._kernel_domain(spec), like=node)
        self._finish(node, q_out, ys, yz, y_params)

    def _unary(self, node: Node, spec: OpSpec) -> None:
        x, xs, xz = self._act_in(node, node.inputs[0])
        q_out, ys, yz, y_params = self._out(node, node.outputs[0])
        self.node(spec.ort, [x, xs, xz, ys, yz], [q_out], spec.ort_attrs(node, self.g),
                  self._kernel_domain(spec), like=node)
        self._finish(node, q_out, ys, yz, y_params)

    def _elementwise(self, node: Node, spec: OpSpec) -> None:
        """A HardSwish with its source's inner quantization: the integer chain that gives the
        source's output code for every input code (measured in the model 1.2-1.3x faster than
        the float island: PP-LCNet), else the source's float ops between Q/DQ."""
        program = program_of(node)
        assert program is not None, f"{node.label} has no program (placement marked it INT8)"
        x_params = self._in_params(node, node.inputs[0])
        y_params = self.g.act_qparams[node.outputs[0]]
        chain = integer_chain(program, x_params, y_params)
        x, xs, xz = self._act_in(node, node.inputs[0])
        q_out, ys, yz, y_params = self._out(node, node.outputs[0])
        if chain is None:
            real_x = self.g.unique_name(f"{node.inputs[0]}_dequantized")
            self.dequantize(x, xs, xz, real_x, x_params)
            real_y = self.g.unique_name(f"{node.outputs[0]}_float")
            core = node.replaced(node.op_type, [real_x], [real_y], node.attrs)
            self.out.extend(expand(self.g, core, simplify(program, y_params)))
            self.node("QuantizeLinear", [real_y, ys, yz], [q_out])
        else:
            self._integer_chain(node, chain, (x, xs, xz), q_out, (ys, yz))
        self._finish(node, q_out, ys, yz, y_params)

    def _integer_chain(self, node: Node, chain: IntegerChain, x: tuple[str, str, str],
                       q_out: str, y: tuple[str, str]) -> None:
        """QLinearAdd(x, c) -> gate; QLinearMul(x, gate) -> product; a requantizing
        QLinearLeakyRelu (alpha 1: a table ONNX Runtime builds from the scales) if needed."""
        out = node.outputs[0]
        code, scale, zero = _exact_scalar(chain.constant, self._in_params(node, node.inputs[0]))
        c = self.const(f"{out}_gate_constant", code)
        c_scale = self.const(f"{out}_gate_constant_scale", scale)
        c_zp = self.const(f"{out}_gate_constant_zero_point", zero)
        gate = self.g.unique_name(f"{out}_gate_quantized")
        gs, gz = self.params_inputs(gate, chain.gate_out)
        self.node("QLinearAdd", [*x, c, c_scale, c_zp, gs, gz], [gate], {}, MS_DOMAIN,
                  like=node).id = self._gate_id(node)
        rs, rz = self.params_inputs(gate, chain.gate_read)
        product = q_out if chain.requant_in is None else \
            self.g.unique_name(f"{out}_product_quantized")
        # (without a requantization the product's codes are the output's, read with its params)
        ps, pz = self.params_inputs(product, chain.product_out)
        self.node("QLinearMul", [*x, gate, rs, rz, ps, pz], [product], {}, MS_DOMAIN, like=node)
        if chain.requant_in is None:
            return
        ins, inz = self.params_inputs(product, chain.requant_in)
        self.node("QLinearLeakyRelu", [product, ins, inz, *y], [q_out], {"alpha": 1.0},
                  MS_DOMAIN)

    def _gate_id(self, node: Node) -> int:
        """The id of the source op that computed the gate (a new one if it is unknown)."""
        program = program_of(node)
        first = program.gate[0].op_id if program is not None and program.gate else None
        return first if first is not None and first != node.id else self.g.new_id()

    def _concat(self, node: Node, spec: OpSpec) -> None:
        q_out, ys, yz, y_params = self._out(node, node.outputs[0])
        inputs = [ys, yz]
        for name in node.inputs:
            inputs += list(self._act_in(node, name))
        attrs = {"axis": int(node.attrs.get("axis", 1))}
        self.node(spec.ort, inputs, [q_out], attrs, self._kernel_domain(spec), like=node)
        self._finish(node, q_out, ys, yz, y_params)

    def _movement(self, node: Node, spec: OpSpec) -> None:
        """Reshape, Transpose, MaxPool, ... run unchanged on the int8 tensor; every output
        keeps the input's params."""
        x, xs, xz = self._act_in(node, node.inputs[0])
        params = self._in_params(node, node.inputs[0])
        outs = [self.g.unique_name(f"{o}_quantized") if o else "" for o in node.outputs]
        attrs = own_attrs(node, self.g)
        self.node(node.op_type, [x] + node.inputs[1:], outs, attrs, node.domain, like=node)
        for q_out, out in zip(outs, node.outputs, strict=True):
            if out:
                self.dequantize(q_out, xs, xz, out, params)


# ONNX Runtime's WeightBiasQuantization (a basic-level graph optimization) quantizes the float
# weight of a Conv, ConvTranspose or Gemm that reads a per-tensor DequantizeLinear and feeds a
# QuantizeLinear, per tensor, and then runs it as an integer op: an FP32 island between INT8
# ops would silently lose accuracy (measured on PP-OCRv4 det: its 5x5 depthwise convs, cosine
# to float 0.969 -> 0.947) and run in int8 where it is slower.
ORT_REQUANTIZED_FLOAT_OPS = ("Conv", "ConvTranspose", "Gemm")


def keep_float_islands_float(g: Graph) -> int:
    """Every FP32 Conv / ConvTranspose / Gemm with a float weight that reads a per-tensor
    DequantizeLinear reads its own per-channel copy of it instead (the same scale on every
    channel, so the same values): ONNX Runtime then leaves it float. Returns how many."""
    producers = g.producers()
    copies: dict[int, Node] = {}  # reader id -> its DequantizeLinear copy, placed before it
    for node in list(g.nodes):
        if node.op_type not in ORT_REQUANTIZED_FLOAT_OPS or node.domain or \
                node.status is OpStatus.INT8:
            continue
        dq = producers.get(node.inputs[0])
        channels = _input_channels(g, node)
        if dq is None or dq.op_type != DEQUANTIZE or channels is None or channels < 2:
            continue
        scale = g.initializers.get(dq.inputs[1])
        zp = g.initializers.get(dq.inputs[2]) if len(dq.inputs) > 2 and dq.inputs[2] else None
        if scale is None or scale.size != 1 or (zp is not None and zp.size != 1):
            continue
        if zp is None:
            zp = np.zeros((), g.initializers.get(dq.inputs[0], np.zeros((), np.uint8)).dtype)
        s = g.unique_name(f"{dq.inputs[1]}_channels")
        z = g.unique_name(f"{node.inputs[0]}_zero_point_channels")
        g.initializers[s] = np.full(channels, scale.reshape(()), np.float32)
        g.initializers[z] = np.full(channels, zp.reshape(()), zp.dtype)
        out = g.unique_name(f"{node.inputs[0]}_for_float_{node.id}")
        copy = Node(g.new_id(), DEQUANTIZE, [dq.inputs[0], s, z], [out], {"axis": 1})
        copy.decide(OpStatus.FP32, Reason(ReasonKind.KEEPS_ORT_FLOAT))
        node.inputs = [out] + node.inputs[1:]
        copies[node.id] = copy
    if copies:  # one pass over the ops (an insert per copy made this quadratic)
        g.nodes = [n for node in g.nodes for n in (
            (copies[node.id], node) if node.id in copies else (node,))]
    return len(copies)


def _input_channels(g: Graph, node: Node) -> int | None:
    """The size of axis 1 of the op's input, from its constant weight."""
    weight = g.initializers.get(node.inputs[1]) if len(node.inputs) > 1 else None
    if weight is None or weight.dtype != np.float32 or weight.ndim < 2:
        return None
    if node.op_type == "Conv":
        return int(weight.shape[1]) * int(node.attrs.get("group", 1))
    if node.op_type == "ConvTranspose":
        return int(weight.shape[0])
    if node.attrs.get("transA", 0) or g.rank(node.inputs[0]) not in (None, 2):
        return None
    return int(weight.shape[1] if node.attrs.get("transB", 0) else weight.shape[0])
