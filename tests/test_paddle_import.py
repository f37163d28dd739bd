"""Paddle quant models (tests/data/paddle, made by resources/paddle/make_fixtures.py with
Paddle 2.6.2 + PaddleSlim 2.6.0) imported without Paddle: ONNX Runtime on the imported model
matches the outputs Paddle computed, and the INT8 conversion works on it."""

from __future__ import annotations

import shutil
import struct
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from conftest import ROOT, cosine, run_model
from onnx import numpy_helper

from qcore.cli import main
from qcore.convert import convert
from qcore.loader import ModelError, load_graph, read_model
from qcore.paddle import framework_pb2 as pb
from qcore.paddle.importer import import_paddle
from qcore.paddle.params import read_combined
from qcore.paddle.program import read_program

DATA = ROOT / "tests" / "data" / "paddle"
FIXTURES = sorted(p.name for p in DATA.iterdir() if p.is_dir())
INTEGER_OPS = {"QLinearConv", "QLinearMatMul", "MatMulIntegerToFloat", "QGemm", "QLinearAdd"}


def _io(name: str) -> tuple[dict[str, np.ndarray], list[np.ndarray]]:
    data = np.load(DATA / name / "io.npz")
    feeds = {k.split(":", 1)[1]: data[k] for k in data.files if k.startswith("input:")}
    outputs = [data[f"output:{i}"] for i in range(sum(k.startswith("output:")
                                                      for k in data.files))]
    return feeds, outputs


@pytest.fixture(scope="module")
def imported() -> dict[str, onnx.ModelProto]:
    return {name: import_paddle(DATA / name) for name in FIXTURES}


def test_fixtures_cover_the_issue() -> None:
    assert len(FIXTURES) >= 7
    kinds = {name.split("_", 1)[1] for name in FIXTURES}
    assert {"qat_legacy", "qat_onnx", "ptq"} <= kinds
    assert all(f.stat().st_size < 1 << 20 for f in DATA.rglob("*") if f.is_file())


@pytest.mark.parametrize("name", FIXTURES)
def test_onnxruntime_matches_paddle(imported, name) -> None:
    model = imported[name]
    onnx.checker.check_model(model, full_check=True)
    feeds, expected = _io(name)
    got = run_model(model, feeds)
    assert len(got) == len(expected)
    for out, ref in zip(got, expected, strict=True):
        diff = float(np.abs(out - ref).max())
        print(f"{name}: cosine {cosine(out, ref):.6f}, max abs diff {diff:.3g}")
        assert out.shape == ref.shape
        assert cosine(out, ref) >= 0.999, f"{name}: max abs diff {diff}"


@pytest.mark.parametrize("name", FIXTURES)
def test_without_out_thresholds_the_model_computes_what_paddle_does(name) -> None:
    """Only the scales Paddle applies: ONNX Runtime's int8 kernels are the only difference."""
    feeds, expected = _io(name)
    got = run_model(import_paddle(DATA / name, out_thresholds=False), feeds)
    for out, ref in zip(got, expected, strict=True):
        diff = float(np.abs(out - ref).max())
        print(f"{name} (no out_threshold Q/DQ): cosine {cosine(out, ref):.7f}, "
              f"max abs diff {diff:.3g}")
        assert cosine(out, ref) >= 0.9999, f"{name}: max abs diff {diff}"


@pytest.mark.parametrize("name", FIXTURES)
def test_convert_makes_a_working_int8_model(imported, name) -> None:
    quant = imported[name]
    int8 = convert(quant).int8_model()
    onnx.checker.check_model(int8)
    assert {n.op_type for n in int8.graph.node} & INTEGER_OPS
    feeds, expected = _io(name)
    for q, i, ref in zip(run_model(quant, feeds), run_model(int8, feeds), expected, strict=True):
        print(f"{name}: int8 vs QDQ cosine {cosine(q, i):.6f}, "
              f"int8 vs Paddle cosine {cosine(i, ref):.6f}")
        assert cosine(q, i) >= 0.99


