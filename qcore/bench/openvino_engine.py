"""OpenVINO CPU engine, the project's oneDNN engine; "what ran" from the runtime graph.

The CPU plugin is built on oneDNN. Compiled with ``INFERENCE_PRECISION_HINT=f32`` so an FP32
model really runs in f32 (the default on CPUs with bf16 is to run FP32 models in bf16), and
INT8 models (QDQ) still run their quantized layers on INT8 kernels. After compilation the
runtime model holds, per executed layer, ``layerType``, ``runtimePrecision`` and
``primitiveType`` (e.g. ``brgconv_avx512_1x1_I8``), which is what :meth:`what_ran` sums up.
Per layer (:meth:`OpenVinoEngine.profile`), a model compiled with ``PERF_COUNT`` also gives
each layer's time, and ``originalLayersNames`` lists the model's ops fused into it.
"""

from __future__ import annotations

import functools
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from qcore.bench.engines import (
    Engine,
    EngineProfile,
    EngineUnavailable,
    Feeds,
    Kernel,
    NotRunnable,
    Session,
    Tick,
    WhatRan,
    model_domains,
)

#: Runtime layer types that do the heavy compute.
COMPUTE_LAYERS = frozenset({
    "Convolution", "GroupConvolution", "Deconvolution", "FullyConnected", "MatMul", "Gemm",
    "FullyConnectedCompressed", "FullyConnectedQuantized", "FullyConnectedQuantizedLegacy",
})
INT8_PRECISIONS = frozenset({"u8", "i8"})
FLOAT_PRECISIONS = frozenset({"f32", "bf16", "f16", "f64"})
#: Layers that hold or pass data but run no kernel.
NO_KERNEL = frozenset({"Input", "Parameter", "Const", "Output", "Result"})
PRECISION_HINT = "f32"
RT_KEYS = ("layerType", "runtimePrecision", "primitiveType", "originalLayersNames",
           "outputPrecisions", "execTimeMcs")


