"""Pass infrastructure: a pass is a small class with a ``name``, ``apply`` and the facts it
``requires`` of the graph and ``ensures`` after it ran; the manager checks both (in the spirit
of onnx-ir's ``requires`` / ``ensures``) and takes a snapshot after every pass."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum

import numpy as np

from qcore.config import ConvertConfig
from qcore.ir import Graph
from qcore.ops import DEQUANTIZE, weight_axis
from qcore.status import OpStatus


@dataclass
class PassResult:
    modified: bool
    summary: str = ""


@dataclass
class Context:
    """What every pass sees: the graph it rewrites and the user's configuration."""

    graph: Graph
    config: ConvertConfig = field(default_factory=ConvertConfig)


@dataclass
class Snapshot:
    """The graph as it was right after one pass (index -1 is the loaded model)."""

    index: int
    name: str
    graph: Graph
    modified: bool = True
    summary: str = ""

    @property
    def stem(self) -> str:
        return "quant_orig" if self.index < 0 else f"int8_{self.index:02d}_{self.name}"


def _sorted(g: Graph) -> bool:
    """Every op reads only graph inputs, constants and outputs of ops before it."""
    known = set(g.input_names) | set(g.initializers)
    for node in g.nodes:
        if any(name and name not in known for name in node.inputs):
            return False
        known.update(node.outputs)
    return True


def _float_weights(g: Graph) -> bool:
    """No weight DequantizeLinear is left (one reading an integer constant, or a float one
    through its QuantizeLinear)."""
    producers = g.producers()

    def constant(name: str) -> bool:
        quant = producers.get(name)
        return name in g.initializers or (quant is not None and quant.op_type == "QuantizeLinear"
                                          and quant.inputs[0] in g.initializers)
    return not any(n.op_type == DEQUANTIZE and n.outputs[0] in g.weight_qparams
                   and constant(n.inputs[0]) for n in g.nodes)


def _weight_scales(g: Graph) -> bool:
    for node in g.nodes:
        weight = node.inputs[1] if len(node.inputs) > 1 else ""
        value = g.initializers.get(weight)
        if weight_axis(node) is not None and value is not None and value.ndim >= 2 and \
                value.dtype == np.float32 and weight not in g.weight_ints:
            return False
    return True


def _decided(g: Graph) -> bool:
    return all(n.status is not OpStatus.UNDECIDED for n in g.nodes)


class Fact(Enum):
    """What a pass can require of the graph or ensure; the text says what was broken."""

    SORTED = "every op reads only tensors made before it"
    FLOAT_WEIGHTS = "no weight is read through a DequantizeLinear any more"
    WEIGHT_SCALES = "every constant weight of a Conv / Gemm / MatMul has int8 values and scales"
    DECIDED = "every op is marked INT8, FP32 or quantization op"

    def holds(self, graph: Graph) -> bool:
        return _CHECKS[self](graph)


_CHECKS: dict[Fact, Callable[[Graph], bool]] = {
    Fact.SORTED: _sorted,
    Fact.FLOAT_WEIGHTS: _float_weights,
    Fact.WEIGHT_SCALES: _weight_scales,
    Fact.DECIDED: _decided,
}


class Pass:
    """Base class. Subclasses set ``name``, implement ``apply`` and list their facts."""

    name: str = "pass"
    requires: frozenset[Fact] = frozenset()
    ensures: frozenset[Fact] = frozenset()

    def apply(self, ctx: Context) -> PassResult:
        raise NotImplementedError


class PassError(RuntimeError):
    """A pass failed, or a fact it requires or ensures does not hold; the message names it."""


SnapshotHook = Callable[[Snapshot, Pass], None]
CancelCheck = Callable[[], bool]


class Cancelled(RuntimeError):
    """The caller asked to stop between two passes."""


class PassManager:
    """Runs an explicit list of passes. Before each pass the facts it requires must hold,
    after it the facts it ensures and every op must still be in order; then ``hook`` gets a
    snapshot of the graph (a copy)."""

    def __init__(self, passes: Sequence[Pass]) -> None:
        self.passes = list(passes)

    def run(
        self,
        ctx: Context,
        hook: SnapshotHook | None = None,
        cancelled: CancelCheck | None = None,
    ) -> list[PassResult]:
        results = []
        for index, p in enumerate(self.passes):
            if cancelled is not None and cancelled():
                raise Cancelled(f"cancelled before pass {p.name}")
            label = f"pass {index:02d} {p.name}"
            self._check(ctx.graph, p.requires, f"{label} requires that")
            try:
                result = p.apply(ctx)
            except Exception as exc:
                raise PassError(f"{label} failed: {exc}") from exc
            self._check(ctx.graph, p.ensures | {Fact.SORTED}, f"after {label}, it is not true that")
            results.append(result)
            if hook is not None:
                hook(Snapshot(index, p.name, ctx.graph.copy(), result.modified, result.summary), p)
        return results

    @staticmethod
    def _check(graph: Graph, facts: frozenset[Fact], what: str) -> None:
        for fact in sorted(facts, key=lambda f: f.name):
            if not fact.holds(graph):
                raise PassError(f"{what} {fact.value}")
