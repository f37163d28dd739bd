"""Conversion time against graph size: every pass must be linear in the number of ops.

    python benchmarks/bench_scale.py [--sizes 1000,10000,50000]

Two QDQ graphs made with onnx.helper: the Q/DQ/Relu/Add chain of the big-graph tests
(``modelgen.qdq_chain``), and a Conv + BatchNormalization + Relu + Identity chain with int8
weights (every fusion pass has work at every block). Prints seconds per size and the growth
against the smallest size. Acceptance (issue 15): 50,000 ops in under 30 s, growth linear.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from qcore import modelgen  # noqa: E402
from qcore.convert import convert  # noqa: E402


def conv_chain(blocks: int) -> onnx.ModelProto:
    """``blocks`` x (Q, DQ, weight DQ, Conv, BatchNormalization, Relu, Identity)."""
    arrays = {"s": np.array(0.05, np.float32), "z": np.array(0, np.uint8),
              "ws": np.array(0.01, np.float32), "wz": np.array(0, np.int8),
              "w": np.ones((4, 4, 1, 1), np.int8), "g": np.ones(4, np.float32),
              "b": np.zeros(4, np.float32), "m": np.zeros(4, np.float32),
              "v": np.ones(4, np.float32)}
    nodes, x = [], "x"
    for i in range(blocks):
        p = f"blk{i}"
        nodes += [helper.make_node("QuantizeLinear", [x, "s", "z"], [f"{p}.q"]),
                  helper.make_node("DequantizeLinear", [f"{p}.q", "s", "z"], [f"{p}.dq"]),
                  helper.make_node("DequantizeLinear", ["w", "ws", "wz"], [f"{p}.w"]),
                  helper.make_node("Conv", [f"{p}.dq", f"{p}.w"], [f"{p}.c"]),
                  helper.make_node("BatchNormalization", [f"{p}.c", "g", "b", "m", "v"],
                                   [f"{p}.bn"]),
                  helper.make_node("Relu", [f"{p}.bn"], [f"{p}.r"]),
                  helper.make_node("Identity", [f"{p}.r"], [f"{p}.out"])]
        x = f"{p}.out"
    value = helper.make_tensor_value_info
    graph = helper.make_graph(nodes, "conv_chain", [value("x", TensorProto.FLOAT, [1, 4, 4, 4])],
                              [value(x, TensorProto.FLOAT, [1, 4, 4, 4])],
                              [numpy_helper.from_array(a, k) for k, a in arrays.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def seconds(model: onnx.ModelProto) -> float:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.onnx"
        onnx.save(model, path)
        start = time.perf_counter()
        convert(path)
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,50000")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    ok = True
    for name, make, per_block in (("qdq chain", modelgen.qdq_chain, 6),
                                  ("conv chain", conv_chain, 7)):
        rows = [(n, seconds(make(max(1, n // per_block)))) for n in sizes]
        base_n, base_s = rows[0]
        for n, s in rows:
            growth = (s / base_s) / (n / base_n)
            print(f"{name:10} {n:7d} ops {s:7.2f} s   time/size growth vs {base_n}: {growth:.2f}")
        ok = ok and all(s < 30 for n, s in rows if n <= 50000)
    print("PASS" if ok else "FAIL (50,000 ops over 30 s)")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
