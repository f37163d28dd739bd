"""Run the pass pipeline on a quant model: snapshots, the INT8 model and the FP32 model."""

from __future__ import annotations

import contextlib
import gc
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import onnx

from qcore.config import ConvertConfig
from qcore.emit.common import expand_fused, rename_ort_generated_initializers
from qcore.files import OutputSet
from qcore.ir import Graph, GraphError, Node
from qcore.ir_onnx import to_onnx
from qcore.light import lighten
from qcore.loader import load_graph, quantization_summary
from qcore.passes import Context, Pass, PassManager, default_passes
from qcore.passes.base import CancelCheck, Fact, Snapshot
from qcore.status import NO_REASON, OpStatus, Reason, ReasonKind

__all__ = ["REASON_NOT_QUANT", "ConversionResult", "NoQuantizationError", "Snapshot", "convert",
           "convert_for_view", "convert_or_view", "export_model", "view_only",
           "write_converted"]


class NoQuantizationError(ValueError):
    """The model has no QuantizeLinear / DequantizeLinear ops to convert."""


@dataclass
class ConversionResult:
    """Everything one conversion produced: the snapshots, the INT8 and FP32 graphs, and the
    placement's decision (INT8 / FP32 and why) for every op."""

    snapshots: list[Snapshot]
    int8: Graph
    fp32: Graph
    config: ConvertConfig
    seconds: float
    decisions: list[Node] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    quantized: bool = True  # False for a model shown as it is (see view_only)
    source: Path | None = None  # the model file, when converted from one
    complete: bool = True  # False for the preview sent before the passes ran

    def int8_model(self) -> onnx.ModelProto:
        return export_model(self.with_weights().int8)

    def fp32_model(self) -> onnx.ModelProto:
        return export_model(self.with_weights().fp32)

    def with_weights(self) -> ConversionResult:
        """This result, or for a light one (see ``qcore.light``) the same conversion run
        again from ``source``: conversion is deterministic, so the graphs are identical."""
        if not self.int8.light:
            return self
        if self.source is None:
            raise GraphError("this result has no weights and no source model to convert again")
        return convert_or_view(self.source, self.config)

    @property
    def quantized_ids(self) -> list[int]:
        return [n.id for n in self.decisions if n.status is OpStatus.INT8]

    def fp32_reasons(self) -> dict[int, Reason]:
        """Op id -> why it stayed FP32, for every op the placement kept FP32."""
        return {n.id: n.reason for n in self.decisions if n.status is OpStatus.FP32}


def export_model(graph: Graph) -> onnx.ModelProto:
    """A runnable ONNX model: fused bias / activations become plain ops again."""
    if graph.light:
        raise GraphError("a light graph has placeholder weights: it cannot be exported")
    plain = graph.copy()
    expand_fused(plain)
    rename_ort_generated_initializers(plain)
    plain.toposort()
    return to_onnx(plain)


ProgressFn = Callable[[int, int, str], None]


@contextlib.contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """Python's cyclic collector off while the passes run: the snapshots are hundreds of
    thousands of small objects without cycles (refcounting frees them), and scanning them
    again and again took half the time of a 50,000-op conversion (13.4 s -> 6.8 s)."""
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()


def convert(
    model: onnx.ModelProto | str | Path,
    config: ConvertConfig | None = None,
    passes: list[Pass] | None = None,
    progress: ProgressFn | None = None,
    cancelled: CancelCheck | None = None,
    loaded: Callable[[Snapshot], None] | None = None,
) -> ConversionResult:
    """Convert a QDQ quant model. ``progress(done, total, pass_name)`` is called after each
    pass; ``cancelled()`` returning True stops between passes with ``Cancelled``;
    ``loaded(snapshot)`` gets the loaded model before the first pass."""
    start = time.perf_counter()
    config = config or ConvertConfig()
    graph = load_graph(model)
    found = quantization_summary(graph)
    if not found["QuantizeLinear"] and not found["DequantizeLinear"]:
        raise NoQuantizationError(
            "model has no QuantizeLinear/DequantizeLinear ops: quantize it first (for example "
            "with onnxruntime.quantization.quantize_static, QDQ format)"
        )
    passes = passes if passes is not None else default_passes()
    snapshots = [Snapshot(-1, "quant_orig", graph.copy(), True, _histogram_text(graph))]
    if loaded is not None:
        loaded(snapshots[0])
    fp32_graph: list[Graph] = []
    decisions: list[Node] = []

    def hook(snapshot: Snapshot, p: Pass) -> None:
        snapshots.append(snapshot)
        if Fact.DECIDED in p.ensures and not fp32_graph:  # the placement's decisions
            fp32_graph.append(snapshot.graph.copy())
            decisions.extend(snapshot.graph.nodes)
        if progress is not None:
            progress(snapshot.index + 1, len(passes), p.name)

    warnings = list(graph.warnings) + _config_warnings(graph, config)
    ctx = Context(graph, config)
    with cyclic_gc_paused():
        PassManager(passes).run(ctx, hook, cancelled)
    fp32 = fp32_graph[0] if fp32_graph else graph.copy()
    for node in fp32.nodes:
        node.decide(OpStatus.UNDECIDED, NO_REASON)
    return ConversionResult(snapshots, ctx.graph, fp32, config, time.perf_counter() - start,
                            decisions, warnings)


