"""Bad, odd and hostile input (issue 6): clear errors, nothing lost, nothing executed.

The corpus is ``tests/data/bad`` (written by ``make_bad_corpus.py`` there). Every bad file
gives one of qcore's own errors from Python and one ``qcore: error:`` line from the CLI;
outputs are written atomically, never over the input and, when they exist, only with
``--force``; hostile names cannot reach a shell through the DOT path; cancelling leaves no
threads or ``dot`` processes behind; a model over 2 GiB converts (slow test).
"""

from __future__ import annotations

import gc
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import onnx
import pytest
from conftest import cosine, run_model
from onnx import TensorProto, helper, numpy_helper

from qcore import files, ir_onnx, render
from qcore.cli import main
from qcore.config import ConvertConfig
from qcore.convert import NoQuantizationError, convert
from qcore.dot import to_dot
from qcore.loader import ModelError, load_graph
from qcore.passes.base import Cancelled, PassError
from qcore.status import ReasonKind

ROOT = Path(__file__).resolve().parents[1]
BAD = ROOT / "tests" / "data" / "bad"
SAMPLES = ROOT / "resources" / "samples"
HAVE_DOT = render.find_dot() is not None
needs_dot = pytest.mark.skipif(not HAVE_DOT, reason="Graphviz dot not installed")


def _load_corpus_script():
    spec = importlib.util.spec_from_file_location("make_bad_corpus", BAD / "make_bad_corpus.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


corpus = _load_corpus_script()

#: File -> (Python error, text in its message, CLI exit code of `qcore convert`).
FAILS: dict[str, tuple[type[Exception], str, int]] = {
    "empty.onnx": (ModelError, "not an ONNX model", 2),
    "random_bytes.onnx": (ModelError, "not an ONNX model", 2),
    "truncated.onnx": (ModelError, "not an ONNX model", 2),
    "fp32_only.onnx": (NoQuantizationError, "no QuantizeLinear/DequantizeLinear ops", 2),
    "dq_zero_scale.onnx": (PassError, "zero, negative or non-finite scale (conv.weight_scale)", 1),
    "dq_nan_scale.onnx": (PassError, "zero, negative or non-finite scale (conv.weight_scale)", 1),
    "dq_negative_scale.onnx": (PassError, "zero, negative or non-finite scale (x_scale)", 1),
    "per_axis_mismatch.onnx": (PassError, "3 per-axis scales (conv.weight_scale) but axis 0 of "
                               "conv.weight_quantized has 4 channels", 1),
    "external_missing.onnx": (ModelError, "'external_missing.bin' must sit beside the model", 2),
    "external_escape.onnx": (ModelError, "'../../etc/passwd': refusing a location outside", 2),
    "external_absolute.onnx": (ModelError, "'/etc/passwd': refusing a location outside", 2),
    "cycle.onnx": (ModelError, "cycle through tensor 'a': 'a' (Add(2) 'add') -> 'r'", 2),
    "dangling_input.onnx": (ModelError, "tensor 'ghost_bias' read by Conv(3) 'conv' is not "
                            "produced", 2),
    "fp16_scales.onnx": (ModelError, "QuantizeLinear(0) 'x_QuantizeLinear': its scale "
                         "'x_scale' is float16; only float32 scales are supported", 2),
    "blocked_dq.onnx": (ModelError, "DequantizeLinear(2) 'conv.weight_DequantizeLinear': "
                        "blocked quantization (block_size=4) is not supported", 2),
    "zero_size_weight.onnx": (ModelError, "reads 'conv.weight_quantized', which has no "
                              "elements (shape [4, 0, 3, 3])", 2),
    "zero_size_concat.onnx": (ModelError, "DequantizeLinear(7) 'empty_dq' reads 'empty_q', "
                              "which has no elements", 2),
}
#: Files that convert; the ones ONNX Runtime can run are compared with the quant model.
CONVERTS = ["tiny_qdq.onnx", "unsupported_op.onnx", "custom_domain_op.onnx",
            "dynamic_shapes.onnx", "external_data.onnx", "hostile_names.onnx",
            "subgraph_outer.onnx"]
#: Files whose graph loads (so `qcore info` works) although conversion fails.
LOADS = {"fp32_only.onnx", "dq_zero_scale.onnx", "dq_nan_scale.onnx", "dq_negative_scale.onnx",
         "per_axis_mismatch.onnx"}


def _err_lines(capsys) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines()
            if not line.startswith("qcore: warning:")]


def _leftovers(folder: Path) -> list[Path]:
    """Temporary files or folders an atomic write left behind."""
    return [p for p in folder.rglob("*") if p.name.endswith(".tmp") or ".tmp" in p.name]


# ---- the corpus -----------------------------------------------------------------------------


