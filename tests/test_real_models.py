"""Real Paddle-origin models (PP-OCR from the rapidocr-onnxruntime wheel), quantized with
ONNX Runtime's quantize_static in several ways. Marked ``realmodel``: they fetch a wheel with
pip and time models, so they run on demand: ``python -m pytest -m realmodel``."""

from __future__ import annotations

import time

import numpy as np
import onnxruntime as ort
import pytest
from conftest import cosine
from realmodels import MODELS, fetch, text_images

from qcore import modelgen
from qcore.convert import convert

pytestmark = pytest.mark.realmodel

QUANT_WAYS = {
    "u8-asymmetric": dict(activation_type="uint8"),
    "s8-symmetric": dict(activation_type="int8", symmetric_activations=True),
}


def _session(model) -> ort.InferenceSession:  # noqa: ANN001
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    return ort.InferenceSession(model.SerializeToString(), opts,
                                providers=["CPUExecutionProvider"])


def _median_ms(sessions: dict[str, ort.InferenceSession], feeds: dict, rounds: int = 20) -> dict:
    times: dict[str, list[float]] = {k: [] for k in sessions}
    for s in sessions.values():
        for _ in range(3):
            s.run(None, feeds)
    for _ in range(rounds):  # interleaved, so drift hits every model alike
        for key, s in sessions.items():
            start = time.perf_counter()
            s.run(None, feeds)
            times[key].append(time.perf_counter() - start)
    return {k: 1e3 * float(np.median(v)) for k, v in times.items()}


@pytest.mark.parametrize("way", sorted(QUANT_WAYS))
@pytest.mark.parametrize("name", sorted(MODELS))
def test_real_model_int8_is_faster_than_fp32_and_as_accurate_as_the_quant_model(name, way):  # noqa: ANN001, ANN201
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
    ms = _median_ms(sessions, {feed_name: text_images(shape, 1, seed=3)[0]})
    print(f"{name} {way}: " + ", ".join(f"{k} {v:.2f} ms" for k, v in ms.items()))
    assert ms["int8"] <= ms["qdq"] * 1.05, ms
    if name != "ppocr_cls":  # ~1 ms model: op overheads decide; measured 0.9-1.06x
        assert ms["int8"] < ms["fp32"], ms
