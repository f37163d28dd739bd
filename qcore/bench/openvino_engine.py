"""OpenVINO CPU engine, the project's oneDNN engine; "what ran" from the runtime graph.

The CPU plugin is built on oneDNN. Compiled with ``INFERENCE_PRECISION_HINT=f32`` so an FP32
model really runs in f32 (the default on CPUs with bf16 is to run FP32 models in bf16), and
INT8 models (QDQ) still run their quantized layers on INT8 kernels. After compilation the
runtime model holds, per executed layer, ``layerType``, ``runtimePrecision`` and
``primitiveType`` (e.g. ``brgconv_avx512_1x1_I8``), which is what :meth:`what_ran` sums up.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from qcore.bench.engines import (
    Engine,
    EngineUnavailable,
    Feeds,
    NotRunnable,
    Session,
    WhatRan,
    model_domains,
)

#: Runtime layer types that do the heavy compute.
COMPUTE_LAYERS = frozenset({
    "Convolution", "GroupConvolution", "Deconvolution", "FullyConnected", "MatMul", "Gemm",
    "FullyConnectedCompressed", "FullyConnectedQuantized", "FullyConnectedQuantizedLegacy",
})
INT8_PRECISIONS = frozenset({"u8", "i8"})
PRECISION_HINT = "f32"


def _info(rt_info: Mapping, key: str) -> str:
    """One rt_info entry as text ("" when absent); values are OVAny objects."""
    try:
        value = rt_info[key]
    except (KeyError, IndexError, RuntimeError, TypeError):
        return ""
    return str(value.astype(str)) if hasattr(value, "astype") else str(value)


def summarize_runtime(layers: list[dict[str, str]]) -> WhatRan:
    """Summarise per-layer runtime info (layerType, runtimePrecision, primitiveType, name)."""
    compute = [x for x in layers if x["layerType"] in COMPUTE_LAYERS]
    int8 = [x for x in compute if x["runtimePrecision"] in INT8_PRECISIONS
            or x["primitiveType"].lower().endswith("_i8")]
    kinds = sorted({x["layerType"] for x in compute}) or ["Convolution", "FullyConnected"]
    summary = (f"{len(int8)} of {len(compute)} {'/'.join(kinds)} layers ran INT8 (i8/u8) "
               "on oneDNN")
    hist = Counter(x["primitiveType"] for x in compute)
    floats = [x for x in compute if x not in int8]
    if floats:
        prec = Counter(x["runtimePrecision"] for x in floats)
        summary += "; " + ", ".join(f"{n} in {p}" for p, n in prec.most_common())
    notes = ["from the compiled model's runtime graph (get_runtime_model() rt_info)"]
    snippets = [x for x in layers if x["layerType"] == "Subgraph"]
    if snippets:
        low = sum(x["runtimePrecision"] in INT8_PRECISIONS for x in snippets)
        summary += f"; {len(snippets)} Subgraph layers not counted ({low} in i8/u8)"
        notes.append("Subgraph = OpenVINO snippets: fused element-wise or attention blocks, "
                     "which may hold MatMuls")
    if any("mlas" in k for k in hist):
        notes.append("primitiveType *_mlas_* is OpenVINO's MLAS path, not oneDNN")
    return WhatRan(
        summary=summary,
        int8_ops=len(int8),
        compute_ops=len(compute),
        histogram=dict(sorted(hist.items(), key=lambda kv: (-kv[1], kv[0]))),
        float_ops=[f"{x['layerType']} {x['name']} ({x['primitiveType']}, "
                   f"{x['runtimePrecision']})" for x in floats],
        notes=notes,
    )


class OpenVinoSession(Session):
    def __init__(self, compiled) -> None:  # noqa: ANN001
        self.compiled = compiled
        self.request = compiled.create_infer_request()
        self.input_names = [i.get_any_name() for i in compiled.inputs]
        self.output_names = [o.get_any_name() for o in compiled.outputs]

    def run(self, feeds: Feeds) -> dict[str, np.ndarray]:
        result = self.request.infer({k: feeds[k] for k in self.input_names}, share_inputs=True)
        return {name: np.asarray(result[out])
                for name, out in zip(self.output_names, self.compiled.outputs, strict=True)}

    def what_ran(self) -> WhatRan:
        layers = []
        for op in self.compiled.get_runtime_model().get_ordered_ops():
            info = op.get_rt_info()
            layers.append({
                "layerType": _info(info, "layerType"),
                "runtimePrecision": _info(info, "runtimePrecision"),
                "primitiveType": _info(info, "primitiveType"),
                "name": _info(info, "originalLayersNames") or op.get_friendly_name(),
            })
        return summarize_runtime(layers)

    def close(self) -> None:
        self.request = None
        self.compiled = None


class OpenVinoEngine(Engine):
    """OpenVINO ``Core().compile_model(model, "CPU", {threads, LATENCY, f32})``."""

    name = "openvino"

    def __init__(self) -> None:
        try:
            import openvino
        except ImportError as exc:
            raise EngineUnavailable(
                f"openvino is not installed ({exc}); it is the oneDNN engine: install it with "
                "'pip install openvino'"
            ) from exc
        self.ov = openvino
        self.core = openvino.Core()
        if "CPU" not in self.core.available_devices:
            raise EngineUnavailable("OpenVINO has no CPU device on this machine")

    def version(self) -> str:
        return str(self.ov.get_version())

    def settings(self) -> dict[str, str]:
        return {"device": "CPU", "PERFORMANCE_HINT": "LATENCY",
                "INFERENCE_PRECISION_HINT": PRECISION_HINT}

    def notes(self) -> list[str]:
        return [f"INFERENCE_PRECISION_HINT pinned to {PRECISION_HINT}: FP32 models run in true "
                "f32, not the CPU default (bf16 on CPUs that have it); INT8 layers of QDQ models "
                "still run INT8"]

    def check(self, path: Path) -> str | None:
        foreign = {d: ops for d, ops in model_domains(path).items() if d.startswith("com.")}
        if not foreign:
            return None
        ops = [f"{d} {op}" for d, names in foreign.items() for op in names]
        shown = ", ".join(ops[:2]) + (f" and {len(ops) - 2} more" if len(ops) > 2 else "")
        return (f"ONNX Runtime-only ops ({shown}) that OpenVINO cannot read; for INT8 on "
                "openvino use the --target onednn model")

    def load(self, path: Path, threads: int, shapes: Mapping[str, tuple[int, ...]]) -> Session:
        reason = self.check(path)
        if reason:
            raise NotRunnable(reason)
        model = self.core.read_model(str(path))
        wanted = {}
        for port in model.inputs:
            name = port.get_any_name()
            if name in shapes and port.get_partial_shape().is_dynamic:
                wanted[name] = list(shapes[name])
        if wanted:
            model.reshape(wanted)  # static shapes: OpenVINO picks its kernels at compile time
        config = {"INFERENCE_NUM_THREADS": int(threads), "PERFORMANCE_HINT": "LATENCY",
                  "INFERENCE_PRECISION_HINT": PRECISION_HINT}
        return OpenVinoSession(self.core.compile_model(model, "CPU", config))
