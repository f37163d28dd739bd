"""`qcore verify`: every pass holds on good models; a planted bug is caught at its pass and op."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from skimage import data as photos_data
from skimage.transform import resize

from devtools import modelgen
from qcore.bench.inputs import InputSet
from qcore.cli import main
from qcore.config import ConvertConfig
from qcore.convert import convert
from qcore.passes.base import Cancelled
from qcore.passes.compute_weight_scales import ComputeWeightScales
from qcore.passes.quantize import Quantize
from qcore.passes.remove_identity import RemoveIdentity
from qcore.passes.squash import Squash
from qcore.verify import (
    Bound,
    Diff,
    Runner,
    Stage,
    Status,
    Tolerance,
    compare_runs,
    int8_allowance,
    runnable_model,
    verify,
)

# Shipped inside scikit-image (no download); the last four are the verify inputs.
PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "camera", "immunohistochemistry",
          "hubble_deep_field", "retina", "colorwheel", "coins")
MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)


def photo_feeds(names: tuple[str, ...], size: int = 32) -> list[dict[str, np.ndarray]]:
    """scikit-image's photos as ImageNet-normalised [1, 3, size, size] ``image`` feeds."""
    feeds = []
    for name in names:
        image = getattr(photos_data, name)()
        if image.ndim == 2:
            image = np.stack([image] * 3, axis=-1)
        small = resize(image[..., :3], (size, size), anti_aliasing=True).astype(np.float32)
        chw = ((small - MEAN) / STD).transpose(2, 0, 1)[None]
        feeds.append({"image": np.ascontiguousarray(chw, dtype=np.float32)})
    return feeds


def _photo_cnn(folder: Path, photos: tuple[str, ...]) -> Path:
    model = modelgen.quantize_qdq(modelgen.cnn(seed=1), calibration=photo_feeds(photos))
    path = folder / "cnn1_qdq.onnx"
    onnx.save(model, path)
    return path


@pytest.fixture(scope="module")
def photo_cnn(tmp_path_factory) -> Path:
    """modelgen's CNN (seed 1) calibrated on all ten photos (the inputs are in range)."""
    return _photo_cnn(tmp_path_factory.mktemp("verify"), PHOTOS)


@pytest.fixture(scope="module")
def photo_inputs(tmp_path_factory) -> Path:
    """Four other photos as the .npz `--inputs` takes (a list of samples)."""
    path = tmp_path_factory.mktemp("verify_inputs") / "photos.npz"
    images = np.stack([f["image"] for f in photo_feeds(PHOTOS[6:])])
    np.savez(path, image=images)
    return path


def _holds(report) -> None:
    assert report.ok, [(r.name, r.status, r.reason) for r in report.rows]
    assert [r.status for r in report.rows] == [Status.OK] * len(report.rows)
    assert report.rows[0].name == "quant_orig" and report.rows[-1].name == "cleanup"
    assert {r.stage for r in report.rows[-3:]} == {Stage.INT8}


def test_runnable_snapshot_needs_the_fake_quant_to_compute_the_source(samples) -> None:
    result = convert(samples / "cnn_qdq.onnx")
    snap = next(s for s in result.snapshots if s.name == "propagate_scales")
    feeds = photo_feeds(PHOTOS[:1])
    reference = Runner(reference=True)  # ORT's optimizations would run the QDQ model as INT8

    def output(model: onnx.ModelProto) -> np.ndarray:
        return reference.run(model, feeds)[0]["logits"]

    source = output(onnx.load(samples / "cnn_qdq.onnx"))
    with_fq = output(runnable_model(snap.graph, fake_quant=True))
    without = output(runnable_model(snap.graph, fake_quant=False))
    assert np.max(np.abs(with_fq - source)) <= 1e-3 * np.max(np.abs(source))
    assert np.max(np.abs(without - source)) > 1e-3 * np.max(np.abs(source))


