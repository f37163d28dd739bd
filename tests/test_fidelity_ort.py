"""On the onnxruntime target our INT8 model computes what ONNX Runtime computes from the
source QDQ file (its own QDQ fusions, default optimizations), op by op, on real photos."""

from __future__ import annotations

import numpy as np
import onnx
from conftest import photos, run_model
from onnx import TensorProto, helper
from test_fidelity import IMAGE, _Builder

from qcore.config import ConvertConfig
from qcore.convert import convert


class QdqBuilder(_Builder):
    """A hand-written QDQ model: s8 symmetric activations, per-channel s8 weights."""

    def qdq(self, x: str, scale: float, name: str) -> str:
        """x through QuantizeLinear -> DequantizeLinear (int8, zero point 0)."""
        s = self.const(f"{name}.scale", np.array(scale, np.float32))
        z = self.const(f"{name}.zp", np.array(0, np.int8))
        q = self.op("QuantizeLinear", [x, s, z], f"{name}.q")
        return self.op("DequantizeLinear", [q, s, z], f"{name}.dq")

    def qdq_conv(self, x: str, cin: int, cout: int, name: str) -> str:
        """A 3x3 Conv with per-channel int8 weights behind a DequantizeLinear and a bias."""
        w = self.rng.standard_normal((cout, cin, 3, 3)) * np.sqrt(2.0 / (cin * 9))
        w_scale = (np.abs(w).reshape(cout, -1).max(1) / 127).astype(np.float32)
        ints = np.rint(w / w_scale[:, None, None, None]).astype(np.int8)
        wdq = self.op("DequantizeLinear", [
            self.const(f"{name}.w", ints), self.const(f"{name}.ws", w_scale),
            self.const(f"{name}.wz", np.zeros(cout, np.int8))], f"{name}.wdq", axis=0)
        b = self.const(f"{name}.b", (self.rng.standard_normal(cout) * 0.3).astype(np.float32))
        return self.op("Conv", [x, wdq, b], name, pads=[1, 1, 1, 1])

    def qdq_model(self, output: str, size: int = IMAGE) -> onnx.ModelProto:
        graph = helper.make_graph(
            self.nodes, "net",
            [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, IMAGE, IMAGE])],
            [helper.make_tensor_value_info(output, TensorProto.FLOAT, [1, 16, size, size])],
            self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
        model.ir_version = 8
        onnx.checker.check_model(model, full_check=True)
        return model


def residual_read_raw() -> onnx.ModelProto:
    """Paddle's legacy PTQ on PP-OCR cls: a residual Add reads a Conv's output raw (float)
    while the next Conv reads it through the source's Q/DQ pair."""
    b = QdqBuilder(0)
    x = b.qdq_conv(b.qdq("image", 0.02, "in"), 3, 16, "c1")  # t: quantized for c2 only
    y = b.qdq(b.qdq_conv(b.qdq(x, 0.05, "t"), 16, 16, "c2"), 0.05, "u")
    total = b.qdq(b.op("Add", [x, y], "add"), 0.01, "sum")  # a finer grid than t's
    return b.qdq_model(b.qdq(b.qdq_conv(total, 16, 16, "c3"), 0.05, "out"))


def output_codes(model: onnx.ModelProto, scale: float) -> list[np.ndarray]:
    """The model's output on every photo, in steps of the output's scale."""
    return [np.rint(run_model(model, feed)[0] / scale) for feed in photos(IMAGE)]


def differing_codes(source: onnx.ModelProto, scale: float) -> tuple[int, int]:
    """(codes that differ, largest difference) between the onnxruntime-target INT8 model
    and ONNX Runtime running ``source``, over the photos."""
    int8 = convert(source, ConvertConfig(target="onnxruntime")).int8_model()
    pairs = zip(output_codes(source, scale), output_codes(int8, scale), strict=True)
    diffs = [np.abs(a - b) for a, b in pairs]
    return sum(int(np.count_nonzero(d)) for d in diffs), int(max(d.max() for d in diffs))


