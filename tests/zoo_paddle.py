"""The zoo's Paddle producers: a real model quantized by Paddle's own post-training quantization.

The zoo's PaddleOCR models come as paddle2onnx output, which keeps Paddle's variable and
parameter names. ``to_paddle`` turns such an ONNX graph back into the Paddle ops it was
exported from (hard_swish for paddle2onnx's Add/Clip/Mul/Div expansion, conv2d + a bias
elementwise_add for Conv + Reshape + Add, ...), with the ONNX file's own weights. A script run
in a virtual environment of its own that holds Paddle (``tests/zoo_paddle_ptq.py``, PIR off)
builds that program with ``append_op``, checks nothing itself, saves it as an inference model
and quantizes it with ``paddle.static.quantization.PostTrainingQuantization`` (what PaddleSlim's
``quant_post_static`` wraps, with its defaults) on the zoo's calibration data, in both of
Paddle's formats. ``quantize`` then reads the saved quant program with our own importer
(``qcore.paddle.import_paddle``), which gives the QDQ model the zoo checks.

The venv (``QI_CACHE/paddle-venv``, ``pip install paddlepaddle``) is made on first use; the
Paddle programs are cached by content (float model, calibration data, these two files, the
Paddle version). The import is not cached with them: it is the code under test.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import zoo
from onnx import numpy_helper

PADDLE = "paddlepaddle==3.3.1"
VENV = zoo.CACHE / "paddle-venv"
SCRIPT = Path(__file__).with_name("zoo_paddle_ptq.py")
# producer -> the PTQ output folder the script writes (see zoo_paddle_ptq.FORMATS)
FORMATS = {"paddle-ptq": "onnx_format", "paddle-ptq-legacy": "legacy"}
# The translated float program must compute what ONNX Runtime computes on the ONNX file.
FLOAT_COSINE = 0.9999

Op = dict[str, object]


class PaddleUnavailable(zoo.FetchError):
    """The Paddle venv could not be made, or Paddle failed to build or quantize the model."""


class TranslateError(ValueError):
    """An ONNX node with no Paddle op here."""


# ---------------------------------------------------------------- ONNX -> Paddle ops


def _attrs(node: onnx.NodeProto) -> dict[str, object]:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _constants(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    found = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant":
            found[node.output[0]] = numpy_helper.to_array(_attrs(node)["value"])
    return found


def _shapes(model: onnx.ModelProto) -> dict[str, list[int]]:
    """The shape of every value, from one ONNX Runtime run on zeros (the zoo's models have
    fixed input shapes; shape inference cannot follow paddle2onnx's Shape/Slice/Concat)."""
    import onnxruntime as ort

    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    known = {o.name for o in probe.graph.output}
    for node in probe.graph.node:
        probe.graph.output.extend(onnx.ValueInfoProto(name=o) for o in node.output
                                  if o and o not in known)
    session = ort.InferenceSession(probe.SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    feed = {i.name: np.zeros([d.dim_value for d in i.type.tensor_type.shape.dim], np.float32)
            for i in model.graph.input}
    names = [o.name for o in session.get_outputs()]
    shapes = {k: list(v.shape) for k, v in zip(names, session.run(names, feed), strict=True)}
    return {**shapes, **{k: list(v.shape) for k, v in feed.items()}}


@dataclass
class Translation:
    """A Paddle program as data: ops (type, inputs, outputs, attrs by slot), parameters,
    the feed and fetch variables."""

    ops: list[Op]
    params: dict[str, np.ndarray]
    feeds: dict[str, list[int]]
    fetches: list[str]

    def spec(self) -> dict[str, object]:
        return {"ops": self.ops, "feeds": self.feeds, "fetches": self.fetches,
                "params": {k: list(v.shape) for k, v in self.params.items()}}


class _Translator:
    """Walks the ONNX nodes in order and writes the Paddle ops they came from."""

    def __init__(self, model: onnx.ModelProto) -> None:
        self.model = model
        self.consts = _constants(model)
        self.shapes = _shapes(model)
        self.producer = {o: n for n in model.graph.node for o in n.output}
        self.names: dict[str, str] = {}  # ONNX tensor -> Paddle variable
        self.params: dict[str, np.ndarray] = {}
        self.ops: list[Op] = []
        self.count = 0
        self.fused: dict[int, Op] = {}  # id(last node of a pattern) -> the op it becomes
        self.skip: set[int] = set()

    # -- helpers
    def fresh(self, stem: str) -> str:
        self.count += 1
        return f"{stem}.zoo_{self.count}"

    def var(self, name: str) -> str:
        if name in self.names:
            return self.names[name]
        if name in self.consts:
            return self.param(name)
        raise TranslateError(f"tensor {name!r} has no Paddle variable")

    def param(self, name: str, value: np.ndarray | None = None) -> str:
        array = self.consts[name] if value is None else value
        self.params[name] = np.asarray(array, np.float32)
        return name

    def const(self, name: str) -> np.ndarray | None:
        return self.consts.get(name)

    def emit(self, op_type: str, inputs: dict[str, list[str]], outputs: dict[str, list[str]],
             **attrs: object) -> None:
        self.ops.append({"type": op_type, "inputs": inputs, "outputs": outputs, "attrs": attrs})

    def out(self, node: onnx.NodeProto) -> str:
        name = node.output[0]
        self.names[name] = name
        return name

    # -- patterns found before the walk
    def _is_const(self, name: str, value: float) -> bool:
        c = self.const(name)
        return c is not None and c.size == 1 and bool(np.isclose(float(c.reshape(())), value))

    def find_patterns(self) -> None:
        """paddle2onnx writes hard_swish as Div(Mul(x, Clip(Add(x, 3), 0, 6)), 6)."""
        for div in self.model.graph.node:
            if div.op_type != "Div" or not self._is_const(div.input[1], 6.0):
                continue
            mul = self.producer.get(div.input[0])
            if mul is None or mul.op_type != "Mul":
                continue
            for x, gate in (mul.input, reversed(mul.input)):
                clip = self.producer.get(gate)
                if clip is None or clip.op_type != "Clip" or len(clip.input) < 3:
                    continue
                add = self.producer.get(clip.input[0])
                if (add is None or add.op_type != "Add" or add.input[0] != x
                        or not self._is_const(add.input[1], 3.0)
                        or not self._is_const(clip.input[1], 0.0)
                        or not self._is_const(clip.input[2], 6.0)):
                    continue
                self.skip |= {id(add), id(clip), id(mul)}
                self.fused[id(div)] = {"type": "hard_swish", "x": x}
                break

    def live(self) -> set[int]:
        """Nodes the outputs need through data edges (a Reshape's shape input is not one:
        its target shape is known statically)."""
        needed = {o.name for o in self.model.graph.output}
        keep: set[int] = set()
        for node in reversed(self.model.graph.node):
            if not any(o in needed for o in node.output):
                continue
            keep.add(id(node))
            inputs = list(node.input[:1]) if node.op_type == "Reshape" else list(node.input)
            needed.update(i for i in inputs if i)
        return keep

    # -- the walk
    def run(self) -> Translation:
        self.find_patterns()
        live = self.live()
        feeds = {}
        for inp in self.model.graph.input:
            if inp.name not in self.consts:
                feeds[inp.name] = self.shapes[inp.name]
                self.names[inp.name] = inp.name
        for node in self.model.graph.node:
            if id(node) not in live or id(node) in self.skip or node.op_type == "Constant":
                continue
            if id(node) in self.fused:
                fused = self.fused[id(node)]
                self.emit(str(fused["type"]), {"X": [self.var(str(fused["x"]))]},
                          {"Out": [self.out(node)]})
                continue
            if all(i in self.consts for i in node.input if i):
                self._fold(node)
                continue
            handler = getattr(self, f"_{node.op_type}", None)
            if handler is None:
                raise TranslateError(f"ONNX {node.op_type} ({node.name}) has no Paddle op here")
            handler(node)
        fetches = [self.var(o.name) for o in self.model.graph.output]
        return Translation(self.ops, self.params, feeds, fetches)

    def _fold(self, node: onnx.NodeProto) -> None:
        """A node of constants only (paddle2onnx's Reshape of a bias to [1, C, 1, 1]):
        keep its input, as Paddle's bias parameter, and remember the node."""
        if node.op_type != "Reshape":
            raise TranslateError(f"constant {node.op_type} ({node.name}) is not handled")
        self.consts[node.output[0]] = self.consts[node.input[0]].reshape(
            self.consts[node.input[1]])
        self.names[node.output[0]] = self.param(node.input[0])

    # -- one method per ONNX op type
    def _Conv(self, node: onnx.NodeProto) -> None:
        a = _attrs(node)
        w = self.const(node.input[1])
        if w is None:
            raise TranslateError(f"Conv {node.name}: the weight is not a constant")
        groups = int(a.get("group", 1))
        pads = list(a.get("pads", [0, 0, 0, 0]))
        half = len(pads) // 2
        paddings = pads[:half] if pads[:half] == pads[half:] else [
            v for pair in zip(pads[:half], pads[half:], strict=True) for v in pair]
        depthwise = groups > 1 and groups == w.shape[0] and w.shape[1] == 1
        out = self.out(node) if len(node.input) < 3 else self.fresh(node.output[0])
        self.emit("depthwise_conv2d" if depthwise else "conv2d",
                  {"Input": [self.var(node.input[0])], "Filter": [self.param(node.input[1])]},
                  {"Output": [out]}, strides=list(a.get("strides", [1, 1])),
                  paddings=paddings, dilations=list(a.get("dilations", [1, 1])),
                  groups=groups, padding_algorithm="EXPLICIT", data_format="NCHW")
        if len(node.input) > 2:
            self.emit("elementwise_add", {"X": [out], "Y": [self.param(node.input[2])]},
                      {"Out": [self.out(node)]}, axis=1)

    def _BatchNormalization(self, node: onnx.NodeProto) -> None:
        a = _attrs(node)
        x, scale, bias, mean, variance = node.input[:5]
        stem = node.output[0]
        self.emit("batch_norm",
                  {"X": [self.var(x)], "Scale": [self.param(scale)], "Bias": [self.param(bias)],
                   "Mean": [self.param(mean)], "Variance": [self.param(variance)]},
                  {"Y": [self.out(node)], "MeanOut": [mean], "VarianceOut": [variance],
                   "SavedMean": [self.fresh(stem + ".saved_mean")],
                   "SavedVariance": [self.fresh(stem + ".saved_variance")]},
                  epsilon=float(a.get("epsilon", 1e-5)), momentum=float(a.get("momentum", 0.9)),
                  is_test=True, use_global_stats=True, data_layout="NCHW")

    def _unary(self, node: onnx.NodeProto, op_type: str, **attrs: object) -> None:
        self.emit(op_type, {"X": [self.var(node.input[0])]}, {"Out": [self.out(node)]}, **attrs)

    def _Relu(self, node: onnx.NodeProto) -> None:
        self._unary(node, "relu")

    def _HardSigmoid(self, node: onnx.NodeProto) -> None:
        a = _attrs(node)
        self._unary(node, "hard_sigmoid", slope=float(a.get("alpha", 0.2)),
                    offset=float(a.get("beta", 0.5)))

    def _HardSwish(self, node: onnx.NodeProto) -> None:
        self._unary(node, "hard_swish")

    def _Softmax(self, node: onnx.NodeProto) -> None:
        self._unary(node, "softmax", axis=int(_attrs(node).get("axis", -1)))

    def _GlobalAveragePool(self, node: onnx.NodeProto) -> None:
        self._unary(node, "pool2d", pooling_type="avg", ksize=[1, 1], adaptive=True,
                    global_pooling=False, strides=[1, 1], paddings=[0, 0])

    def _MaxPool(self, node: onnx.NodeProto) -> None:
        self._pool(node, "max")

    def _AveragePool(self, node: onnx.NodeProto) -> None:
        self._pool(node, "avg")

    def _pool(self, node: onnx.NodeProto, kind: str) -> None:
        a = _attrs(node)
        pads = list(a.get("pads", [0, 0, 0, 0]))
        if pads[:2] != pads[2:]:
            raise TranslateError(f"{node.op_type} {node.name}: asymmetric pads")
        self._unary(node, "pool2d", pooling_type=kind, ksize=list(a["kernel_shape"]),
                    strides=list(a.get("strides", [1, 1])), paddings=pads[:2],
                    ceil_mode=bool(a.get("ceil_mode", 0)), global_pooling=False,
                    adaptive=False, exclusive=not a.get("count_include_pad", 0))

    def _elementwise(self, node: onnx.NodeProto, op_type: str) -> None:
        x, y = node.input
        if x in self.consts and y not in self.consts:
            x, y = y, x
        axis = -1
        c = self.const(y)
        if c is not None:
            rank = len(self.shapes.get(x, []))
            if c.ndim == rank and rank == 4 and c.shape[0] == 1 and c.shape[2:] == (1, 1):
                # a bias [1, C, 1, 1] (folded Reshape): Paddle's 1-D bias on axis 1
                axis = 1
                y = self.producer[y].input[0] if y in self.producer else y
            elif c.ndim != 1:
                raise TranslateError(f"{node.op_type} {node.name}: constant of shape {c.shape}")
        self.emit(op_type, {"X": [self.var(x)], "Y": [self.var(y)]}, {"Out": [self.out(node)]},
                  axis=axis)

    def _Add(self, node: onnx.NodeProto) -> None:
        self._elementwise(node, "elementwise_add")

    def _Mul(self, node: onnx.NodeProto) -> None:
        self._elementwise(node, "elementwise_mul")

    def _MatMul(self, node: onnx.NodeProto) -> None:
        x, y = node.input
        if y not in self.consts or self.consts[y].ndim != 2:
            raise TranslateError(f"MatMul {node.name}: only x @ a 2-D constant")
        self.emit("matmul_v2", {"X": [self.var(x)], "Y": [self.param(y)]},
                  {"Out": [self.out(node)]}, trans_x=False, trans_y=False)

    def _Reshape(self, node: onnx.NodeProto) -> None:
        self._to_shape(node, "reshape2")

    def _Flatten(self, node: onnx.NodeProto) -> None:
        self._to_shape(node, "flatten_contiguous_range")

    def _to_shape(self, node: onnx.NodeProto, op_type: str) -> None:
        """A Reshape / Flatten to its static output shape; none where it changes nothing
        (paddle2onnx wraps a Softmax in Flatten ... Reshape back)."""
        src, dst = self.shapes.get(node.input[0]), self.shapes.get(node.output[0])
        if src is None or dst is None:
            raise TranslateError(f"{node.op_type} {node.name}: shape unknown")
        if src == dst:
            self.names[node.output[0]] = self.var(node.input[0])
            return
        x = self.var(node.input[0])
        extra = {"XShape": [self.fresh(node.output[0] + ".xshape")]}
        if op_type == "reshape2":
            self.emit("reshape2", {"X": [x]}, {"Out": [self.out(node)], **extra}, shape=dst)
        else:
            axis = int(_attrs(node).get("axis", 1))
            self.emit(op_type, {"X": [x]}, {"Out": [self.out(node)], **extra},
                      start_axis=axis, stop_axis=-1)

    def _Identity(self, node: onnx.NodeProto) -> None:
        self.names[node.output[0]] = self.var(node.input[0])


def to_paddle(model: onnx.ModelProto) -> Translation:
    """The Paddle program a paddle2onnx model was exported from, as data."""
    return _Translator(model).run()


# ---------------------------------------------------------------- the venv and the script


def python() -> Path:
    """The Paddle venv's interpreter, made with ``pip install paddlepaddle`` on first use."""
    exe = VENV / "bin" / "python"
    marker = VENV / f".installed-{PADDLE}"
    if marker.exists():
        return exe
    try:
        VENV.parent.mkdir(parents=True, exist_ok=True)
        with open(VENV.parent / "paddle-venv.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not marker.exists():
                _make_venv(exe)
                marker.write_text(PADDLE + "\n")
    except OSError as exc:
        raise PaddleUnavailable(f"the Paddle venv could not be made in {VENV}: {exc}") from None
    return exe


def _make_venv(exe: Path) -> None:
    if VENV.exists():
        shutil.rmtree(VENV)
    steps = [[sys.executable, "-m", "venv", str(VENV)],
             [str(exe), "-m", "pip", "install", "-q", "--disable-pip-version-check", PADDLE]]
    for cmd in steps:
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise PaddleUnavailable(
                f"the Paddle venv could not be made: '{' '.join(cmd[-3:])}' failed (exit "
                f"{done.returncode}): {(done.stderr or done.stdout).strip()[-600:]}")


def _code_digest() -> bytes:
    return hashlib.sha256(Path(__file__).read_bytes() + SCRIPT.read_bytes()
                          + PADDLE.encode()).digest()


def importer_digest() -> bytes:
    """Our side of the producer (this file, the script, the importer): part of the zoo's
    cache key of the imported QDQ model."""
    qcore_paddle = Path(__file__).resolve().parents[1] / "qcore" / "paddle"
    parts = [p.read_bytes() for p in sorted(qcore_paddle.glob("*.py"))]
    return hashlib.sha256(_code_digest() + b"".join(parts)).digest()


@dataclass
class PaddleBuild:
    """The folder the script wrote: ``fp32/`` and one quant model per format (each a
    ``model.pdmodel`` + ``model.pdiparams``), ``outputs.npz`` (Paddle's own outputs on the
    calibration feeds: ``float:<k>``, ``<format>:<k>``) and ``report.json``."""

    folder: Path

    def model(self, fmt: str) -> Path:
        return self.folder / fmt

    def outputs(self, part: str) -> list[np.ndarray]:
        with np.load(self.folder / "outputs.npz") as data:
            keys = sorted((k for k in data.files if k.startswith(part + ":")),
                          key=lambda k: int(k.split(":")[1]))
            return [data[k] for k in keys]

    def report(self) -> dict[str, object]:
        return json.loads((self.folder / "report.json").read_text())


def build(model: onnx.ModelProto, calibration: list[zoo.Feed]) -> PaddleBuild:
    """Paddle's float program and PTQ models of ``model``, cached by content."""
    data = model.SerializeToString()
    key = zoo._digest(data, zoo._feeds_bytes(calibration), _code_digest())
    stem = re.sub(r"\W+", "_", model.graph.name).strip("_")[:40] or "model"
    folder = zoo.CACHE / "zoo" / zoo.ZOO_VERSION / "paddle" / f"{stem}.{key}"
    if (folder / "report.json").exists():
        return PaddleBuild(folder)
    translation = to_paddle(model)
    work = folder.with_name(folder.name + f".{os.getpid()}.part")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    (work / "spec.json").write_text(json.dumps(translation.spec()))
    np.savez(work / "params.npz", **translation.params)
    np.savez(work / "feeds.npz", **{f"{k}:{i}": v for i, f in enumerate(calibration)
                                    for k, v in f.items()})
    env = {**os.environ, "FLAGS_enable_pir_api": "0", "OMP_NUM_THREADS": "1"}
    done = subprocess.run([str(python()), str(SCRIPT), str(work)], capture_output=True,
                          text=True, env=env)
    if done.returncode != 0:
        shutil.rmtree(work, ignore_errors=True)
        raise PaddleUnavailable(f"{SCRIPT.name} failed (exit {done.returncode}): "
                                f"{done.stderr.strip()[-1200:]}")
    _check_float(model, PaddleBuild(work), calibration)
    shutil.rmtree(folder, ignore_errors=True)
    work.replace(folder)
    return PaddleBuild(folder)


def _check_float(model: onnx.ModelProto, made: PaddleBuild, feeds: list[zoo.Feed]) -> None:
    """The translated program must compute what the ONNX file computes."""
    import onnxruntime as ort

    session = ort.InferenceSession(model.SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    ref = [session.run(None, f)[0] for f in feeds]
    cosines = [zoo.cosine(a, b) for a, b in zip(ref, made.outputs("float"), strict=True)]
    if min(cosines) < FLOAT_COSINE:
        raise PaddleUnavailable(f"the Paddle program does not compute what the ONNX model "
                                f"does: cosines {np.round(cosines, 5).tolist()}")


def quantize(model: onnx.ModelProto, producer: str,
             calibration: list[zoo.Feed]) -> onnx.ModelProto:
    """The QDQ model our importer reads from Paddle's PTQ model (format by ``producer``)."""
    from qcore.paddle import import_paddle

    return import_paddle(build(model, calibration).model(FORMATS[producer]))
