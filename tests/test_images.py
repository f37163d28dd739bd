"""Images as real inputs: a folder of photos, preprocessed by a preset, fed to the model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from PIL import Image
from skimage import data as photos

from qcore.bench.images import PRESETS, load_image_folder, preprocess, write_image_inputs
from qcore.bench.inputs import InputError, load_inputs, model_inputs

ROOT = Path(__file__).resolve().parents[1]
CNN = ROOT / "resources" / "samples" / "cnn_qdq.onnx"  # input image: [batch, 3, 32, 32]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("photos")
    for name in ("astronaut", "coffee", "chelsea", "rocket"):
        Image.fromarray(getattr(photos, name)()).save(out / f"{name}.png")
    (out / "notes.txt").write_text("not an image")  # ignored: not an image suffix
    return out


def test_a_folder_becomes_one_batch_for_the_image_input(folder: Path) -> None:
    feeds = load_image_folder(folder, CNN, PRESETS["imagenet"])
    assert list(feeds) == ["image"]
    batch = feeds["image"]
    assert batch.shape == (4, 3, 32, 32) and batch.dtype == np.float32
    assert np.isfinite(batch).all() and batch.std() > 0.3  # real photos, normalised


def test_imagenet_preset_is_resize_crop_then_mean_std(folder: Path) -> None:
    coffee = photos.coffee()  # 400 x 600: the short side goes to 32, then a centre crop
    resized = Image.fromarray(coffee).resize((48, 32), Image.Resampling.BILINEAR)
    crop = np.asarray(resized, np.float32)[:, 8:40] / 255
    expected = ((crop - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]).transpose(2, 0, 1)
    got = preprocess(folder / "coffee.png", PRESETS["imagenet"], (32, 32))
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_paddleocr_preset_is_bgr_and_stretched(folder: Path) -> None:
    got = preprocess(folder / "rocket.png", PRESETS["paddleocr"], (48, 320))
    rgb = np.asarray(Image.fromarray(photos.rocket()).resize((320, 48),
                                                              Image.Resampling.BILINEAR))
    expected = ((rgb[..., ::-1].astype(np.float32) / 255 - 0.5) / 0.5).transpose(2, 0, 1)
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_the_npz_is_what_inputs_takes(folder: Path, tmp_path: Path) -> None:
    path = write_image_inputs(folder, CNN, PRESETS["unit"], tmp_path / "photos.npz")
    loaded = load_inputs(path, model_inputs(CNN))
    assert len(loaded.feeds) == 4 and loaded.feeds[0]["image"].shape == (1, 3, 32, 32)


def test_nhwc_models_get_nhwc_batches(folder: Path, tmp_path: Path) -> None:
    x = helper.make_tensor_value_info("pixels", TensorProto.FLOAT, ["n", 20, 30, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 20, 30, 3])
    model = helper.make_model(helper.make_graph([helper.make_node("Relu", ["pixels"], ["y"])],
                                                "nhwc", [x], [y]))
    onnx.save(model, tmp_path / "nhwc.onnx")
    batch = load_image_folder(folder, tmp_path / "nhwc.onnx", PRESETS["unit"])["pixels"]
    assert batch.shape == (4, 20, 30, 3) and batch.min() >= 0 and batch.max() <= 1


def test_bad_folders_and_models_are_refused_in_words(folder: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no image files"):
        load_image_folder(tmp_path, CNN, PRESETS["unit"])
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(InputError, match="broken.png: not an image"):
        load_image_folder(tmp_path, CNN, PRESETS["unit"])
    transformer = ROOT / "resources" / "samples" / "transformer_qdq.onnx"
    with pytest.raises(InputError, match="one 4-D float input"):
        load_image_folder(folder, transformer, PRESETS["unit"])
