"""Fuzz the loader and the pipeline with corrupted variants of the sample models (issue 6).

Every case starts from a sample model and applies one to three seeded mutations: bit flips,
truncation and spliced bytes on the serialized protobuf, or field-level edits made with the
protobuf API (wrong data types, missing inputs, shuffled or dropped nodes, dropped
initializers, odd attributes, bad scales, external data pointing anywhere, ...). The only
outcomes allowed are success, or one of qcore's own errors; never a raw protobuf / onnx /
numpy exception, a hang or a crash.

The seed is fixed, so every run tries the same cases; ``QCORE_FUZZ_CASES=20000`` and
``QCORE_FUZZ_SEED=<n>`` try more locally, ``QCORE_FUZZ_KEEP=<folder>`` keeps a failing model.
"""

from __future__ import annotations

import os
import random
import shutil
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from qcore.convert import NoQuantizationError, convert
from qcore.ir import GraphError
from qcore.loader import ModelError
from qcore.passes.base import PassError

ROOT = Path(__file__).resolve().parents[1]
SOURCES = [
    ROOT / "resources" / "samples" / "cnn_qdq.onnx",
    ROOT / "resources" / "samples" / "transformer_qdq.onnx",
    ROOT / "tests" / "data" / "bad" / "tiny_qdq.onnx",
]
CASES = int(os.environ.get("QCORE_FUZZ_CASES", "1000"))
SEED = int(os.environ.get("QCORE_FUZZ_SEED", "20240606"))
#: qcore's own errors: the only exceptions a corrupted model may raise.
OUR_ERRORS = (ModelError, NoQuantizationError, PassError, GraphError)

Mutation = Callable[[random.Random, bytes], bytes]


# ---- byte-level mutations -------------------------------------------------------------------


def flip_bits(rng: random.Random, data: bytes) -> bytes:
    if not data:
        return data
    out = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        pos = rng.randrange(len(out))
        out[pos] ^= 1 << rng.randrange(8)
    return bytes(out)


def truncate(rng: random.Random, data: bytes) -> bytes:
    if not data:
        return data
    return data[: rng.randrange(len(data))]


def splice(rng: random.Random, data: bytes) -> bytes:
    if not data:
        return data
    start = rng.randrange(len(data))
    if rng.random() < 0.5:
        return data[:start] + data[start + rng.randint(1, 64):]
    junk = bytes(rng.randrange(256) for _ in range(rng.randint(1, 32)))
    return data[:start] + junk + data[start:]


# ---- field-level mutations ------------------------------------------------------------------


def _pick(rng: random.Random, items):
    return items[rng.randrange(len(items))] if len(items) else None


def _scales(model: onnx.ModelProto) -> list[onnx.TensorProto]:
    return [t for t in model.graph.initializer if "scale" in t.name] or list(
        model.graph.initializer)


def wrong_dtype(rng: random.Random, model: onnx.ModelProto) -> None:
    tensor = _pick(rng, model.graph.initializer)
    if tensor is not None:
        tensor.data_type = rng.choice([t for t in range(1, 24) if t != tensor.data_type])


def wrong_dims(rng: random.Random, model: onnx.ModelProto) -> None:
    tensor = _pick(rng, model.graph.initializer)
    if tensor is not None:
        del tensor.dims[:]
        tensor.dims.extend(rng.randint(0, 9) for _ in range(rng.randint(0, 4)))


def drop_input(rng: random.Random, model: onnx.ModelProto) -> None:
    node = _pick(rng, [n for n in model.graph.node if n.input])
    if node is not None:
        index = rng.randrange(len(node.input))
        if rng.random() < 0.5:
            del node.input[index]
        else:
            node.input[index] = ""


def shuffle_nodes(rng: random.Random, model: onnx.ModelProto) -> None:
    nodes = list(model.graph.node)
    rng.shuffle(nodes)
    del model.graph.node[:]
    model.graph.node.extend(nodes)


def drop_initializer(rng: random.Random, model: onnx.ModelProto) -> None:
    if model.graph.initializer:
        del model.graph.initializer[rng.randrange(len(model.graph.initializer))]


def drop_node(rng: random.Random, model: onnx.ModelProto) -> None:
    if model.graph.node:
        del model.graph.node[rng.randrange(len(model.graph.node))]


def duplicate_node(rng: random.Random, model: onnx.ModelProto) -> None:
    node = _pick(rng, model.graph.node)
    if node is not None:
        model.graph.node.insert(rng.randrange(len(model.graph.node) + 1), node)


