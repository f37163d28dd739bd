"""``import_paddle``: a Paddle inference / quant model -> a QDQ ONNX model.

Every ONNX node made for Paddle op ``N`` of type ``T`` (block 0, counting from 0 as Paddle's
program dumps do) is named ``paddle_op_<N>_<T>`` (helper nodes of the same op add ``_<k>``)
and carries the doc_string ``paddle op <N>: <T>``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import helper

from qcore.paddle import is_paddle_model
from qcore.paddle.builder import OPSET, Builder
from qcore.paddle.fusions import fused_away
from qcore.paddle.ops import REGISTRY
from qcore.paddle.params import read_combined, read_separate
from qcore.paddle.program import Op, Program, read_program
from qcore.paddle.quant_ops import DEQUANTIZE, QUANT_DEQUANT, QUANTIZE, plan_weights
from qcore.safe_io import ModelError, confined_file

ONNX_TYPES = {"bool": 9, "int16": 5, "int32": 6, "int64": 7, "float16": 10, "float32": 1,
              "float64": 11, "uint8": 2, "int8": 3}
QUANT_OPS = set(QUANTIZE) | set(QUANT_DEQUANT) | set(DEQUANTIZE)
SKIP_THRESHOLD = QUANT_OPS | {"feed", "fetch", "scale", "dropout", "assign",
                              "moving_average_abs_max_scale"}


def locate(path: str | Path, model_filename: str | None = None,
           params_filename: str | None = None) -> tuple[Path, Path | None, Path]:
    """Find the program file, the combined parameters file (None: one file per variable)
    and the folder of a Paddle model given as a folder or as its program file."""
    path = Path(path)
    if not path.exists():
        raise ModelError(f"{path}: no such file or folder")
    if path.is_file():
        folder, program = path.parent, path
    else:
        folder = path
        program = (confined_file(folder, model_filename, f"{folder}: model_filename")
                   if model_filename else _inside(folder, _find_program(folder)))
    if not program.is_file():
        raise ModelError(f"{program}: no such file")
    if params_filename:
        params = confined_file(folder, params_filename, f"{folder}: params_filename")
        if not params.is_file():
            raise ModelError(f"{params}: no such file")
        return program, params, folder
    for candidate in (program.with_suffix(".pdiparams"), folder / "__params__",
                      folder / "params" if program.name == "model" else None):
        if candidate is not None and candidate.is_file() and candidate != program:
            return program, _inside(folder, candidate), folder
    return program, None, folder


def _inside(folder: Path, path: Path) -> Path:
    """``path`` (a file found in ``folder``), refused if a link leads it out of the folder."""
    return confined_file(folder, path.name, f"{folder}: {path.name}")


def _find_program(folder: Path) -> Path:
    if (folder / "__model__").is_file():
        return folder / "__model__"
    programs = sorted(folder.glob("*.pdmodel"))
    if len(programs) == 1:
        return programs[0]
    if len(programs) > 1:
        names = ", ".join(p.name for p in programs)
        raise ModelError(f"{folder}: several programs ({names}); pass model_filename")
    if (folder / "model").is_file() and (folder / "params").is_file():
        return folder / "model"
    if any(folder.glob("*.json")) and any(folder.glob("*.pdiparams")):
        raise ModelError(f"{folder}: a Paddle 3 PIR (.json) program is not supported; save "
                         f"it as .pdmodel (FLAGS_enable_pir_api=0)")
    raise ModelError(f"{folder}: no Paddle program (__model__ or *.pdmodel) in this folder")


def import_paddle(model_dir_or_file: str | Path, model_filename: str | None = None,
                  params_filename: str | None = None, *,
                  out_thresholds: bool = True) -> onnx.ModelProto:
    """Read a Paddle model (no Paddle needed) and return it as a QDQ ONNX model.

    Args:
        model_dir_or_file: A model folder (``__model__`` plus one file per parameter, or
            ``*.pdmodel`` + ``*.pdiparams``, or ``model`` + ``params``) or a program file.
        model_filename: The program file inside the folder, when it has another name.
        params_filename: The combined parameters file inside the folder; without it the
            ``.pdiparams`` beside the program is used, else one file per variable.
        out_thresholds: Turn the output scales Paddle records without applying them (the
            ``out_threshold`` attributes of OutScaleForInferencePass and the ``only_observer``
            quantize_linear ops of onnx_format models) into QuantizeLinear/DequantizeLinear
            pairs on those tensors, so the INT8 conversion can use them as Paddle's does:
            not on the tensors inside a chain Paddle fuses before it quantizes (a conv's
            output read by its batch_norm, bias add or activation; see ``fusions.py``).
            Off, the model computes exactly what Paddle computes.

    Returns:
        An opset-17 ONNX model with int8 symmetric Q/DQ pairs and int8 weights.

    Raises:
        ModelError: missing or unreadable files, or an op with no ONNX mapping.
    """
    program_path, params_path, folder = locate(model_dir_or_file, model_filename,
                                               params_filename)
    program = read_program(program_path)
    if params_path is not None:
        params = read_combined(params_path, program)
    else:
        params = read_separate(folder, program)
    name = program_path.stem if program_path.suffix else folder.name
    return program_to_onnx(program, params, name=name or "paddle",
                           out_thresholds=out_thresholds)


def program_to_onnx(program: Program, params: dict[str, np.ndarray], name: str = "paddle",
                    out_thresholds: bool = True) -> onnx.ModelProto:
    """Convert a read program and its parameters to an ONNX model."""
    b = Builder(program, params)
    b.weight_plan = plan_weights(program, params)
    b.observers = out_thresholds
    b.outputs = _fetched(program)
    b.fused_away = fused_away(program)
    skip = _quantized_vars(program) | b.outputs | b.fused_away
    fetches: list[str] = []
    for op in program.ops:
        b.start_op(op)
        if op.type == "feed":
            _feed(b, op)
            continue
        if op.type == "fetch":
            fetches.append(b.input_name("X"))
            continue
        converter = REGISTRY.get(op.type)
        if converter is None:
            raise ModelError(f"Paddle op {op.index} ({op.type}) has no ONNX mapping yet")
        try:
            converter(b, op)
        except ModelError:
            raise
        except (ArithmeticError, IndexError, KeyError, TypeError, ValueError) as exc:
            raise b.error(f"cannot convert ({type(exc).__name__}: {exc})") from exc
        b.finish_op()
        if out_thresholds and op.type not in SKIP_THRESHOLD:
            _out_threshold(b, op, skip)
    b.op = None
    if not fetches:
        raise ModelError("Paddle program has no fetch op: not an inference model")
    return _finish(b, fetches, name)


def _quantized_vars(program: Program) -> set[str]:
    """Variables that a fake quant op reads: their own scale wins over out_threshold."""
    names = (op.input("X") for op in program.ops
             if op.type in QUANTIZE or op.type in QUANT_DEQUANT)
    return {name for name in names if name}


def _fetched(program: Program) -> set[str]:
    """Variables the fetch ops read, also through identity ``scale`` / ``assign`` ops: a
    Q/DQ pair there would only round the model's output."""
    found = set(program.fetches())
    for op in reversed(program.ops):
        identity = op.type == "assign" or (
            op.type == "scale" and op.attr("scale", 1.0) == 1.0 and op.attr("bias", 0.0) == 0.0)
        source = op.input("X")
        if identity and op.output("Out") in found and source:
            found.add(source)
    return found


