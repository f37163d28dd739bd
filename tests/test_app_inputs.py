"""Real inputs in the app: the Benchmark tab's Inputs row (generated, data file, image folder
with a preset), remembered per model, used by the benchmark, the accuracy tab and the
advisor; numbers computed on generated data say so."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from pathlib import Path

import pytest
from conftest import quick_ort_benchmark
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog
from skimage import data as photos

from app.headless.input_source import GENERATED_WARNING, InputSource
from app.main_window import MainWindow
from qcore.bench.images import PRESETS, write_image_inputs

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "resources" / "samples" / "cnn_qdq.onnx"
TIMEOUT = 120000


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("photos")
    for name in ("astronaut", "coffee", "chelsea"):
        Image.fromarray(getattr(photos, name)()).save(out / f"{name}.png")
    return out


@pytest.fixture
def window(qtbot, make_window, messages: list) -> MainWindow:
    win = make_window()
    with qtbot.waitSignal(win.job_finished, timeout=TIMEOUT):
        win.open_model(SAMPLE)
    quick_ort_benchmark(win.results.bench)
    yield win
    win.close()


def _bench(qtbot, window: MainWindow) -> dict[tuple[str, str], float]:
    with qtbot.waitSignal(window.job_finished, timeout=TIMEOUT) as blocker:
        window.runs.benchmark()
    assert blocker.args == ["benchmark", True]
    report = window.results.report
    return {(a.test, o.name): o.cosine for a in report.accuracy for o in a.outputs}


def test_source_json_round_trip_and_stale_sources(folder: Path, tmp_path: Path) -> None:
    source = InputSource("images", str(folder), "imagenet")
    assert InputSource.from_json(source.to_json()) == source
    assert InputSource.from_json(InputSource("file", str(tmp_path / "gone.npz")).to_json()) \
        == InputSource()  # a file that is gone: back to generated data
    assert InputSource.from_json("{not json") == InputSource()
    assert source.label() == f"images in {folder.name}/ (imagenet)"


def test_generated_inputs_are_labelled_as_such(qtbot, window: MainWindow) -> None:
    assert window.session.inputs.generated
    _bench(qtbot, window)
    label = window.results.accuracy.inputs_label
    assert label.text() == GENERATED_WARNING and label.property("warning")


def test_an_image_folder_gives_what_the_equivalent_npz_gives(
        qtbot, window: MainWindow, folder: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    row = window.results.bench.inputs_row
    row.preset.setCurrentIndex(row.preset.findData("imagenet"))
    monkeypatch.setattr(QFileDialog, "getExistingDirectory",
                        staticmethod(lambda *_a, **_k: str(folder)))
    row.kind.setCurrentIndex(row.kind.findData("images"))
    row.kind.activated.emit(row.kind.currentIndex())  # the user picks "Image folder"
    assert window.session.inputs == InputSource("images", str(folder), "imagenet")
    from_images = _bench(qtbot, window)
    label = window.results.accuracy.inputs_label
    assert not label.property("warning") and str(folder) in label.text()
    npz = write_image_inputs(folder, SAMPLE, PRESETS["imagenet"], tmp_path / "same.npz")
    window.session.set_inputs(InputSource("file", str(npz)))
    assert row.kind.currentData() == "file"  # the row follows the session
    from_file = _bench(qtbot, window)
    assert from_images == pytest.approx(from_file, abs=1e-9) and from_images


def test_the_inputs_are_remembered_per_model(qtbot, make_window, folder: Path,
                                             messages: list) -> None:
    window = make_window()
    with qtbot.waitSignal(window.job_finished, timeout=TIMEOUT):
        window.open_model(SAMPLE)
    chosen = InputSource("images", str(folder), "unit")
    window.session.set_inputs(chosen)
    other = ROOT / "resources" / "samples" / "transformer_qdq.onnx"
    with qtbot.waitSignal(window.job_finished, timeout=TIMEOUT):
        window.open_model(other)
    assert window.session.inputs.generated  # another model: its own choice
    window.close()
    again = make_window()
    with qtbot.waitSignal(again.job_finished, timeout=TIMEOUT):
        again.open_model(SAMPLE)
    assert again.session.inputs == chosen
    assert again.results.bench.inputs_row.kind.currentData() == "images"
    again.close()


VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "a", "model", "runs", "in",
         "int8", "and", "is", "fast", "short", "line"]


@pytest.fixture
def token_model(tmp_path: Path) -> Path:
    """A tiny QDQ model over ``input_ids`` / ``attention_mask`` of dynamic length ``seq``."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    inits = [numpy_helper.from_array(np.array(0.1, np.float32), "s"),
             numpy_helper.from_array(np.array(0, np.uint8), "z"),
             numpy_helper.from_array(np.array([1], np.int64), "axes")]
    nodes = [helper.make_node("Cast", ["input_ids"], ["ids"], "cast_ids", to=TensorProto.FLOAT),
             helper.make_node("Cast", ["attention_mask"], ["mask"], "cast_mask",
                              to=TensorProto.FLOAT),
             helper.make_node("Mul", ["ids", "mask"], ["masked"], "mul"),
             helper.make_node("QuantizeLinear", ["masked", "s", "z"], ["q"], "q"),
             helper.make_node("DequantizeLinear", ["q", "s", "z"], ["dq"], "dq"),
             helper.make_node("Relu", ["dq"], ["relu"], "relu"),
             helper.make_node("ReduceSum", ["relu", "axes"], ["score"], "sum")]
    ins = [helper.make_tensor_value_info(n, TensorProto.INT64, [1, "seq"])
           for n in ("input_ids", "attention_mask")]
    out = helper.make_tensor_value_info("score", TensorProto.FLOAT, [1, 1])
    model = helper.make_model(helper.make_graph(nodes, "tokens", ins, [out], inits),
                              opset_imports=[helper.make_opsetid("", 17)])
    path = tmp_path / "tokens_qdq.onnx"
    onnx.save(model, str(path))
    return path


