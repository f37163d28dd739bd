"""ONNX Runtime CPU engine; "what ran" comes from the optimized session graph.

ORT has no kernel-level log, so the evidence is the graph the session actually executes
(saved with ``SessionOptions.optimized_model_filepath``): QLinearConv, QGemm, QLinearMatMul,
MatMulInteger... run on MLAS integer kernels; Conv, Gemm, MatMul, FusedConv... run in float.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import onnx

from qcore.bench.engines import Engine, EngineUnavailable, Feeds, Session, WhatRan
from qcore.files import temporary_folder

#: Compute ops that run on integer kernels (any domain).
INTEGER_OPS = frozenset({
    "QLinearConv", "ConvInteger", "QLinearMatMul", "MatMulInteger", "MatMulIntegerToFloat",
    "DynamicQuantizeMatMul", "QGemm", "QAttention", "QOrderedMatMul", "MatMulNBits",
    "NhwcQLinearConv", "DynamicQuantizeLSTM",
})
#: Integer element-wise / pooling ops (shown in the histogram, not counted as compute).
INTEGER_OTHER = frozenset({
    "QLinearAdd", "QLinearMul", "QLinearConcat", "QLinearGlobalAveragePool",
    "QLinearAveragePool", "QLinearLeakyRelu", "QLinearSigmoid", "QLinearSoftmax",
    "QLinearReduceMean", "QLinearWhere", "QEmbedLayerNormalization",
})
#: Compute ops that run in floating point.
FLOAT_OPS = frozenset({
    "Conv", "FusedConv", "ConvTranspose", "MatMul", "FusedMatMul", "Gemm", "FusedGemm",
    "Attention", "MultiHeadAttention", "TransposeMatMul", "FusedMatMulActivation",
})


def summarize_graph(model: onnx.ModelProto) -> WhatRan:
    """Count integer vs float compute ops in an (optimized) ONNX graph."""
    hist = Counter(n.op_type for n in model.graph.node)
    int8 = [n for n in model.graph.node if n.op_type in INTEGER_OPS]
    flt = [n for n in model.graph.node if n.op_type in FLOAT_OPS]
    compute = len(int8) + len(flt)
    shown = {k: v for k, v in hist.items()
             if k in INTEGER_OPS | INTEGER_OTHER | FLOAT_OPS
             or k in ("QuantizeLinear", "DequantizeLinear")}
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
        self.session = None  # type: ignore[assignment]


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

    def options(self, threads: int, optimized_path: str = ""):  # noqa: ANN201
        opts = self.ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = self.ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        if optimized_path:
            opts.optimized_model_filepath = optimized_path
        return opts

    def make_session(self, path: Path, threads: int, optimized_path: str = ""):  # noqa: ANN201
        return self.ort.InferenceSession(str(path), self.options(threads, optimized_path),
                                         providers=["CPUExecutionProvider"])

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