def _feed(b: Builder, op: Op) -> None:
    name = b.output_name("Out")
    var = b.program.vars.get(name)
    if var is None or var.shape is None:
        raise b.error(f"feed target {name!r} has no shape")
    dims = [d if d >= 0 else ("batch" if i == 0 else f"{name}_dim{i}")
            for i, d in enumerate(var.shape)]
    elem = ONNX_TYPES.get(str(var.dtype), 1)
    b.inputs.append(helper.make_tensor_value_info(name, elem, dims))
    b.bind(name, name)


def _thresholds(op: Op) -> list[tuple[str, float]]:
    """(output variable, threshold) pairs from ``<slot><k>_threshold`` / ``out_threshold``."""
    found = []
    for slot, names in op.outputs.items():
        for k, name in enumerate(names):
            value = op.attr(f"{slot}{k}_threshold")
            if value is not None:
                found.append((name, float(value)))
    if not found and op.attr("out_threshold") is not None:
        main = next((names[0] for names in op.outputs.values() if names), None)
        if main:
            found.append((main, float(op.attr("out_threshold"))))
    return found


def _out_threshold(b: Builder, op: Op, skip: set[str]) -> None:
    """Q/DQ pairs with scale ``out_threshold / 127`` on the op's outputs, except on ``skip``
    (tensors a fake quant op quantizes with its own scale, and the model's outputs)."""
    for name, threshold in _thresholds(op):
        var = b.program.vars.get(name)
        binding = b.bound.get(name)
        if (threshold <= 0 or binding is None or name in skip
                or (var is not None and var.dtype is not None and var.dtype.kind != "f")):
            continue
        t = np.asarray(threshold, np.float64)
        scale = b.const((t / 127.0).astype(np.float32), f"{name}.scale")
        zp = b.const(np.zeros((), np.int8), f"{name}.zero_point", np.int8)
        q = b.node("QuantizeLinear", [binding.name, scale, zp])[0]
        out = b.node("DequantizeLinear", [q, scale, zp])[0]
        b.bind(name, out, binding.factor)