def test_the_sequence_length_reaches_the_benchmark_and_is_remembered(
        qtbot, make_window, token_model: Path, tmp_path: Path, messages: list,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Text file + tokenizer, then 12 tokens in the length field: the benchmark and the
    accuracy tab are fed [1, 12] (qcore bench --seq-length 12); the field is remembered
    with the model's other input settings and starts at "auto" (qcore's default)."""
    pytest.importorskip("tokenizers")
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    texts = tmp_path / "lines.txt"
    texts.write_text("the model runs in int8\na short line\nthe model is fast\n",
                     encoding="utf-8")
    window = make_window()
    with qtbot.waitSignal(window.job_finished, timeout=TIMEOUT):
        window.open_model(token_model)
    quick_ort_benchmark(window.results.bench)
    row = window.results.bench.inputs_row
    assert row.seq_length.isHidden()  # only for text inputs
    answers = iter([(str(texts), ""), (str(vocab), "")])
    monkeypatch.setattr(QFileDialog, "getOpenFileName",
                        staticmethod(lambda *_a, **_k: next(answers)))
    row.kind.setCurrentIndex(row.kind.findData("text"))
    row.kind.activated.emit(row.kind.currentIndex())  # the user picks "Text file + tokenizer"
    assert row.seq_length.isVisibleTo(row) and row.seq_length.text() == "length: auto"
    assert window.session.inputs.seq_length == 0
    auto = _bench(qtbot, window)
    assert "(3 lines, 7 tokens)" in window.results.report.inputs["source"]  # longest line
    row.seq_length.lineEdit().selectAll()
    qtbot.keyClicks(row.seq_length, "12")
    qtbot.keyClick(row.seq_length, Qt.Key.Key_Return)
    assert window.session.inputs == InputSource("text", str(texts), "imagenet", str(vocab), 12)
    twelve = _bench(qtbot, window)
    report = window.results.report
    assert "(3 lines, 12 tokens)" in report.inputs["source"]
    assert "12 tokens" in window.results.accuracy.inputs_label.text()
    assert auto and twelve  # accuracy was computed on both
    window.close()
    again = make_window()
    with qtbot.waitSignal(again.job_finished, timeout=TIMEOUT):
        again.open_model(token_model)
    assert again.session.inputs.seq_length == 12
    assert again.results.bench.inputs_row.seq_length.value() == 12
    again.close()