def test_corpus_is_complete_small_and_reproducible(tmp_path) -> None:
    written = corpus.make_corpus(tmp_path)
    assert {p.name for p in written} == set(corpus.CORPUS)
    for path in written:
        assert path.read_bytes() == (BAD / path.name).read_bytes(), f"{path.name} changed"
    committed = {p.name for p in BAD.iterdir() if p.is_file() and p.suffix != ".py"}
    assert committed == set(corpus.CORPUS)
    assert sum(p.stat().st_size for p in written) < 64 * 1024
    assert set(FAILS) | set(CONVERTS) | {"external_data.onnx.data"} == set(corpus.CORPUS)


@pytest.mark.parametrize("name", sorted(FAILS))
def test_bad_file_raises_our_error_naming_the_problem(name) -> None:
    error, text, _ = FAILS[name]
    with pytest.raises(error) as info:
        convert(BAD / name)
    assert type(info.value) is error
    assert text in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("name", sorted(FAILS))
def test_bad_file_gives_one_cli_error_line(name, tmp_path, capsys) -> None:
    _, text, code = FAILS[name]
    out = tmp_path / "int8.onnx"
    assert main(["convert", "--quant_model_path", str(BAD / name),
                 "--int8_model_save_path", str(out), "--fp32_model_save_path",
                 str(tmp_path / "fp32.onnx"), "--debug", str(tmp_path / "debug")]) == code
    err = _err_lines(capsys)
    assert len(err) == 1 and err[0].startswith("qcore: error: ") and text in err[0]
    assert not out.exists() and not (tmp_path / "fp32.onnx").exists()
    assert not _leftovers(tmp_path)


@pytest.mark.parametrize("name", sorted(FAILS))
def test_info_works_on_whatever_loads(name, capsys) -> None:
    code = main(["info", str(BAD / name)])
    captured = capsys.readouterr()
    if name in LOADS:
        assert code == 0 and "op ids" in captured.out
    else:
        assert code == 2 and captured.err.startswith("qcore: error: ")
        assert len(captured.err.strip().splitlines()) == 1


def test_fp32_model_info_says_it_is_not_a_quant_model(capsys) -> None:
    assert main(["info", str(BAD / "fp32_only.onnx")]) == 0
    out = capsys.readouterr().out
    assert "not a quant model" in out and "Conv(0)" in out


def _feeds(model: onnx.ModelProto, batch: int = 1, size: int = 8) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(3)
    return {model.graph.input[0].name: rng.standard_normal((batch, 8, size, size))
            .astype(np.float32)}


@pytest.mark.parametrize("name", CONVERTS)
def test_odd_but_valid_models_convert(name, tmp_path, capsys) -> None:
    result = convert(BAD / name)
    int8 = result.int8_model()
    onnx.checker.check_model(int8)
    conv = next(n for n in result.decisions if n.op_type == "Conv")
    if name == "subgraph_outer.onnx":  # an If reads its output raw: ONNX Runtime runs it float
        assert conv.status == "fp32" and conv.reason.kind is ReasonKind.MISSING_SCALE
    else:
        assert conv.status == "int8"
    out = tmp_path / "int8.onnx"
    assert main(["convert", "--quant_model_path", str(BAD / name),
                 "--int8_model_save_path", str(out), "-q"]) == 0
    assert not _err_lines(capsys)
    if name == "custom_domain_op.onnx":  # ONNX Runtime cannot run com.example::Mystery
        assert {o.domain for o in int8.opset_import} == {"", "com.example"}
        return
    quant = BAD / name
    feeds = _feeds(onnx.load(str(quant), load_external_data=False))
    assert cosine(run_model(quant, feeds)[0], run_model(out, feeds)[0]) > 0.999


@pytest.mark.parametrize("name,op", [("unsupported_op.onnx", "Sin"),
                                     ("custom_domain_op.onnx", "Mystery")])
def test_unsupported_op_stays_fp32_with_its_reason(name, op, capsys) -> None:
    result = convert(BAD / name)
    reason = result.fp32_reasons()[next(n.id for n in result.decisions if n.op_type == op)]
    assert reason.kind is ReasonKind.NO_KERNEL and reason == "no INT8 kernel for this op type"
    assert op in {n.op_type for n in result.int8_model().graph.node}
    assert main(["info", str(BAD / name)]) == 0


def test_dynamic_shapes_stay_dynamic(tmp_path) -> None:
    int8 = convert(BAD / "dynamic_shapes.onnx").int8_model()
    dims = int8.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in dims] == ["N", 8, "H", "W"]
    quant = onnx.load(str(BAD / "dynamic_shapes.onnx"))
    for batch, size in ((1, 8), (3, 13)):
        feeds = _feeds(quant, batch, size)
        got = run_model(int8, feeds)[0]
        assert got.shape == (batch, 4, size, size)
        assert cosine(run_model(quant, feeds)[0], got) > 0.999


# ---- external data ----------------------------------------------------------------------------


def _external_copy(tmp_path: Path) -> Path:
    for name in ("external_data.onnx", corpus.EXTERNAL_DATA):
        shutil.copy(BAD / name, tmp_path / name)
    return tmp_path / "external_data.onnx"


def test_external_data_beside_the_model_loads(tmp_path) -> None:
    graph = load_graph(_external_copy(tmp_path))
    assert graph.initializers["conv.weight_quantized"].shape == (4, 8, 3, 3)