def change_op_type(rng: random.Random, model: onnx.ModelProto) -> None:
    node = _pick(rng, model.graph.node)
    if node is not None:
        node.op_type = rng.choice(["Conv", "MatMul", "Gemm", "Add", "Concat", "Relu", "Reshape",
                                   "QuantizeLinear", "DequantizeLinear", "Transpose", "Gather",
                                   "MaxPool", "Resize", "Softmax", "NoSuchOp", ""])


def odd_attribute(rng: random.Random, model: onnx.ModelProto) -> None:
    node = _pick(rng, model.graph.node)
    if node is None:
        return
    name = rng.choice(["axis", "group", "kernel_shape", "pads", "strides", "transB", "perm",
                       "alpha", "block_size", "saturate", "to"])
    value = rng.choice([rng.randint(-6, 6), [rng.randint(-3, 9) for _ in range(rng.randint(1, 5))],
                        1.5, "text", [0.5, 2.0]])
    for index, attr in enumerate(node.attribute):
        if attr.name == name:
            del node.attribute[index]
            break
    node.attribute.append(helper.make_attribute(name, value))


def bad_scale(rng: random.Random, model: onnx.ModelProto) -> None:
    tensor = _pick(rng, _scales(model))
    if tensor is None:
        return
    value = rng.choice([0.0, -1.0, float("nan"), float("inf"), 1e-45, 3e38])
    try:
        array = numpy_helper.to_array(tensor)
    except Exception:  # noqa: BLE001 - an earlier mutation broke it; leave it broken
        return
    array = np.full(array.shape, value, dtype=np.float32)
    tensor.CopyFrom(numpy_helper.from_array(array, tensor.name))


def odd_zero_point(rng: random.Random, model: onnx.ModelProto) -> None:
    tensor = _pick(rng, [t for t in model.graph.initializer if "zero_point" in t.name
                         or t.name.endswith("_zp")])
    if tensor is None:
        return
    dtype = rng.choice([np.float32, np.int32, np.int16, np.uint16])
    shape = rng.choice([(), (3,), (2, 2)])
    tensor.CopyFrom(numpy_helper.from_array(np.zeros(shape, dtype), tensor.name))