def _graph_inputs(path: Path) -> set[str]:
    """The names of an ONNX file's inputs that are not initializers."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    return {v.name for v in graph.input} - {t.name for t in graph.initializer}


def _info(rt_info: Mapping[str, Any], key: str) -> str:
    """One rt_info entry as text ("" when absent); values are OVAny objects."""
    try:
        value = rt_info[key]
    except (KeyError, IndexError, RuntimeError, TypeError):
        return ""
    return str(value.astype(str)) if hasattr(value, "astype") else str(value)


def runtime_layers(compiled: Any) -> list[dict[str, str]]:
    """The compiled model's executed graph: per layer its rt_info entries and ``friendly``
    (the layer's name) and ``name`` (its original layer names, else the friendly name)."""
    layers = []
    for op in compiled.get_runtime_model().get_ordered_ops():
        info = op.get_rt_info()
        layer = {key: _info(info, key) for key in RT_KEYS}
        layer["friendly"] = str(op.get_friendly_name())
        layer["name"] = layer["originalLayersNames"] or layer["friendly"]
        layers.append(layer)
    return layers


def layer_precision(layer: Mapping[str, str]) -> str:
    """``int8``, ``float``, ``q/dq`` (FakeQuantize) or ``other`` for one runtime layer."""
    if layer["layerType"] == "FakeQuantize":
        return "q/dq"
    if layer["runtimePrecision"] in INT8_PRECISIONS or \
            layer["primitiveType"].lower().endswith("_i8"):
        return "int8"
    return "float" if layer["runtimePrecision"] in FLOAT_PRECISIONS else "other"


def layer_kernels(layers: list[dict[str, str]], times_ms: Mapping[str, float]) -> list[Kernel]:
    """Runtime layers that run a kernel, with their mean times (by friendly name)."""
    kernels = []
    for x in layers:
        if x["layerType"] in NO_KERNEL:
            continue
        originals = [n.strip() for n in x["originalLayersNames"].split(",") if n.strip()]
        executed = x["execTimeMcs"] != "not_executed"
        kernels.append(Kernel(
            name=x["friendly"], op_type=x["layerType"], kernel=x["primitiveType"],
            precision=layer_precision(x), time_ms=times_ms.get(x["friendly"], 0.0),
            originals=originals,
            detail=f"{x['layerType']} {x['primitiveType']}, runtimePrecision "
                   f"{x['runtimePrecision']}, output {x['outputPrecisions']}"
                   + ("" if executed else ", not executed"), executed=executed))
    return kernels


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
    def __init__(self, compiled: Any) -> None:
        self.compiled = compiled
        self.request = compiled.create_infer_request()
        self.input_names = [i.get_any_name() for i in compiled.inputs]
        self.output_names = [o.get_any_name() for o in compiled.outputs]

    def run(self, feeds: Feeds) -> dict[str, np.ndarray]:
        result = self.request.infer({k: feeds[k] for k in self.input_names}, share_inputs=True)
        return {name: np.asarray(result[out])
                for name, out in zip(self.output_names, self.compiled.outputs, strict=True)}

    def what_ran(self) -> WhatRan:
        return summarize_runtime(runtime_layers(self.compiled))

    def close(self) -> None:
        self.request = None
        self.compiled = None


@functools.cache
def shared_core() -> Any:
    """The process's one ``openvino.Core``. The CPU plugin of each Core sets an alternate
    signal stack on the thread that made it and puts the previous one back when it goes, so
    a Core destroyed before one made after it leaves that thread on freed memory: the next
    signal handler, SIGTERM's that removes qcore's temporaries, then crashed the process
    (OpenVINO 2026.4, two engines used one after the other). One Core, kept for the
    process, keeps the stack valid.

    Raises:
        ImportError: openvino is not installed.
    """
    import openvino

    return openvino.Core()


class OpenVinoEngine(Engine):
    """OpenVINO ``Core().compile_model(model, "CPU", {threads, LATENCY, f32})`` on the
    process's one Core (:func:`shared_core`)."""

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
        self.core = shared_core()
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
        return OpenVinoSession(self.compile(path, threads, shapes))

    def compile(self, path: Path, threads: int, shapes: Mapping[str, tuple[int, ...]],
                perf_count: bool = False) -> Any:
        """The model compiled for the CPU (static input shapes, the pinned precision)."""
        reason = self.check(path)
        if reason:
            raise NotRunnable(reason)
        model = self._read(path, shapes)
        wanted = {}
        for port in model.inputs:
            name = port.get_any_name()
            if name in shapes and port.get_partial_shape().is_dynamic:
                wanted[name] = list(shapes[name])
        if wanted:
            model.reshape(wanted)  # static shapes: OpenVINO picks its kernels at compile time
        config: dict[str, Any] = {"INFERENCE_NUM_THREADS": int(threads),
                                  "PERFORMANCE_HINT": "LATENCY",
                                  "INFERENCE_PRECISION_HINT": PRECISION_HINT}
        if perf_count:
            config["PERF_COUNT"] = "YES"
        return self.core.compile_model(model, "CPU", config)

    def _read(self, path: Path, shapes: Mapping[str, tuple[int, ...]]) -> Any:
        """The model as OpenVINO reads it; one whose ops OpenVINO cannot convert without
        knowing the input shapes (silero VAD: an If whose branches give different ranks
        feeds a Conv) is converted again with ``shapes`` set, when they are static."""
        try:
            return self.core.read_model(str(path))
        except RuntimeError:
            static = {name: list(shape) for name, shape in shapes.items()
                      if all(dim > 0 for dim in shape)}
            if not static or set(static) != _graph_inputs(path):
                raise
            return self.ov.convert_model(str(path), input=static)

    def profile(self, path: Path, threads: int, feeds: Sequence[Feeds], runs: int,
                folder: Path, tick: Tick | None = None) -> EngineProfile:
        """``PERF_COUNT``: each executed layer's real time, summed over ``runs`` inferences."""
        shapes = {k: tuple(v.shape) for k, v in feeds[0].items()}
        session = OpenVinoSession(self.compile(path, threads, shapes, perf_count=True))
        executed = self.ov.ProfilingInfo.Status.EXECUTED
        total: dict[str, float] = defaultdict(float)
        outputs: dict[str, np.ndarray] = {}
        for i in range(runs + 1):  # the first run is the warm-up
            if tick is not None and i:
                tick()
            outputs = session.run(feeds[i % len(feeds)])
            if not i:
                continue
            for info in session.request.profiling_info:
                if info.status == executed:
                    total[str(info.node_name)] += info.real_time.total_seconds() * 1000.0
        means = {name: ms / max(1, runs) for name, ms in total.items()}
        kernels = layer_kernels(runtime_layers(session.compiled), means)
        session.close()
        return EngineProfile(kernels, runs, outputs,
                             ["OpenVINO PERF_COUNT: real time per executed layer; "
                              "originalLayersNames name the model's ops fused into it"])