@pytest.mark.parametrize("target", ["onnxruntime", "onednn"])
def test_every_pass_holds_on_the_cnn_sample(samples, target) -> None:
    inputs = InputSet(photo_feeds(PHOTOS[:4]), "photos")
    report = verify(samples / "cnn_qdq.onnx", ConvertConfig(target=target), inputs)
    _holds(report)
    assert not report.generated and report.samples == 4
    assert report.engine == ("openvino" if target == "onednn" else "onnxruntime")
    assert report.engine_vs_source is not None and report.rows[-1].vs_engine is not None


def test_every_pass_holds_with_ops_kept_fp32(samples) -> None:
    config = ConvertConfig(op_ids_to_skip=[23, 30])
    _holds(verify(samples / "cnn_qdq.onnx", config, InputSet(photo_feeds(PHOTOS[:2]), "p")))


def test_every_pass_holds_on_the_transformer_sample(samples) -> None:
    _holds(verify(samples / "transformer_qdq.onnx"))


def test_transformer_drift_names_the_fused_bias_add(samples) -> None:
    report = verify(samples / "transformer_qdq.onnx")
    failed = report.failed
    if failed is None:
        pytest.skip("fuse_matmul_bias keeps the source's function now")
    assert failed.name == "fuse_matmul_bias" and failed.status == Status.DRIFT
    assert failed.first_op is not None and failed.first_op.op_type == "Add"
    assert "fused into MatMul" in failed.first_op.note
    assert all(r.status == Status.SKIPPED for r in report.rows[report.rows.index(failed) + 1:])


@pytest.mark.parametrize("target", ["onnxruntime", "onednn"])
def test_every_pass_holds_on_a_cnn_calibrated_on_photos(photo_cnn, photo_inputs, target,
                                                        ) -> None:
    report = verify(photo_cnn, ConvertConfig(target=target), photo_inputs)
    _holds(report)
    assert report.inputs == str(photo_inputs) and report.samples == 4


def test_onednn_keeps_the_output_clamp_on_inputs_outside_the_calibration(
        photo_inputs, tmp_path) -> None:
    model = _photo_cnn(tmp_path, PHOTOS[:6])
    _holds(verify(model, ConvertConfig(target="onednn"), photo_inputs))


def test_int8_on_openvino_holds(photo_cnn, photo_inputs) -> None:
    pytest.importorskip("openvino")
    report = verify(photo_cnn, ConvertConfig(target="onednn"), photo_inputs, engine="openvino")
    _holds(report)
    assert report.rows[-1].engine == "openvino" and report.rows[0].engine == "onnxruntime"


def _op_id(graph, name: str) -> int:
    return next(n.id for n in graph.nodes if n.name == name)


def test_a_scaled_weight_is_caught_at_its_pass_and_op(photo_cnn, photo_inputs,
                                                      monkeypatch) -> None:
    original = ComputeWeightScales.apply
    planted: list[int] = []

    def scale_one_weight(self, ctx):
        result = original(self, ctx)
        conv = next(n for n in ctx.graph.nodes if n.name == "res.a1.conv")
        ctx.graph.initializers[conv.inputs[1]] = ctx.graph.initializers[conv.inputs[1]] * 1.5
        planted.append(conv.id)
        return result

    monkeypatch.setattr(ComputeWeightScales, "apply", scale_one_weight)
    report = verify(photo_cnn, ConvertConfig(), photo_inputs)
    failed = report.failed
    assert failed is not None and failed.name == "compute_weight_scales"
    assert failed.status == Status.DRIFT and failed.vs_previous.cosine < 1.0
    assert failed.first_op is not None and failed.first_op.op_id == planted[0]
    assert failed.first_op.name == "res.a1.conv" and failed.first_op.op_type == "Conv"
    assert all(r.status == Status.OK for r in report.rows[:report.rows.index(failed)])


