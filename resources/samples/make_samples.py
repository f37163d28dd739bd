"""Writes the deterministic sample models used by the app and the tests.

Usage (from the repository root)::

    python resources/samples/make_samples.py [--out DIR]

Writes ``cnn_fp32.onnx``, ``cnn_qdq.onnx``, ``transformer_fp32.onnx`` and
``transformer_qdq.onnx``. The QDQ models use per-channel int8 weights and uint8
activations. Re-running with the same library versions gives byte-identical files.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import onnx

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]

sys.path.insert(0, str(REPO_ROOT))  # devtools/ is not installed; it sits at the root

from devtools import modelgen  # noqa: E402


def make_samples(out: Path) -> list[Path]:
    """Builds and saves the sample models.

    Args:
        out: Output folder, created if missing.

    Returns:
        The written files.
    """
    out.mkdir(parents=True, exist_ok=True)
    cnn = modelgen.cnn(seed=0)
    transformer = modelgen.transformer(seed=0)
    models = {
        "cnn_fp32.onnx": cnn,
        "cnn_qdq.onnx": modelgen.quantize_qdq(
            cnn, per_channel=True, activation_type="uint8", weight_type="int8", seed=0
        ),
        "transformer_fp32.onnx": transformer,
        "transformer_qdq.onnx": modelgen.quantize_qdq(
            transformer, per_channel=True, activation_type="uint8", weight_type="int8", seed=0
        ),
    }
    written = []
    for name, model in models.items():
        path = out / name
        onnx.save(model, path)
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=HERE, help="output folder (default: %(default)s)"
    )
    args = parser.parse_args(argv)
    for path in make_samples(args.out):
        print(f"{path}  {path.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