def test_missing_external_data_is_a_clear_error(tmp_path) -> None:
    model = _external_copy(tmp_path)
    (tmp_path / corpus.EXTERNAL_DATA).unlink()
    with pytest.raises(ModelError, match=r"external data of tensor 'conv.weight_quantized' is "
                                         r"missing: 'external_data.onnx.data' must sit beside"):
        load_graph(model)


def test_short_external_data_is_a_clear_error(tmp_path) -> None:
    model = _external_copy(tmp_path)
    (tmp_path / corpus.EXTERNAL_DATA).write_bytes(b"\0" * 10)
    with pytest.raises(ModelError, match="holds 10 bytes, too few for 288 bytes at offset 0"):
        load_graph(model)


def test_external_data_through_a_symlink_out_of_the_folder_is_refused(tmp_path) -> None:
    secret = tmp_path / "secret.bin"
    secret.write_bytes(bytes(range(256)) * 2)
    folder = tmp_path / "model"
    folder.mkdir()
    model = _external_copy(folder)
    (folder / corpus.EXTERNAL_DATA).unlink()
    (folder / corpus.EXTERNAL_DATA).symlink_to(secret)
    with pytest.raises(ModelError, match="leads outside the model's folder: refused"):
        load_graph(model)


@pytest.mark.parametrize("location", ["../../etc/passwd", "/etc/passwd", "sub/../../x.bin",
                                      "C:\\Windows\\win.ini", "\\\\server\\share\\x.bin",
                                      "..\\x.bin"])
def test_external_data_outside_the_folder_is_refused(location, tmp_path) -> None:
    model = corpus._external(corpus.tiny_qdq(), location)
    path = tmp_path / "m.onnx"
    path.write_bytes(model.SerializeToString())
    with pytest.raises(ModelError, match="refusing a location outside the model's folder"):
        load_graph(path)


# ---- hostile names, DOT and Graphviz ----------------------------------------------------------


def _hostile(tmp_path: Path) -> tuple[Path, Path]:
    canary = tmp_path / "pwned"
    path = tmp_path / "hostile.onnx"
    path.write_bytes(corpus.hostile_names(str(canary)).SerializeToString())
    return path, canary


def test_no_shell_anywhere_in_qcore_or_the_app() -> None:
    sources = "\n".join(p.read_text() for folder in ("qcore", "app")
                        for p in (ROOT / folder).rglob("*.py"))
    for pattern in ("shell=True", "os.system(", "os.popen(", "getoutput(", "getstatusoutput("):
        assert pattern not in sources


def test_dot_text_escapes_hostile_names(tmp_path) -> None:
    path, _ = _hostile(tmp_path)
    for snap in convert(path).snapshots:
        text = to_dot(snap.graph, title=snap.stem)
        body = [line for line in text.splitlines()[4:-1]
                if line.strip() and not line.strip().startswith("//")]
        for line in body:  # every statement is on one line, every string closed
            assert line.rstrip().endswith(("];", ";", "{", "}")), line
            assert "\x1b" not in line and "\r" not in line and "\t" not in line
        assert [line for line in text.splitlines() if "digraph" in line.split('"')[0]] == [
            "digraph G {"]


@needs_dot
def test_graphviz_renders_hostile_names_and_runs_no_command(tmp_path, monkeypatch) -> None:
    path, canary = _hostile(tmp_path)
    calls = []
    real_popen = subprocess.Popen

    def spy(argv, *args, **kwargs):
        calls.append((argv, kwargs))
        return real_popen(argv, *args, **kwargs)

    monkeypatch.setattr(render.subprocess, "Popen", spy)
    result = convert(path)
    for snap in (result.snapshots[0], result.snapshots[-1]):
        layout = render.layout_json(to_dot(snap.graph, title=snap.stem))
        names = {o["name"] for o in layout.get("objects", []) if "name" in o}
        ops = {n for n in names if n.startswith("op_")}
        assert ops == {f"op_{n.id}" for n in snap.graph.nodes}, "no node was injected"
        assert not any("evil" in n or n in ("x", "y") for n in names)
    svg = render.render(to_dot(result.snapshots[-1].graph), "svg").decode()
    assert "pwned" in svg  # the names are shown as text ...
    assert not canary.exists()  # ... and never run
    assert calls and all(isinstance(argv, list) and kwargs.get("shell") is False
                         for argv, kwargs in calls)
    assert all(len(argv) == 2 and argv[1].startswith("-T") for argv, _ in calls)


@needs_dot
def test_cli_dot_and_debug_with_hostile_names(tmp_path, capsys) -> None:
    path, canary = _hostile(tmp_path)
    for suffix in ("svg", "png", "dot"):
        assert main(["dot", str(path), "-o", str(tmp_path / f"g.{suffix}")]) == 0
    assert main(["convert", "--quant_model_path", str(path), "--int8_model_save_path",
                 str(tmp_path / "i.onnx"), "--debug", str(tmp_path / "dbg"), "-q"]) == 0
    for dot_file in (tmp_path / "dbg").glob("*.dot"):
        render.render(dot_file.read_text(), "svg")
    assert not canary.exists()
    assert not Path(corpus.CANARY).exists()
    assert main(["dot", str(BAD / "hostile_names.onnx"), "-o", str(tmp_path / "c.svg")]) == 0
    assert not Path(corpus.CANARY).exists()