REASON_NOT_QUANT = Reason(ReasonKind.NOT_QUANT)


def view_only(model: onnx.ModelProto | str | Path, config: ConvertConfig | None = None,
              ) -> ConversionResult:
    """A model without quantization, shown as it is: one snapshot, every op FP32 with that
    reason, and nothing converted (``quantized`` is False)."""
    graph = load_graph(model)
    for node in graph.nodes:
        node.decide(OpStatus.FP32, REASON_NOT_QUANT)
    snapshot = Snapshot(-1, "quant_orig", graph.copy(), True, _histogram_text(graph))
    return ConversionResult([snapshot], graph, graph.copy(), config or ConvertConfig(), 0.0,
                            list(snapshot.graph.nodes), list(graph.warnings), quantized=False)


def convert_or_view(model: onnx.ModelProto | str | Path, config: ConvertConfig | None = None,
                    progress: ProgressFn | None = None, cancelled: CancelCheck | None = None,
                    loaded: Callable[[Snapshot], None] | None = None) -> ConversionResult:
    """``convert``, or ``view_only`` when the model has no quantization (for viewers)."""
    try:
        result = convert(model, config, progress=progress, cancelled=cancelled, loaded=loaded)
    except NoQuantizationError:
        result = view_only(model, config)
    if not isinstance(model, onnx.ModelProto):
        result.source = Path(model)
    return result


def convert_for_view(source: str | Path, config: ConvertConfig | None = None,
                     progress: ProgressFn | None = None, cancelled: CancelCheck | None = None,
                     partial: Callable[[ConversionResult], None] | None = None,
                     preview_above_ops: int = 0) -> ConversionResult:
    """``convert_or_view`` without the weights (``qcore.light``): what a viewer needs, small
    enough to send from a child process (``qcore.child``).

    For a model of at least ``preview_above_ops`` ops, ``partial`` first gets a preview: the
    loaded model alone (``complete`` False), so a viewer can draw it while the passes run.
    """
    config = config or ConvertConfig()

    def loaded(snapshot: Snapshot) -> None:
        graph = snapshot.graph
        if partial is not None and len(graph.nodes) >= preview_above_ops:
            partial(lighten(ConversionResult([snapshot], graph, graph, config, 0.0,
                                             warnings=list(graph.warnings),
                                             source=Path(source), complete=False)))

    return lighten(convert_or_view(source, config, progress, cancelled, loaded))


def write_converted(source: str | Path, config: ConvertConfig, outputs: dict[str, str | Path],
                    progress: ProgressFn | None = None, cancelled: CancelCheck | None = None,
                    ) -> dict[str, Path]:
    """Convert ``source`` once and save the models named in ``outputs`` ("int8" and/or
    "fp32" -> path) atomically, all or none; the input files are never overwritten."""
    result = convert_or_view(source, config, progress, cancelled)
    written = {}
    with OutputSet(source, force=True) as files:
        for kind, out in outputs.items():
            model = result.int8_model() if kind == "int8" else result.fp32_model()
            written[kind] = files.add_model(model, out)
        files.commit()
    return written


def _config_warnings(graph: Graph, config: ConvertConfig) -> list[str]:
    """Skip ids and op types that name nothing in this model: almost always a typo."""
    warnings = []
    ids = {n.id for n in graph.nodes}
    unknown_ids = [i for i in config.op_ids_to_skip if i not in ids]
    if unknown_ids:
        warnings.append(f"op_ids_to_skip: no op with id {', '.join(map(str, unknown_ids))} "
                        f"(ids run 0..{graph.next_id - 1}; see `qcore info`)")
    types = {n.op_type for n in graph.nodes}
    unknown_types = [t for t in config.ops_to_quantize if t not in types]
    if unknown_types:
        warnings.append(f"ops_to_quantize: the model has no {', '.join(unknown_types)} op "
                        f"(it has {', '.join(sorted(types))})")
    return warnings


def _histogram_text(graph: Graph) -> str:
    return ", ".join(f"{k} {v}" for k, v in list(graph.op_histogram().items())[:6])