@pytest.mark.parametrize("factor", [1 + 1e-5, 1.001])
def test_float_rounding_holds_and_a_small_change_drifts(photo_cnn, photo_inputs, monkeypatch,
                                                        factor) -> None:
    """With a bound no drift meets, the op search decides: one weight changed at float
    rounding level (1e-5) holds, as rounding flips at quantizer ties; changed by 0.1%, its op
    is named."""
    original = ComputeWeightScales.apply

    def nudge_one_weight(self, ctx):
        result = original(self, ctx)
        conv = next(n for n in ctx.graph.nodes if n.name == "res.a1.conv")
        weight = ctx.graph.initializers[conv.inputs[1]]
        ctx.graph.initializers[conv.inputs[1]] = (weight * np.float32(factor)).astype(np.float32)
        return result

    monkeypatch.setattr(ComputeWeightScales, "apply", nudge_one_weight)
    strict = Tolerance(Bound(1 - 1e-12, 0.0), Bound(0.999, 0.05))
    report = verify(photo_cnn, ConvertConfig(), photo_inputs, tolerance=strict)
    row = next(r for r in report.rows if r.name == "compute_weight_scales")
    if factor < 1.0001:
        assert row.status == Status.ROUNDING and row.flips > 0, row.reason
        assert row.first_op is None and report.ok
    else:
        assert row.status == Status.DRIFT and row.first_op is not None
        assert row.first_op.name == "res.a1.conv"


def test_a_dropped_op_is_named(photo_cnn, photo_inputs, monkeypatch) -> None:
    original = RemoveIdentity.apply
    dropped: list[int] = []

    def drop_residual_add(self, ctx):
        result = original(self, ctx)
        g = ctx.graph
        add = next(n for n in g.nodes if n.name == "res.add")
        g.remove_nodes([add])
        g.replace_input(add.outputs[0], add.inputs[0])
        dropped.append(add.id)
        return result

    monkeypatch.setattr(RemoveIdentity, "apply", drop_residual_add)
    failed = verify(photo_cnn, ConvertConfig(), photo_inputs).failed
    assert failed is not None and failed.name == "remove_identity"
    assert failed.first_op is not None and failed.first_op.op_id == dropped[0]
    assert "removed" in failed.first_op.note


def plant_weight_scale(monkeypatch: pytest.MonkeyPatch, pass_type: type, conv_name: str,
                       factor: float = 1.5) -> list[int]:
    """After ``pass_type`` runs, the QLinearConv ``conv_name`` has its weight scale ``factor``
    times (1.5x: a plain INT8 error; its requantization is that much off). Returns the list
    the planted op's id is put in."""
    original = pass_type.apply
    planted: list[int] = []

    def wrong_weight_scale(self, ctx):
        result = original(self, ctx)
        g = ctx.graph
        conv = next(n for n in g.nodes if n.op_type == "QLinearConv" and n.name == conv_name)
        g.initializers[conv.inputs[4]] = (g.initializers[conv.inputs[4]]
                                          * np.float32(factor)).astype(np.float32)
        planted.append(conv.id)
        return result

    monkeypatch.setattr(pass_type, "apply", wrong_weight_scale)
    return planted


def test_an_int8_bug_is_caught_after_quantize(photo_cnn, photo_inputs,
                                              monkeypatch) -> None:
    planted = plant_weight_scale(monkeypatch, Squash, "res.a2.conv")
    report = verify(photo_cnn, ConvertConfig(), photo_inputs)
    failed = report.failed
    assert failed is not None and failed.name == "squash" and failed.stage == Stage.INT8
    assert failed.first_op is not None and failed.first_op.op_id == planted[0]
    assert report.rows[-1].status == Status.SKIPPED


# ---- INT8 against the engine running the source --------------------------------------------
@pytest.fixture(scope="module")
def photo_resnet(tmp_path_factory) -> tuple[Path, InputSet]:
    """A ResNet-shaped net on 64-pixel photos, calibrated on six, run on the other four:
    ONNX Runtime's integer kernels round it differently from float fake-quant."""
    size = 64
    fp32 = modelgen.resnet_like(seed=2, image=size, classes=10, blocks=(2, 2, 2, 2), width=16)
    path = tmp_path_factory.mktemp("verify_resnet") / "resnet_qdq.onnx"
    onnx.save(modelgen.quantize_qdq(fp32, calibration=photo_feeds(PHOTOS[:6], size)), path)
    return path, InputSet(photo_feeds(PHOTOS[6:], size), "photos")


#: Tighter than ONNX Runtime's own rounding on the ResNet (cosine about 0.99995).
STRICT_INT8 = Tolerance(int8=Bound(0.99999, 1e-3))