@pytest.mark.parametrize("fmt", ["svg -o /tmp/x", "svg; touch x", "png|sh", "-Tsvg"])
def test_render_format_cannot_smuggle_arguments(fmt) -> None:
    with pytest.raises(ValueError, match="unsupported Graphviz format"):
        render.render("digraph G {}", fmt)


def test_info_output_has_no_control_characters(capsys) -> None:
    assert main(["info", str(BAD / "hostile_names.onnx")]) == 0
    out = capsys.readouterr().out
    assert not [ch for ch in out if ord(ch) < 32 and ch != "\n" or ord(ch) == 127]
    header = out.split("op ids (use them with --op_ids_to_skip):\n")[0]
    assert len(out.splitlines()) == len(header.splitlines()) + 1 + 7  # one line per op


# ---- cycles, dangling inputs, odd wiring ----------------------------------------------------


def _tiny_with(edit) -> onnx.ModelProto:
    model = corpus.tiny_qdq()
    edit(model.graph)
    return model


def test_ops_out_of_order_are_sorted_with_a_warning() -> None:
    model = _tiny_with(lambda g: g.node.reverse())
    result = convert(model)
    assert any("topological order" in w for w in result.warnings)
    assert {n.id for n in result.decisions if n.status == "int8"} == {3}


def test_doubly_written_tensor_and_missing_output_name_it() -> None:
    def twice(g: onnx.GraphProto) -> None:
        g.node[1].output[0] = "x_q"

    with pytest.raises(ModelError, match="tensor 'x_q' is written by two ops"):
        load_graph(_tiny_with(twice))

    def no_output(g: onnx.GraphProto) -> None:
        g.output[0].name = "nowhere"

    with pytest.raises(ModelError, match="graph output 'nowhere' is not produced"):
        load_graph(_tiny_with(no_output))


def test_op_with_missing_inputs_is_named() -> None:
    def drop(g: onnx.GraphProto) -> None:
        del g.node[3].input[1:]

    with pytest.raises(ModelError, match=r"Conv\(3\) 'conv' has 1 inputs; Conv \(opset 13\) "
                                         r"takes 2 to 3"):
        load_graph(_tiny_with(drop))


def test_per_tensor_scale_stored_as_a_one_element_vector() -> None:
    def widen(g: onnx.GraphProto) -> None:
        for init in g.initializer:
            if init.name in ("x_scale", "x_zp", "y_scale", "y_zp"):
                init.dims.append(1)

    model = _tiny_with(widen)
    result = convert(model)
    assert {n.op_type for n in result.decisions if n.status == "int8"} == {"Conv"}
    feeds = _feeds(model)
    assert cosine(run_model(model, feeds)[0], run_model(result.int8_model(), feeds)[0]) > 0.999


def test_conv_with_a_non_constant_bias_converts() -> None:
    def bias_input(g: onnx.GraphProto) -> None:
        bias = next(t for t in g.initializer if t.name == "conv.bias")
        g.initializer.remove(bias)
        g.input.append(helper.make_tensor_value_info("conv.bias", TensorProto.FLOAT, [4]))

    model = _tiny_with(bias_input)
    result = convert(model)
    ramp = np.linspace(-1, 1, 8 * 8 * 8, dtype=np.float32).reshape(1, 8, 8, 8)
    feeds = {"x": ramp, "conv.bias": np.array([0.5, -0.25, 1.0, 0.0], np.float32)}
    expected = run_model(model, feeds)[0]
    for written in (result.int8_model(), result.fp32_model()):
        onnx.checker.check_model(written)
        assert cosine(run_model(written, feeds)[0], expected) > 0.999  # the bias fed is used


def test_quantize_of_an_integer_input_gives_a_valid_model() -> None:
    model = corpus.tiny_qdq()
    model.graph.input[0].type.tensor_type.elem_type = TensorProto.INT32
    onnx.checker.check_model(model, full_check=True)
    result = convert(model)
    onnx.checker.check_model(result.int8_model(), full_check=True)
    onnx.checker.check_model(result.fp32_model(), full_check=True)


# ---- outputs: never the input, atomic, --force ------------------------------------------------


def _paddle_copy(tmp_path: Path) -> Path:
    folder = tmp_path / "paddle"
    shutil.copytree(ROOT / "tests" / "data" / "paddle" / "cnn_ptq", folder)
    return folder


