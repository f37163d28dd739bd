"""What the graph panel shows, as plain data: the snapshot, the selected op, the view mode with
its neighbourhood depth and expanded blocks, whether only a pass's changes are drawn, and what
the ops' colours mean (conversion status, what ran, time per op).

No Qt. The panel and the window observe it (``observe``: a callback gets the set of
``Change``s of each update) and change it only through its methods; which view a snapshot
gets follows from it alone (``spec``), so the rules are testable without a window.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum

from app.headless.blocks import Block
from app.headless.diff import PassDelta
from app.headless.view_plan import ViewSpec
from qcore.ir import Graph

LARGE_GRAPH_OPS = 1500  # above this, a graph without repeated blocks opens in the neighbourhood
BLOCKS_ABOVE_OPS = 400  # above this, repeated blocks start collapsed
DEPTH = 6


class Change(Enum):
    """What an update changed (an observer may lay the view out again, tick an action...)."""

    SNAPSHOT = "snapshot"  # a snapshot was picked (perhaps the same one, newly converted)
    SELECTION = "selection"
    CENTRE = "centre"  # the neighbourhood is to be centred on the selection
    MODE = "mode"  # the view mode was chosen (perhaps the same one again)
    NEAR = "near"  # the neighbourhood view was switched on or off
    DEPTH = "depth"
    DIFF = "diff"
    EXPANDED = "expanded"
    MODEL = "model"  # a new model: choices made for the old one are gone
    COLOUR = "colour"  # the ops are coloured by something else


Observer = Callable[[frozenset[Change]], None]


class ViewState:
    """The graph view's state. ``collapse`` is the user's choice for repeated blocks (None:
    collapsed above ``BLOCKS_ABOVE_OPS``); ``whole_graph`` says the user asked for the whole
    graph, so a big one is not cut down to the neighbourhood; the neighbourhood (``near``) is
    centred on the selection."""

    def __init__(self) -> None:
        self.snapshot = -1  # index in the session's snapshots
        self.selection: int | None = None  # op id; it may be absent from the shown snapshot
        self.near = False
        self.depth = DEPTH
        self.diff = False  # draw only what the shown pass changed
        self.collapse: bool | None = None
        self.whole_graph = False
        self.expanded: frozenset[str] = frozenset()  # block keys the user expanded
        self.colour = "status"  # "status", "ran" (INT8 / float) or "time" (per op)
        self._observers: list[Observer] = []

    def observe(self, observer: Observer) -> None:
        self._observers.append(observer)

    def _notify(self, *changes: Change) -> None:
        if changes:
            for observer in list(self._observers):
                observer(frozenset(changes))

    @property
    def mode(self) -> str:
        """'near', 'blocks' (collapsed at any size), 'all' (every op) or 'auto' (by size)."""
        if self.near:
            return "near"
        return {True: "blocks", False: "all", None: "auto"}[self.collapse]

    # ---- rules ----------------------------------------------------------------------------
    def collapsed(self, ops: int) -> bool:
        """Draw repeated blocks collapsed: the user's choice, else for big graphs."""
        return self.collapse if self.collapse is not None else ops > BLOCKS_ABOVE_OPS

    def centre(self, graph: Graph) -> int:
        """The op the neighbourhood is centred on: the selection, else the first op."""
        if self.selection is not None and graph.node_by_id(self.selection) is not None:
            return self.selection
        return graph.nodes[0].id if graph.nodes else -1

    def spec(self, graph: Graph, delta: PassDelta | None = None) -> ViewSpec:
        """The view of ``graph`` to draw; ``delta`` is what its pass changed (diff mode)."""
        if self.diff and delta is not None:
            return ViewSpec("changes", depth=1, ops=frozenset(delta.changed))
        if self.near:
            return ViewSpec("near", self.centre(graph), self.depth)
        if self.collapsed(len(graph.nodes)):
            return ViewSpec("blocks", expanded=self.expanded)
        return ViewSpec("all")

    def expanded_block(self, op_id: int, blocks: dict[str, Block]) -> str | None:
        """The innermost expanded block holding ``op_id`` (double-clicking the op folds it
        back; a block's levels follow it in ``blocks``)."""
        keys = [key for key, block in blocks.items()
                if key in self.expanded and op_id in block.op_ids]
        return keys[-1] if keys else None

    def fold_parent(self, key: str, blocks: dict[str, Block]) -> None:
        """Collapse the block holding block ``key`` (from ``key``'s context menu)."""
        parent = blocks[key].parent if key in blocks else ""
        if parent:
            self.expanded = self.expanded - {parent}
            self._notify(Change.EXPANDED)

    def expand_to(self, op_id: int, blocks: dict[str, Block]) -> None:
        """Open every block (and level) holding ``op_id``, so the op itself is drawn."""
        self.expand(*(key for key, block in blocks.items() if op_id in block.op_ids))

    # ---- updates --------------------------------------------------------------------------
    def show_snapshot(self, index: int, ops: int) -> None:
        """Show snapshot ``index`` (of ``ops`` ops): a big one that would be drawn whole
        starts in the neighbourhood view unless the user asked for the whole graph."""
        self.snapshot = index
        if ops > LARGE_GRAPH_OPS and not self.collapsed(ops) and not self.whole_graph \
                and not self.near:
            self.near = True
            self._notify(Change.SNAPSHOT, Change.NEAR)
            return
        self._notify(Change.SNAPSHOT)

    def fall_back_to_near(self, ops: int, spec: ViewSpec, found_blocks: bool) -> bool:
        """A big graph to be drawn with its blocks collapsed has none: show the neighbourhood
        instead (unless the user asked for the whole graph). True if it did."""
        if spec.kind != "blocks" or found_blocks or spec.expanded or ops <= LARGE_GRAPH_OPS \
                or self.whole_graph:
            return False
        self.near = True
        self._notify(Change.NEAR)
        return True

    def select(self, op_id: int | None) -> None:
        self.selection = op_id
        self._notify(Change.SELECTION)

    def recentre(self, op_id: int) -> None:
        """Select ``op_id`` and centre the neighbourhood on it."""
        self.selection = op_id
        self._notify(Change.SELECTION, Change.CENTRE)

    def set_near(self, on: bool) -> None:
        """The neighbourhood view on, or off for the whole graph."""
        changed = on != self.near
        self.near, self.whole_graph = on, not on
        self._notify(Change.MODE, *([Change.NEAR] if changed else []))

    def set_mode(self, mode: str) -> None:
        """'blocks' (repeated blocks collapsed), 'all' (every op) or 'near' (neighbourhood)."""
        self.collapse = mode == "blocks"
        if mode == "near":
            self.set_near(True)
            return
        changes = [Change.MODE]
        if mode == "blocks" and self.expanded:
            self.expanded = frozenset()
            changes.append(Change.EXPANDED)
        if self.near:
            changes.append(Change.NEAR)
        self.near, self.whole_graph = False, True
        self._notify(*changes)

    def set_diff(self, on: bool) -> None:
        if on != self.diff:
            self.diff = on
            self._notify(Change.DIFF)

    def set_depth(self, depth: int) -> None:
        if depth != self.depth:
            self.depth = depth
            self._notify(Change.DEPTH)

    def set_colour(self, mode: str) -> None:
        """Colour the ops by ``mode``: one of ``app.headless.per_op_view.COLOUR_MODES``."""
        if mode != self.colour:
            self.colour = mode
            self._notify(Change.COLOUR)

    def expand(self, *keys: str) -> None:
        self.expanded = self.expanded | set(keys)
        self._notify(Change.EXPANDED)

    def fold(self, key: str, op_id: int) -> None:
        """Collapse block ``key`` again, keeping ``op_id`` (one of its ops) selected."""
        self.expanded = self.expanded - {key}
        self.selection = op_id
        self._notify(Change.EXPANDED, Change.SELECTION)

    def new_model(self) -> None:
        """Forget the selection and the block and whole-graph choices (the neighbourhood view,
        its depth and diff mode stay); the next ``show_snapshot`` draws the new model."""
        self.selection, self.collapse, self.whole_graph = None, None, False
        self.expanded = frozenset()
        self._notify(Change.MODEL)


def fused_host(graph: Graph | None, op_id: int) -> int | None:
    """The op of ``graph`` whose ``fused`` list holds ``op_id`` (fused into it by a pass)."""
    tag = f"({op_id})"
    for node in graph.nodes if graph else []:
        if any(label.endswith(tag) for label in node.fused):
            return node.id
    return None


def holds(graph: Graph, op_id: int) -> bool:
    """``op_id`` is an op of ``graph`` or fused into one of them."""
    return graph.node_by_id(op_id) is not None or fused_host(graph, op_id) is not None