@pytest.mark.parametrize("name", FIXTURES)
def test_weights_are_int8_with_their_scales(imported, name) -> None:
    model = imported[name]
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    producers = {o: n for n in model.graph.node for o in n.output}
    checked = 0
    for node in model.graph.node:
        if node.op_type not in ("Conv", "MatMul") or node.input[1] not in producers:
            continue
        dq = producers[node.input[1]]
        if dq.op_type != "DequantizeLinear" or dq.input[0] not in inits:
            continue
        weight, scale = inits[dq.input[0]], inits[dq.input[1]]
        axis = {a.name: a.i for a in dq.attribute}.get("axis", 1)
        assert weight.dtype == np.int8 and np.abs(weight).max() <= 127
        if "per_tensor" in name:
            assert scale.size == 1
        else:
            channels = weight.shape[0] if node.op_type == "Conv" else weight.shape[-1]
            assert scale.size == channels and axis == (0 if node.op_type == "Conv" else 1)
        checked += 1
    assert checked >= 2


def test_nodes_keep_the_paddle_op_index(imported) -> None:
    for name in ("cnn_qat_legacy", "transformer_qat_onnx"):
        path = DATA / name
        program = read_program(path / "__model__" if (path / "__model__").exists()
                               else next(path.glob("*.pdmodel")))
        for node in imported[name].graph.node:
            index, op_type = node.doc_string.removeprefix("paddle op ").split(": ")
            assert program.ops[int(index)].type == op_type
            assert node.name == f"paddle_op_{index}_{op_type}" or \
                node.name.startswith(f"paddle_op_{index}_{op_type}_")
        names = [n.name for n in imported[name].graph.node]
        assert len(names) == len(set(names))
    conv = next(n for n in imported["cnn_qat_legacy"].graph.node if n.op_type == "Conv")
    assert conv.name == "paddle_op_2_conv2d"


def _copy_with_op_renamed(name: str, index: int, new_type: str, dest: Path) -> Path:
    folder = dest / name
    shutil.copytree(DATA / name, folder)
    program_file = next(folder.glob("*.pdmodel"))
    proto = pb.ProgramDesc.FromString(program_file.read_bytes())
    proto.blocks[0].ops[index].type = new_type
    program_file.write_bytes(proto.SerializeToString())
    return folder


def test_unmapped_op_names_its_type_and_index(tmp_path) -> None:
    folder = _copy_with_op_renamed("cnn_qat_onnx", 5, "my_custom_op", tmp_path)
    with pytest.raises(ModelError, match=r"Paddle op 5 \(my_custom_op\) has no ONNX mapping"):
        import_paddle(folder)
    assert main(["import-paddle", "--model_dir", str(folder), "-o",
                 str(tmp_path / "x.onnx")]) == 2


def test_import_works_when_paddle_cannot_be_imported(monkeypatch) -> None:
    import qcore

    monkeypatch.setitem(sys.modules, "paddle", None)
    monkeypatch.setattr(qcore, "paddle", qcore.paddle)  # restored after the fresh import
    for module in [m for m in sys.modules if m.startswith("qcore.paddle")]:
        monkeypatch.delitem(sys.modules, module)
    with pytest.raises(ImportError):
        import paddle  # noqa: F401
    from qcore.paddle.importer import import_paddle as fresh_import

    model = fresh_import(DATA / "transformer_qat_legacy")
    feeds, expected = _io("transformer_qat_legacy")
    assert cosine(run_model(model, feeds)[0], expected[0]) >= 0.999


def test_every_layout_loads(tmp_path) -> None:
    legacy = DATA / "cnn_qat_legacy"
    assert (legacy / "__model__").exists() and not list(legacy.glob("*.pdiparams"))
    graph = load_graph(legacy)
    assert graph.op_histogram()["QuantizeLinear"] > 0
    assert load_graph(DATA / "cnn_ptq" / "model.pdmodel").op_histogram()["Conv"] == 4
    # Paddle 1.x names: `model` + `params`.
    folder = tmp_path / "old"
    folder.mkdir()
    shutil.copy(DATA / "cnn_ptq" / "model.pdmodel", folder / "model")
    shutil.copy(DATA / "cnn_ptq" / "model.pdiparams", folder / "params")
    model = import_paddle(folder, "model", "params")
    feeds, expected = _io("cnn_ptq")
    assert cosine(run_model(model, feeds)[0], expected[0]) >= 0.999


