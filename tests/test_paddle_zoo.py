"""The zoo's Paddle producers (tests/zoo_paddle.py) and what they say about our importer.

PP-OCR's direction classifier (the zoo's ``ppocr_cls``, a paddle2onnx file) rebuilt as a
Paddle program with its own weights and quantized by Paddle's own PostTrainingQuantization in
its Paddle venv: the program computes what the ONNX file computes, and our importer, read
without Paddle, computes what Paddle computes on the quant models (calibration images: real
text scans). The ``zoo`` tests need the Paddle venv (made on first use); the others do not.
"""

from __future__ import annotations

import collections
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import zoo
import zoo_paddle

from qcore.paddle.fusions import fused_away
from qcore.paddle.importer import import_paddle
from qcore.paddle.program import Op, Program, Var

MODEL = "ppocr_cls"


def _run(model: onnx.ModelProto, feeds: list[zoo.Feed]) -> list[np.ndarray]:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return [session.run(None, f)[0] for f in feeds]


@pytest.fixture(scope="module")
def made() -> tuple[onnx.ModelProto, list[zoo.Feed], zoo_paddle.PaddleBuild]:
    model = onnx.load(str(zoo.float_model(MODEL)))
    calibration = zoo.MODELS[MODEL].calibration()
    try:
        return model, calibration, zoo_paddle.build(model, calibration)
    except zoo.FetchError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.mark.zoo
def test_translation_gives_back_the_paddle_ops_with_the_files_weights() -> None:
    model = onnx.load(str(zoo.float_model(MODEL)))
    t = zoo_paddle.to_paddle(model)
    kinds = collections.Counter(op["type"] for op in t.ops)
    assert kinds["conv2d"] + kinds["depthwise_conv2d"] == 53
    assert (kinds["batch_norm"], kinds["hard_swish"], kinds["hard_sigmoid"]) == (35, 18, 9)
    assert {"Add", "Clip", "Div"}.isdisjoint(kinds)  # paddle2onnx's expansions are gone
    consts = {n.output[0]: n for n in model.graph.node if n.op_type == "Constant"}
    assert {"conv1_weights", "conv1_bn_scale", "fc_0.w_0"} <= set(t.params) <= set(consts)
    assert t.feeds == {"x": [1, 3, 48, 192]}


@pytest.mark.zoo
def test_the_paddle_program_computes_what_the_onnx_file_does(made) -> None:
    model, calibration, build = made
    cosines = [zoo.cosine(a, b) for a, b in zip(_run(model, calibration),
                                                 build.outputs("float"), strict=True)]
    assert min(cosines) > zoo_paddle.FLOAT_COSINE, cosines
    report = build.report()
    assert "quantize_linear" in report["op_types"]["onnx_format"]
    assert "fake_quantize_range_abs_max" in report["op_types"]["legacy"]


@pytest.mark.zoo
@pytest.mark.parametrize("fmt", sorted(set(zoo_paddle.FORMATS.values())))
def test_import_computes_what_paddle_computes_on_its_quant_model(made, fmt: str) -> None:
    """Without the out_threshold pairs the import is Paddle's own fake-quant model. (Not to
    the bit: ONNX Runtime's float convolutions round differently from Paddle's, and a value
    next to a rounding edge of the following quantization flips one step: on the legacy model,
    23 of the 27,648 values of batch_norm_4.tmp_2 on one image.)"""
    _, calibration, build = made
    ours = _run(import_paddle(build.model(fmt), out_thresholds=False), calibration)
    paddle = build.outputs(fmt)
    cosines = [zoo.cosine(a, b) for a, b in zip(ours, paddle, strict=True)]
    assert min(cosines) > 0.995, cosines
    sure = [i for i, p in enumerate(paddle) if abs(p.ravel()[0] - p.ravel()[1]) > 0.05]
    assert [ours[i].argmax() for i in sure] == [paddle[i].argmax() for i in sure]
    assert np.mean(cosines) > 0.999


