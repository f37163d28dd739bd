"""Issue 15: hostile inputs read safely (files confined to the model's folder, sizes checked
before reading, records that contradict the program refused, special files never opened)."""

from __future__ import annotations

import os
import shutil
import struct
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from qcore.cli import main
from qcore.loader import ModelError, load_graph
from qcore.paddle import framework_pb2 as pb
from qcore.paddle import import_paddle

ROOT = Path(__file__).resolve().parents[1]
BAD = ROOT / "tests" / "data" / "bad"
PADDLE = ROOT / "tests" / "data" / "paddle"
SECRET = b"TOP-SECRET-BYTES"


def _record(array: np.ndarray, data_type: int = 5) -> bytes:
    """One Paddle LoDTensor record holding ``array`` (stored with ``data_type``)."""
    desc = pb.TensorDesc(data_type=data_type, dims=list(array.shape)).SerializeToString()
    return struct.pack("<IQI", 0, 0, 0) + struct.pack("<i", len(desc)) + desc + array.tobytes()


def _program(folder: Path, weight: str, shape: list[int]) -> None:
    """``__model__``: x[-1, 4] -> fc(W = ``weight`` of ``shape``) -> fetch, one file per
    parameter (the parameter file itself is written by the caller)."""
    block = pb.BlockDesc(idx=0, parent_idx=-1)
    for name, kind in (("feed", 9), ("fetch", 10)):
        block.vars.add(name=name, type=pb.VarType(type=kind), persistable=True)
    for name, dims, saved in (("x", [-1, 4], False), ("h", [-1, 3], False),
                              (weight, shape, True)):
        var = block.vars.add(name=name, persistable=saved)
        var.type.type = 7
        var.type.lod_tensor.tensor.data_type = 5
        var.type.lod_tensor.tensor.dims.extend(dims)
    for op_type, inputs, outputs in (("feed", {"X": ["feed"]}, {"Out": ["x"]}),
                                     ("mul", {"X": ["x"], "Y": [weight]}, {"Out": ["h"]}),
                                     ("fetch", {"X": ["h"]}, {"Out": ["fetch"]})):
        op = block.ops.add(type=op_type)
        for slot, names in inputs.items():
            op.inputs.add(parameter=slot, arguments=names)
        for slot, names in outputs.items():
            op.outputs.add(parameter=slot, arguments=names)
    folder.mkdir(parents=True)
    (folder / "__model__").write_bytes(pb.ProgramDesc(blocks=[block]).SerializeToString())


W = np.arange(12, dtype=np.float32).reshape(4, 3) / 10


def test_a_hand_written_per_variable_model_imports(tmp_path) -> None:
    _program(tmp_path / "m", "w", [4, 3])
    (tmp_path / "m" / "w").write_bytes(_record(W))
    model = import_paddle(tmp_path / "m")
    assert np.array_equal(numpy_helper.to_array(model.graph.initializer[0]), W)


@pytest.mark.parametrize("name", ["../secret", "/etc/passwd", "/proc/self/environ",
                                  "sub/../../secret"])
def test_parameter_files_outside_the_folder_are_refused(name, tmp_path, capsys) -> None:
    (tmp_path / "secret").write_bytes(_record(W))
    _program(tmp_path / "m", name, [4, 3])
    with pytest.raises(ModelError, match="refusing a location outside the model's folder"):
        import_paddle(tmp_path / "m")
    assert main(["import-paddle", "--model_dir", str(tmp_path / "m"), "-o",
                 str(tmp_path / "o.onnx")]) == 2
    assert "refusing a location outside" in capsys.readouterr().err


def test_a_parameter_file_linked_out_of_the_folder_is_refused(tmp_path) -> None:
    (tmp_path / "secret").write_bytes(_record(W))
    _program(tmp_path / "m", "w", [4, 3])
    (tmp_path / "m" / "w").symlink_to(tmp_path / "secret")
    with pytest.raises(ModelError, match="leads outside the model's folder: refused"):
        import_paddle(tmp_path / "m")


def test_errors_never_echo_the_bytes_of_a_parameter_file(tmp_path) -> None:
    _program(tmp_path / "m", "w", [4, 3])
    (tmp_path / "m" / "w").write_bytes(SECRET * 4)
    with pytest.raises(ModelError) as info:
        import_paddle(tmp_path / "m")
    numbers = {str(struct.unpack("<I", SECRET[i:i + 4])[0]) for i in range(0, 16, 4)}
    assert not any(n in str(info.value) for n in numbers), str(info.value)
    assert "SECRET" not in str(info.value)


def test_a_fifo_parameter_file_is_refused_without_blocking(tmp_path) -> None:
    _program(tmp_path / "m", "w", [4, 3])
    os.mkfifo(tmp_path / "m" / "w")
    with pytest.raises(ModelError, match="is a FIFO"):
        import_paddle(tmp_path / "m")


@pytest.mark.parametrize("array,data_type,text", [
    (np.zeros((3, 4), np.float32), 5, "has shape [3, 4], the program says [4, 3]"),
    (np.zeros((4, 3), np.float64), 6, "is stored as float64, the program says float32"),
    (np.zeros((4, 3), np.int64), 3, "is stored as int64, the program says float32"),
])
def test_a_record_that_contradicts_the_program_is_refused(array, data_type, text, tmp_path,
                                                          capsys) -> None:
    _program(tmp_path / "m", "w", [4, 3])
    (tmp_path / "m" / "w").write_bytes(_record(array, data_type))
    with pytest.raises(ModelError, match="parameters do not match the program") as info:
        import_paddle(tmp_path / "m")
    assert text in str(info.value)
    assert main(["import-paddle", "--model_dir", str(tmp_path / "m"), "-o",
                 str(tmp_path / "o.onnx")]) == 2
    assert not (tmp_path / "o.onnx").exists()


