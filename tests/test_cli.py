"""The `qcore` command line: Paddle's save_quant_model.py flags, info, dot, exit codes."""

from __future__ import annotations

import json

import onnx
import pytest

from qcore.cli import main
from qcore.render import find_dot


def test_convert_writes_models_and_one_dot_per_pass(samples, tmp_path, capsys) -> None:
    out = tmp_path / "out" / "int8.onnx"
    code = main(["convert", "--quant_model_path", str(samples / "cnn_qdq.onnx"),
                 "--int8-model-save-path", str(out),
                 "--fp32_model_save_path", str(tmp_path / "fp32.onnx"),
                 "--debug", str(tmp_path / "debug")])
    assert code == 0
    onnx.checker.check_model(onnx.load(str(out)))
    assert (tmp_path / "fp32.onnx").exists()
    dots = sorted(p.name for p in (tmp_path / "debug").glob("*.dot"))
    assert dots[-1] == "quant_orig.dot" and dots[0] == "int8_00_gather_scales.dot"
    printed = capsys.readouterr().out
    assert "14 of 14 ops run in INT8" in printed and "ops kept in FP32:" not in printed
    assert not list(tmp_path.rglob("*.tmp")), "atomic writes leave no temp files"


def test_op_ids_to_skip_from_the_command_line(samples, tmp_path, capsys) -> None:
    main(["info", str(samples / "cnn_qdq.onnx")])
    conv_id = next(int(line.split("(")[1].split(")")[0]) for line in
                   capsys.readouterr().out.splitlines() if line.strip().startswith("Conv("))
    out = tmp_path / "int8.onnx"
    assert main(["convert", "--quant_model_path", str(samples / "cnn_qdq.onnx"),
                 "--int8_model_save_path", str(out), "--op_ids_to_skip", str(conv_id)]) == 0
    assert f"Conv({conv_id})" in capsys.readouterr().out
    names = {n.name: n.op_type for n in onnx.load(str(out)).graph.node}
    assert [t for name, t in names.items() if name.endswith(f"#{conv_id}")] == ["Conv"]


def test_config_file_supplies_the_flags(samples, tmp_path) -> None:
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"ops_to_quantize": ["Gemm"], "target": "onnxruntime"}))
    out = tmp_path / "int8.onnx"
    assert main(["convert", "--quant_model_path", str(samples / "cnn_qdq.onnx"),
                 "--int8_model_save_path", str(out), "--config", str(cfg), "-q"]) == 0
    types = {n.op_type for n in onnx.load(str(out)).graph.node}
    assert "QGemm" in types and "QLinearConv" not in types


@pytest.mark.parametrize("make_bad", ["missing", "text", "folder", "fp32"])
def test_bad_input_exits_2_with_one_line(samples, tmp_path, capsys, make_bad) -> None:
    path = {"missing": tmp_path / "nope.onnx", "folder": tmp_path,
            "fp32": samples / "cnn_fp32.onnx", "text": tmp_path / "notes.onnx"}[make_bad]
    if make_bad == "text":
        path.write_text("this is not a model\n")
    code = main(["convert", "--quant_model_path", str(path),
                 "--int8_model_save_path", str(tmp_path / "o.onnx")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("qcore: error:")
    assert not (tmp_path / "o.onnx").exists()


def test_never_overwrites_the_input(samples, tmp_path, capsys) -> None:
    src = tmp_path / "m.onnx"
    src.write_bytes((samples / "cnn_qdq.onnx").read_bytes())
    before = src.read_bytes()
    assert main(["convert", "--quant_model_path", str(src),
                 "--int8_model_save_path", str(src)]) == 2
    assert "refusing to overwrite" in capsys.readouterr().err
    assert src.read_bytes() == before


def test_existing_output_needs_force(samples, tmp_path, capsys) -> None:
    out = tmp_path / "int8.onnx"
    out.write_bytes(b"keep me")
    args = ["convert", "--quant_model_path", str(samples / "cnn_qdq.onnx"),
            "--int8_model_save_path", str(out), "-q"]
    assert main(args) == 2 and "--force" in capsys.readouterr().err
    assert out.read_bytes() == b"keep me"
    assert main(args + ["--force"]) == 0
    onnx.checker.check_model(onnx.load(str(out)))


def test_zero_scale_is_a_clear_error(tmp_path, capsys) -> None:
    from devtools import modelgen

    model = modelgen.quantize_qdq(modelgen.cnn(seed=1))
    scale = next(i for i in model.graph.initializer if i.name.endswith("_scale") and not i.dims)
    scale.float_data[:] = [0.0] if scale.float_data else []
    if not scale.float_data:
        scale.raw_data = b"\0\0\0\0"
    path = tmp_path / "zero.onnx"
    onnx.save(model, str(path))
    code = main(["convert", "--quant_model_path", str(path),
                 "--int8_model_save_path", str(tmp_path / "o.onnx")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and len(err) == 1 and "scale" in err[0]


def test_unknown_ids_and_types_warn(samples, tmp_path, capsys) -> None:
    assert main(["convert", "--quant_model_path", str(samples / "cnn_qdq.onnx"),
                 "--int8_model_save_path", str(tmp_path / "o.onnx"),
                 "--op_ids_to_skip", "99999", "--ops_to_quantize", "conv2d", "-q"]) == 0
    err = capsys.readouterr().err
    assert "no op with id 99999" in err and "no conv2d op" in err


@pytest.mark.skipif(find_dot() is None, reason="Graphviz dot not installed")
def test_dot_command_renders_a_pass(samples, tmp_path) -> None:
    out = tmp_path / "placement.svg"
    assert main(["dot", str(samples / "transformer_qdq.onnx"), "--pass",
                 "quantize_placement", "-o", str(out)]) == 0
    assert out.read_text().lstrip().startswith(("<?xml", "<svg"))
    assert main(["dot", str(samples / "cnn_qdq.onnx"), "--pass", "nope", "-o",
                 str(tmp_path / "x.dot")]) == 2
