"""Issue 15: no silent nonsense and no internal errors from the benchmark, the advisor, the
configuration file and the DOT export: each bad value is refused in one clear line."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from qcore.bench.inputs import InputError, generate_inputs, load_inputs, model_inputs
from qcore.cli import main
from qcore.config import ConvertConfig
from qcore.render import find_dot

ROOT = Path(__file__).resolve().parents[1]
QUANT = ROOT / "resources" / "samples" / "cnn_qdq.onnx"
BAD = ROOT / "tests" / "data" / "bad"


def _errors(capsys) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines()
            if line.startswith("qcore: error:")]


def _one_error(capsys, text: str) -> None:
    err = _errors(capsys)
    assert len(err) == 1 and text in err[0], err
    assert "internal error" not in err[0]


# ---- --config ---------------------------------------------------------------------------------


@pytest.mark.parametrize("content,text", [
    ("5", "not the number 5"),
    ("null", "not null"),
    ("[1, 2]", "not a list"),
    ('"Conv"', "not the string"),
    ('{"op_ids_to_skip": [true]}', "op_ids_to_skip must list integer op ids, but it holds "
                                   "the boolean true"),
    ('{"op_ids_to_skip": [20.9]}', "but it holds the number 20.9"),
    ('{"op_ids_to_skip": 3}', "op_ids_to_skip must be a list of integer op ids, not the "
                              "number 3"),
    ('{"ops_to_quantize": [1]}', "ops_to_quantize must be a list of op type names"),
    ('{"ops_to_quantize": [null]}', "ops_to_quantize must be a list of op type names"),
    ('{"target": "tensorrt"}', "target must be one of onnxruntime, onednn"),
    ('{"target": null}', "target must be one of onnxruntime, onednn"),
    ("{not json", "not a JSON file"),
])
def test_a_bad_config_file_is_an_error_in_words(content, text, tmp_path, capsys) -> None:
    path = tmp_path / "cfg.json"
    path.write_text(content)
    with pytest.raises(ValueError) as info:
        ConvertConfig.load(path)
    assert text in str(info.value)
    assert main(["convert", "--quant_model_path", str(QUANT), "--int8_model_save_path",
                 str(tmp_path / "int8.onnx"), "--config", str(path)]) == 2
    _one_error(capsys, text)
    assert not (tmp_path / "int8.onnx").exists()


def test_a_good_config_file_still_loads(tmp_path) -> None:
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps({"ops_to_quantize": ["Conv"], "op_ids_to_skip": [3, 1],
                                "target": "onednn"}))
    assert ConvertConfig.load(path) == ConvertConfig(["Conv"], [1, 3], "onednn")


@pytest.mark.parametrize("ids", [[True], [20.9]])
def test_config_objects_refuse_bools_and_floats_as_op_ids(ids) -> None:
    with pytest.raises(ValueError, match="integer op ids"):
        ConvertConfig([], ids)


# ---- benchmark inputs ---------------------------------------------------------------------------


@pytest.fixture()
def specs():
    return model_inputs(QUANT)


def _npy(tmp_path: Path, array: np.ndarray, name: str = "data.npy") -> Path:
    path = tmp_path / name
    with open(path, "wb") as handle:
        np.save(handle, array)
    return path


def test_nan_inputs_are_refused(specs, tmp_path) -> None:
    data = np.zeros((2, 3, 32, 32), np.float32)
    data[1, 0, 0, 0] = np.nan
    with pytest.raises(InputError, match="input 'image' holds 1 NaN value"):
        load_inputs(_npy(tmp_path, data), specs)


def test_infinite_inputs_are_warned_about(specs, tmp_path) -> None:
    data = np.zeros((2, 3, 32, 32), np.float32)
    data[0, 0, 0, 0] = np.inf
    inputs = load_inputs(_npy(tmp_path, data), specs)
    assert any(n.startswith("WARNING: input 'image' holds 1 infinite") for n in inputs.notes)


def test_an_array_without_rows_is_refused(specs, tmp_path) -> None:
    with pytest.raises(InputError, match="holds no samples"):
        load_inputs(_npy(tmp_path, np.zeros((0, 3, 32, 32), np.float32)), specs)


@pytest.mark.parametrize("content", [b"not a zip", b"PK\x03\x04broken zip"])
def test_a_npz_that_is_not_an_archive_is_refused(content, specs, tmp_path) -> None:
    path = tmp_path / "data.npz"
    path.write_bytes(content)
    with pytest.raises(InputError, match="not a .npz archive"):
        load_inputs(path, specs)


def test_a_corrupt_npy_is_refused(specs, tmp_path) -> None:
    path = tmp_path / "data.npy"
    path.write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(InputError, match="not a .npy array file"):
        load_inputs(path, specs)


def test_generated_inputs_too_big_for_memory_are_refused(specs) -> None:
    with pytest.raises(InputError, match=r"would take .* GiB .*lower --batch"):
        generate_inputs(specs, count=8, batch=100_000)


@pytest.mark.parametrize("extra,text", [
    (["--inputs", "ZERO"], "holds no samples"),
    (["--inputs", "NOTZIP"], "not a .npz archive"),
    (["--inputs", "NAN"], "NaN value"),
    (["--batch", "100000"], "lower --batch"),
])
def test_cli_bench_bad_data_is_one_line(extra, text, tmp_path, capsys) -> None:
    files = {"ZERO": _npy(tmp_path, np.zeros((0, 3, 32, 32), np.float32), "zero.npy"),
             "NAN": _npy(tmp_path, np.full((1, 3, 32, 32), np.nan, np.float32), "nan.npy")}
    notzip = tmp_path / "x.npz"
    notzip.write_bytes(b"plain text")
    files["NOTZIP"] = notzip
    argv = ["bench", "--quant", str(QUANT), "--engine", "onnxruntime", "--iters", "1",
            "--warmup", "0", "-q", *[str(files.get(a, a)) for a in extra]]
    assert main(argv) == 2
    _one_error(capsys, text)


def _named_output(path: Path, output: str, op: str = "Relu") -> Path:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info(output, TensorProto.FLOAT, [4, 1] if op == "Transpose"
                                      else [1, 4])
    graph = helper.make_graph([helper.make_node(op, ["x"], [output])], "g", [x], [y])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    return path


def test_bench_exits_non_zero_when_every_accuracy_comparison_failed(tmp_path, capsys) -> None:
    fp32 = _named_output(tmp_path / "a.onnx", "y")
    int8 = _named_output(tmp_path / "b.onnx", "z", "Transpose")
    assert main(["bench", "--fp32", str(fp32), "--int8", str(int8), "--engine", "onnxruntime",
                 "--iters", "1", "--warmup", "0", "--accuracy", "-q"]) == 2
    _one_error(capsys, "no accuracy comparison could be made")


def test_bench_warns_when_an_accuracy_figure_is_nan(tmp_path, capsys) -> None:
    """Log of N(0, 1) inputs: NaN outputs from finite data are said, not just printed."""
    fp32 = _named_output(tmp_path / "a.onnx", "y", "Log")
    int8 = _named_output(tmp_path / "b.onnx", "y", "Log")
    assert main(["bench", "--fp32", str(fp32), "--int8", str(int8), "--engine", "onnxruntime",
                 "--iters", "1", "--warmup", "0", "--accuracy", "-q"]) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert any("int8 vs fp32 on onnxruntime: the cosine of y is NaN" in w for w in warnings)


def test_bench_exits_non_zero_when_every_model_failed(capsys) -> None:
    assert main(["bench", "--int8", str(BAD / "custom_domain_op.onnx"), "--engine",
                 "onnxruntime", "--iters", "1", "--warmup", "0", "-q"]) == 2
    _one_error(capsys, "no model could be measured")


# ---- the advisor ------------------------------------------------------------------------------


@pytest.mark.parametrize("bound", ["nan", "inf", "1.5", "-2"])
def test_advise_refuses_a_meaningless_bound(bound, capsys) -> None:
    assert main(["advise", "--quant_model_path", str(QUANT), "--min-cosine", bound, "-q"]) == 2
    _one_error(capsys, "--min-cosine must be a number from -1 to 1")


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_advise_refuses_non_finite_inputs(value, tmp_path, capsys) -> None:
    data = np.zeros((2, 3, 32, 32), np.float32)
    data[0, 1, 2, 3] = value
    assert main(["advise", "--quant_model_path", str(QUANT), "--inputs",
                 str(_npy(tmp_path, data)), "-q"]) == 2
    _one_error(capsys, "NaN value" if np.isnan(value) else "infinite value")


# ---- DOT export of absurd names ---------------------------------------------------------------


@pytest.mark.skipif(find_dot() is None, reason="Graphviz dot not installed")
def test_a_100k_character_name_renders(tmp_path, capsys) -> None:
    sys.path.insert(0, str(BAD))
    try:
        import make_bad_corpus
    finally:
        sys.path.remove(str(BAD))
    long = {key: key[0].upper() * 100_000 for key in ("x", "conv", "relu", "tiny_qdq")}
    model = tmp_path / "long.onnx"
    onnx.save(make_bad_corpus._tiny_qdq(names=long), model)
    for pass_name in ("quant_orig", ""):
        out = tmp_path / f"g{pass_name}.svg"
        argv = ["dot", str(model), "-o", str(out)] + (["--pass", pass_name] if pass_name else [])
        assert main(argv) == 0, capsys.readouterr().err
        assert out.stat().st_size > 1000


@pytest.mark.parametrize("flag", ["--config", "--inputs"])
def test_a_fifo_for_config_or_inputs_is_refused_without_blocking(flag, tmp_path, capsys) -> None:
    fifo = tmp_path / ("cfg.json" if flag == "--config" else "data.npy")
    os.mkfifo(fifo)
    argv = (["convert", "--quant_model_path", str(QUANT), "--int8_model_save_path",
             str(tmp_path / "int8.onnx"), "--config", str(fifo)] if flag == "--config" else
            ["bench", "--quant", str(QUANT), "--engine", "onnxruntime", "--iters", "1",
             "--warmup", "0", "-q", "--inputs", str(fifo)])
    assert main(argv) == 2
    _one_error(capsys, "not a regular file")
