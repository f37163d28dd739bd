"""NNCF's placement around a Concat on the onednn target, checked on real photos (scikit-image)
against ONNX Runtime running the source QDQ model.

NNCF quantizes op inputs only and gives a Concat's inputs one scale: YOLOv8's C2f block is
Conv -> SiLU -> Q/DQ -> Split -> (bottleneck, residual Add -> Q/DQ) -> Concat -> Conv, with no
Q/DQ between the Concat and the Conv, and its SPPF block is Q/DQ -> MaxPool x3 -> Concat -> Conv.
OpenVINO runs every Conv of such a file INT8. Our onednn model must too (the Concat's output
holds values of its inputs' grid), and it must compute what the source computes: OpenVINO
2026.4 miscomputes a Conv that reads a signed int8 Concat (here cosine 0.94-0.99 to ONNX
Runtime on the source file itself), which the converter avoids with u8 around the Concat.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from conftest import compile_openvino, cosine, photos, run_model
from onnx import TensorProto, helper, numpy_helper

from qcore.config import ConvertConfig
from qcore.convert import convert
from qcore.status import ReasonKind

SIZE = 48
CONVS = 7  # stem, bottleneck x2, C2f output, SPPF in, SPPF out, last


class _Net:
    """A YOLOv8-style C2f + SPPF network, float or with NNCF's Q/DQ placement (symmetric
    int8 activations with the given scales, per-channel int8 weights)."""

    def __init__(self, scales: dict[str, float] | None = None) -> None:
        self.rng = np.random.default_rng(7)
        self.scales = scales
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.taps: list[str] = []  # tensors whose range the quantized version needs

    def const(self, name: str, value: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def op(self, op_type: str, inputs: list[str], name: str, outputs: list[str] | None = None,
           **attrs) -> str:
        self.nodes.append(helper.make_node(op_type, inputs, outputs or [name], name=name,
                                           **attrs))
        return name

    def qdq(self, x: str, key: str) -> str:
        """x through Q/DQ with the scale of ``key`` (the float net records the tensor)."""
        if self.scales is None:
            self.taps.append(x)
            return x
        scale = self.const(f"{x}.s", np.array(self.scales[key], np.float32))
        zero = self.const(f"{x}.z", np.array(0, np.int8))
        q = self.op("QuantizeLinear", [x, scale, zero], f"{x}.q")
        return self.op("DequantizeLinear", [q, scale, zero], f"{x}.dq")

    def conv_silu(self, x: str, cin: int, cout: int, k: int, name: str) -> str:
        w = self.rng.standard_normal((cout, cin, k, k)).astype(np.float32)
        w *= np.float32(np.sqrt(2.0 / (cin * k * k)))
        b = (self.rng.standard_normal(cout) * 0.3).astype(np.float32)
        if self.scales is not None:  # NNCF: per-channel symmetric int8 weights through DQ
            ws = (np.abs(w).reshape(cout, -1).max(1) / 127).astype(np.float32)
            wq = np.clip(np.rint(w / ws.reshape(-1, 1, 1, 1)), -127, 127).astype(np.int8)
            weight = self.op("DequantizeLinear", [
                self.const(f"{name}.wq", wq), self.const(f"{name}.ws", ws),
                self.const(f"{name}.wz", np.zeros(cout, np.int8))], f"{name}.w", axis=0)
        else:
            weight = self.const(f"{name}.w", w)
        y = self.op("Conv", [x, weight, self.const(f"{name}.b", b)], name, pads=[k // 2] * 4)
        return self.op("Mul", [y, self.op("Sigmoid", [y], f"{name}.sig")], f"{name}.silu")

    def build(self) -> onnx.ModelProto:
        x = self.conv_silu(self.qdq("image", "in"), 3, 32, 3, "stem")
        # C2f: the Split's input and the Add's output share one scale ("cat"), as NNCF unifies
        self.op("Split", [self.qdq(x, "cat"), self.const("halves", np.array([16, 16]))],
                "split", outputs=["part_a", "part_b"], axis=1)
        y = self.conv_silu("part_b", 16, 16, 3, "m.cv1")  # the Split output as it is
        y = self.conv_silu(self.qdq(y, "m1"), 16, 16, 3, "m.cv2")
        y = self.op("Add", ["part_b", self.qdq(y, "m2")], "m.add")
        x = self.op("Concat", ["part_a", "part_b", self.qdq(y, "cat")], "c2f.cat", axis=1)
        x = self.conv_silu(x, 48, 32, 1, "c2f.cv2")
        # SPPF: Q/DQ -> MaxPool x3 -> Concat(x, p1, p2, p3) -> Conv
        x = self.conv_silu(self.qdq(x, "sppf.in"), 32, 16, 1, "sppf.cv1")
        x = self.qdq(x, "pool")
        pools = [x]
        for i in range(3):
            pools.append(self.op("MaxPool", [pools[-1]], f"pool{i}", kernel_shape=[5, 5],
                                 pads=[2, 2, 2, 2]))
        x = self.conv_silu(self.op("Concat", pools, "sppf.cat", axis=1), 64, 32, 1, "sppf.cv2")
        x = self.conv_silu(self.qdq(x, "last"), 32, 8, 3, "last")
        out = "out"
        self.op("Identity", [x], out)
        graph = helper.make_graph(
            self.nodes, "c2f_sppf",
            [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, SIZE, SIZE])],
            [helper.make_tensor_value_info(out, TensorProto.FLOAT, [1, 8, SIZE, SIZE])],
            self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
        model.ir_version = 8
        onnx.checker.check_model(model, full_check=True)
        if self.scales is None:  # the taps as outputs, to calibrate on
            graph = model.graph
            graph.output.extend(helper.make_empty_tensor_value_info(t) for t in self.taps
                                if t != "image")
        return model


def nncf_style_model(feeds: list[dict]) -> onnx.ModelProto:
    """The network with NNCF's placement, its scales calibrated (max |x| / 127) on ``feeds``;
    the two tensors a Concat reads share one scale."""
    float_net = _Net()
    model = float_net.build()
    keys = ["in", "cat", "m1", "m2", "cat", "sppf.in", "pool", "last"]
    peaks: dict[str, float] = {}
    for feed in feeds:
        taps = [feed["image"], *run_model(model, feed)[1:]]
        for key, value in zip(keys, taps, strict=True):
            peaks[key] = max(peaks.get(key, 0.0), float(np.abs(value).max()))
    return _Net({k: v / 127 for k, v in peaks.items()}).build()


def _openvino(model: onnx.ModelProto, feeds: list[dict], tmp: Path) -> tuple[list, list]:
    """Outputs on OpenVINO's CPU plugin (f32 hint, 1 thread) and each Convolution's runtime
    precision."""
    compiled = compile_openvino(model, tmp / "model.onnx")
    precisions = [op.get_rt_info()["runtimePrecision"].astype(str)
                  for op in compiled.get_runtime_model().get_ordered_ops()
                  if op.get_rt_info()["layerType"].astype(str) == "Convolution"]
    return [compiled(f)[0] for f in feeds], precisions


@pytest.fixture(scope="module")
def quant() -> tuple[onnx.ModelProto, list[dict]]:
    feeds = photos(SIZE)
    return nncf_style_model(feeds), feeds


def test_the_model_has_nncf_placement(quant) -> None:
    model, _ = quant
    producers = {o: n for n in model.graph.node for o in n.output}
    convs = [n for n in model.graph.node if n.op_type == "Conv"]
    assert len(convs) == CONVS
    after_concat = [n for n in convs if producers[n.input[0]].op_type == "Concat"]
    assert len(after_concat) == 2  # no Q/DQ between a Concat and the Conv reading it
    assert producers[next(n for n in model.graph.node if n.op_type == "Split").input[0]] \
        .op_type == "DequantizeLinear"


@pytest.mark.parametrize("target", ["onnxruntime", "onednn"])
def test_every_conv_after_an_unquantized_concat_is_int8(quant, target) -> None:
    model, feeds = quant
    result = convert(model, ConvertConfig(target=target))
    convs = [n for n in result.decisions if n.op_type == "Conv"]
    assert len(convs) == CONVS
    if target == "onednn":
        assert all(n.status == "int8" for n in convs), [(n.name, n.reason) for n in convs]
        concats = [n for n in result.decisions if n.op_type == "Concat"]
        assert concats and all(n.status == "int8" for n in concats), [n.reason for n in concats]
    else:  # no Conv has an output scale (SiLU follows): ONNX Runtime runs each float
        assert all(n.status == "fp32" and n.reason.kind is ReasonKind.MISSING_SCALE
                   for n in convs), [(n.name, n.reason) for n in convs]
    worst = min(cosine(run_model(model, f)[0], run_model(result.int8_model(), f)[0])
                for f in feeds)
    assert worst >= 0.999


def test_onednn_keeps_the_source_placement(quant) -> None:
    """Q/DQ before the Split and the MaxPools as in the source, none added between a Concat
    and its Conv (OpenVINO moves the dequantization through both), and u8 around a Concat."""
    model, _ = quant
    int8 = convert(model, ConvertConfig(target="onednn")).int8_model()
    producers = {o: n for n in int8.graph.node for o in n.output}
    inits = {i.name: numpy_helper.to_array(i) for i in int8.graph.initializer}
    for node in int8.graph.node:
        if node.op_type == "Conv" and producers[node.input[0]].op_type != "DequantizeLinear":
            assert producers[node.input[0]].op_type in ("Concat", "Split"), node.name
        if node.op_type == "Split" or (node.op_type == "MaxPool" and node.name.startswith(
                "pool0")):
            assert producers[node.input[0]].op_type == "DequantizeLinear", node.name
        if node.op_type == "Concat":
            for name in node.input:
                source = producers[name]
                while source.op_type in ("Split", "MaxPool"):
                    source = producers[source.input[0]]
                assert source.op_type == "DequantizeLinear"
                assert inits[source.input[2]].dtype == np.uint8, (node.name, name)


def test_openvino_runs_every_conv_int8_and_matches_the_source(quant, tmp_path) -> None:
    model, feeds = quant
    int8 = convert(model, ConvertConfig(target="onednn")).int8_model()
    outputs, precisions = _openvino(int8, feeds, tmp_path)
    assert len(precisions) == CONVS and all(p in ("u8", "i8") for p in precisions), precisions
    for feed, got in zip(feeds, outputs, strict=True):
        assert cosine(run_model(model, feed)[0], got) >= 0.999
