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

import onnx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from devtools import modelgen
from qcore.convert import convert


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
                                  ("conv chain", modelgen.conv_chain, 7)):
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
