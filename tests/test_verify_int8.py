"""`qcore verify` from quantize on: the INT8 op search pinned to the reference's quantized
values tells integer rounding at ties (the row holds) from an INT8 op that computes something
else (the row drifts at that op), where the free-running outputs cannot."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper
from test_verify import PHOTOS, photo_feeds, plant_weight_scale

from devtools import modelgen
from qcore.bench.inputs import InputSet
from qcore.config import ConvertConfig
from qcore.convert import convert
from qcore.passes.quantize import Quantize
from qcore.verify import Bound, Runner, Stage, Status, Tolerance, runnable_model, verify
from qcore.verify_int8 import IntPoint, _PointStats, find_int8_drift

#: Every INT8 drift goes to the op search: a bound tighter than ONNX Runtime's integer
#: rounding on the ResNet (cosine 0.99995), which the engine's own rounding widens in max
#: error only (engine_floor at the bound) and to no more than its own distance (margin 1).
NO_ALLOWANCE = Tolerance(int8=Bound(0.99999, 1e-3), engine_margin=1.0, engine_floor=0.99999)


def float_weights(model: onnx.ModelProto) -> onnx.ModelProto:
    """Weights and biases stored as float (their dequantized values, on the same int8 grid),
    as Paddle and NNCF write them: ONNX Runtime then runs the source with other kernels than
    the INT8 model's, so its rounding does not explain ours."""
    inits = {t.name: t for t in model.graph.initializer}
    kept = []
    for node in model.graph.node:
        ints = inits.get(node.input[0]) if node.op_type == "DequantizeLinear" else None
        if ints is None or ints.data_type not in (onnx.TensorProto.INT8, onnx.TensorProto.INT32):
            kept.append(node)
            continue
        q = numpy_helper.to_array(ints).astype(np.float64)
        scale = numpy_helper.to_array(inits[node.input[1]]).astype(np.float64)
        if scale.size > 1:
            scale = scale.reshape([-1] + [1] * (q.ndim - 1))
        model.graph.initializer.append(
            numpy_helper.from_array((q * scale).astype(np.float32), node.output[0]))
    del model.graph.node[:]
    model.graph.node.extend(kept)
    return model


@pytest.fixture(scope="module")
def resnet(tmp_path_factory) -> tuple[Path, InputSet]:
    """A ResNet-shaped net on 64-pixel photos, calibrated on six, run on the other four,
    with float weights (:func:`float_weights`)."""
    size = 64
    fp32 = modelgen.resnet_like(seed=2, image=size, classes=10, blocks=(2, 2, 2, 2), width=16)
    path = tmp_path_factory.mktemp("verify_int8") / "resnet_qdq.onnx"
    qdq = modelgen.quantize_qdq(fp32, calibration=photo_feeds(PHOTOS[:6], size))
    onnx.save(float_weights(qdq), path)
    return path, InputSet(photo_feeds(PHOTOS[6:], size), "photos")


@pytest.mark.parametrize("target", ["onnxruntime", "onednn"])
def test_int8_rounding_at_ties_holds_on_pinned_inputs(resnet, target) -> None:
    path, inputs = resnet
    report = verify(path, ConvertConfig(target=target), inputs, tolerance=NO_ALLOWANCE)
    assert report.ok, report.failed
    row = next(r for r in report.rows if r.name == "quantize")
    assert row.vs_previous is not None and not NO_ALLOWANCE.int8.holds(row.vs_previous)
    assert row.status == Status.ROUNDING and row.first_op is None, row.reason
    assert row.flips > 0, row.reason
    assert row.reason.startswith("every INT8 op computes the source's op on the source's "
                                 "quantized inputs"), row.reason
    assert "integer rounding flipped" in row.reason and "free-running" in row.reason
    assert all(r.status in (Status.OK, Status.ROUNDING) for r in report.rows)


def test_a_requantize_off_by_2_5_percent_drifts_at_its_op(resnet, monkeypatch) -> None:
    path, inputs = resnet
    planted = plant_weight_scale(monkeypatch, Quantize, "stage2.block0.conv2", 1.025)
    report = verify(path, ConvertConfig(), inputs, tolerance=NO_ALLOWANCE)
    failed = report.failed
    assert failed is not None and failed.name == "quantize" and failed.stage == Stage.INT8
    assert failed.status == Status.DRIFT
    # free-running, the outputs are near: within the default INT8 bound
    assert failed.vs_previous is not None and Tolerance().int8.holds(failed.vs_previous)
    assert failed.first_op is not None and failed.first_op.op_id == planted[0], failed.reason
    assert failed.first_op.name == "stage2.block0.conv2"
    assert "steps" in failed.first_op.note and "first op that fails" in failed.reason


