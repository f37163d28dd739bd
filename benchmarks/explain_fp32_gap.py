"""Why a zoo entry's FP32 model is further from float than its QDQ model (tests/test_zoo.py's
``fp32`` XFAIL): cosine vs the float model per test sample, on ONNX Runtime, of

- the QDQ model and the converter's FP32 model (the source's dequantized weights, float
  activations);
- the QDQ model with every per-tensor activation Q/DQ pair replaced by a Clip at its range
  (the clamps the quantizer implies, without the rounding): a lost clamp shows here;
- the converter's FP32 model with the float model's Conv biases (by node name): a producer's
  bias correction, computed for quantized activations, shows here.

    python benchmarks/explain_fp32_gap.py [--model ppocrv4_det] [--producer nncf]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import zoo  # noqa: E402

from qcore.bench.taps import Taps  # noqa: E402


def clamps_only(qdq: onnx.ModelProto) -> tuple[onnx.ModelProto, int]:
    """``qdq`` with each per-tensor activation Q -> DQ pair a Clip at the pair's range."""
    model = onnx.ModelProto()
    model.CopyFrom(qdq)
    taps = Taps(model)
    readers: dict[str, list[onnx.NodeProto]] = {}
    for node in model.graph.node:
        for name in node.input:
            readers.setdefault(name, []).append(node)
    clips: dict[str, tuple[str, str, str]] = {}  # DQ output -> (input, lo, hi)
    dropped: set[int] = set()
    for node in model.graph.node:
        scale = taps.constant(node.input[1]) if node.op_type == "QuantizeLinear" else None
        if scale is None or taps.constant(node.input[0]) is not None:
            continue
        zero = taps.constant(node.input[2]) if len(node.input) > 2 else None
        zero = np.zeros((), np.uint8) if zero is None else zero
        dqs = readers.get(node.output[0], [])
        if scale.size != 1 or not dqs or any(r.op_type != "DequantizeLinear" for r in dqs):
            continue
        info = np.iinfo(zero.dtype)
        bounds = [float(scale) * (info.min - int(zero)), float(scale) * (info.max - int(zero))]
        names = [f"{node.output[0]}_lo", f"{node.output[0]}_hi"]
        for name, bound in zip(names, bounds, strict=True):
            model.graph.initializer.append(numpy_helper.from_array(np.array(bound, np.float32),
                                                                   name))
        dropped.add(id(node))
        for dq in dqs:
            clips[dq.output[0]] = (node.input[0], *names)
            dropped.add(id(dq))
    nodes = []
    for node in model.graph.node:
        if id(node) in dropped and node.op_type == "DequantizeLinear":
            nodes.append(helper.make_node("Clip", list(clips[node.output[0]]), [node.output[0]]))
        elif id(node) not in dropped:
            nodes.append(node)
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    return model, len(clips)


def float_biases(fp32: onnx.ModelProto, floating: onnx.ModelProto) -> tuple[onnx.ModelProto, int]:
    """``fp32`` with each Conv bias that differs from the float model's (same node name)
    replaced by the float model's; returns how many differed."""
    model = onnx.ModelProto()
    model.CopyFrom(fp32)
    ours, theirs = Taps(model), Taps(floating)
    convs = ("Conv", "ConvTranspose")
    biases = {n.name: theirs.constant(n.input[2]) for n in floating.graph.node
              if n.op_type in convs and len(n.input) > 2}
    changed = 0
    for node in model.graph.node:
        if node.op_type not in convs or len(node.input) < 3:
            continue
        bias, float_bias = ours.constant(node.input[2]), biases.get(node.name.split("#")[0])
        if bias is None or float_bias is None or np.abs(bias - float_bias).max() <= 1e-6:
            continue
        tensor = f"{node.input[2]}_float"
        model.graph.initializer.append(numpy_helper.from_array(float_bias.astype(np.float32),
                                                               tensor))
        node.input[2] = tensor
        changed += 1
    return model, changed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="ppocrv4_det")
    parser.add_argument("--producer", default="nncf")
    args = parser.parse_args()
    entry = zoo.entry(args.model, args.producer)
    converted = zoo.convert_entry(entry, "onnxruntime")
    floating = onnx.load(str(entry.float_path))
    reference = zoo.outputs(entry.float_path, entry.test)
    with tempfile.TemporaryDirectory() as tmp:
        clamped, pairs = clamps_only(onnx.load(str(entry.qdq_path)))
        rebiased, changed = float_biases(onnx.load(str(converted.fp32_path)), floating)
        rows = [("QDQ", entry.qdq_path), ("our FP32 model", converted.fp32_path)]
        for label, model in ((f"QDQ, its {pairs} activation Q/DQ as Clip", clamped),
                             (f"our FP32, {changed} float Conv biases", rebiased)):
            path = Path(tmp) / f"{len(rows)}.onnx"
            onnx.save(model, str(path))
            rows.append((label, path))
        print(f"cosine vs the float model per test sample, {args.model} {args.producer}, "
              "ONNX Runtime")
        for label, path in rows:
            cosines = [zoo.cosine(a, b) for a, b in zip(reference, zoo.outputs(path, entry.test),
                                                         strict=True)]
            print(f"  {label:40s} " + " ".join(f"{c:.4f}" for c in cosines))


if __name__ == "__main__":
    main()
