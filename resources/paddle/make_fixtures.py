"""Make the Paddle quant-model fixtures in ``tests/data/paddle/`` (a dev-only tool).

Each fixture is a small Paddle inference model saved the way real users have it, plus
``io.npz``: the inputs (``input:<feed name>``) and the outputs Paddle itself computed on them
(``output:<k>``, in fetch order), by loading the saved model back and running it.

Fixtures (``<family>_<kind>``, family ``cnn``, ``transformer`` or ``ops``):

* ``*_qat_legacy``: PaddleSlim ``quant_aware`` (QuantizationTransformPass, AddQuantDequantPass,
  OutScaleForTrainingPass) on a static program, a few SGD steps, then ``convert`` (freeze with
  OutScaleForInferencePass + QuantizationFreezePass: weights stored as integer-valued floats,
  ``fake_quantize_*`` before and ``fake_*dequantize_max_abs`` after each quantized op). The CNN
  one is saved as ``__model__`` plus one file per variable, the others as ``.pdmodel`` +
  ``.pdiparams``.
* ``*_qat_onnx``: the same with ``onnx_format=True``: ``quantize_linear`` /
  ``dequantize_linear`` ops and int8 weights.
* ``cnn_qat_per_tensor``: the legacy CNN with per-tensor (``abs_max``) weight scales.
* ``*_qat_unfrozen``: the ``quant_aware(for_test=True)`` program saved without ``convert``:
  float weights quantized at run time by ``fake_channel_wise_quantize_abs_max``, a
  ``fake_quantize_moving_average_abs_max`` + ``fake_dequantize_max_abs`` pair on each
  activation, no ``out_threshold`` attributes.
* ``*_ptq``: PaddleSlim ``quant_post_static`` on the saved FP32 model (legacy fake ops for the
  CNN, ``onnx_format`` for the transformer).

Paddle is never a runtime dependency of qcore; only this script needs it. Run it from the
repository root in a separate virtual environment::

    python3 -m venv /tmp/paddle-venv
    /tmp/paddle-venv/bin/pip install paddlepaddle==2.6.2 paddleslim==2.6.0 "numpy<2" six \\
        requests
    /tmp/paddle-venv/bin/python resources/paddle/make_fixtures.py [--out tests/data/paddle]

Weights and data are seeded, so a full run reproduces the committed fixtures (variable names
come from Paddle's process-wide name counters: regenerate all of them together, not one with
``--only``, before committing).
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import paddle
import paddle.nn.functional as F
from paddle import static

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUT = ROOT / "tests" / "data" / "paddle"
QAT_STEPS = 12
BATCH = 4

Builder = Callable[[], tuple[list[static.Variable], list[static.Variable]]]


# ---- networks ---------------------------------------------------------------------------


def _conv_bn(x, out_ch: int, k: int, act: str, groups: int = 1, stride: int = 1):
    y = static.nn.conv2d(x, out_ch, k, stride=stride, padding=k // 2, groups=groups,
                         bias_attr=False)
    y = static.nn.batch_norm(y, is_test=False)
    return {"relu": F.relu, "relu6": F.relu6, "hard_swish": F.hardswish,
            "none": lambda t: t}[act](y)


def build_cnn() -> tuple[list, list]:
    """conv/bn/relu, depthwise conv/bn/relu6, conv/bn/hard_swish, max pool, residual add,
    global average pool, flatten, fc (mul + add), relu, Linear (matmul_v2), softmax."""
    x = static.data("image", [None, 3, 16, 16], "float32")
    y = _conv_bn(x, 8, 3, "relu")
    y = _conv_bn(y, 8, 3, "relu6", groups=8)
    y = _conv_bn(y, 16, 1, "hard_swish")
    y = F.max_pool2d(y, 2, 2)
    z = _conv_bn(y, 16, 3, "none")
    y = F.relu(paddle.add(y, z))
    y = F.adaptive_avg_pool2d(y, 1)
    y = paddle.flatten(y, 1)
    y = static.nn.fc(y, 32, activation="relu")
    y = paddle.nn.Linear(32, 10)(y)
    return [x], [F.softmax(y)]


def build_transformer() -> tuple[list, list]:
    """A post-norm encoder block: Q/K/V Linear (matmul_v2 + add), reshape2/transpose2 into
    heads, matmul_v2 Q.K^T, scale, softmax, matmul_v2, output projection, dropout, residual,
    layer_norm, FFN with gelu."""
    seq, hidden, heads = 8, 32, 4
    head = hidden // heads
    x = static.data("x", [None, seq, hidden], "float32")

    def split(t):
        return paddle.transpose(paddle.reshape(t, [0, seq, heads, head]), [0, 2, 1, 3])

    q, k, v = (split(paddle.nn.Linear(hidden, hidden)(x)) for _ in range(3))
    s = paddle.matmul(q, k, transpose_y=True)
    s = paddle.scale(s, 1.0 / np.sqrt(head))
    s = F.softmax(s, axis=-1)
    c = paddle.matmul(s, v)
    c = paddle.reshape(paddle.transpose(c, [0, 2, 1, 3]), [0, seq, hidden])
    o = F.dropout(paddle.nn.Linear(hidden, hidden)(c), 0.1)
    x1 = paddle.nn.LayerNorm(hidden)(paddle.add(x, o))
    h = F.gelu(paddle.nn.Linear(hidden, 2 * hidden)(x1))
    h = F.dropout(paddle.nn.Linear(2 * hidden, hidden)(h), 0.1, mode="downscale_in_infer")
    return [x], [paddle.nn.LayerNorm(hidden)(paddle.add(x1, h))]


def build_ops() -> tuple[list, list]:
    """Every other mapped op once: conv2d_transpose, hard_sigmoid, swish, silu, sigmoid,
    gelu (tanh), elementwise sub/mul/div with axis broadcasting, avg pool with padding,
    bilinear / nearest interpolation, concat, split, slice, squeeze2 / unsqueeze2, scale with
    bias, matmul (v1), layer_norm over two axes."""
    x = static.data("image", [None, 4, 8, 8], "float32")
    y = static.nn.conv2d(x, 8, 3, padding=1)
    y = F.hardsigmoid(y) * 2.0
    t = static.nn.conv2d_transpose(y, 6, filter_size=2, stride=2)
    t = F.swish(t)
    t = F.avg_pool2d(t, 3, stride=2, padding=1, exclusive=True)
    c = paddle.static.create_parameter([6], "float32", name="chan_bias")
    t = _elementwise("elementwise_sub", t, c, axis=1)
    t = _elementwise("elementwise_mul", t, paddle.full([6, 1, 1], 1.5), axis=1)
    t = _elementwise("elementwise_div", t, paddle.full([1], 2.0), axis=-1)
    a = F.interpolate(t, scale_factor=2, mode="bilinear", align_corners=False)
    b = F.interpolate(t, size=[16, 16], mode="nearest")
    y = paddle.concat([F.silu(a), F.sigmoid(b)], axis=1)
    p, q = paddle.split(y, [4, 8], axis=1)
    r = paddle.slice(q, axes=[2, 3], starts=[1, 0], ends=[15, 16])
    r = paddle.unsqueeze(paddle.squeeze(F.adaptive_avg_pool2d(r, 1), [2, 3]), [1])
    s = paddle.scale(paddle.flatten(F.adaptive_max_pool2d(p, 1), 1), 0.5, bias=0.25)
    w = paddle.static.create_parameter([4, 8], "float32", name="mm_weight")
    s = paddle.unsqueeze(_matmul_v1(s, w), [1])
    z = paddle.concat([r, s], axis=1)
    z = F.gelu(z, approximate=True)
    z = F.layer_norm(z, [2, 8])
    return [x], [z]


def _elementwise(op_type: str, x, y, axis: int):
    helper = paddle.base.layer_helper.LayerHelper(op_type)
    out = helper.create_variable_for_type_inference(x.dtype)
    helper.append_op(type=op_type, inputs={"X": x, "Y": y}, outputs={"Out": out},
                     attrs={"axis": axis})
    return out


def _matmul_v1(x, y):
    helper = paddle.base.layer_helper.LayerHelper("matmul")
    out = helper.create_variable_for_type_inference(x.dtype)
    helper.append_op(type="matmul", inputs={"X": x, "Y": y}, outputs={"Out": out},
                     attrs={"transpose_X": False, "transpose_Y": False, "alpha": 1.0})
    return out


FAMILIES: dict[str, tuple[Builder, list[str]]] = {
    "cnn": (build_cnn, ["conv2d", "depthwise_conv2d", "mul", "matmul_v2", "elementwise_add",
                        "pool2d"]),
    "transformer": (build_transformer, ["matmul_v2", "elementwise_add", "softmax"]),
    "ops": (build_ops, ["conv2d", "conv2d_transpose", "matmul", "concat", "pool2d"]),
}


# ---- building, training, saving ---------------------------------------------------------


def _inputs(feeds: list, count: int, seed: int) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [{v.name: rng.standard_normal([BATCH, *v.shape[1:]]).astype(np.float32)
             for v in feeds} for _ in range(count)]


def _randomize_bn(scope, program) -> None:
    """Non-trivial batch-norm statistics, so folding them is really tested."""
    rng = np.random.default_rng(3)
    for var in program.list_vars():
        if not var.persistable or "batch_norm" not in var.name:
            continue
        tensor = scope.find_var(var.name).get_tensor()
        shape = np.array(tensor).shape
        if var.name.endswith("w_1"):
            value = rng.standard_normal(shape) * 0.1
        elif var.name.endswith("w_2"):
            value = rng.uniform(0.5, 1.5, shape)
        else:
            continue
        tensor.set(value.astype(np.float32), paddle.CPUPlace())


def _programs(family: str, seed: int):
    paddle.seed(seed)
    np.random.seed(seed)
    build, _ = FAMILIES[family]
    main, startup = static.Program(), static.Program()
    with static.program_guard(main, startup):
        feeds, fetches = build()
        test = main.clone(for_test=True)
        loss = paddle.mean(paddle.square(fetches[0]))
        paddle.optimizer.SGD(learning_rate=1e-3).minimize(loss)
    return main, startup, test, feeds, fetches, loss


def _quant_config(family: str, onnx_format: bool, weight_type: str) -> dict:
    return {
        "weight_quantize_type": weight_type,
        "activation_quantize_type": "moving_average_abs_max",
        "quantize_op_types": FAMILIES[family][1],
        "onnx_format": onnx_format,
    }


def make_qat(family: str, out: Path, onnx_format: bool, legacy_layout: bool,
             freeze: bool = True, weight_type: str = "channel_wise_abs_max") -> None:
    """QAT with PaddleSlim, then convert (unless ``freeze`` is off) and save."""
    from paddleslim.quant import convert, quant_aware

    place = paddle.CPUPlace()
    exe = static.Executor(place)
    scope = static.Scope()
    with static.scope_guard(scope):
        main, startup, test, feeds, fetches, loss = _programs(family, seed=7)
        exe.run(startup)
        _randomize_bn(scope, main)
        config = _quant_config(family, onnx_format, weight_type)
        train_q = quant_aware(main, place, config, scope=scope, for_test=False)
        test_q = quant_aware(test, place, config, scope=scope, for_test=True)
        for feed in _inputs(feeds, QAT_STEPS, seed=11):
            exe.run(train_q, feed=feed, fetch_list=[loss.name])
        frozen = convert(test_q, place, config, scope=scope) if freeze else test_q
        _save(out, exe, frozen, feeds, fetches, legacy_layout)
    _record_io(out, feeds, seed=5)


def make_ptq(family: str, out: Path, onnx_format: bool) -> None:
    """Save the FP32 model, then PaddleSlim quant_post_static on it."""
    from paddleslim.quant import quant_post_static

    place = paddle.CPUPlace()
    exe = static.Executor(place)
    scope = static.Scope()
    with tempfile.TemporaryDirectory() as tmp, static.scope_guard(scope):
        _, startup, test, feeds, fetches, _ = _programs(family, seed=7)
        exe.run(startup)
        _randomize_bn(scope, test)
        static.save_inference_model(os.path.join(tmp, "fp32"), feeds, fetches, exe,
                                    program=test)
        calib = _inputs(feeds, 8, seed=13)
        loader = paddle.io.DataLoader(_Samples(calib, [v.name for v in feeds]),
                                      feed_list=feeds, places=place, batch_size=BATCH,
                                      return_list=False)
        quant_post_static(exe, tmp, str(out), data_loader=loader, batch_nums=8,
                          model_filename="fp32.pdmodel", params_filename="fp32.pdiparams",
                          algo="abs_max", onnx_format=onnx_format,
                          quantizable_op_type=FAMILIES[family][1])
    _record_io(out, feeds, seed=5)


class _Samples(paddle.io.Dataset):
    """Calibration samples, one per item, from batches of inputs."""

    def __init__(self, batches: list[dict[str, np.ndarray]], names: list[str]) -> None:
        super().__init__()
        self.items = [[batch[n][i] for n in names] for batch in batches
                      for i in range(len(batch[names[0]]))]

    def __getitem__(self, index: int) -> list[np.ndarray]:
        return self.items[index]

    def __len__(self) -> int:
        return len(self.items)


def _save(out: Path, exe, program, feeds, fetches, legacy_layout: bool) -> None:
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    if not legacy_layout:
        static.save_inference_model(str(out / "model"), feeds, fetches, exe, program=program)
        return
    # Paddle 1.x / save_quant_model.py layout: __model__ plus one file per variable.
    program = static.normalize_program(program, feeds, fetches)
    (out / "__model__").write_bytes(program.desc.serialize_to_string())
    params = [v for v in program.list_vars() if static.io.is_persistable(v)]
    static.io.save_vars(exe, str(out), program, vars=params)


def _record_io(out: Path, feeds, seed: int) -> None:
    """Load the saved model back and record what Paddle computes on fixed inputs."""
    place = paddle.CPUPlace()
    exe = static.Executor(place)
    with static.scope_guard(static.Scope()):
        if (out / "__model__").exists():
            program, feed_names, fetch_vars = static.io.load_inference_model(
                str(out), exe, model_filename="__model__")
        else:
            prefix = next(out.glob("*.pdmodel")).with_suffix("")
            program, feed_names, fetch_vars = static.load_inference_model(str(prefix), exe)
        feed = _inputs(feeds, 1, seed=seed)[0]
        feed = {name: feed[name] for name in feed_names}
        outputs = exe.run(program, feed=feed, fetch_list=fetch_vars)
    arrays = {f"input:{k}": v for k, v in feed.items()}
    arrays.update({f"output:{i}": np.asarray(v) for i, v in enumerate(outputs)})
    np.savez_compressed(out / "io.npz", **arrays)
    types = sorted({op.type for op in program.global_block().ops})
    size = sum(f.stat().st_size for f in out.iterdir()) / 1024
    print(f"{out.name}: {size:.0f} KiB, ops: {', '.join(types)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="output folder")
    parser.add_argument("--only", default="", help="comma-separated fixture names")
    args = parser.parse_args()
    paddle.enable_static()
    out = Path(args.out)
    jobs = {
        "cnn_qat_legacy": lambda p: make_qat("cnn", p, False, legacy_layout=True),
        "cnn_qat_onnx": lambda p: make_qat("cnn", p, True, legacy_layout=False),
        "cnn_ptq": lambda p: make_ptq("cnn", p, onnx_format=False),
        "transformer_qat_legacy": lambda p: make_qat("transformer", p, False, False),
        "transformer_qat_onnx": lambda p: make_qat("transformer", p, True, False),
        "transformer_ptq": lambda p: make_ptq("transformer", p, onnx_format=True),
        "ops_qat_legacy": lambda p: make_qat("ops", p, False, False),
        "cnn_qat_per_tensor": lambda p: make_qat("cnn", p, False, False,
                                                 weight_type="abs_max"),
        "cnn_qat_unfrozen": lambda p: make_qat("cnn", p, False, False, freeze=False),
        "transformer_qat_unfrozen": lambda p: make_qat("transformer", p, False, False,
                                                       freeze=False),
    }
    wanted = [n for n in args.only.split(",") if n] or list(jobs)
    for name in wanted:
        jobs[name](out / name)


if __name__ == "__main__":
    main()