def test_the_pinned_search_names_the_op_on_openvino_too(resnet) -> None:
    """onednn: a weight scale 2.5% off in the INT8 QDQ model OpenVINO compiles."""
    pytest.importorskip("openvino")
    path, inputs = resnet
    result = convert(path, ConvertConfig(target="onednn"))
    names = [s.name for s in result.snapshots]
    at = names.index("quantize")
    prev = runnable_model(result.snapshots[at - 1].graph, fake_quant=True)
    graph = result.snapshots[at].graph.copy()
    conv = next(n for n in graph.nodes if n.name == "stage3.block1.conv1")
    weight_dq = next(n for n in graph.nodes if n.outputs[0] == conv.inputs[1])
    graph.initializers[weight_dq.inputs[1]] = graph.initializers[weight_dq.inputs[1]] * 1.025
    cur = runnable_model(graph, fake_quant=False)
    found = find_int8_drift(prev, cur, inputs.feeds, Runner(reference=True),
                            Runner("openvino"), graph)
    assert found.first is not None and found.first.op_id == conv.id, found
    clean = runnable_model(result.snapshots[at].graph, fake_quant=False)
    held = find_int8_drift(prev, clean, inputs.feeds, Runner(reference=True),
                           Runner("openvino"), result.snapshots[at].graph)
    assert held.first is None and held.pinned > 0


def test_reference_values_off_the_int8_grid_are_a_finding() -> None:
    point = IntPoint("x_quantized", "x", (np.array(0.1, np.float32), np.array(0, np.uint8), 1),
                     np.dtype(np.uint8))
    on_grid = (np.array([0, 3, 255], np.float32) * np.float32(0.1)).astype(np.float32)
    ints, off = point.integers(on_grid)
    assert off == 0 and ints.tolist() == [0, 3, 255]
    assert point.integers(np.array([0.15, -0.1, 26.0], np.float32))[1] == 3


def test_one_step_flips_at_ties_are_rounding_on_any_share() -> None:
    """PP-OCRv5 rec ort-u8 on OpenVINO: a HardSwish gate x + 3 at scale 0.023529414, where x
    is 0, is 127.49999 steps: ONNX Runtime (the reference) gives 127, OpenVINO 128, on 1.67 %
    of the gate's values. Those are ties; the same share of one-step moves off a tie is a
    finding."""
    scale = np.array(0.023529414, np.float32)
    point = IntPoint("g_quantized", "g", (scale, np.array(0, np.uint8), 1), np.dtype(np.uint8))
    rng = np.random.default_rng(0)
    unrounded = rng.uniform(0.5, 5.5, 1000).astype(np.float32)
    unrounded[:50] = 3.0  # 5 % of the values: the gate of a zero input
    pinned = np.rint(unrounded / scale).astype(np.uint8)
    pinned[:50] = 127  # ONNX Runtime's QuantizeLinear
    computed = pinned.copy()
    computed[:50] = 128
    reference = point.dequantize(pinned)

    at_ties = _PointStats()
    at_ties.add(computed, pinned, 0, point, reference, unrounded)
    assert at_ties.flips() == 50

    off_ties = _PointStats()
    moved = unrounded.copy()
    moved[:50] = 2.99  # 127.07 steps: 128 is a wrong answer there
    pinned_off = np.rint(moved / scale).astype(np.uint8)
    off_ties.add(computed, pinned_off, 0, point, point.dequantize(pinned_off), moved)
    assert off_ties.flips() is None
    assert "50 of 1000 values differ, by up to 1 steps" in off_ties.finding()


@pytest.mark.parametrize("holds_on_the_source", [True, False])
def test_an_int8_pass_is_searched_again_on_the_sources_values(monkeypatch,
                                                              holds_on_the_source) -> None:
    """After an INT8 snapshot, an op failing against it (the engine compiled the new graph
    and rounded a tie the other way: OpenVINO after cleanup on PP-OCRv5 rec) is searched
    again on the last fake-quant snapshot's values; the pass holds when every op computes
    the source's op there, and drifts at the first op when one does not."""
    import qcore.verify as verify_module
    from qcore.verify import PassCheck, _Checker
    from qcore.verify_int8 import PinnedResult
    from qcore.verify_report import VerifyReport
    from qcore.verify_search import DriftingOp

    fake_quant, int8_before, current = onnx.ModelProto(), onnx.ModelProto(), onnx.ModelProto()
    gate = DriftingOp(809, "Add", "Add", "gate (quantized)", 0.999999, 0.0039)
    conv = DriftingOp(12, "Conv", "conv", "conv (quantized)", 0.99, 0.2)
    answers = {id(int8_before): PinnedResult(pinned=3, first=gate),
               id(fake_quant): PinnedResult(pinned=3, flips=7, first_flip="Add(809)")
               if holds_on_the_source else PinnedResult(pinned=3, first=conv)}
    monkeypatch.setattr(verify_module, "find_int8_drift",
                        lambda prev, *args, **kwargs: answers[id(prev)])
    report = VerifyReport("m.onnx", "onednn", "openvino", "x", False, 1, Tolerance())
    check = _Checker(report, [], Runner(reference=True), Runner(), None)
    check.last_qdq = (fake_quant, [], check.reference)
    check.prev = (int8_before, [], check.int8_runner)
    row = PassCheck(14, "cleanup", Stage.INT8, Status.DRIFT, reason="free-running drift")

    class Snap:
        graph = None

    assert check._search_pinned(row, Snap(), current, check.int8_runner)
    if holds_on_the_source:
        assert row.status == Status.ROUNDING and row.flips == 7
        assert "on the source's quantized inputs" in row.reason
        assert "Add(809) differs, by the engine's rounding" in row.reason
    else:
        assert row.status == Status.DRIFT and row.first_op == gate