@pytest.mark.zoo
def test_no_scale_on_tensors_paddle_fuses_into_the_conv(made) -> None:
    """conv -> batch_norm -> relu: only the relu's output (what Paddle's fused conv writes)
    is quantized, in both formats."""
    _, _, build = made
    for fmt in sorted(set(zoo_paddle.FORMATS.values())):
        model = import_paddle(build.model(fmt))
        quantized = {n.input[0] for n in model.graph.node if n.op_type == "QuantizeLinear"}
        assert "relu_0.tmp_0" in quantized, fmt
        assert {"conv2d_54.tmp_0", "batch_norm_1.tmp_2"}.isdisjoint(quantized), fmt


def test_a_venv_that_cannot_be_made_fails_with_a_clear_message(tmp_path: Path,
                                                                monkeypatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setattr(zoo_paddle, "VENV", blocker / "paddle-venv")
    with pytest.raises(zoo.FetchError, match="the Paddle venv could not be made"):
        zoo_paddle.python()


# ---- fused_away on hand-written programs (no Paddle, no zoo)


def _op(index: int, op_type: str, inputs: dict, outputs: dict, **attrs: object) -> Op:
    return Op(index, op_type, inputs, outputs, dict(attrs))


def _program(ops: list[Op], params: list[str]) -> Program:
    names = {n for op in ops for slot in (op.inputs, op.outputs) for v in slot.values()
             for n in v}
    return Program(ops, {n: Var(n, "LOD_TENSOR", np.dtype("float32"), None, n in params)
                         for n in names})


def test_fused_away_follows_paddles_fusions() -> None:
    ops = [
        _op(0, "conv2d", {"Input": ["x"], "Filter": ["w"]}, {"Output": ["c"]}),
        _op(1, "quantize_linear", {"X": ["c"], "Scale": ["s"]}, {"Y": ["cq"]},
            only_observer=True),
        _op(2, "dequantize_linear", {"X": ["cq"], "Scale": ["s"]}, {"Y": ["cd"]},
            only_observer=True),
        _op(3, "batch_norm", {"X": ["cd"], "Scale": ["g"]}, {"Y": ["bn"]}),
        _op(4, "relu", {"X": ["bn"]}, {"Out": ["r"]}),
        _op(5, "conv2d", {"Input": ["r"], "Filter": ["w2"]}, {"Output": ["c2"]}),
        _op(6, "elementwise_add", {"X": ["c2"], "Y": ["b2"]}, {"Out": ["a2"]}),
        _op(7, "hard_sigmoid", {"X": ["a2"]}, {"Out": ["h"]}),
        _op(8, "conv2d", {"Input": ["h"], "Filter": ["w3"]}, {"Output": ["c3"]}),
        _op(9, "elementwise_add", {"X": ["c3"], "Y": ["r"]}, {"Out": ["res"]}),
        _op(10, "matmul_v2", {"X": ["res"], "Y": ["w4"]}, {"Out": ["m"]}),
        _op(11, "elementwise_add", {"X": ["m"], "Y": ["b4"]}, {"Out": ["fc"]}),
        _op(12, "softmax", {"X": ["fc"]}, {"Out": ["out"]}),
    ]
    found = fused_away(_program(ops, ["w", "g", "s", "w2", "b2", "w3", "w4", "b4"]))
    # kept: r (relu output), h, c3 (a residual add is no fusion here), res, fc (softmax)
    assert found == {"c", "bn", "c2", "a2", "m"}


def test_a_tensor_read_twice_keeps_its_scale() -> None:
    ops = [
        _op(0, "conv2d", {"Input": ["x"], "Filter": ["w"]}, {"Output": ["c"]}),
        _op(1, "relu", {"X": ["c"]}, {"Out": ["r"]}),
        _op(2, "elementwise_add", {"X": ["c"], "Y": ["r"]}, {"Out": ["o"]}),
    ]
    assert fused_away(_program(ops, ["w"])) == set()
