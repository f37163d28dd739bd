"""Writes the corpus of bad, odd and hostile model files that ``tests/test_bad_input.py`` uses.

Usage (from the repository root)::

    python tests/data/bad/make_bad_corpus.py [--out DIR]

Every file is built with ``onnx.helper`` from fixed numbers (no random generator other than a
seeded one, no ONNX Runtime, no other file), so re-running the script gives byte-identical
files; a test checks that. The files are small (a few KiB each). What each file is, and what
qcore must do with it, is listed in :data:`CORPUS`.
"""

from __future__ import annotations

import argparse
import random
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = Path(__file__).resolve().parent

#: The command the hostile names would run if anything passed them to a shell.
CANARY = "/tmp/qcore-bad-corpus-pwned"
OPSET = 13
EXTERNAL_DATA = "external_data.onnx.data"

#: File name -> one line saying what it is and what qcore must do with it.
CORPUS: dict[str, str] = {
    "empty.onnx": "zero bytes: not an ONNX model",
    "random_bytes.onnx": "4 KiB of seeded random bytes: not an ONNX model",
    "truncated.onnx": "the first 60% of tiny_qdq.onnx: not an ONNX model",
    "fp32_only.onnx": "a valid FP32 model without Q/DQ: info works, convert says 'no Q/DQ'",
    "tiny_qdq.onnx": "the valid tiny QDQ model the bad variants below are made from",
    "dq_zero_scale.onnx": "a weight DequantizeLinear with a zero scale",
    "dq_nan_scale.onnx": "a weight DequantizeLinear with a NaN scale",
    "dq_negative_scale.onnx": "an activation Q/DQ pair with a negative scale",
    "per_axis_mismatch.onnx": "3 per-axis weight scales for a weight with 4 output channels",
    "unsupported_op.onnx": "a Q/DQ-wrapped Sin (no INT8 kernel): stays FP32, converts",
    "custom_domain_op.onnx": "an op of an unknown domain: stays FP32, converts",
    "dynamic_shapes.onnx": "the tiny QDQ model with symbolic N / H / W input dims",
    "external_data.onnx": "weights in external_data.onnx.data beside it: loads",
    EXTERNAL_DATA: "the external data file of external_data.onnx",
    "external_missing.onnx": "external data file missing: clear error",
    "external_escape.onnx": "external data location ../../etc/passwd: refused",
    "external_absolute.onnx": "external data location /etc/passwd: refused",
    "hostile_names.onnx": "quotes, backslashes, newlines, braces and shell syntax in names",
    "cycle.onnx": "two ops that read each other's output: error naming a tensor",
    "dangling_input.onnx": "an op reads a tensor nothing produces: error naming it",
    "subgraph_outer.onnx": "an If whose branches read a main-graph tensor: converts (If FP32)",
    "fp16_scales.onnx": "a float16 model with float16 scales: refused naming the op",
    "blocked_dq.onnx": "a weight DequantizeLinear with block_size (opset 21): refused in words",
    "zero_size_weight.onnx": "a weight with no elements (4x0x3x3): refused naming it",
    "zero_size_concat.onnx": "a quantized Concat of an empty int8 constant: refused naming it",
}

#: Names that would do harm if they reached a shell, or break a careless DOT writer.
HOSTILE = [
    'quote"s \'single\'',
    "back\\slash\\N\\G\\L",
    "new\nline\r\ttab",
    "{braces} [brackets] <angle> &amp;",
    f"$(touch {CANARY})",
    f"; touch {CANARY}; rm -rf ~ #",
    f"`touch {CANARY}`",
    f"| touch {CANARY} && echo &",
    "}; digraph evil { x -> y",
    "-Tpng -o/tmp/x",
    "\x1b[31mred\x1b[0m \x1b]0;title\x07 bell",
]


