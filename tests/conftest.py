"""Shared fixtures: sample models and quant models made on the fly with ONNX Runtime."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import helper, numpy_helper

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # devtools/ (modelgen) is not installed; plain `pytest` needs this
    sys.path.insert(0, str(ROOT))
SAMPLES = ROOT / "resources" / "samples"


def run_model(model, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    """Run a ModelProto or path on ONNX Runtime's CPU provider, one thread."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    data = model if isinstance(model, str | Path) else model.SerializeToString()
    session = ort.InferenceSession(str(data) if isinstance(data, Path) else data, opts,
                                   providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def checked_model(nodes: list, name: str, inputs: list, outputs: list, inits: list,
                  opset: int = 13) -> onnx.ModelProto:
    """``nodes`` as an ONNX model (IR 8, the default opset at ``opset``), fully checked."""
    graph = helper.make_graph(nodes, name, inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


def int8_weight(value: np.ndarray, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``value`` quantized symmetric int8 per channel on ``axis``: (codes, scales)."""
    moved = np.moveaxis(value, axis, 0)
    scale = (np.abs(moved).reshape(moved.shape[0], -1).max(1) / 127).astype(np.float32)
    shape = [1] * value.ndim
    shape[axis] = -1
    return np.clip(np.rint(value / scale.reshape(shape)), -127, 127).astype(np.int8), scale


def conv_stem(rng: np.random.Generator, channels: int, weight_std: float,
              image_scale: float) -> tuple[list, list]:
    """(initializers, nodes) of ``image`` (3 channels) -> Q/DQ (int8, ``image_scale``) -> a
    3x3 Conv (``channels`` outputs, weights drawn from ``rng``, int8 per channel, pads 1)
    named ``conv`` writing ``conv``."""
    weight = (rng.standard_normal((channels, 3, 3, 3)) * weight_std).astype(np.float32)
    wq, ws = int8_weight(weight)
    inits = [numpy_helper.from_array(v, n) for n, v in (
        ("wq", wq), ("ws", ws), ("wz", np.zeros(channels, np.int8)),
        ("xs", np.float32(image_scale)), ("xz", np.int8(0)))]
    nodes = [
        helper.make_node("QuantizeLinear", ["image", "xs", "xz"], ["xq"]),
        helper.make_node("DequantizeLinear", ["xq", "xs", "xz"], ["xd"]),
        helper.make_node("DequantizeLinear", ["wq", "ws", "wz"], ["w"], axis=0),
        helper.make_node("Conv", ["xd", "w"], ["conv"], pads=[1, 1, 1, 1], name="conv"),
    ]
    return inits, nodes


def probe_peak(model: onnx.ModelProto, tensor: str, feeds: list[dict]) -> float:
    """The largest magnitude ``tensor`` of ``model`` takes on ``feeds`` (ONNX Runtime)."""
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    probe.graph.output.append(helper.make_empty_tensor_value_info(tensor))
    return max(float(np.abs(run_model(probe, f)[-1]).max()) for f in feeds)


def compile_openvino(model: onnx.ModelProto, path: Path):
    """``model`` saved at ``path`` and compiled on OpenVINO's CPU plugin (1 thread, f32
    hint); the test is skipped without OpenVINO."""
    pytest.importorskip("openvino")
    from qcore.bench.openvino_engine import shared_core  # one Core per process: see there

    onnx.save(model, str(path))
    return shared_core().compile_model(str(path), "CPU", {"INFERENCE_NUM_THREADS": 1,
                                                         "INFERENCE_PRECISION_HINT": "f32"})


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-30))


@pytest.fixture(scope="session")
def samples() -> Path:
    return SAMPLES


@pytest.fixture
def messages(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Qt message boxes are recorded instead of blocking the test (app tests)."""
    from PySide6.QtWidgets import QMessageBox

    shown: list[tuple[str, str]] = []

    def record(_parent, title, text, *args, **kwargs):
        shown.append((title, text))
        return QMessageBox.StandardButton.Ok

    for name in ("critical", "warning", "information", "question"):
        monkeypatch.setattr(QMessageBox, name, staticmethod(record))
    return shown


POOR_SCALE_TENSOR = "res.a1.relu"  # output of the CNN's residual-branch conv


@pytest.fixture(scope="session")
def planted(tmp_path_factory) -> Path:
    """The CNN quantized normally, then the scale of ``POOR_SCALE_TENSOR`` made 20x too small:
    a model with one op known to hurt accuracy badly (for the advisor's tests)."""
    import onnx

    from devtools import modelgen

    quant = modelgen.quantize_qdq(modelgen.cnn(seed=1))
    scale = next(i for i in quant.graph.initializer if i.name == f"{POOR_SCALE_TENSOR}_scale")
    value = onnx.numpy_helper.to_array(scale) / 20
    scale.CopyFrom(onnx.numpy_helper.from_array(value.astype(np.float32), scale.name))
    path = tmp_path_factory.mktemp("planted") / "planted.onnx"
    onnx.save(quant, str(path))
    return path


@pytest.fixture
def silent_dot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A Graphviz that never answers: every layout stays "running" until cancelled."""
    silent = tmp_path / "dot"
    silent.write_text("#!/bin/sh\nexec tail -f /dev/null\n")
    silent.chmod(0o755)
    from qcore import render

    monkeypatch.setattr(render, "find_dot", lambda: str(silent))


@pytest.fixture
def make_window(qtbot, tmp_path: Path):
    """Makes shown main windows whose settings live in ``tmp_path`` (app tests); a window
    made again in the same test reads the settings the first one left."""
    from PySide6.QtCore import QSettings

    from app.main_window import MainWindow
    from app.settings import AppSettings

    def make() -> MainWindow:
        settings = AppSettings(QSettings(str(tmp_path / "settings.ini"),
                                         QSettings.Format.IniFormat))
        window = MainWindow(settings)
        qtbot.addWidget(window)
        window.show()
        return window

    return make


@pytest.fixture
def sample_window(qtbot, make_window, messages: list):
    """A main window with the bundled CNN sample open and its first pass drawn (skips
    without Graphviz, which the graph view lays out with)."""
    from qcore import render

    if render.find_dot() is None:
        pytest.skip("Graphviz 'dot' is not installed: the graph view cannot lay out")
    win = make_window()
    with qtbot.waitSignals([win.job_finished, win.graph_panel.snapshot_shown], timeout=60000):
        win.open_model(SAMPLES / "cnn_qdq.onnx")
    yield win
    win.close()


def photos(size: int = 48) -> list[dict[str, np.ndarray]]:
    """Six scikit-image photos, resized and normalised like ImageNet inputs."""
    data = pytest.importorskip("skimage.data")
    from skimage.transform import resize

    feeds = []
    for name in ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "cat"):
        image = resize(getattr(data, name)(), (size, size), anti_aliasing=True)
        image = ((image.astype(np.float32) - 0.45) / 0.225).transpose(2, 0, 1)[None]
        feeds.append({"image": np.ascontiguousarray(image, np.float32)})
    return feeds


def quick_ort_benchmark(bench) -> None:
    """The Benchmark panel set to its quickest run: ONNX Runtime only, no onednn model, no
    per-tensor error, 2 measured runs and no warm-up."""
    bench.engine_boxes["openvino"].setChecked(False)
    bench.model_boxes["int8-onednn"].setChecked(False)
    bench.per_tensor.setChecked(False)
    bench.iters.setValue(2)
    bench.warmup.setValue(0)