def _finish(b: Builder, fetches: list[str], name: str) -> onnx.ModelProto:
    """Graph outputs named after the fetched variables, dead nodes dropped, checked."""
    input_names = {v.name for v in b.inputs}
    outputs = []
    renames: dict[str, str] = {}
    for var_name in fetches:
        tensor = b.get(var_name)
        produced = any(tensor in n.output for n in b.nodes)
        if produced and tensor not in renames and tensor not in input_names:
            target = var_name if not b.is_used(var_name) or var_name == tensor else tensor
            renames[tensor] = target
        else:
            target = b.fresh(var_name)
            b.op = None
            b.node("Identity", [tensor], [target])
        var = b.program.vars.get(var_name)
        elem = ONNX_TYPES.get(str(var.dtype), 1) if var is not None else 1
        shape = None
        if var is not None and var.shape is not None:
            shape = [d if d >= 0 else None for d in var.shape]
        outputs.append(helper.make_tensor_value_info(target, elem, shape))
    for node in b.nodes:
        node.input[:] = [renames.get(n, n) for n in node.input]
        node.output[:] = [renames.get(n, n) for n in node.output]
    nodes = _live_nodes(b.nodes, [o.name for o in outputs])
    used = {n for node in nodes for n in node.input}
    inits = [t for key, t in b.initializers.items() if key in used]
    graph = helper.make_graph(nodes, name, b.inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="qcore.paddle", producer_version="1")
    model.ir_version = 8
    version = b.program.version
    helper.set_model_props(model, {"paddle_program_version": str(version)})
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "invalid"
        raise ModelError(f"the imported model is not valid ONNX: {first}") from None
    return model


def _live_nodes(nodes: list[onnx.NodeProto], outputs: list[str]) -> list[onnx.NodeProto]:
    """The nodes that some graph output depends on, in their original order."""
    needed = set(outputs)
    keep = []
    for node in reversed(nodes):
        if any(o in needed for o in node.output):
            keep.append(node)
            needed.update(i for i in node.input if i)
    return list(reversed(keep))


__all__ = ["import_paddle", "is_paddle_model", "locate", "program_to_onnx"]
