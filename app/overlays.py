"""What the graph draws over its ops besides their status: the ops the shown pass changed, the
SQNR badges of the last benchmark, and what ran per op (a per-op profile: fills by ran
precision or time, time badges, flags), coloured as the view state's ``colour`` says."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from app.headless.per_op_view import longest_ms, marks
from app.headless.view_state import Change, ViewState
from qcore.status import RunStatus

if TYPE_CHECKING:
    from app.graph_view import GraphView
    from app.headless.diff import PassDelta
    from app.legend import LegendWidget
    from qcore.bench.per_op import PerOpResult


class Overlays:
    def __init__(self, view: GraphView, state: ViewState, legend: LegendWidget,
                 delta: Callable[[], PassDelta | None]) -> None:
        self.view, self.state, self.legend, self.delta = view, state, legend, delta
        self.show_changes = True
        self.sqnr: dict[int, float] = {}
        self.show_sqnr = True
        self.per_op: PerOpResult | None = None  # the profile shown (one model on one engine)
        state.observe(self._on_state)

    def _on_state(self, changes: frozenset[Change]) -> None:
        if Change.COLOUR in changes:
            self.apply_marks()

    def apply(self) -> None:
        """Everything, on the items of a view just drawn."""
        self.apply_changes()
        self.view.set_sqnr(self.sqnr if self.show_sqnr else {})
        self.apply_marks()

    # ---- the shown pass's changes ---------------------------------------------------------
    def set_show_changes(self, on: bool) -> None:
        self.show_changes = on
        self.apply_changes()

    def apply_changes(self) -> None:
        delta = self.delta() if self.show_changes else None
        self.view.mark_changed(delta.changed if delta is not None else ())

    # ---- SQNR -----------------------------------------------------------------------------
    def set_sqnr(self, sqnr: dict[int, float]) -> None:
        self.sqnr = dict(sqnr)
        self.view.set_sqnr(self.sqnr if self.show_sqnr else {})

    def set_show_sqnr(self, on: bool) -> None:
        self.show_sqnr = on
        self.view.set_sqnr(self.sqnr if on else {})

    # ---- what ran -------------------------------------------------------------------------
    def set_per_op(self, result: PerOpResult | None) -> None:
        """Show ``result`` (None: no profile; the status colours come back)."""
        self.per_op = result if result is not None and result.status is RunStatus.OK else None
        if self.per_op is None and self.state.colour != "status":
            self.state.set_colour("status")  # notifies: apply_marks runs
        else:
            self.apply_marks()

    def apply_marks(self) -> None:
        ops = self.view.ops
        found = marks(self.per_op, self.state.colour, set(ops))
        for op_id, item in ops.items():
            item.set_mark(found.get(op_id))
        profiled = self.per_op is not None
        self.legend.set_colour(self.state.colour if profiled else "status", profiled,
                               longest_ms(self.per_op) if profiled else 0.0,
                               profiled and any(m.flag for m in found.values()))
