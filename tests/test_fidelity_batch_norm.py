"""A BatchNormalization the source reads through a Q/DQ pair (``quantize_static`` without
pre-processing; NNCF on PP-PicoDet) is not folded into the Conv before it: the source rounds
the Conv's output to 8 bits first, and a folded Conv would compute another function (PicoDet
NNCF: cosine 0.339 against the source after fold_batch_norm). Checked on real photos against
ONNX Runtime running the source."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import photos
from test_fidelity import IMAGE, ort_quantize, silu_cnn

from qcore.config import ConvertConfig
from qcore.verify import Status, verify


@pytest.mark.parametrize("target", ["onnxruntime", "onednn"])
def test_batch_norm_after_a_quantized_conv_output_stays(target: str, tmp_path: Path) -> None:
    feeds = photos(IMAGE)
    quant = ort_quantize(silu_cnn(), feeds, tmp_path)
    producer = {o: n for n in quant.graph.node for o in n.output}
    bn = next(n for n in quant.graph.node if n.op_type == "BatchNormalization")
    assert producer[bn.input[0]].op_type == "DequantizeLinear"  # the case under test
    path, inputs = tmp_path / "qdq.onnx", tmp_path / "photos.npz"
    path.write_bytes(quant.SerializeToString())
    # Brighter photos than the calibration's: the Conv output saturates at the source's range,
    # the clamp a folded Conv would lose.
    np.savez(inputs, **{k: 3 * np.concatenate([f[k] for f in feeds]) for k in feeds[0]})
    report = verify(path, ConvertConfig(target=target), inputs=inputs)
    row = next(r for r in report.rows if r.name == "fold_batch_norm")
    assert row.status in (Status.OK, Status.ROUNDING), row
    assert row.vs_source is not None and row.vs_source.cosine > 0.9999
    kept = [n for n in report_ops(path, target) if n == "BatchNormalization"]
    assert kept, "the BatchNormalization was folded across the source's Q/DQ"


def report_ops(path: Path, target: str) -> list[str]:
    """Op types of the converted FP32 model."""
    from qcore.convert import convert

    return [n.op_type for n in convert(str(path), ConvertConfig(target=target))
            .fp32_model().graph.node]
