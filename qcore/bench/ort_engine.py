"""ONNX Runtime CPU engine; "what ran" comes from the optimized session graph.

ORT has no kernel-level log, so the evidence is the graph the session actually executes
(saved with ``SessionOptions.optimized_model_filepath``): QLinearConv, QGemm, QLinearMatMul,
MatMulInteger... run on MLAS integer kernels; Conv, Gemm, MatMul, FusedConv... run in float.
Per op (:meth:`OrtEngine.profile`), ONNX Runtime's profiler gives each node's time and the
element types it read (:mod:`qcore.bench.ort_profile`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from qcore.bench.engines import (
    Engine,
    EngineProfile,
    EngineUnavailable,
    Feeds,
    Session,
    Tick,
    WhatRan,
)
from qcore.bench.ort_profile import (
    FLOAT_OPS,
    INTEGER_OPS,
    INTEGER_OTHER,
    kernels_from_trace,
    optimized_nodes,
    read_trace,
)
from qcore.files import temporary_folder
from qcore.ops import QDQ_OPS

__all__ = ["FLOAT_OPS", "INTEGER_OPS", "INTEGER_OTHER", "OrtEngine", "summarize_graph"]


def summarize_graph(model: onnx.ModelProto) -> WhatRan:
    """Count integer vs float compute ops in an (optimized) ONNX graph."""
    hist = Counter(n.op_type for n in model.graph.node)
    int8 = [n for n in model.graph.node if n.op_type in INTEGER_OPS]
    flt = [n for n in model.graph.node if n.op_type in FLOAT_OPS]
    compute = len(int8) + len(flt)
    shown = {k: v for k, v in hist.items()
             if k in INTEGER_OPS | INTEGER_OTHER | FLOAT_OPS
             or k in QDQ_OPS}
    summary = f"{len(int8)} of {compute} conv/matmul/gemm ops ran on integer kernels"
    if flt:
        kinds = Counter(n.op_type for n in flt)
        summary += "; float: " + ", ".join(f"{k} x{v}" for k, v in kinds.most_common())
    quant = hist.get("QuantizeLinear", 0) + hist.get("DequantizeLinear", 0)
    if quant:
        summary += f"; {quant} Quantize/DequantizeLinear left"
    return WhatRan(
        summary=summary,
        int8_ops=len(int8),
        compute_ops=compute,
        histogram=dict(sorted(shown.items(), key=lambda kv: (-kv[1], kv[0]))),
        float_ops=[f"{n.op_type} {n.name}" for n in flt],
        notes=["from the optimized ONNX Runtime session graph (optimized_model_filepath)"],
    )


class OrtSession(Session):
    def __init__(self, engine: OrtEngine, path: Path, threads: int) -> None:
        self.engine, self.path, self.threads = engine, path, threads
        self.session = engine.make_session(path, threads)
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]

    def run(self, feeds: Feeds) -> dict[str, np.ndarray]:
        values = self.session.run(None, {k: feeds[k] for k in self.input_names})
        return dict(zip(self.output_names, values, strict=True))

    def what_ran(self) -> WhatRan:
        return self.engine.inspect(self.path, self.threads)

    def close(self) -> None:
        self.session = None


class OrtEngine(Engine):
    """ONNX Runtime, CPUExecutionProvider, ORT_ENABLE_ALL, intra-op threads = threads."""

    name = "onnxruntime"

    def __init__(self) -> None:
        try:
            import onnxruntime
        except ImportError as exc:
            raise EngineUnavailable(
                f"onnxruntime is not installed ({exc}); install it with "
                "'pip install onnxruntime'"
            ) from exc
        self.ort = onnxruntime
        if "CPUExecutionProvider" not in onnxruntime.get_available_providers():
            raise EngineUnavailable("onnxruntime has no CPUExecutionProvider")
        self._inspected: dict[Path, WhatRan] = {}

    def version(self) -> str:
        return str(self.ort.__version__)

    def settings(self) -> dict[str, str]:
        return {"provider": "CPUExecutionProvider", "graph_optimization_level": "ORT_ENABLE_ALL",
                "inter_op_num_threads": "1"}

    def options(self, threads: int, optimized_path: str = "") -> Any:
        opts = self.ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = self.ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        if optimized_path:
            opts.optimized_model_filepath = optimized_path
        return opts

    def make_session(self, path: Path, threads: int, optimized_path: str = "",
                     options: Any = None) -> Any:
        opts = options if options is not None else self.options(threads, optimized_path)
        return self.ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])

    def load(self, path: Path, threads: int, shapes: Mapping[str, tuple[int, ...]]) -> Session:
        return OrtSession(self, path, threads)

    def inspect(self, path: Path, threads: int) -> WhatRan:
        """Build a second session that saves its optimized graph, once per model file."""
        key = Path(path).resolve()
        if key not in self._inspected:
            with temporary_folder("qcore_ortopt_") as tmp:
                out = str(Path(tmp) / "optimized.onnx")
                self.make_session(path, threads, out)
                self._inspected[key] = summarize_graph(onnx.load(out, load_external_data=False))
        return self._inspected[key]

    def profile(self, path: Path, threads: int, feeds: Sequence[Feeds], runs: int,
                folder: Path, tick: Tick | None = None) -> EngineProfile:
        """ONNX Runtime's profiler: the trace and the optimized graph go to ``folder``."""
        optimized = folder / "optimized.onnx"
        opts = self.options(threads, str(optimized))
        # big models: the optimized graph keeps its weights in a side file (2 GiB proto limit)
        opts.add_session_config_entry(
            "session.optimized_model_external_initializers_file_name", "optimized.data")
        opts.enable_profiling = True
        opts.profile_file_prefix = str(folder / "ort_profile")
        session = self.make_session(path, threads, options=opts)
        names = [i.name for i in session.get_inputs()]
        outputs = [o.name for o in session.get_outputs()]
        values: list[Any] = []
        for i in range(runs + 1):  # the first run is the warm-up, left out of the times
            if tick is not None and i:
                tick()
            feed = feeds[i % len(feeds)]
            values = session.run(None, {k: feed[k] for k in names})
        trace = session.end_profiling()
        kernels, measured = kernels_from_trace(read_trace(trace), optimized_nodes(optimized))
        return EngineProfile(kernels, measured, dict(zip(outputs, values, strict=True)),
                             ["ONNX Runtime profiler (enable_profiling): node times of the "
                              "optimized graph"])