def test_an_add_reading_a_tensor_raw_adds_it_unquantized() -> None:
    # Measured: 0 codes differ; with the Add INT8 (it read the Conv's output quantized),
    # 53688 of 221184 by up to 2 steps.
    count, largest = differing_codes(residual_read_raw(), 0.05)
    assert largest <= 1 and count <= 10, (count, largest)


def biased_conv(batch_norm: bool) -> onnx.ModelProto:
    """A Conv + Relu on a coarse input grid, its output on a fine one, then a MaxPool. The
    bias is the Conv's own (float, as NNCF writes it), or comes from a BatchNormalization
    after a Conv without one (Paddle's PTQ): fold_batch_norm makes it the Conv's."""
    b = QdqBuilder(1)
    x = b.qdq_conv(b.qdq("image", 0.05, "in"), 3, 16, "c1")
    if batch_norm:
        b.nodes[-1].input.pop()  # no bias of its own
        b.inits.pop()
        gamma, beta, mean, var = (b.rng.uniform(0.5, 1.5, 16), b.rng.standard_normal(16) * 0.3,
                                  b.rng.standard_normal(16) * 0.2, b.rng.uniform(0.5, 2, 16))
        x = b.op("BatchNormalization", [x] + [b.const(f"bn.{k}", v.astype(np.float32)) for k, v
                                              in zip("gbmv", (gamma, beta, mean, var),
                                                     strict=True)], "bn")
    x = b.qdq(b.op("Relu", [x], "r1"), 0.005, "t1")
    return b.qdq_model(b.qdq(b.op("MaxPool", [x], "pool", kernel_shape=[1, 1]), 0.005, "out"))


def test_a_conv_bias_is_rounded_as_onnx_runtime_rounds_it() -> None:
    # ONNX Runtime rounds the Conv's own float bias to int32 (input x weight scale) and runs
    # FusedConv; our QLinearConv rounds it the same way. Measured: 0 codes differ; with
    # ConvInteger and the bias float (what the unoptimized source computes) 513 of 221184.
    count, largest = differing_codes(biased_conv(batch_norm=False), 0.005)
    assert largest <= 1 and count <= 10, (count, largest)


def test_a_folded_batch_norm_bias_is_not_rounded() -> None:
    # ONNX Runtime runs the source's Conv and BatchNormalization float. Measured: 0 codes
    # differ; with QLinearConv (the folded bias rounded to int32) 616 of 221184.
    count, largest = differing_codes(biased_conv(batch_norm=True), 0.005)
    assert largest <= 1 and count <= 10, (count, largest)


def resize_between_grids() -> onnx.ModelProto:
    """NNCF on YOLOv8: a float SiLU's output quantized for a nearest Resize, whose output
    the source quantizes again on a coarser grid (the Concat's)."""
    b = QdqBuilder(2)
    x = b.qdq_conv(b.qdq("image", 0.02, "in"), 3, 16, "c1")
    x = b.op("Mul", [x, b.op("Sigmoid", [x], "sig")], "silu")
    scales = b.const("up.scales", np.array([1, 1, 2, 2], np.float32))
    x = b.op("Resize", [b.qdq(x, 0.0217, "t"), "", scales], "up", mode="nearest")
    return b.qdq_model(b.qdq(b.op("MaxPool", [b.qdq(x, 0.0302, "u")], "pool", kernel_shape=[1, 1]),
                         0.0302, "out"), 2 * IMAGE)


def test_a_float_movement_op_keeps_the_source_rounding_before_it() -> None:
    # Measured: 0 codes differ; with the Resize and MaxPool reading the float values (the
    # source rounds before each), 161132 of 884736 by up to 184 steps.
    count, largest = differing_codes(resize_between_grids(), 0.0302)
    assert largest <= 1 and count <= 10, (count, largest)
