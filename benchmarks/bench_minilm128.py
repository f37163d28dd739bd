"""The zoo's MiniLM-L6 sentence encoder at sequence length 128 (the zoo runs it at 32).

    python benchmarks/bench_minilm128.py [--iterations 50]

Builds the float model at 128 tokens, tokenizes the zoo's sentences to 128, quantizes it with
both zoo producers (quantize_static u8 MatMul-only, NNCF transformer) and prints the rows of
benchmarks/bench_zoo.py for them: FP32 / source QDQ / ours on ONNX Runtime and OpenVINO, 1
thread, batch 1, measured round-robin in one run (issue 14: ours >= 2.5x FP32 on the better
engine). Asserts nothing; the models are written to a temporary folder.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import onnx

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "benchmarks")]

import bench_zoo  # noqa: E402
import zoo  # noqa: E402

SEQ = 128


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=50)
    args = parser.parse_args(argv)
    zoo.SEQ = SEQ  # sentence_feeds tokenizes to zoo.SEQ
    spec = zoo.MODELS["minilm_l6"]
    print(bench_zoo.HEADER)
    print("|" + "---|" * bench_zoo.HEADER.count(" | ") + "---|")
    with tempfile.TemporaryDirectory(prefix="minilm128_") as tmp:
        work = Path(tmp)
        fpath = work / f"minilm_l6_seq{SEQ}.fp32.onnx"
        onnx.save(zoo.minilm(SEQ), str(fpath))
        calibration, test = spec.calibration(), spec.test()
        for producer in spec.producers:
            qpath = work / f"minilm_l6_seq{SEQ}.{producer}.qdq.onnx"
            onnx.save(zoo.quantize(onnx.load(str(fpath)), producer, calibration), str(qpath))
            entry = zoo.ZooEntry(spec, producer, fpath, qpath, test)
            bench_zoo.bench_entry(entry, work, bench_zoo.Options(args.iterations))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
