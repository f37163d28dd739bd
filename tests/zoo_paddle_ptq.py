"""Build a Paddle program from ``spec.json`` + ``params.npz`` and quantize it with Paddle's PTQ.

Run by ``tests/zoo_paddle.py`` in the Paddle venv (never in the project's venv), with
``FLAGS_enable_pir_api=0``::

    python zoo_paddle_ptq.py FOLDER

FOLDER holds ``spec.json`` (ops, feeds, fetches, parameter shapes), ``params.npz`` and
``feeds.npz`` (the calibration feeds, ``<feed name>:<k>``). The script writes there:

- ``fp32/model.pdmodel`` + ``.pdiparams``: the float program;
- ``onnx_format/`` and ``legacy/``: ``PostTrainingQuantization`` with PaddleSlim
  ``quant_post_static``'s defaults (algo ``hist``, hist_percent 0.9999, channel-wise abs-max
  weights, range abs-max activations, conv2d / depthwise_conv2d / conv2d_transpose / mul /
  matmul / matmul_v2), with ``onnx_format=True`` (quantize_linear / dequantize_linear) and
  ``False`` (fake_quantize_range_abs_max / fake_channel_wise_dequantize_max_abs);
- ``outputs.npz``: what Paddle computes on the calibration feeds, for the float program
  (``float:<k>``) and each quant model loaded back from disk (``<format>:<k>``);
- ``report.json`` last (its presence means the folder is complete).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("FLAGS_enable_pir_api", "0")

import numpy as np
import paddle

FORMATS = {"onnx_format": True, "legacy": False}
QUANTIZABLE = ["conv2d", "depthwise_conv2d", "conv2d_transpose", "mul", "matmul", "matmul_v2"]


def build_program(spec: dict, params: dict[str, np.ndarray]) -> tuple:
    """(main program, startup program, feed vars, fetch vars) made with ``append_op``."""
    main, startup = paddle.static.Program(), paddle.static.Program()
    with paddle.static.program_guard(main, startup):
        block = main.global_block()
        feeds = [paddle.static.data(name, shape, "float32")
                 for name, shape in spec["feeds"].items()]
        for name, shape in spec["params"].items():
            paddle.static.create_parameter(shape, "float32", name=name)
        for op in spec["ops"]:
            for names in op["outputs"].values():
                for name in names:
                    if not block.has_var(name):
                        block.create_var(name=name, dtype="float32")
            block.append_op(type=op["type"],
                            inputs={k: [block.var(n) for n in v] for k, v in op["inputs"].items()},
                            outputs={k: [block.var(n) for n in v]
                                     for k, v in op["outputs"].items()},
                            attrs=op["attrs"])
        fetches = [block.var(name) for name in spec["fetches"]]
    return main, startup, feeds, fetches


def _feeds(folder: Path) -> list[dict[str, np.ndarray]]:
    with np.load(folder / "feeds.npz") as data:
        count = 1 + max(int(k.rsplit(":", 1)[1]) for k in data.files)
        out: list[dict[str, np.ndarray]] = [{} for _ in range(count)]
        for key in data.files:
            name, index = key.rsplit(":", 1)
            out[int(index)][name] = data[key]
    return out


def _run_saved(exe, folder: Path, feeds: list[dict[str, np.ndarray]]) -> list[np.ndarray]:
    """Load a saved inference model into a scope of its own and run it on every feed."""
    with paddle.static.scope_guard(paddle.static.Scope()):
        program, feed_names, fetches = paddle.static.load_inference_model(
            str(folder / "model"), exe)
        return [np.asarray(exe.run(program, feed={n: f[n] for n in feed_names},
                                   fetch_list=fetches)[0]) for f in feeds]


def _quantize(exe, folder: Path, fmt: str, onnx_format: bool,
              feeds: list[dict[str, np.ndarray]]) -> list[str]:
    """PTQ of ``fp32/`` into ``<fmt>/``; returns the quant program's op types."""
    from paddle.static.quantization import PostTrainingQuantization

    ptq = PostTrainingQuantization(
        executor=exe, model_dir=str(folder / "fp32"), model_filename="model.pdmodel",
        params_filename="model.pdiparams", data_loader=lambda: iter(feeds),
        batch_nums=len(feeds), algo="hist", hist_percent=0.9999,
        quantizable_op_type=QUANTIZABLE, weight_quantize_type="channel_wise_abs_max",
        activation_quantize_type="range_abs_max", onnx_format=onnx_format)
    quantized = ptq.quantize()
    ptq.save_quantized_model(str(folder / fmt))
    return sorted({op.type for op in quantized.global_block().ops})


def main(folder: Path) -> None:
    paddle.enable_static()

    spec = json.loads((folder / "spec.json").read_text())
    with np.load(folder / "params.npz") as data:
        params = {k: data[k] for k in data.files}
    feeds = _feeds(folder)
    place = paddle.CPUPlace()
    exe = paddle.static.Executor(place)
    with paddle.static.scope_guard(paddle.static.Scope()):
        scope = paddle.static.global_scope()
        program, startup, feed_vars, fetch_vars = build_program(spec, params)
        exe.run(startup)
        for name, value in params.items():
            scope.find_var(name).get_tensor().set(value.astype(np.float32), place)
        paddle.static.save_inference_model(str(folder / "fp32" / "model"), feed_vars,
                                           fetch_vars, exe, program=program)
    outputs = {f"float:{i}": v for i, v in enumerate(_run_saved(exe, folder / "fp32", feeds))}
    op_types = {}
    for fmt, onnx_format in FORMATS.items():
        with paddle.static.scope_guard(paddle.static.Scope()):
            op_types[fmt] = _quantize(exe, folder, fmt, onnx_format, feeds)
        outputs.update({f"{fmt}:{i}": v
                        for i, v in enumerate(_run_saved(exe, folder / fmt, feeds))})
    np.savez(folder / "outputs.npz", **outputs)
    report = {"paddle": paddle.__version__, "ops": len(spec["ops"]), "op_types": op_types}
    (folder / "report.json").write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
