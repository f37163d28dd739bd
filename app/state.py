"""The app state: the open model, its conversion result and the user's pending config.

Kept small on purpose (napari's lesson): views read it and call its methods; it tells them
what changed through three signals.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal

from app.headless.child_calls import TuneRun
from app.headless.input_source import InputSource
from qcore.config import ConvertConfig
from qcore.convert import ConversionResult, Snapshot
from qcore.ir import Graph, Node
from qcore.labels import status_key
from qcore.status import ReasonKind


class Session(QObject):
    model_changed = Signal()  # a new model was opened (or closed)
    result_changed = Signal()  # new snapshots after a conversion
    config_changed = Signal()  # ops_to_quantize / op_ids_to_skip / target edited
    inputs_changed = Signal()  # where benchmark / accuracy / advisor inputs come from

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.path: Path | None = None
        self.result: ConversionResult | None = None
        self.generation = 0  # bumps on every new result; layout cache keys use it
        self.ops_to_quantize: list[str] = []  # empty = every supported type
        self.skip_ids: set[int] = set()
        self.target = "onnxruntime"
        self._placed_types: dict[int, str] = {}  # op id -> op type the placement saw
        self.inputs = InputSource()
        self.tuned_base: ConvertConfig | None = None  # the user's config of a tuned result
        self.tune: TuneRun | None = None  # what tuning measured for the result shown

    def set_inputs(self, source: InputSource) -> None:
        if source != self.inputs:
            self.inputs = source
            self.inputs_changed.emit()

    # ---- model / result -----------------------------------------------------------------
    def set_result(self, path: Path, result: ConversionResult, new_model: bool,
                   after_preview: bool = False, tuned_base: ConvertConfig | None = None,
                   tune: TuneRun | None = None) -> None:
        """Show ``result``; ``after_preview`` keeps the generation (so the cached views of the
        preview's loaded-model snapshot stay valid: it is the same graph)."""
        self.path = Path(path)
        self.result, self.tuned_base = result, tuned_base
        self.tune = tune
        if not after_preview:
            self.generation += 1
        placed = self.placement_graph()
        self._placed_types = {n.id: n.op_type for n in placed.nodes} if placed else {}
        if new_model:
            self.model_changed.emit()
        self.result_changed.emit()

    @property
    def snapshots(self) -> list[Snapshot]:
        return self.result.snapshots if self.result else []

    def placement_graph(self) -> Graph | None:
        """The fused FP32 graph where the INT8/FP32 decision was made."""
        snaps = self.snapshots
        for snap in snaps:
            if snap.name == "quantize_placement":
                return snap.graph
        return snaps[0].graph if snaps else None

    def op_types(self) -> dict[str, int]:
        """Op types the placement pass decides on, with their counts."""
        graph = self.placement_graph()
        return graph.op_histogram() if graph else {}

    def find_op(self, op_id: int) -> Node | None:
        """The op as the placement pass saw it, else the latest snapshot that has it."""
        placed = self.placement_graph()
        node = placed.node_by_id(op_id) if placed else None
        if node is not None:
            return node
        for snap in reversed(self.snapshots):
            node = snap.graph.node_by_id(op_id)
            if node is not None:
                return node
        return None

    def preview_status(self, node: Node) -> tuple[str, bool]:
        """The LEGEND status to draw for ``node`` and whether it is pending (differs from the
        conversion shown because the config changed since)."""
        base = status_key(node)
        if base == "fake":
            return base, False
        if node.id in self.skip_ids:
            return "skipped", base != "skipped"
        if base == "skipped":
            return "undecided", True
        op_type = self._placed_types.get(node.id, node.op_type)
        selected = not self.ops_to_quantize or op_type in self.ops_to_quantize
        if base == "int8" and not selected:
            return "fp32", True
        if base == "fp32" and selected and node.reason.kind is ReasonKind.NOT_SELECTED:
            return "undecided", True
        return base, False

    # ---- config ---------------------------------------------------------------------------
    def config(self) -> ConvertConfig:
        return ConvertConfig(list(self.ops_to_quantize), sorted(self.skip_ids), self.target)

    def applied_config(self) -> ConvertConfig | None:
        if self.result is None:
            return None  # a tuned result was converted with more skips than the user asked for
        return self.tuned_base or self.result.config

    def is_dirty(self) -> bool:
        """The config differs from the one the shown snapshots were converted with."""
        applied = self.applied_config()
        return applied is not None and applied != self.config()

    def set_config(self, config: ConvertConfig) -> None:
        self.ops_to_quantize = list(config.ops_to_quantize)
        self.skip_ids = set(config.op_ids_to_skip)
        self.target = config.target
        self.config_changed.emit()

    def toggle_skip(self, op_id: int) -> bool:
        """Add or remove ``op_id`` in op_ids_to_skip; returns True when it is now skipped."""
        if op_id in self.skip_ids:
            self.skip_ids.discard(op_id)
        else:
            self.skip_ids.add(op_id)
        self.config_changed.emit()
        return op_id in self.skip_ids

    def set_skip_ids(self, ids: set[int]) -> None:
        if set(ids) != self.skip_ids:
            self.skip_ids = set(ids)
            self.config_changed.emit()

    def set_ops_to_quantize(self, types: list[str]) -> None:
        types = sorted(set(types))
        if types != self.ops_to_quantize:
            self.ops_to_quantize = types
            self.config_changed.emit()

    def set_target(self, target: str) -> None:
        if target != self.target:
            self.target = target
            self.config_changed.emit()

    def reset_config(self) -> None:
        """A new model: its op ids mean nothing for the old skip list (the target stays)."""
        self.ops_to_quantize, self.skip_ids = [], set()
        self.config_changed.emit()