def _command(kind: str, tmp_path: Path, target: Path) -> list[str]:
    quant = str(SAMPLES / "cnn_qdq.onnx")
    return {
        "convert": ["convert", "--quant_model_path", quant, "--int8_model_save_path",
                    str(target), "-q"],
        "convert-fp32": ["convert", "--quant_model_path", quant, "--int8_model_save_path",
                         str(tmp_path / "other.onnx"), "--fp32_model_save_path", str(target)],
        "dot": ["dot", quant, "-o", str(target)],
        "bench-json": ["bench", "--quant", quant, "--engine", "onnxruntime", "--iters", "1",
                       "--warmup", "0", "--json", str(target), "-q"],
        "bench-csv": ["bench", "--quant", quant, "--engine", "onnxruntime", "--iters", "1",
                      "--warmup", "0", "--csv", str(target), "-q"],
        "advise": ["advise", "--quant_model_path", quant, "--json", str(target), "-q"],
        "import-paddle": ["import-paddle", "--model_dir", str(_paddle_copy(tmp_path)), "-o",
                          str(target)],
    }[kind]


KINDS = ["convert", "convert-fp32", "dot", "bench-json", "bench-csv", "advise", "import-paddle"]
SUFFIX = {"dot": ".dot", "bench-json": ".json", "bench-csv": ".csv", "advise": ".json"}


