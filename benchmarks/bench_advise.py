"""The advisor on the ResNet-50-like and BERT-like models: "quantize everything" vs the
advisor's configuration, speed and accuracy measured side by side in one run.

    python benchmarks/bench_advise.py [--models resnet,bert] [--min-cosine 0.999]
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
from qcore.advise import AdviseSettings, advise
from qcore.advise.command import text


def build(kind: str) -> onnx.ModelProto:
    if kind == "resnet":
        return modelgen.quantize_qdq(modelgen.resnet_like(), activation_type="int8",
                                     symmetric_activations=True)
    return modelgen.quantize_qdq(modelgen.bert_like(), activation_type="uint8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="resnet,bert")
    parser.add_argument("--min-cosine", type=float, default=0.999)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for kind in args.models.split(","):
            path = Path(tmp) / f"{kind}_qdq.onnx"
            onnx.save(build(kind), str(path))
            start = time.perf_counter()
            advice = advise(str(path), settings=AdviseSettings(min_cosine=args.min_cosine,
                                                               samples=4, rounds=15))
            print(f"== {kind} (advisor took {time.perf_counter() - start:.0f} s)")
            print(text(advice))
            first, best = advice.candidates[0], advice.best
            if best is not None and first.latency_ms and best.latency_ms:
                print(f"quantize everything: cos {first.cosine:.5f}, {first.latency_ms:.2f} ms;"
                      f" advisor: cos {best.cosine:.5f}, {best.latency_ms:.2f} ms\n", flush=True)


if __name__ == "__main__":
    main()