def _tiny_qdq(
    *,
    names: dict[str, str] | None = None,
    weight_scale: list[float] | None = None,
    act_scale: float = 0.05,
    dims: list[int | str] | None = None,
    middle: tuple[str, str] | None = None,
) -> onnx.ModelProto:
    """x -> Q/DQ -> Conv(DQ(int8 W), bias) -> Relu -> Q/DQ [-> middle op -> Q/DQ] -> y.

    Args:
        names: Replacements for the default tensor and node names (keys are the defaults).
        weight_scale: The per-output-channel weight scales (default: 4 positive values).
        act_scale: The scale of the input's Q/DQ pair.
        dims: The input shape, ``[N, 8, H, W]`` (symbolic dims allowed).
        middle: ``(op_type, domain)`` of an op placed after the Relu, with its own Q/DQ.
    """
    n = dict(names or {})

    def name(key: str) -> str:
        return n.get(key, key)

    weight = (np.arange(4 * 8 * 3 * 3, dtype=np.int64) % 17 - 8).astype(np.int8)
    weight = weight.reshape(4, 8, 3, 3)
    w_scale = np.array(weight_scale or [0.02, 0.03, 0.025, 0.01], dtype=np.float32)
    inits = [
        numpy_helper.from_array(weight, name("conv.weight_quantized")),
        numpy_helper.from_array(w_scale, name("conv.weight_scale")),
        numpy_helper.from_array(np.zeros(w_scale.shape, np.int8), name("conv.weight_zp")),
        numpy_helper.from_array(np.array([0.1, -0.1, 0.05, 0.0], np.float32), name("conv.bias")),
        numpy_helper.from_array(np.array(act_scale, np.float32), name("x_scale")),
        numpy_helper.from_array(np.array(128, np.uint8), name("x_zp")),
        numpy_helper.from_array(np.array(0.04, np.float32), name("y_scale")),
        numpy_helper.from_array(np.array(128, np.uint8), name("y_zp")),
    ]
    q, dq = "QuantizeLinear", "DequantizeLinear"
    nodes = [
        helper.make_node(q, [name("x"), name("x_scale"), name("x_zp")], [name("x_q")],
                         name=name("x_QuantizeLinear")),
        helper.make_node(dq, [name("x_q"), name("x_scale"), name("x_zp")], [name("x_dq")],
                         name=name("x_DequantizeLinear")),
        helper.make_node(dq, [name("conv.weight_quantized"), name("conv.weight_scale"),
                              name("conv.weight_zp")], [name("conv.weight")],
                         name=name("conv.weight_DequantizeLinear"), axis=0),
        helper.make_node("Conv", [name("x_dq"), name("conv.weight"), name("conv.bias")],
                         [name("conv")], name=name("conv"), kernel_shape=[3, 3],
                         pads=[1, 1, 1, 1]),
        helper.make_node("Relu", [name("conv")], [name("relu")], name=name("relu")),
    ]
    opsets = [helper.make_opsetid("", OPSET)]
    stages = [("relu", None)]
    if middle is not None:
        stages.append(("mid", middle))
        if middle[1]:
            opsets.append(helper.make_opsetid(middle[1], 1))
    last = ""
    for index, (stage, op) in enumerate(stages):
        if op is not None:
            nodes.append(helper.make_node(op[0], [name(last)], [name(stage)], name=name(stage),
                                          domain=op[1] or None))
        last = "y" if index == len(stages) - 1 else f"{stage}_dq"
        nodes += [
            helper.make_node(q, [name(stage), name("y_scale"), name("y_zp")],
                             [name(f"{stage}_q")], name=name(f"{stage}_QuantizeLinear")),
            helper.make_node(dq, [name(f"{stage}_q"), name("y_scale"), name("y_zp")],
                             [name(last)], name=name(f"{stage}_DequantizeLinear")),
        ]
    in_dims = dims or [1, 8, 8, 8]
    out_dims = [in_dims[0], 4, *in_dims[2:]]
    graph = helper.make_graph(
        nodes, name("tiny_qdq"),
        [helper.make_tensor_value_info(name("x"), TensorProto.FLOAT, in_dims)],
        [helper.make_tensor_value_info(name("y"), TensorProto.FLOAT, out_dims)],
        inits,
    )
    model = helper.make_model(graph, opset_imports=opsets, producer_name="make_bad_corpus")
    model.ir_version = 8
    return model


def tiny_qdq() -> onnx.ModelProto:
    """The valid tiny QDQ model (see :func:`_tiny_qdq`)."""
    return _tiny_qdq()


