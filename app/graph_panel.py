"""The centre of the window: toolbar, banner and the graph view of the picked snapshot.

What is shown lives in a ``ViewState`` (Qt-free) that the panel observes: each change that
alters the view asks the ``ViewLoader`` for it (cached per conversion, snapshot and view;
planned and laid out in workers for big graphs).
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QSizePolicy,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.graph_search import GraphSearch
from app.graph_view import GraphView
from app.headless.banner import banner_text
from app.headless.diff import PassDelta, pass_delta
from app.headless.layout import GraphLayout
from app.headless.view_plan import ViewPlan
from app.headless.view_state import Change, ViewState, fused_host
from app.legend import LegendWidget
from app.overlays import Overlays
from app.search_bar import SearchBar
from app.state import Session
from app.view_loader import BusyCard, ViewLoader
from app.workers import Job, JobPool
from qcore import render
from qcore.convert import Snapshot
from qcore.ir import Graph

RELAYOUT = frozenset({Change.SNAPSHOT, Change.MODE, Change.NEAR, Change.DIFF, Change.EXPANDED})
RELAYOUT_NEAR = frozenset({Change.DEPTH, Change.CENTRE})  # ... in the neighbourhood view


class GraphPanel(QWidget):
    op_selected = Signal(int)
    tensor_selected = Signal(str)
    selection_cleared = Signal()
    snapshot_shown = Signal()  # a layout is on screen (or a message explains why not)

    def __init__(self, session: Session, jobs: JobPool, state: ViewState | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.state = state or ViewState()
        self.layout_error = ""
        self._plan: ViewPlan | None = None
        self._build()
        self.loader = ViewLoader(jobs, self.busy, self._have_plan, self._show,
                                 self._on_layout_error)
        session.model_changed.connect(self._new_model)
        self.state.observe(self._on_state)

    # ---- widgets --------------------------------------------------------------------------
    def _build(self) -> None:
        self.view = GraphView(self)
        self.title = QLabel("No model")
        self.title.setObjectName("graphTitle")
        self.title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.title.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.search = SearchBar(self)
        self.banner = QLabel(self)
        self.banner.setObjectName("banner")
        self.banner.setWordWrap(True)
        self.banner.setOpenExternalLinks(False)
        self.banner.linkActivated.connect(self._banner_link)
        # Two lines tall even for one: a new text then does not resize the graph view (a
        # resize of a view holding 20,000 items costs 40 ms and more)
        self.banner.setMinimumHeight(2 * self.banner.fontMetrics().lineSpacing() + 14)
        self.banner.hide()
        self.depth_spin = QSpinBox(self)
        self.depth_spin.setRange(1, 20)
        self.depth_spin.setValue(self.state.depth)
        self.depth_spin.setPrefix("depth ")
        self.depth_spin.setToolTip("Neighbourhood depth: ops within this many hops")
        self.depth_spin.valueChanged.connect(self.state.set_depth)
        self.depth_spin.setVisible(self.state.near)
        self.zoom_label = QLabel("100%")
        self.zoom_label.setMinimumWidth(44)
        self.zoom_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        top = QHBoxLayout()
        top.setContentsMargins(8, 4, 8, 4)
        for widget, stretch in ((self.title, 1), (self.depth_spin, 0), (self.zoom_label, 0),
                                (self.search, 0)):
            top.addWidget(widget, stretch)
        self.tool_row = top
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(0)
        column.addLayout(top)
        column.addWidget(self.banner)
        column.addWidget(self.view, 1)
        self.legend = LegendWidget(self)
        column.addWidget(self.legend)
        self.overlays = Overlays(self.view, self.state, self.legend, self.delta)
        self.busy = BusyCard(self.view, self.cancel_layout, lambda: self.view_job is not None)
        self.view.zoom_changed.connect(lambda s: self.zoom_label.setText(f"{s * 100:.0f}%"))
        self.view.op_selected.connect(self._on_op_selected)
        self.view.tensor_selected.connect(self.tensor_selected)
        self.view.selection_cleared.connect(self._on_cleared)
        self.view.op_activated.connect(self._on_activated)
        self.view.block_activated.connect(self.state.expand)
        self.view.frame_folded.connect(self._fold_frame)
        self.view.block_fold_parent.connect(
            lambda key: self.state.fold_parent(key, self._plan.blocks if self._plan else {}))
        self.finder = GraphSearch(self)

    def add_tool_button(self, button: QToolButton) -> None:
        self.tool_row.insertWidget(self.tool_row.count() - 2, button)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self.busy.place(self.view.viewport())

    def set_legend_visible(self, visible: bool) -> None:
        self.legend.setVisible(visible)

    # ---- the state ------------------------------------------------------------------------
    def _on_state(self, changes: frozenset[Change]) -> None:
        if Change.NEAR in changes:
            self.depth_spin.setVisible(self.state.near)
        if Change.DEPTH in changes:
            self.depth_spin.setValue(self.state.depth)
        if Change.SNAPSHOT in changes:
            self._show_title()
        if changes & RELAYOUT or (self.state.near and changes & RELAYOUT_NEAR):
            self._request_layout()

    def _new_model(self) -> None:
        self._plan = None
        self.loader.clear()
        self.state.new_model()

    def snapshot(self) -> Snapshot | None:
        snaps, index = self.session.snapshots, self.state.snapshot
        return snaps[index] if 0 <= index < len(snaps) else None

    def graph(self) -> Graph | None:
        snap = self.snapshot()
        return snap.graph if snap else None

    def set_snapshot(self, index: int) -> None:
        snaps = self.session.snapshots
        self.state.show_snapshot(index, len(snaps[index].graph.nodes)
                                 if 0 <= index < len(snaps) else 0)

    def _show_title(self) -> None:
        snap = self.snapshot()
        if snap is None:
            self.view.show_message("Open a QDQ .onnx model (Ctrl+O) or drop it here.")
            self.title.setText("No model")
            return
        self.title.setText(f"<b>{snap.stem}</b>  \u2014  {snap.summary or 'no summary'}"
                           f"  \u00b7  {len(snap.graph.nodes)} ops")
        self.title.setToolTip(snap.summary)

    def delta(self, snap: Snapshot | None = None) -> PassDelta | None:
        """What the shown pass changed (None for the loaded model)."""
        snap = snap or self.snapshot()
        if snap is None or snap.index < 0 or self.state.snapshot < 1:
            return None
        return pass_delta(self.session.snapshots[self.state.snapshot - 1].graph, snap.graph)

    # ---- preparing and drawing the view ---------------------------------------------------
    @property
    def view_job(self) -> Job | None:
        """The background job preparing the shown view (plan or Graphviz layout), if any."""
        return self.loader.job

    def _request_layout(self) -> None:
        snap = self.snapshot()
        if snap is None:
            return
        self._update_banner(snap)
        delta = self.delta(snap) if self.state.diff else None
        spec = self.state.spec(snap.graph, delta)
        key = (self.session.generation, snap.index, *spec.key())
        if not self.loader.begin(key):
            return  # this very view is being prepared already
        if spec.kind == "changes" and not spec.ops:
            removed = " (it only removed ops: see above)" if delta and delta.removed else ""
            self.view.show_message(f"{snap.name} added or rewrote no op{removed}.")
            self.snapshot_shown.emit()
            return
        self.loader.load(key, snap.graph, spec)

    def _have_plan(self, key: tuple, plan: ViewPlan) -> None:
        snap = self.snapshot()
        ops = len(snap.graph.nodes) if snap else 0
        if self.state.fall_back_to_near(ops, plan.spec, bool(plan.collapsed)):
            return  # big and no repeated blocks: the neighbourhood view is requested
        self._plan = plan
        self._update_banner(snap)
        if plan.quick is not None:
            self._show(plan, plan.quick)
        if render.find_dot() is None:
            self.layout_error = render.INSTALL_HINT
            self._update_banner(snap)
            if plan.quick is None:
                self.view.show_message("Graphviz is not installed, so the graph cannot be "
                                       "drawn.\nConversion, benchmark and .dot export still "
                                       "work.")
                self.snapshot_shown.emit()
            return
        self.loader.lay_out(key, plan)

    def shut_down(self) -> None:
        """The window closes: stop building the scene and preparing views; a view job that
        ends later shows nothing."""
        self.loader.cancel()
        self.busy.stop()
        self.view.builder.stop()

    def cancel_layout(self) -> None:
        if self.loader.cancel():
            if not self.view.ops and not self.view.blocks:
                self.view.show_message("Layout cancelled. Use View > Neighbourhood for a "
                                       "smaller view, or pick the pass again.")
            self.snapshot_shown.emit()

    def _on_layout_error(self, exc: BaseException) -> None:
        self.layout_error = str(exc)
        self._update_banner(self.snapshot())
        if not self.view.ops and not self.view.blocks:
            self.view.show_message(f"The graph could not be laid out:\n{exc}")
        self.snapshot_shown.emit()

    def _show(self, plan: ViewPlan, layout: GraphLayout) -> None:
        first = not self.view.ops and not self.view.blocks
        keep_scale = self.view.scale_factor()
        self._plan = plan
        if not layout.quick:
            self.layout_error = ""
        self.view.show_layout(layout, plan.graph, self.session.preview_status, plan.collapsed,
                              done=lambda: self._shown(first, keep_scale),
                              frames=plan.view.frames)
        self.view.parent_of = {key: block.parent for key, block in plan.blocks.items()}

    def _shown(self, first: bool, keep_scale: float) -> None:
        self.overlays.apply()
        shown = self._select_current()
        selected = self.view.selected_op()
        if first or not shown or selected is None:
            self.view.home()
            if shown and selected is not None:
                self.view.centre_on(self.view.ops[selected])
        else:
            self.view.set_scale(keep_scale)
            self.view.centre_on(self.view.ops[selected])
        self.finder.refresh()
        self.busy.place(self.view.viewport())
        self.snapshot_shown.emit()

    def _update_banner(self, snap: Snapshot | None) -> None:
        problem = self.layout_error or (render.INSTALL_HINT if render.find_dot() is None else "")
        delta = self.delta(snap) if snap is not None and self.state.diff and not problem else None
        before = self.session.snapshots[self.state.snapshot - 1].graph if delta else None
        text = banner_text(self.state, snap, self._plan, delta, before, problem)
        self.banner.setText(text)
        self.banner.setVisible(bool(text))

    def set_view_mode(self, mode: str) -> None:
        """'blocks', 'all' or 'near' (see ``ViewState.set_mode``)."""
        self.state.set_mode(mode)

    def _banner_link(self, link: str) -> None:
        if link == "nodiff":
            self.state.set_diff(False)
        elif link == "whole":
            self.state.set_near(False)
        elif link in ("all", "blocks"):
            self.set_view_mode(link)

    # ---- selection ------------------------------------------------------------------------
    def _select_current(self) -> bool:
        """Select the current op, or the op it was fused into; True if something is selected."""
        op_id = self.state.selection
        if op_id is None:
            return False
        if self.view.select_op(op_id, centre=False, quiet=True):
            return True
        host = fused_host(self.graph(), op_id)
        return host is not None and self.view.select_op(host, centre=False, quiet=True)

    def _on_op_selected(self, op_id: int) -> None:
        self.state.select(op_id)
        self.op_selected.emit(op_id)

    def _on_cleared(self) -> None:
        self.state.select(None)
        self.selection_cleared.emit()

    def _on_activated(self, op_id: int) -> None:
        """A double click: re-centre the neighbourhood, or fold an expanded block back."""
        if self.state.near:
            self.state.recentre(op_id)
            return
        plan = self._plan
        key = self.state.expanded_block(op_id, plan.blocks if plan and
                                        plan.spec.kind == "blocks" else {})
        if key is not None:
            self.state.fold(key, op_id)

    def _fold_frame(self, key: str) -> None:
        """Collapse an expanded block from its frame, keeping its op selected if one is."""
        block = self._plan.blocks.get(key) if self._plan else None
        selected = self.state.selection
        if block is not None and block.op_ids:
            self.state.fold(key, selected if selected is not None else block.op_ids[0])

    def select_op(self, op_id: int) -> bool:
        """Select an op by id (from search, the SQNR table, ...), re-centring if needed."""
        shown = self.view.select_op(op_id, centre=True)
        self.state.select(op_id)  # after the view: not finding it there clears the selection
        if shown:
            return True
        block = self.view.block_of.get(op_id)
        if block is not None:  # inside a collapsed block: open it down to the op
            self.state.expand_to(op_id, self._plan.blocks if self._plan else {})
        elif self.state.near:
            self.state.recentre(op_id)
        host = fused_host(self.graph(), op_id)
        found = host is not None and self.view.select_op(host, centre=True, quiet=True)
        self.op_selected.emit(op_id)
        return found

    def refresh_status(self) -> None:
        self.view.refresh_status(self.session.preview_status)
