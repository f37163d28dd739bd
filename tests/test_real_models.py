"""Real Paddle-origin models (PP-OCR from the rapidocr-onnxruntime wheel), quantized with
ONNX Runtime's quantize_static in several ways. Marked ``realmodel``: they fetch a wheel with
pip, so they run on demand: ``python -m pytest -m realmodel``. Their speed is measured by
benchmarks/bench_zoo.py, not asserted here."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from conftest import cosine
from realmodels import MODELS, fetch, text_images

from devtools import modelgen
from qcore.convert import convert

pytestmark = pytest.mark.realmodel

QUANT_WAYS = {
    "u8-asymmetric": dict(activation_type="uint8"),
    "s8-symmetric": dict(activation_type="int8", symmetric_activations=True),
}


def _session(model) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    return ort.InferenceSession(model.SerializeToString(), opts,
                                providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("way", sorted(QUANT_WAYS))
@pytest.mark.parametrize("name", sorted(MODELS))
def test_real_model_int8_is_as_accurate_as_the_quant_model(name, way):
    fp32, shape = fetch(name)
    feed_name = fp32.graph.input[0].name
    calibration = [{feed_name: x} for x in text_images(shape, 8, seed=1)]
    quant = modelgen.quantize_qdq(fp32, per_channel=True, calibration=calibration,
                                  **QUANT_WAYS[way])
    int8 = convert(quant).int8_model()
    sessions = {"fp32": _session(fp32), "qdq": _session(quant), "int8": _session(int8)}
    closeness: dict[str, list[float]] = {"qdq": [], "int8": []}
    for image in text_images(shape, 6, seed=2):
        outs = {k: s.run(None, {feed_name: image})[0] for k, s in sessions.items()}
        for key in closeness:
            closeness[key].append(cosine(outs[key], outs["fp32"]))
    mean = {k: float(np.mean(v)) for k, v in closeness.items()}
    print(f"{name} {way}: cosine to FP32 " + ", ".join(f"{k} {v:.4f}" for k, v in mean.items()))
    # about as close to FP32 as the quant model it came from (these quant models are lossy:
    # calibrated on 8 synthetic images, so both drift from FP32 in different directions)
    assert mean["int8"] >= mean["qdq"] - 0.05, mean
