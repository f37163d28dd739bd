"""The centre of the window: toolbar, banners and the graph view, with layout in a worker.

Layouts are cached per (conversion, snapshot, view); a newer request makes older results
stale; big graphs start in the neighbourhood view so Graphviz stays fast.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.diff import pass_delta
from app.graph_view import GraphView, match_ops
from app.layout import GraphLayout, LayoutCache, compute_layout, neighbourhood
from app.legend import LegendWidget
from app.search_bar import SearchBar
from app.state import Session
from app.workers import Job, JobPool
from qcore import render
from qcore.convert import Snapshot
from qcore.ir import Graph

LARGE_GRAPH_OPS = 1500  # above this, start with the neighbourhood of the selection
BUSY_DELAY_MS = 250


class GraphPanel(QWidget):
    op_selected = Signal(int)
    tensor_selected = Signal(str)
    selection_cleared = Signal()
    snapshot_shown = Signal()  # a layout is on screen (or a message explains why not)
    focus_mode_changed = Signal(bool)

    def __init__(self, session: Session, jobs: JobPool, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session, self.jobs = session, jobs
        self.cache = LayoutCache()
        self.index = -1  # position in session.snapshots
        self.current_op: int | None = None
        self.focus_mode = False
        self.whole_graph_ok = False  # the user asked for the whole big graph
        self.depth = 6
        self.show_changes = True
        self.sqnr: dict[int, float] = {}
        self.show_sqnr = True
        self.layout_error = ""
        self._job: Job | None = None
        self._token = 0
        self._matches: list[int] = []
        self._match_pos = 0
        self._build()

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
        self.banner.hide()
        self.depth_spin = QSpinBox(self)
        self.depth_spin.setRange(1, 20)
        self.depth_spin.setValue(self.depth)
        self.depth_spin.setPrefix("depth ")
        self.depth_spin.setToolTip("Neighbourhood depth: ops within this many hops")
        self.depth_spin.valueChanged.connect(self._set_depth)
        self.zoom_label = QLabel("100%")
        self.zoom_label.setMinimumWidth(44)
        self.zoom_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        top = QHBoxLayout()
        top.setContentsMargins(8, 4, 8, 4)
        top.addWidget(self.title, 1)
        top.addWidget(self.depth_spin)
        self.tool_row = top
        top.addWidget(self.zoom_label)
        top.addWidget(self.search)
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(0)
        column.addLayout(top)
        column.addWidget(self.banner)
        column.addWidget(self.view, 1)
        self.legend = LegendWidget(self)
        column.addWidget(self.legend)
        self.busy = self._busy_card()
        self._busy_timer = QTimer(self, singleShot=True, interval=BUSY_DELAY_MS)
        self._busy_timer.timeout.connect(self._show_busy)
        self.view.zoom_changed.connect(lambda s: self.zoom_label.setText(f"{s * 100:.0f}%"))
        self.view.op_selected.connect(self._on_op_selected)
        self.view.tensor_selected.connect(self.tensor_selected)
        self.view.selection_cleared.connect(self._on_cleared)
        self.view.op_activated.connect(self._on_activated)
        self.search.changed.connect(self._search)
        self.search.step.connect(self._step_match)
        self._update_depth_visible()

    def add_tool_button(self, button: QToolButton) -> None:
        self.tool_row.insertWidget(self.tool_row.count() - 2, button)

    def _busy_card(self) -> QFrame:
        card = QFrame(self.view)
        card.setObjectName("busyCard")
        row = QHBoxLayout(card)
        self.busy_label = QLabel("Laying out\u2026")
        cancel = QPushButton("Cancel")
        cancel.clicked.connect(self.cancel_layout)
        row.addWidget(self.busy_label)
        row.addWidget(cancel)
        card.hide()
        return card

    def resizeEvent(self, event) -> None:  # noqa: ANN001
        super().resizeEvent(event)
        self._place_overlays()

    def _place_overlays(self) -> None:
        vp = self.view.viewport().geometry()
        self.busy.adjustSize()
        self.busy.move(vp.center().x() - self.busy.width() // 2, vp.top() + 40)

    def set_legend_visible(self, visible: bool) -> None:
        self.legend.setVisible(visible)

    # ---- showing snapshots --------------------------------------------------------------
    def snapshot(self) -> Snapshot | None:
        snaps = self.session.snapshots
        return snaps[self.index] if 0 <= self.index < len(snaps) else None

    def graph(self) -> Graph | None:
        snap = self.snapshot()
        return snap.graph if snap else None

    def set_snapshot(self, index: int) -> None:
        self.index = index
        snap = self.snapshot()
        if snap is None:
            self.view.show_message("Open a QDQ .onnx model (Ctrl+O) or drop it here.")
            self.title.setText("No model")
            return
        ops = len(snap.graph.nodes)
        self.title.setText(f"<b>{snap.stem}</b>  \u2014  {snap.summary or 'no summary'}"
                           f"  \u00b7  {ops} ops")
        self.title.setToolTip(snap.summary)
        if ops > LARGE_GRAPH_OPS and not self.whole_graph_ok and not self.focus_mode:
            self.focus_mode = True
            self._update_depth_visible()
            self.focus_mode_changed.emit(True)
        self._request_layout()

    def _view_graph(self, snap: Snapshot) -> tuple[tuple, Graph]:
        base = (self.session.generation, snap.index)
        if not self.focus_mode:
            return base + ("all",), snap.graph
        centre = self.current_op
        if centre is None or snap.graph.node_by_id(centre) is None:
            centre = snap.graph.nodes[0].id if snap.graph.nodes else -1
        key = base + ("near", centre, self.depth)
        return key, neighbourhood(snap.graph, centre, self.depth)

    def _request_layout(self) -> None:
        snap = self.snapshot()
        if snap is None:
            return
        self._update_banner(snap)
        key, graph = self._view_graph(snap)
        self._token += 1
        if self._job is not None:
            self._job.cancel()
            self._job = None
        cached = self.cache.get(key)
        if cached is not None:
            self._show(cached, graph)
            return
        if render.find_dot() is None:
            self.layout_error = render.INSTALL_HINT
            self._update_banner(snap)
            self.view.show_message("Graphviz is not installed, so the graph cannot be drawn.\n"
                                   "Conversion, benchmark and .dot export still work.")
            self.snapshot_shown.emit()
            return
        token = self._token
        job = Job(compute_layout, graph, name="layout")
        job.signals.result.connect(lambda layout: self._on_layout(token, key, graph, layout))
        job.signals.error.connect(lambda exc: self._on_layout_error(token, exc))
        job.signals.finished.connect(lambda: self._on_job_done(job))
        self.busy_label.setText(f"Laying out {len(graph.nodes)} ops with Graphviz\u2026")
        self._job = self.jobs.start(job)
        self._busy_timer.start()

    def _on_job_done(self, job: Job) -> None:
        if job is self._job:
            self._job = None
            self._busy_timer.stop()
            self.busy.hide()

    def _show_busy(self) -> None:
        if self._job is not None:
            self._place_overlays()
            self.busy.show()
            self.busy.raise_()

    def cancel_layout(self) -> None:
        if self._job is not None:
            self._job.cancel()
            self._job = None
            self._token += 1
            self._busy_timer.stop()
            self.busy.hide()
            self.view.show_message("Layout cancelled. Use View > Neighbourhood for a smaller "
                                   "view, or pick the pass again.")
            self.snapshot_shown.emit()

    def _on_layout(self, token: int, key: tuple, graph: Graph, layout: GraphLayout) -> None:
        self.cache.put(key, layout)
        if token == self._token:
            self._show(layout, graph)

    def _on_layout_error(self, token: int, exc: BaseException) -> None:
        if token != self._token:
            return
        self.layout_error = str(exc)
        self._update_banner(self.snapshot())
        self.view.show_message(f"The graph could not be laid out:\n{exc}")
        self.snapshot_shown.emit()

    def _show(self, layout: GraphLayout, graph: Graph) -> None:
        first = not self.view.ops
        keep_scale = self.view.scale_factor()
        self.layout_error = ""
        self.view.show_layout(layout, graph, self.session.preview_status)
        self._apply_changes()
        self.view.set_sqnr(self.sqnr if self.show_sqnr else {})
        shown = self._select_current()
        if first or not shown:
            self.view.home()
            if shown:
                self.view.centre_on(self.view.ops[self.view.selected_op()])
        else:
            self.view.set_scale(keep_scale)
            self.view.centre_on(self.view.ops[self.view.selected_op()])
        self._search(self.search.field.text(), move=False)
        self._place_overlays()
        self.snapshot_shown.emit()

    def _select_current(self) -> bool:
        """Select the current op, or the op it was fused into; True if something is selected."""
        op_id = self.current_op
        if op_id is None:
            return False
        if self.view.select_op(op_id, centre=False, quiet=True):
            return True
        host = self.fused_host(op_id)
        return host is not None and self.view.select_op(host, centre=False, quiet=True)

    def fused_host(self, op_id: int) -> int | None:
        """The op of the shown snapshot whose ``fused`` list holds ``op_id``."""
        graph = self.graph()
        tag = f"({op_id})"
        for node in graph.nodes if graph else []:
            if any(label.endswith(tag) for label in node.fused):
                return node.id
        return None

    # ---- selection ------------------------------------------------------------------------
    def _on_op_selected(self, op_id: int) -> None:
        self.current_op = op_id
        self.op_selected.emit(op_id)

    def _on_cleared(self) -> None:
        self.current_op = None
        self.selection_cleared.emit()

    def _on_activated(self, op_id: int) -> None:
        if self.focus_mode:
            self.current_op = op_id
            self._request_layout()

    def select_op(self, op_id: int) -> bool:
        """Select an op by id (from search, the SQNR table, ...), re-centring if needed."""
        self.current_op = op_id
        if self.view.select_op(op_id, centre=True):
            return True
        if self.focus_mode:
            self._request_layout()
        host = self.fused_host(op_id)
        if host is not None and self.view.select_op(host, centre=True, quiet=True):
            self.op_selected.emit(op_id)
            return True
        self.op_selected.emit(op_id)
        return False

    def refresh_status(self) -> None:
        self.view.refresh_status(self.session.preview_status)

    # ---- options --------------------------------------------------------------------------
    def set_sqnr(self, sqnr: dict[int, float]) -> None:
        self.sqnr = dict(sqnr)
        self.view.set_sqnr(self.sqnr if self.show_sqnr else {})

    def set_show_sqnr(self, on: bool) -> None:
        self.show_sqnr = on
        self.view.set_sqnr(self.sqnr if on else {})

    def set_show_changes(self, on: bool) -> None:
        self.show_changes = on
        self._apply_changes()

    def _apply_changes(self) -> None:
        snap = self.snapshot()
        if snap is None or not self.show_changes or snap.index < 0:
            self.view.mark_changed(())
            return
        before = self.session.snapshots[self.index - 1].graph
        self.view.mark_changed(pass_delta(before, snap.graph).changed)

    def set_focus_mode(self, on: bool) -> None:
        changed = on != self.focus_mode
        self.focus_mode = on
        self.whole_graph_ok = not on
        self._update_depth_visible()
        if changed:
            self.focus_mode_changed.emit(on)
        self._request_layout()

    def _set_depth(self, depth: int) -> None:
        self.depth = depth
        if self.focus_mode:
            self._request_layout()

    def _update_depth_visible(self) -> None:
        self.depth_spin.setVisible(self.focus_mode)

    def _update_banner(self, snap: Snapshot | None) -> None:
        text = ""
        if self.layout_error or render.find_dot() is None:
            text = ("<b>Graphviz is missing or failed</b> \u2014 the graph view needs the "
                    "<code>dot</code> program. " + (self.layout_error or render.INSTALL_HINT))
        elif snap is not None and self.focus_mode:
            text = (f"Showing the neighbourhood (depth {self.depth}) of the selected op of "
                    f"{len(snap.graph.nodes)} ops. Double-click an op to re-centre. "
                    "<a href='whole'>Show the whole graph</a>")
        self.banner.setText(text)
        self.banner.setVisible(bool(text))

    def _banner_link(self, link: str) -> None:
        if link == "whole":
            self.set_focus_mode(False)

    # ---- search ---------------------------------------------------------------------------
    def _search(self, text: str, move: bool = True) -> None:
        shown = self.view.find(text)
        graph = self.graph()
        if self.focus_mode and graph is not None:  # search the whole snapshot, not the view
            self._matches = match_ops(graph.nodes, text)
        else:
            self._matches = shown
        self._match_pos = 0
        if move and self._matches:
            self.select_op(self._matches[0])
        self.search.show_count(self._match_pos, len(self._matches))

    def _step_match(self, direction: int) -> None:
        if not self._matches:
            return
        self._match_pos = (self._match_pos + direction) % len(self._matches)
        self.select_op(self._matches[self._match_pos])
        self.search.show_count(self._match_pos, len(self._matches))