@pytest.mark.parametrize("kind", KINDS)
def test_existing_output_needs_force(kind, tmp_path, capsys, monkeypatch) -> None:
    target = tmp_path / f"existing{SUFFIX.get(kind, '.onnx')}"
    target.write_bytes(b"keep me")
    command = _command(kind, tmp_path, target)

    def the_work(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the model was read: the refusal came after the work")

    from qcore import convert as convert_module
    from qcore.bench import command as bench_command
    from qcore.paddle import importer  # it binds read_program when first imported

    if kind.startswith("bench"):  # it checks the models are ONNX, then the outputs
        monkeypatch.setattr(convert_module, "convert", the_work)
        monkeypatch.setattr(bench_command, "run_benchmark", the_work)
    else:  # refused before the model (ONNX or Paddle) is even read
        monkeypatch.setattr(onnx, "load", the_work)
        monkeypatch.setattr(importer, "read_program", the_work)
    assert main(command) == 2
    err = _err_lines(capsys)
    assert len(err) == 1 and "exists; pass --force to replace it" in err[0]
    assert target.read_bytes() == b"keep me"


@pytest.mark.parametrize("kind", ["convert", "dot", "import-paddle"])
def test_force_replaces_an_existing_output(kind, tmp_path, capsys) -> None:
    target = tmp_path / f"existing{SUFFIX.get(kind, '.onnx')}"
    target.write_bytes(b"old")
    assert main(_command(kind, tmp_path, target) + ["--force"]) == 0
    assert target.read_bytes() != b"old" and not _leftovers(tmp_path)


@pytest.mark.parametrize("kind", ["convert", "convert-fp32", "dot", "bench-json", "advise"])
def test_the_input_model_is_never_an_output(kind, tmp_path, capsys) -> None:
    quant = tmp_path / "q.onnx"
    shutil.copy(SAMPLES / "cnn_qdq.onnx", quant)
    argv = [str(quant) if a == str(SAMPLES / "cnn_qdq.onnx") else a
            for a in _command(kind, tmp_path, quant)]
    before = quant.read_bytes()
    assert main(argv + ["--force"]) == 2
    assert "refusing to overwrite the input model" in _err_lines(capsys)[0]
    assert quant.read_bytes() == before


@pytest.mark.parametrize("victim", ["model.pdmodel", "model.pdiparams"])
def test_files_of_a_paddle_input_are_never_outputs(victim, tmp_path, capsys) -> None:
    folder = _paddle_copy(tmp_path)
    before = (folder / victim).read_bytes()
    for argv in (["import-paddle", "--model_dir", str(folder), "-o", str(folder / victim)],
                 ["convert", "--quant_model_path", str(folder), "--int8_model_save_path",
                  str(folder / victim)],
                 ["convert", "--quant_model_path", str(folder / "model.pdmodel"),
                  "--int8_model_save_path", str(folder / victim)]):
        if argv[-1] == argv[-3]:
            continue
        assert main(argv + ["--force"]) == 2
        assert "refusing to overwrite" in _err_lines(capsys)[0]
    assert (folder / victim).read_bytes() == before
    assert main(["convert", "--quant_model_path", str(folder), "--int8_model_save_path",
                 str(folder / "int8.onnx"), "-q"]) == 0


def test_external_data_of_the_input_is_never_an_output(tmp_path, capsys) -> None:
    model = _external_copy(tmp_path)
    data = tmp_path / corpus.EXTERNAL_DATA
    before = data.read_bytes()
    assert main(["convert", "--quant_model_path", str(model), "--int8_model_save_path",
                 str(data), "--force"]) == 2
    assert "refusing to overwrite a file of" in _err_lines(capsys)[0]
    assert data.read_bytes() == before


class _Boom(OSError):
    pass


def _failing_open(real_open, after: int):
    """An os.fdopen / open whose handles fail after writing ``after`` bytes."""

    class Handle:
        def __init__(self, handle) -> None:
            self.handle, self.written = handle, 0

        def write(self, data: bytes) -> int:
            room = max(0, after - self.written)
            self.handle.write(data[:room])
            self.written += min(room, len(data))
            if len(data) > room:
                raise _Boom(28, "No space left on device")
            return len(data)

        def __getattr__(self, name: str):
            return getattr(self.handle, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc: object) -> None:
            self.handle.close()

    def opener(*args, **kwargs):
        return Handle(real_open(*args, **kwargs))

    return opener


def test_a_failed_write_leaves_the_old_file_and_no_temp_file(tmp_path, monkeypatch) -> None:
    """The one atomic writer every output goes through (models, reports, .dot/.svg/.png)."""
    target = tmp_path / "out.bin"
    target.write_bytes(b"old contents")
    monkeypatch.setattr(files.os, "fdopen", _failing_open(os.fdopen, after=100))
    with pytest.raises(_Boom):
        files.write_bytes_atomic(target, b"x" * 10_000)
    assert target.read_bytes() == b"old contents"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


def test_a_failed_convert_write_leaves_no_output(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setattr(files.os, "fdopen", _failing_open(os.fdopen, after=1000))
    out = tmp_path / "int8.onnx"
    assert main(["convert", "--quant_model_path", str(SAMPLES / "cnn_qdq.onnx"),
                 "--int8_model_save_path", str(out)]) == 2
    assert "No space left on device" in _err_lines(capsys)[0]
    assert list(tmp_path.iterdir()) == []


def test_a_failed_external_data_write_leaves_nothing(tmp_path, monkeypatch) -> None:
    model = convert(SAMPLES / "cnn_qdq.onnx").int8_model()
    import builtins

    monkeypatch.setattr(builtins, "open", _failing_open(builtins.open, after=5000))
    with pytest.raises(_Boom):
        files.save_model(model, tmp_path / "int8.onnx", external_data=True)
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []
    real_replace, calls = os.replace, []

    def replace_then_fail(src, dst):
        calls.append(dst)
        if len(calls) == 2:
            raise _Boom(5, "I/O error")
        return real_replace(src, dst)

    monkeypatch.setattr(files.os, "replace", replace_then_fail)
    with pytest.raises(_Boom):
        files.save_model(model, tmp_path / "int8.onnx", external_data=True)
    assert not (tmp_path / "int8.onnx").exists() and not _leftovers(tmp_path)


# ---- models over 2 GiB ----------------------------------------------------------------------


def test_big_models_are_saved_with_external_data(tmp_path, monkeypatch, capsys) -> None:
    """The 2 GiB logic with the limits scaled down (the real size is the slow test below)."""
    monkeypatch.setattr(files, "MAX_PROTO_BYTES", 20_000)
    monkeypatch.setattr(ir_onnx, "BIG_TENSOR_BYTES", 1024)
    monkeypatch.setattr(ir_onnx, "SHAPE_INFERENCE_MAX_BYTES", 4096)
    quant = SAMPLES / "cnn_qdq.onnx"
    out = tmp_path / "int8.onnx"
    assert main(["convert", "--quant_model_path", str(quant), "--int8_model_save_path",
                 str(out), "--fp32_model_save_path", str(tmp_path / "fp32.onnx"), "-q"]) == 0
    names = sorted(p.name for p in tmp_path.iterdir())
    assert [re.sub(r"\.[0-9a-f]{16}\.data$", ".<hash>.data", n) for n in names] == [
        "fp32.onnx", "fp32.onnx.<hash>.data", "int8.onnx", "int8.onnx.<hash>.data"]
    data = next(tmp_path.glob("int8.onnx.*.data"))
    assert out.stat().st_size < 20_000 < data.stat().st_size
    onnx.checker.check_model(str(out))
    monkeypatch.undo()
    graph = load_graph(out)
    assert any(a.dtype == np.int8 and a.size > 1000 for a in graph.initializers.values())
    plain = convert(quant).int8_model()
    feeds = {plain.graph.input[0].name:
             np.random.default_rng(0).standard_normal((1, 3, 32, 32), np.float32)}
    assert np.array_equal(run_model(out, feeds)[0], run_model(plain, feeds)[0])


def test_shapes_of_big_models_are_inferred_without_their_weights(monkeypatch) -> None:
    quant = SAMPLES / "cnn_qdq.onnx"
    expected = load_graph(quant).tensors
    views = []
    real_view = ir_onnx._shape_view

    def spy(model, arrays):
        views.append(real_view(model, arrays))
        return views[-1]

    monkeypatch.setattr(ir_onnx, "_shape_view", spy)
    monkeypatch.setattr(ir_onnx, "BIG_TENSOR_BYTES", 1024)
    monkeypatch.setattr(ir_onnx, "SHAPE_INFERENCE_MAX_BYTES", 4096)
    assert load_graph(quant).tensors == expected
    assert views and len(views[0].graph.initializer) < len(onnx.load(str(quant)).graph.initializer)


def test_save_model_does_not_change_the_model(tmp_path) -> None:
    model = convert(SAMPLES / "cnn_qdq.onnx").int8_model()
    before = model.SerializeToString()
    files.save_model(model, tmp_path / "m.onnx", external_data=True)
    assert model.SerializeToString() == before


def _slow_selected(config: pytest.Config) -> bool:
    expr = (config.getoption("markexpr") or "").replace("not slow", "")
    return "slow" in expr or bool(os.environ.get("QCORE_SLOW"))


def _huge_quant_model(folder: Path, rows: int) -> Path:
    """Gather(rows x 64 float table) -> Q/DQ -> MatMul(int8 W) -> Q/DQ, the table stored as
    external data in a sparse file (zeros), so it costs no disk and no time to write."""
    rng = np.random.default_rng(0)
    table = TensorProto(name="table", data_type=TensorProto.FLOAT, dims=[rows, 64])
    table.data_location = TensorProto.EXTERNAL
    for key, value in (("location", "huge.onnx.data"), ("offset", "0"),
                       ("length", str(rows * 64 * 4))):
        entry = table.external_data.add()
        entry.key, entry.value = key, value
    weight = rng.integers(-127, 128, (64, 32)).astype(np.int8)
    inits = [table, numpy_helper.from_array(weight, "w_q"),
             numpy_helper.from_array(np.full(32, 0.01, np.float32), "w_s"),
             numpy_helper.from_array(np.zeros(32, np.int8), "w_z"),
             numpy_helper.from_array(np.array(0.05, np.float32), "s"),
             numpy_helper.from_array(np.array(128, np.uint8), "z")]
    nodes = [
        helper.make_node("Gather", ["table", "ids"], ["g"]),
        helper.make_node("QuantizeLinear", ["g", "s", "z"], ["g_q"]),
        helper.make_node("DequantizeLinear", ["g_q", "s", "z"], ["g_dq"]),
        helper.make_node("DequantizeLinear", ["w_q", "w_s", "w_z"], ["w"], axis=1),
        helper.make_node("MatMul", ["g_dq", "w"], ["m"]),
        helper.make_node("QuantizeLinear", ["m", "s", "z"], ["m_q"]),
        helper.make_node("DequantizeLinear", ["m_q", "s", "z"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes, "huge", [helper.make_tensor_value_info("ids", TensorProto.INT64, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 32])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    path = folder / "huge.onnx"
    path.write_bytes(model.SerializeToString())
    with open(folder / "huge.onnx.data", "wb") as handle:
        handle.truncate(rows * 64 * 4)
    return path


@pytest.mark.slow
def test_a_model_over_2_gib_converts_with_external_data(tmp_path, request, capsys) -> None:
    """About 40 s, 2.2 GB of disk and 9 GB of memory: run with ``pytest -m slow``."""
    if not _slow_selected(request.config):
        pytest.skip("slow (a 2.1 GB model): run with -m slow or QCORE_SLOW=1")
    rows = (2**31 + 2**20) // 256  # one float table of 2 GiB + 1 MiB: no proto can hold it
    quant = _huge_quant_model(tmp_path, rows)
    out = tmp_path / "out" / "int8.onnx"
    assert main(["convert", "--quant_model_path", str(quant), "--int8_model_save_path",
                 str(out), "-q"]) == 0
    assert not _err_lines(capsys)
    data = next(out.parent.glob("int8.onnx.*.data"))
    assert out.stat().st_size < 1 << 20 and data.stat().st_size >= rows * 256
    onnx.checker.check_model(str(out))
    header = onnx.load(str(out), load_external_data=False)
    assert {n.op_type for n in header.graph.node} & {"QLinearMatMul", "MatMulIntegerToFloat"}
    gc.collect()
    got = run_model(out, {"ids": np.array([[0, 1, rows - 1, 7]], np.int64)})[0]
    assert got.shape == (1, 4, 32)


# ---- cancellation: no stray threads or processes ------------------------------------------


def _native_threads() -> int:
    return len(os.listdir("/proc/self/task")) if Path("/proc/self/task").exists() else 0


def _dot_children() -> list[tuple[int, str, str]]:
    """(pid, command, state) of this process's children that are Graphviz (zombies too)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        command = stat[stat.index("(") + 1: stat.rindex(")")]
        state, ppid = stat[stat.rindex(")") + 2:].split()[:2]
        if int(ppid) == os.getpid() and command == "dot":
            found.append((int(entry.name), command, state))
    return found


def _thread_state() -> tuple[set[threading.Thread], int]:
    return set(threading.enumerate()), _native_threads()


def _assert_no_new_threads(before: tuple[set[threading.Thread], int],
                           native_too: bool = True) -> None:
    """No Python thread started since ``before`` is still alive, and the process has no more
    native threads than then (threads of earlier tests may end meanwhile)."""
    threads, native = before
    assert not [t for t in threading.enumerate() if t not in threads]
    if native_too:
        assert _native_threads() <= native


def test_cancelled_conversion_stops_between_passes_without_threads() -> None:
    model = onnx.load(str(SAMPLES / "cnn_qdq.onnx"))
    convert(model)
    total = len(convert(model).snapshots) - 1
    before = _thread_state()
    for stop_at in range(total + 1):
        calls = []

        def cancelled(stop_at: int = stop_at, calls: list = calls) -> bool:
            calls.append(1)
            return len(calls) > stop_at

        done: list[int] = []
        if stop_at < total:
            with pytest.raises(Cancelled):
                convert(model, ConvertConfig(), progress=lambda d, t, n, done=done: done.append(d),
                        cancelled=cancelled)
            assert done == list(range(1, stop_at + 1)), "stopped right after the pass it was in"
        else:
            convert(model, cancelled=cancelled)
    gc.collect()
    _assert_no_new_threads(before)


def test_cancelled_cli_conversion_is_one_line(tmp_path, monkeypatch, capsys) -> None:
    import qcore.cli as cli

    def interrupted(*args, **kwargs):
        raise Cancelled("cancelled before pass squash")

    monkeypatch.setattr(cli, "convert", interrupted)
    out = tmp_path / "int8.onnx"
    assert main(["convert", "--quant_model_path", str(SAMPLES / "cnn_qdq.onnx"),
                 "--int8_model_save_path", str(out)]) == 1
    assert _err_lines(capsys) == ["qcore: error: cancelled before pass squash"]
    assert not out.exists()


def test_cancelled_benchmark_leaves_no_threads(tmp_path) -> None:
    from qcore.bench import BenchSettings, run_benchmark
    from qcore.bench.errors import BenchCancelled

    int8 = tmp_path / "int8.onnx"
    files.save_model(convert(BAD / "tiny_qdq.onnx").int8_model(), int8)
    models = {"qdq": BAD / "tiny_qdq.onnx", "int8": int8}
    settings = BenchSettings(engines=["onnxruntime"], threads=[1, 2], warmup=2, iters=50)
    run_benchmark(models, BenchSettings(engines=["onnxruntime"], iters=3, warmup=1))
    gc.collect()
    before = _thread_state()
    for stop_after in (0, 3, 40, 120):
        polls = []

        def cancelled(stop_after: int = stop_after, polls: list = polls) -> bool:
            polls.append(1)
            return len(polls) > stop_after

        with pytest.raises(BenchCancelled):
            run_benchmark(models, settings, cancelled=cancelled)
    gc.collect()
    _assert_no_new_threads(before)


@needs_dot
def test_render_timeout_kills_dot_and_leaves_no_process() -> None:
    rng = np.random.default_rng(0)
    edges = rng.integers(0, 3000, (12000, 2))
    text = "digraph G {\n" + "".join(f"  n{a} -> n{b};\n" for a, b in edges) + "}\n"
    assert not _dot_children()
    with pytest.raises(RuntimeError, match="did not finish within 0.3 s"):
        render.render(text, "svg", timeout=0.3)
    assert not _dot_children(), "the timed-out dot was killed and reaped"


@needs_dot
def test_render_from_many_threads_leaves_no_process() -> None:
    before = _thread_state()
    errors: list[BaseException] = []

    def work() -> None:
        try:
            render.render("digraph G { a -> b }", "svg", timeout=30)
        except BaseException as exc:  # noqa: BLE001 - collected and re-raised below
            errors.append(exc)

    workers = [threading.Thread(target=work) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(30)
    assert not errors and not _dot_children()
    # Python threads only: a joined thread's native stack may take a moment to go away
    _assert_no_new_threads(before, native_too=False)


# ---- the CLI's last line of defence -----------------------------------------------------------


def test_an_internal_error_is_still_one_line(monkeypatch, capsys) -> None:
    import qcore.cli as cli

    def broken(args):
        raise TypeError("unsupported operand\nsecond line")

    monkeypatch.setitem(cli.COMMANDS, "info", broken)
    monkeypatch.delenv("QCORE_TRACEBACK", raising=False)
    assert main(["info", "x.onnx"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("qcore: error: internal error (TypeError: "
                                               "unsupported operand second line)")


def test_ctrl_c_is_one_line(monkeypatch, capsys) -> None:
    import qcore.cli as cli

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setitem(cli.COMMANDS, "info", interrupted)
    assert main(["info", "x.onnx"]) == 130
    assert capsys.readouterr().err == "qcore: error: interrupted\n"


def test_library_warnings_are_one_line_each(monkeypatch, capsys) -> None:
    import qcore.cli as cli

    def noisy(args):
        np.array([3e38], np.float64).astype(np.float16)
        return 0

    monkeypatch.setitem(cli.COMMANDS, "info", noisy)
    assert main(["info", "x.onnx"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert err and all(line.startswith("qcore: warning: RuntimeWarning: ") for line in err)


def test_the_cli_runs_as_a_program_with_one_error_line(tmp_path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "qcore.cli", "convert", "--quant_model_path",
         str(BAD / "cycle.onnx"), "--int8_model_save_path", str(tmp_path / "o.onnx")],
        capture_output=True, text=True, cwd=ROOT, timeout=120, check=False)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("qcore: error: ")