def _ort_default(path: Path, feeds: list[dict[str, np.ndarray]]) -> list[dict[str, np.ndarray]]:
    """ONNX Runtime as a user runs the file: default session options."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return [dict(zip(names, session.run(None, feed), strict=True)) for feed in feeds]


def test_int8_off_the_fake_quant_only_by_the_engines_rounding_holds(photo_resnet) -> None:
    path, inputs = photo_resnet
    report = verify(path, ConvertConfig(), inputs, tolerance=STRICT_INT8)
    assert report.ok, report.failed
    row = next(r for r in report.rows if r.name == "quantize")
    assert row.vs_source is not None and row.vs_engine is not None
    assert not STRICT_INT8.int8.holds(row.vs_source)  # beyond the bound of the fake-quant
    assert row.status == Status.ROUNDING, row.reason
    assert STRICT_INT8.int8.holds(row.vs_engine)
    assert "agrees with onnxruntime running the source QDQ model" in row.reason
    # checked against ONNX Runtime itself, with its default options, on the source file
    reference = Runner(reference=True).run(onnx.load(path), inputs.feeds)
    ort_on_source = compare_runs(reference, _ort_default(path, inputs.feeds))
    assert report.engine_vs_source is not None
    assert report.engine_vs_source.cosine == pytest.approx(ort_on_source.cosine, abs=1e-9)
    assert ort_on_source.cosine < STRICT_INT8.int8.min_cosine
    assert row.vs_source.cosine == pytest.approx(ort_on_source.cosine, abs=1e-6)
    assert all(r.status == Status.OK for r in report.rows if r.stage == Stage.QDQ)


@pytest.mark.parametrize(("int8", "engine", "holds"), [
    # PP-OCRv4 rec ort-u8 on OpenVINO: INT8 and the engine about as far from the fake-quant
    (Diff(0.998514, 1.0, 0.151), Diff(0.998419, 1.0, 0.143), True),
    (Diff(0.9970, 1.0, 0.151), Diff(0.998419, 1.0, 0.143), False),  # twice as far: drift
    (Diff(0.9990, 1.0, 0.30), Diff(0.9990, 1.0, 0.05), False),  # max error 6x the engine's
    # YOLOv8n NNCF: OpenVINO on the source is off by 0.017, INT8 much closer to the source
    (Diff(0.999953, 1.0, 0.064), Diff(0.983135, 1.0, 0.410), True),
    # an engine computing another function widens the bound only down to cosine 0.99
    (Diff(0.985, 1.0, 0.2), Diff(0.0099, 1.0, 1.0), False),
    (Diff(0.995, 1.0, 0.2), Diff(0.0099, 1.0, 1.0), True),
])
def test_the_engine_allowance_is_a_margin_on_its_own_distance(int8, engine, holds) -> None:
    tolerance = Tolerance()
    allowance = int8_allowance(tolerance.int8, engine, tolerance)
    assert allowance is not None and allowance.holds(int8) == holds
    assert tolerance.engine_floor <= allowance.min_cosine <= tolerance.int8.min_cosine
    assert allowance.max_error >= tolerance.int8.max_error
    assert int8_allowance(tolerance.int8, None, tolerance) is None


def test_a_real_int8_error_at_quantize_fails_against_both_references(photo_resnet,
                                                                     monkeypatch) -> None:
    path, inputs = photo_resnet
    planted = plant_weight_scale(monkeypatch, Quantize, "stage2.block0.conv2")
    report = verify(path, ConvertConfig(), inputs)
    failed = report.failed
    assert failed is not None and failed.name == "quantize", failed
    assert failed.status == Status.DRIFT and failed.stage == Stage.INT8
    assert failed.first_op is not None and failed.first_op.op_id == planted[0]
    assert failed.first_op.name == "stage2.block0.conv2"
    assert failed.vs_engine is not None and not Tolerance().int8.holds(failed.vs_engine)
    assert "against the snapshot before (fake-quant)" in failed.reason
    assert "against onnxruntime running the source QDQ model" in failed.reason
    assert all(r.status == Status.OK for r in report.rows[:report.rows.index(failed)])


def test_cancel_stops_between_snapshots(samples) -> None:
    seen: list[str] = []
    with pytest.raises(Cancelled):
        verify(samples / "cnn_qdq.onnx", progress=lambda done, total, name: seen.append(name),
               cancelled=lambda: "remove_fake_ops" in seen)
    assert seen[:2] == ["source", "quant_orig"] and seen[-1] == "remove_fake_ops"


# ---- the command line ----------------------------------------------------------------------
def test_cli_prints_a_row_per_pass_and_exits_0(photo_cnn, photo_inputs, tmp_path,
                                               capsys) -> None:
    out = tmp_path / "verify.json"
    fp32 = tmp_path / "fp32.onnx"
    onnx.save(modelgen.cnn(seed=1), fp32)
    code = main(["verify", str(photo_cnn), "--inputs", str(photo_inputs), "--float-model",
                 str(fp32), "--json", str(out)])
    printed = capsys.readouterr().out
    assert code == 0, printed
    rows = [line for line in printed.splitlines() if line.split()[:1] and
            (line.split()[0].isdigit() or line.split()[0] == "--")]
    assert len(rows) == len(convert(photo_cnn).snapshots)
    assert "cos float" in printed and "verdict: every pass holds" in printed
    assert "cos engine" in printed and "onnxruntime on the source QDQ model" in printed
    assert "generated" not in printed
    saved = json.loads(out.read_text())
    assert saved["rows"][-1]["name"] == "cleanup" and saved["rows"][-1]["status"] == "ok"
    assert saved["rows"][-1]["vs_float"]["cosine"] > 0.99
    assert saved["rows"][-1]["vs_engine"]["cosine"] > 0.999
    assert saved["engine_vs_source"]["cosine"] > 0.999 and saved["rows"][0]["vs_engine"] is None


def test_cli_labels_generated_inputs(samples, capsys) -> None:
    assert main(["verify", str(samples / "cnn_qdq.onnx"), "--samples", "2"]) == 0
    assert "generated N(0, 1) data, not real inputs" in capsys.readouterr().out


def test_cli_exits_1_naming_the_pass_and_op(photo_cnn, photo_inputs, monkeypatch,
                                            capsys) -> None:
    original = ComputeWeightScales.apply

    def scale_one_weight(self, ctx):
        result = original(self, ctx)
        conv = next(n for n in ctx.graph.nodes if n.name == "res.a1.conv")
        ctx.graph.initializers[conv.inputs[1]] = ctx.graph.initializers[conv.inputs[1]] * 1.5
        return result

    monkeypatch.setattr(ComputeWeightScales, "apply", scale_one_weight)
    code = main(["verify", str(photo_cnn), "--inputs", str(photo_inputs)])
    verdict = capsys.readouterr().out.strip().splitlines()[-1]
    assert code == 1
    assert verdict.startswith("verdict: DRIFT at pass 08 compute_weight_scales")
    assert "'res.a1.conv'" in verdict


@pytest.mark.parametrize("make_args", [
    lambda tmp, s: ["verify", str(tmp / "missing.onnx")],
    lambda tmp, s: ["verify", str(tmp / "not_onnx.onnx")],
    lambda tmp, s: ["verify", str(s / "cnn_qdq.onnx"), "--inputs", str(tmp / "wrong.npz")],
    lambda tmp, s: ["verify", str(s / "cnn_qdq.onnx"), "--min-cosine", "1.5"],
    lambda tmp, s: ["verify", str(s / "cnn_qdq.onnx"), "--engine", "tensorrt"],
    lambda tmp, s: ["verify", str(s / "cnn_qdq.onnx"), "--engine", "openvino", "--target",
                    "onnxruntime"],
    lambda tmp, s: ["verify", str(s / "cnn_fp32.onnx")],
])
def test_cli_bad_input_exits_2(samples, tmp_path, capsys, make_args) -> None:
    (tmp_path / "not_onnx.onnx").write_text("hello")
    np.savez(tmp_path / "wrong.npz", pixels=np.zeros((1, 3, 32, 32), np.float32))
    assert main(make_args(tmp_path, samples)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("qcore: error: ")
