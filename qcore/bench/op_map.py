"""Op ids of a model file, and which op ids an engine kernel ran.

qcore writes ``name#id`` into every node name; a model not written by qcore gets the ids
qcore's loader gives it (the ids a conversion of it uses). :meth:`ModelOps.resolve` maps a
kernel by its (original) names, then by the tensors it wrote, then by the weights it read;
layout kernels an engine adds map to no op.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import onnx

from qcore.bench.engines import Kernel, op_id_of
from qcore.ops import QDQ_OPS

QDQ_TYPES = QDQ_OPS | {"DynamicQuantizeLinear", "FakeQuantize"}
REORDER_TYPES = frozenset({"Reorder", "ReorderInput", "ReorderOutput"})
LAYOUT_TYPES = REORDER_TYPES | {"Transpose"}
#: Model op types (and engine op / layer types) that do the heavy compute.
COMPUTE_TYPES = frozenset({
    "Conv", "ConvTranspose", "ConvInteger", "MatMul", "MatMulInteger", "Gemm", "QLinearConv",
    "QLinearMatMul", "QGemm", "MatMulIntegerToFloat", "FusedConv", "FusedMatMul", "FusedGemm",
    "NhwcQLinearConv", "Attention", "QAttention", "Convolution", "GroupConvolution",
    "Deconvolution", "FullyConnected", "FullyConnectedQuantizedLegacy",
    "FullyConnectedQuantized", "FullyConnectedCompressed",
})
_TOKEN = re.compile(r"_token_\d+$")


class ModelOps:
    """Op ids of a model file: by node name, by produced tensor and by weight read."""

    def __init__(self, model: onnx.ModelProto, ids: Mapping[str, int] | None = None) -> None:
        self.types: dict[int, tuple[str, str]] = {}
        self.by_name: dict[str, int] = {}
        self.producer: dict[str, int] = {}
        self.inputs: dict[int, list[str]] = {}
        readers: dict[str, set[int]] = {}
        weights = {i.name for i in model.graph.initializer}
        for node in model.graph.node:
            op_id = op_id_of(node.name) if ids is None else ids.get(node.name)
            if op_id is None:
                continue
            self.types[op_id] = (node.op_type, node.name)
            self.by_name[node.name] = op_id
            self.inputs[op_id] = list(node.input)
            self.producer.update({t: op_id for t in node.output if t})
            for t in node.input:
                if t in weights:
                    readers.setdefault(t, set()).add(op_id)
        self.weight_reader = {t: next(iter(r)) for t, r in readers.items() if len(r) == 1}

    @classmethod
    def of(cls, path: str | Path) -> ModelOps:
        """From a file; a model with no ``#id`` names gets the ids of qcore's loader."""
        model = onnx.load(str(path), load_external_data=False)
        if any(op_id_of(n.name) is not None for n in model.graph.node):
            return cls(model)
        return cls(model, _loader_ids(path))

    def _names(self, name: str) -> list[str]:
        """``name`` and the forms an engine derives from it (``_token_N``, ``_nchwc``,
        ``/WithoutBiases``)."""
        found = [name]
        base = name
        while _TOKEN.search(base):
            base = _TOKEN.sub("", base)
        found += [base, base.removesuffix("_nchwc"), base.split("/")[0]]
        return list(dict.fromkeys(found))

    def lookup(self, name: str) -> int | None:
        """The op id a kernel's name points at, by name or else by output tensor."""
        for form in self._names(name):
            op_id = op_id_of(form)
            if op_id is not None and op_id in self.types:
                return op_id
            if form in self.by_name:
                return self.by_name[form]
        return next((self.producer[f] for f in self._names(name) if f in self.producer), None)

    def resolve(self, k: Kernel) -> list[int]:
        """The op ids one kernel ran, its own op first (empty: an engine-made kernel)."""
        ids = [i for i in (self.lookup(n) for n in k.originals) if i is not None]
        if not ids and k.op_type not in LAYOUT_TYPES:
            ids = [self.producer[t] for t in k.outputs if t in self.producer]
            ids = ids or [self.weight_reader[t] for t in k.inputs if t in self.weight_reader]
        if ids and k.op_type in COMPUTE_TYPES and k.executed and \
                not any(self.types[i][0] in COMPUTE_TYPES for i in ids):
            ids = self._compute_before(ids[0]) + ids
        return list(dict.fromkeys(ids))

    def _compute_before(self, op_id: int) -> list[int]:
        """The compute op whose output ``op_id`` reads, if any: a compute kernel named after
        the bias Add (or activation) fused into it ran that op too (OpenVINO lists only
        ``Add#30`` for a MatMul + Add FullyConnected)."""
        for t in self.inputs.get(op_id, []):
            src = self.producer.get(t)
            if src is not None and self.types[src][0] in COMPUTE_TYPES:
                return [src]
        return []


def _loader_ids(path: str | Path) -> dict[str, int]:
    """Node name -> op id as qcore's loader numbers the model (empty if it cannot load it)."""
    try:
        from qcore.loader import load_graph

        graph = load_graph(path)
    except Exception:  # noqa: BLE001 - without ids every kernel is reported unmapped
        return {}
    return {n.name: n.id for n in graph.nodes if n.name}