def test_a_record_with_trailing_bytes_is_refused(tmp_path) -> None:
    _program(tmp_path / "m", "w", [4, 3])
    (tmp_path / "m" / "w").write_bytes(_record(W) + b"\0" * 8)
    with pytest.raises(ModelError, match="8 bytes left after the tensor"):
        import_paddle(tmp_path / "m")


def test_a_huge_parameter_file_is_refused_before_reading(tmp_path, monkeypatch) -> None:
    _program(tmp_path / "m", "w", [4, 3])
    with open(tmp_path / "m" / "w", "wb") as handle:
        handle.write(_record(W))
        handle.truncate(2**30)  # sparse: a 1 GiB file for a 48-byte tensor
    import qcore.paddle.params as params

    def no_reading(*args: object) -> bytes:
        raise AssertionError("the file was read")

    monkeypatch.setattr(params, "read_regular", no_reading)
    with pytest.raises(ModelError, match="more than w of shape \\[4, 3\\] can take"):
        import_paddle(tmp_path / "m")


def test_a_huge_combined_parameter_file_is_refused_before_reading(tmp_path, monkeypatch) -> None:
    shutil.copytree(PADDLE / "cnn_ptq", tmp_path / "m")
    with open(tmp_path / "m" / "model.pdiparams", "r+b") as handle:
        handle.truncate(2**30)
    import qcore.paddle.params as params

    def no_reading(*args: object) -> bytes:
        raise AssertionError("the file was read")

    monkeypatch.setattr(params, "read_regular", no_reading)
    with pytest.raises(ModelError, match="more than the program's .* saved variables can take"):
        import_paddle(tmp_path / "m")


def test_params_filename_outside_the_folder_is_refused(tmp_path) -> None:
    shutil.copytree(PADDLE / "cnn_ptq", tmp_path / "m")
    with pytest.raises(ModelError, match="refusing a location outside"):
        import_paddle(tmp_path / "m", "model.pdmodel", "../../etc/passwd")


# ---- ONNX external data ---------------------------------------------------------------------


def _external(tmp_path: Path, length: str | None, data: bytes | None = None) -> Path:
    """external_data.onnx copied into ``tmp_path``, its ``length`` entry set or removed."""
    model = onnx.load(str(BAD / "external_data.onnx"), load_external_data=False)
    tensor = next(t for t in model.graph.initializer if t.external_data)
    entries = [(e.key, e.value) for e in tensor.external_data if e.key != "length"]
    if length is not None:
        entries.append(("length", length))
    del tensor.external_data[:]
    for key, value in entries:
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value
    path = tmp_path / "external_data.onnx"
    path.write_bytes(model.SerializeToString())
    if data is not None:
        (tmp_path / "external_data.onnx.data").write_bytes(data)
    else:
        shutil.copy(BAD / "external_data.onnx.data", tmp_path)
    return path


def test_external_data_without_length_reads_only_the_tensor(tmp_path) -> None:
    """A 288-byte tensor in a 64 MiB (sparse) file: only its 288 bytes are read."""
    good = (BAD / "external_data.onnx.data").read_bytes()
    path = _external(tmp_path, None, good)
    with open(tmp_path / "external_data.onnx.data", "r+b") as handle:
        handle.truncate(64 * 2**20)
    graph = load_graph(path)
    weight = graph.initializers["conv.weight_quantized"]
    assert weight.tobytes() == good and weight.shape == (4, 8, 3, 3)


def test_external_data_without_length_in_a_short_file_is_refused(tmp_path) -> None:
    path = _external(tmp_path, None, b"\0" * 100)
    with pytest.raises(ModelError, match="holds 100 bytes, too few for 288 bytes at offset 0"):
        load_graph(path)


def test_external_data_whose_length_contradicts_its_shape_is_refused(tmp_path) -> None:
    path = _external(tmp_path, "300", b"\0" * 400)
    with pytest.raises(ModelError, match=r"length 300 does not match its shape \[4, 8, 3, 3\], "
                                         "which needs 288 bytes"):
        load_graph(path)


def test_a_fifo_external_data_file_is_not_called_missing(tmp_path, capsys) -> None:
    path = _external(tmp_path, "288")
    (tmp_path / "external_data.onnx.data").unlink()
    os.mkfifo(tmp_path / "external_data.onnx.data")
    with pytest.raises(ModelError, match=r"'external_data.onnx.data' is a FIFO \(named pipe\), "
                                         "not a regular file: refused") as info:
        load_graph(path)
    assert "missing" not in str(info.value)
    assert main(["info", str(path)]) == 2


def test_a_fifo_given_as_the_model_is_refused_without_blocking(tmp_path, capsys) -> None:
    os.mkfifo(tmp_path / "model.onnx")
    with pytest.raises(ModelError, match=r"is a FIFO \(named pipe\), not a regular file"):
        load_graph(tmp_path / "model.onnx")
    assert main(["info", str(tmp_path / "model.onnx")]) == 2