def odd_opset(rng: random.Random, model: onnx.ModelProto) -> None:
    default = next((o for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    if default is not None and rng.random() < 0.8:
        default.version = rng.choice([1, 6, 9, 10, 30, 999])
    else:
        del model.opset_import[:]


def rename_tensor(rng: random.Random, model: onnx.ModelProto) -> None:
    node = _pick(rng, [n for n in model.graph.node if n.output])
    if node is None:
        return
    other = _pick(rng, [n for n in model.graph.node if n.output])
    node.output[0] = other.output[0] if rng.random() < 0.5 else f"renamed_{rng.randrange(99)}"


def drop_graph_io(rng: random.Random, model: onnx.ModelProto) -> None:
    if rng.random() < 0.5 and model.graph.output:
        del model.graph.output[rng.randrange(len(model.graph.output))]
    elif model.graph.input:
        del model.graph.input[rng.randrange(len(model.graph.input))]


def input_type(rng: random.Random, model: onnx.ModelProto) -> None:
    if model.graph.input:
        model.graph.input[0].type.tensor_type.elem_type = rng.randint(0, 23)


def external_anywhere(rng: random.Random, model: onnx.ModelProto) -> None:
    tensor = _pick(rng, model.graph.initializer)
    if tensor is None:
        return
    tensor.ClearField("raw_data")
    tensor.data_location = TensorProto.EXTERNAL
    del tensor.external_data[:]
    location = rng.choice(["../../etc/passwd", "/etc/passwd", "nope.bin", "", "a/../../b",
                           "C:\\Windows\\win.ini", "\\\\server\\share\\x", "model.onnx"])
    for key, value in (("location", location), ("offset", rng.choice(["0", "-5", "x", "9999"])),
                       ("length", rng.choice(["4", "", "99999999"]))):
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value


FIELD_MUTATIONS = [wrong_dtype, wrong_dims, drop_input, shuffle_nodes, drop_initializer,
                   drop_node, duplicate_node, change_op_type, odd_attribute, bad_scale,
                   odd_zero_point, odd_opset, rename_tensor, drop_graph_io, input_type,
                   external_anywhere]
BYTE_MUTATIONS = [flip_bits, truncate, splice]


def make_case(rng: random.Random, sources: list[bytes],
              field_mutations: list = FIELD_MUTATIONS) -> tuple[bytes, list[str]]:
    """One corrupted model: its bytes and the names of the mutations applied."""
    data = rng.choice(sources)
    applied = []
    for _ in range(rng.randint(1, 3)):
        if rng.random() < 0.2:
            mutation = rng.choice(BYTE_MUTATIONS)
            data = mutation(rng, data)
        else:
            mutation = rng.choice(field_mutations)
            model = onnx.ModelProto()
            try:
                model.ParseFromString(data)
                mutation(rng, model)
                data = model.SerializeToString()
            except Exception:  # noqa: BLE001 - bytes too broken to edit stay as they are
                continue
        applied.append(mutation.__name__)
    return data, applied


def run_case(path: Path) -> str:
    """Load, convert and export one model; the outcome's name (raises on a foreign error)."""
    try:
        result = convert(path)
        result.int8_model()
        result.fp32_model()
    except OUR_ERRORS as exc:
        return type(exc).__name__
    return "ok"


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # numpy on absurd scales such as 3e38
def test_corrupted_models_give_success_or_our_errors(tmp_path) -> None:
    rng = random.Random(SEED)
    sources = [p.read_bytes() for p in SOURCES]
    outcomes: Counter[str] = Counter()
    start = time.perf_counter()
    for case in range(CASES):
        data, applied = make_case(rng, sources)
        path = tmp_path / f"case_{case}.onnx"
        path.write_bytes(data)
        try:
            outcomes[run_case(path)] += 1
        except Exception as exc:  # noqa: BLE001 - report which case broke, and how
            kept = ""
            if os.environ.get("QCORE_FUZZ_KEEP"):
                keep = Path(os.environ["QCORE_FUZZ_KEEP"]) / f"fuzz_case_{SEED}_{case}.onnx"
                keep.write_bytes(data)
                kept = f"; model written to {keep}"
            pytest.fail(f"case {case} of seed {SEED} ({', '.join(applied)}) raised "
                        f"{type(exc).__name__}: {exc}{kept}")
        path.unlink()
    seconds = time.perf_counter() - start
    print(f"\n{CASES} fuzz cases in {seconds:.1f} s: {dict(outcomes)}", file=sys.stderr)
    assert sum(outcomes.values()) == CASES
    assert outcomes["ok"] and len(outcomes) > 2, "the mutations should hit several outcomes"


def _full_check(model: onnx.ModelProto | str) -> bool:
    try:
        onnx.checker.check_model(model, full_check=True)
    except Exception:  # noqa: BLE001 - any complaint makes it invalid
        return False
    return True


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_valid_mutants_convert_into_valid_models(tmp_path) -> None:
    """A mutant the full ONNX checker accepts must convert into models it accepts too.

    ``input_type`` is left out: a QuantizeLinear reading an integer graph input is a known
    bug (``test_bad_input.py::test_quantize_of_an_integer_input_gives_a_valid_model``).
    """
    rng = random.Random(SEED + 1)
    sources = [p.read_bytes() for p in SOURCES]
    mutations = [m for m in FIELD_MUTATIONS if m is not input_type]
    checked = 0
    for case in range(CASES):
        data, applied = make_case(rng, sources, mutations)
        path = tmp_path / "case.onnx"
        path.write_bytes(data)
        try:
            result = convert(path)
            outputs = {"int8": result.int8_model(), "fp32": result.fp32_model()}
        except OUR_ERRORS:
            continue
        if not _full_check(str(path)):
            continue
        checked += 1
        for kind, model in outputs.items():
            assert _full_check(model), f"case {case} ({', '.join(applied)}): invalid {kind} model"
    assert checked > 20


def test_corrupted_models_through_the_cli(tmp_path, capsys) -> None:
    """`qcore convert --debug` (DOT of every pass) and `qcore info` on a share of the cases:
    exit 0, 1 or 2, and a failure is one `qcore: error:` line, never an internal error."""
    from qcore.cli import main

    rng = random.Random(SEED + 2)
    sources = [p.read_bytes() for p in SOURCES]
    codes: Counter[int] = Counter()
    for case in range(CASES // 8):
        data, applied = make_case(rng, sources)
        path = tmp_path / "case.onnx"
        path.write_bytes(data)
        out = tmp_path / f"out_{case}"
        for argv in (["convert", "--quant_model_path", str(path), "--int8_model_save_path",
                      str(out / "int8.onnx"), "--fp32_model_save_path", str(out / "fp32.onnx"),
                      "--debug", str(out / "debug"), "-q"], ["info", str(path)]):
            code = main(argv)
            codes[code] += 1
            err = [line for line in capsys.readouterr().err.splitlines()
                   if not line.startswith("qcore: warning: ")]
            what = f"case {case} ({', '.join(applied)}): qcore {argv[0]}"
            assert code in (0, 1, 2), f"{what} exited {code}"
            assert len(err) == (code != 0), f"{what} printed {err}"
            assert not err or (err[0].startswith("qcore: error: ")
                                and "internal error" not in err[0]), f"{what}: {err[0]}"
        shutil.rmtree(out, ignore_errors=True)
    assert codes[0] and codes[2]