def test_bad_inputs_give_one_line_errors(tmp_path) -> None:
    with pytest.raises(ModelError, match="no Paddle program"):
        import_paddle(tmp_path)
    junk = tmp_path / "junk.pdmodel"
    junk.write_bytes(b"\x00\x01not a program" * 10)
    with pytest.raises(ModelError, match="not a Paddle program"):
        read_model(junk)
    folder = tmp_path / "cut"
    shutil.copytree(DATA / "cnn_ptq", folder)
    params = folder / "model.pdiparams"
    params.write_bytes(params.read_bytes()[:-100])
    with pytest.raises(ModelError, match="ends early|do not match"):
        read_combined(params, read_program(folder / "model.pdmodel"))
    missing = tmp_path / "missing"
    shutil.copytree(DATA / "cnn_qat_legacy", missing)
    (missing / "conv2d_0.w_0").unlink()
    with pytest.raises(ModelError, match="parameter files missing.*conv2d_0.w_0"):
        import_paddle(missing)


def test_cli_import_paddle_and_convert(tmp_path, capsys) -> None:
    out = tmp_path / "quant.onnx"
    assert main(["import-paddle", "--model_dir", str(DATA / "transformer_ptq"),
                 "--model_filename", "model.pdmodel", "--params_filename", "model.pdiparams",
                 "-o", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    onnx.checker.check_model(onnx.load(str(out)))
    assert main(["import-paddle", "--model-dir", str(DATA / "nope"), "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("qcore: error:") and "no such file" in err and "\n" not in err
    int8 = tmp_path / "int8.onnx"
    assert main(["convert", "--quant_model_path", str(DATA / "cnn_qat_legacy"),
                 "--int8_model_save_path", str(int8), "-q"]) == 0
    feeds, expected = _io("cnn_qat_legacy")
    assert cosine(run_model(int8, feeds)[0], expected[0]) >= 0.99


# ---- a hand-written program: ops no fixture uses, Paddle's formats written by hand --------


def _attr(name: str, value: object):
    attr = pb.OpDesc.Attr(name=name)
    if isinstance(value, bool):
        attr.type, attr.b = 6, value
    elif isinstance(value, int):
        attr.type, attr.i = 0, value
    elif isinstance(value, float):
        attr.type, attr.f = 1, value
    elif isinstance(value, str):
        attr.type, attr.s = 2, value
    elif all(isinstance(v, int) for v in value):
        attr.type = 3
        attr.ints.extend(value)
    else:
        attr.type = 4
        attr.floats.extend(value)
    return attr


def _tensor_bytes(array: np.ndarray) -> bytes:
    desc = pb.TensorDesc(data_type=5, dims=list(array.shape)).SerializeToString()
    return (struct.pack("<IQI", 0, 0, 0) + struct.pack("<i", len(desc)) + desc
            + array.astype("<f4").tobytes())


def _write_program(folder: Path, ops: list[tuple], shapes: dict[str, list[int]],
                   params: dict[str, np.ndarray]) -> None:
    """``__model__`` plus one file per parameter, as Paddle 1.x saved them."""
    block = pb.BlockDesc(idx=0, parent_idx=-1)
    for name, kind in (("feed", 9), ("fetch", 10)):
        block.vars.add(name=name, type=pb.VarType(type=kind), persistable=True)
    for name, shape in {**shapes, **{k: list(v.shape) for k, v in params.items()}}.items():
        var = block.vars.add(name=name, persistable=name in params)
        var.type.type = 7
        var.type.lod_tensor.tensor.data_type = 5
        var.type.lod_tensor.tensor.dims.extend(shape)
    for op_type, inputs, outputs, attrs in ops:
        op = block.ops.add(type=op_type)
        for slot, names in inputs.items():
            op.inputs.add(parameter=slot, arguments=names)
        for slot, names in outputs.items():
            op.outputs.add(parameter=slot, arguments=names)
        op.attrs.extend(_attr(k, v) for k, v in attrs.items())
    folder.mkdir()
    (folder / "__model__").write_bytes(pb.ProgramDesc(blocks=[block]).SerializeToString())
    for name, value in params.items():
        (folder / name).write_bytes(_tensor_bytes(value))


def test_hand_written_program_with_other_ops(tmp_path) -> None:
    rng = np.random.default_rng(0)
    params = {"w": rng.standard_normal((24, 8)).astype(np.float32) * 0.3,
              "b": rng.standard_normal(8).astype(np.float32) * 0.1,
              "w2": rng.standard_normal((5, 8)).astype(np.float32) * 0.5}
    ops = [
        ("feed", {"X": ["feed"]}, {"Out": ["x"]}, {"col": 0}),
        ("fake_quantize_abs_max", {"X": ["x"]}, {"Out": ["xq"], "OutScale": ["xs"]},
         {"bit_length": 8}),
        ("fake_dequantize_max_abs", {"X": ["xq"], "Scale": ["xs"]}, {"Out": ["xd"]},
         {"max_range": 127.0}),
        ("fc", {"Input": ["xd"], "W": ["w"], "Bias": ["b"]}, {"Out": ["h"]},
         {"in_num_col_dims": 1, "activation_type": "relu"}),
        ("matmul", {"X": ["h"], "Y": ["w2"]}, {"Out": ["m"]},
         {"transpose_X": False, "transpose_Y": True, "alpha": 0.5}),
        ("dropout", {"X": ["m"]}, {"Out": ["d"], "Mask": ["mask"]},
         {"dropout_prob": 0.25, "dropout_implementation": "downgrade_in_infer"}),
        ("relu6", {"X": ["d"]}, {"Out": ["r"]}, {"threshold": 3.0}),
        ("hard_swish", {"X": ["r"]}, {"Out": ["hs"]},
         {"threshold": 4.0, "scale": 5.0, "offset": 2.0}),
        ("fake_quantize_dequantize_abs_max", {"X": ["hs"]}, {"Out": ["q"], "OutScale": ["qs"]},
         {"bit_length": 8}),
        ("split", {"X": ["q"]}, {"Out": ["s1", "s2"]}, {"sections": [2, -1], "axis": 1}),
        ("slice", {"Input": ["s2"]}, {"Out": ["sl"]},
         {"axes": [1], "starts": [0], "ends": [1], "decrease_axis": [1]}),
        ("unsqueeze2", {"X": ["sl"]}, {"Out": ["u"]}, {"axes": [1]}),
        ("concat", {"X": ["s1", "u"]}, {"Out": ["c"]}, {"axis": 1}),
        ("fetch", {"X": ["c"]}, {"Out": ["fetch"]}, {"col": 0}),
    ]
    shapes = {"x": [-1, 4, 6], "xd": [-1, 4, 6], "h": [-1, 8], "m": [-1, 5], "s2": [-1, 3],
              "sl": [-1], "q": [-1, 5], "c": [-1, 3]}
    _write_program(tmp_path / "hand", ops, shapes, params)
    model = import_paddle(tmp_path / "hand")
    assert [o.name for o in model.graph.output] == ["c"]
    x = rng.standard_normal((3, 4, 6)).astype(np.float32)

    def qdq(v: np.ndarray) -> np.ndarray:
        step = np.abs(v).max() / 127
        return np.rint(v / step) * step

    h = np.maximum(qdq(x).reshape(3, -1) @ params["w"] + params["b"], 0)
    r = np.clip(0.5 * h @ params["w2"].T * 0.75, 0, 3)
    q = qdq(r * np.clip(r + 2, 0, 4) / 5)
    expected = np.concatenate([q[:, :2], q[:, 2:3]], axis=1)
    got = run_model(model, {"x": x})[0]
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() < 1e-4