def fp32_only() -> onnx.ModelProto:
    """x -> Conv -> Relu -> y in float, with no Q/DQ anywhere."""
    weight = ((np.arange(4 * 3 * 3 * 3) % 7 - 3) / 10).astype(np.float32).reshape(4, 3, 3, 3)
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["c"], name="conv", kernel_shape=[3, 3]),
         helper.make_node("Relu", ["c"], ["y"], name="relu")],
        "fp32_only",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 6, 6])],
        [numpy_helper.from_array(weight, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="make_bad_corpus")
    model.ir_version = 8
    return model


def hostile_names(canary: str = CANARY) -> onnx.ModelProto:
    """The tiny QDQ model with every node and tensor renamed to a hostile string.

    Args:
        canary: The file the shell snippets in the names would create.
    """
    keys = ["x", "x_q", "x_dq", "x_QuantizeLinear", "x_DequantizeLinear", "conv.weight",
            "conv.weight_DequantizeLinear", "conv", "relu", "relu_q", "relu_QuantizeLinear",
            "relu_DequantizeLinear", "y", "conv.bias", "x_scale", "y_scale", "tiny_qdq"]
    hostile = [h.replace(CANARY, canary) for h in HOSTILE]
    names = {key: f"{hostile[i % len(hostile)]} #{i}" for i, key in enumerate(keys)}
    return _tiny_qdq(names=names)


def _external(model: onnx.ModelProto, location: str) -> onnx.ModelProto:
    """Point the int8 weight initializer at ``location`` instead of storing its bytes."""
    tensor = next(t for t in model.graph.initializer if t.name == "conv.weight_quantized")
    raw = tensor.raw_data or numpy_helper.to_array(tensor).tobytes()
    tensor.ClearField("raw_data")
    tensor.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", str(len(raw)))):
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value
    return model


def external_data(out: Path) -> None:
    """``external_data.onnx`` and its data file (the int8 weight bytes)."""
    model = tiny_qdq()
    tensor = next(t for t in model.graph.initializer if t.name == "conv.weight_quantized")
    raw = numpy_helper.to_array(tensor).tobytes()
    (out / EXTERNAL_DATA).write_bytes(raw)
    _save(_external(model, EXTERNAL_DATA), out / "external_data.onnx")


def cycle() -> onnx.ModelProto:
    """x -> Q/DQ -> Add(x_dq, r) -> a -> Relu -> r -> y: ``a`` and ``r`` need each other."""
    graph = helper.make_graph(
        [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["x_q"], name="q"),
         helper.make_node("DequantizeLinear", ["x_q", "s", "z"], ["x_dq"], name="dq"),
         helper.make_node("Add", ["x_dq", "r"], ["a"], name="add"),
         helper.make_node("Relu", ["a"], ["r"], name="relu"),
         helper.make_node("Identity", ["r"], ["y"], name="out")],
        "cycle",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
        [numpy_helper.from_array(np.array(0.1, np.float32), "s"),
         numpy_helper.from_array(np.array(128, np.uint8), "z")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="make_bad_corpus")
    model.ir_version = 8
    return model


def dangling_input() -> onnx.ModelProto:
    """The tiny QDQ model whose Conv reads a bias ``ghost_bias`` that nothing produces."""
    model = tiny_qdq()
    conv = next(node for node in model.graph.node if node.op_type == "Conv")
    conv.input[2] = "ghost_bias"
    return model


def subgraph_outer() -> onnx.ModelProto:
    """The tiny QDQ model with an If after the Relu whose branches read ``relu0``, a tensor
    of the main graph (outer scope)."""
    model = tiny_qdq()
    graph = model.graph
    relu = next(node for node in graph.node if node.op_type == "Relu")
    relu.output[0] = "relu0"

    def branch(op: str, inputs: list[str], out: str) -> onnx.GraphProto:
        return helper.make_graph([helper.make_node(op, inputs, [out])], out, [],
                                 [helper.make_tensor_value_info(out, TensorProto.FLOAT, None)])

    graph.initializer.extend([numpy_helper.from_array(np.array(True), "cond"),
                              numpy_helper.from_array(np.ones((1, 4, 1, 1), np.float32), "one")])
    branch_node = helper.make_node("If", ["cond"], ["relu"], name="branch",
                                   then_branch=branch("Add", ["relu0", "one"], "then_out"),
                                   else_branch=branch("Identity", ["relu0"], "else_out"))
    graph.node.insert(list(graph.node).index(relu) + 1, branch_node)
    return model


def fp16_scales() -> onnx.ModelProto:
    """The tiny QDQ model in float16: float16 weights, bias, scales, input and output."""
    model = tiny_qdq()
    for tensor in model.graph.initializer:
        if tensor.data_type == TensorProto.FLOAT:
            half = numpy_helper.to_array(tensor).astype(np.float16)
            tensor.CopyFrom(numpy_helper.from_array(half, tensor.name))
    for value in list(model.graph.input) + list(model.graph.output):
        value.type.tensor_type.elem_type = TensorProto.FLOAT16
    return model


def blocked_dq() -> onnx.ModelProto:
    """Opset 21: the weight DequantizeLinear quantizes blocks of 4 input channels."""
    model = tiny_qdq()
    model.opset_import[0].version = 21
    for tensor in model.graph.initializer:
        if tensor.name == "conv.weight_scale":
            scales = np.full((4, 2, 3, 3), 0.02, np.float32)
            tensor.CopyFrom(numpy_helper.from_array(scales, tensor.name))
        elif tensor.name == "conv.weight_zp":
            tensor.CopyFrom(numpy_helper.from_array(np.zeros((4, 2, 3, 3), np.int8), tensor.name))
    dq = next(node for node in model.graph.node if node.name == "conv.weight_DequantizeLinear")
    del dq.attribute[:]
    dq.attribute.extend([helper.make_attribute("axis", 1), helper.make_attribute("block_size", 4)])
    return model


def zero_size_weight() -> onnx.ModelProto:
    """The tiny QDQ model whose int8 weight has shape 4x0x3x3."""
    model = tiny_qdq()
    tensor = next(t for t in model.graph.initializer if t.name == "conv.weight_quantized")
    tensor.CopyFrom(numpy_helper.from_array(np.zeros((4, 0, 3, 3), np.int8), tensor.name))
    return model


def zero_size_concat() -> onnx.ModelProto:
    """The tiny QDQ model whose output is a Q/DQ-wrapped Concat of the result and an empty
    int8 constant behind its own DequantizeLinear."""
    model = tiny_qdq()
    graph = model.graph
    graph.node[-1].output[0] = "y_dq"
    graph.initializer.append(numpy_helper.from_array(np.zeros((1, 0, 8, 8), np.uint8),
                                                     "empty_q"))
    q, dq = "QuantizeLinear", "DequantizeLinear"
    graph.node.extend([
        helper.make_node(dq, ["empty_q", "y_scale", "y_zp"], ["empty"], name="empty_dq"),
        helper.make_node("Concat", ["y_dq", "empty"], ["cat"], name="concat", axis=1),
        helper.make_node(q, ["cat", "y_scale", "y_zp"], ["cat_q"], name="cat_q"),
        helper.make_node(dq, ["cat_q", "y_scale", "y_zp"], ["y"], name="cat_dq"),
    ])
    return model


def _save(model: onnx.ModelProto, path: Path) -> None:
    path.write_bytes(model.SerializeToString(deterministic=True))


def make_corpus(out: Path) -> list[Path]:
    """Writes every file of :data:`CORPUS` into ``out``.

    Args:
        out: Output folder, created if missing.

    Returns:
        The written files, in :data:`CORPUS` order.
    """
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(6)
    tiny = tiny_qdq().SerializeToString(deterministic=True)
    raw: dict[str, bytes] = {
        "empty.onnx": b"",
        "random_bytes.onnx": bytes(rng.randrange(256) for _ in range(4096)),
        "truncated.onnx": tiny[: len(tiny) * 6 // 10],
    }
    models: dict[str, Callable[[], onnx.ModelProto]] = {
        "fp32_only.onnx": fp32_only,
        "tiny_qdq.onnx": tiny_qdq,
        "dq_zero_scale.onnx": lambda: _tiny_qdq(weight_scale=[0.02, 0.0, 0.025, 0.01]),
        "dq_nan_scale.onnx": lambda: _tiny_qdq(weight_scale=[0.02, float("nan"), 0.02, 0.01]),
        "dq_negative_scale.onnx": lambda: _tiny_qdq(act_scale=-0.05),
        "per_axis_mismatch.onnx": lambda: _tiny_qdq(weight_scale=[0.02, 0.03, 0.025]),
        "unsupported_op.onnx": lambda: _tiny_qdq(middle=("Sin", "")),
        "custom_domain_op.onnx": lambda: _tiny_qdq(middle=("Mystery", "com.example")),
        "dynamic_shapes.onnx": lambda: _tiny_qdq(dims=["N", 8, "H", "W"]),
        "external_missing.onnx": lambda: _external(tiny_qdq(), "external_missing.bin"),
        "external_escape.onnx": lambda: _external(tiny_qdq(), "../../etc/passwd"),
        "external_absolute.onnx": lambda: _external(tiny_qdq(), "/etc/passwd"),
        "hostile_names.onnx": hostile_names,
        "cycle.onnx": cycle,
        "dangling_input.onnx": dangling_input,
        "subgraph_outer.onnx": subgraph_outer,
        "fp16_scales.onnx": fp16_scales,
        "blocked_dq.onnx": blocked_dq,
        "zero_size_weight.onnx": zero_size_weight,
        "zero_size_concat.onnx": zero_size_concat,
    }
    for name, data in raw.items():
        (out / name).write_bytes(data)
    for name, build in models.items():
        _save(build(), out / name)
    external_data(out)
    return [out / name for name in CORPUS]


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE,
                        help="output folder (default: %(default)s)")
    args = parser.parse_args(argv)
    for path in make_corpus(args.out):
        print(f"{path.name:28} {path.stat().st_size:6d} bytes  {CORPUS[path.name]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
