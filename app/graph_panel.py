"""The centre of the window: toolbar, banners and the graph view, with layout in a worker.

Layouts are cached per (conversion, snapshot, view); a newer request makes older results
stale; big graphs start in the neighbourhood view so Graphviz stays fast.
"""

from __future__ import annotations

import html
from collections import Counter

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QKeySequence, QShortcut
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

from app.graph_view import GraphView, match_ops
from app.headless.blocks import STRUCTURE_FAMILY, Block
from app.headless.diff import PassDelta, pass_delta
from app.headless.layout import GraphLayout, LayoutCache
from app.headless.view_plan import ViewPlan, ViewSpec, graphviz_layout, plan_view
from app.legend import LegendWidget
from app.search_bar import SearchBar
from app.state import Session
from app.workers import Job, JobPool
from qcore import render
from qcore.convert import Snapshot
from qcore.ir import Graph

LARGE_GRAPH_OPS = 1500  # above this, start with the neighbourhood of the selection
SYNC_PLAN_OPS = 300  # smaller graphs plan their view on the UI thread (a few ms)
BLOCKS_ABOVE_OPS = 400  # above this, repeated blocks start collapsed
BUSY_DELAY_MS = 250


class GraphPanel(QWidget):
    op_selected = Signal(int)
    tensor_selected = Signal(str)
    selection_cleared = Signal()
    snapshot_shown = Signal()  # a layout is on screen (or a message explains why not)
    focus_mode_changed = Signal(bool)
    diff_mode_changed = Signal(bool)

    def __init__(self, session: Session, jobs: JobPool, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session, self.jobs = session, jobs
        self.cache = LayoutCache()
        self.index = -1  # position in session.snapshots
        self.current_op: int | None = None
        self.focus_mode = False
        self.diff_mode = False  # draw only what the shown pass changed
        self.whole_graph_ok = False  # the user asked for the whole big graph
        self.depth = 6
        self.show_changes = True
        self.sqnr: dict[int, float] = {}
        self.show_sqnr = True
        self.layout_error = ""
        self._job: Job | None = None
        self._job_key: tuple | None = None  # the view key the running job works on
        self._token = 0
        self._matches: list[int] = []
        self._match_pos = 0
        # None: big graphs with repeated blocks start collapsed; True / False: the user's
        # choice (collapse at any size, or every op)
        self.collapse: bool | None = None
        self.expanded: set[str] = set()  # block keys the user expanded
        self.plans = LayoutCache()  # (generation, snapshot, view) -> ViewPlan
        self.blocks_cache: dict[tuple, dict[str, Block]] = {}
        self._plan: ViewPlan | None = None
        session.model_changed.connect(self._new_model)
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
        # Two lines tall even for one: a new text then does not resize the graph view (a
        # resize of a view holding 20,000 items costs 40 ms and more)
        self.banner.setMinimumHeight(2 * self.banner.fontMetrics().lineSpacing() + 14)
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
        self.view.block_activated.connect(self._on_block)
        self.search.changed.connect(self._search)
        self.search.step.connect(self._step_match)
        self.search.closed.connect(lambda: self.view.setFocus(Qt.FocusReason.OtherFocusReason))
        for keys, direction in (("F3", 1), ("Shift+F3", -1)):
            shortcut = QShortcut(QKeySequence(keys), self)
            shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            shortcut.activated.connect(lambda d=direction: self._step_match(d))
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
        blocky = self._collapsed(ops)
        if ops > LARGE_GRAPH_OPS and not blocky and not self.whole_graph_ok \
                and not self.focus_mode:
            self._enter_focus()
        self._request_layout()

    def _enter_focus(self) -> None:
        self.focus_mode = True
        self._update_depth_visible()
        self.focus_mode_changed.emit(True)

    def delta(self, snap: Snapshot | None = None) -> PassDelta | None:
        """What the shown pass changed (None for the loaded model)."""
        snap = snap or self.snapshot()
        if snap is None or snap.index < 0 or self.index < 1:
            return None
        return pass_delta(self.session.snapshots[self.index - 1].graph, snap.graph)

    def _collapsed(self, ops: int) -> bool:
        """Draw repeated blocks collapsed: the user's choice, else for big graphs."""
        return self.collapse if self.collapse is not None else ops > BLOCKS_ABOVE_OPS

    def _spec(self, snap: Snapshot) -> ViewSpec:
        delta = self.delta(snap) if self.diff_mode else None
        if delta is not None:
            return ViewSpec("changes", depth=1, ops=frozenset(delta.changed))
        if self.focus_mode:
            centre = self.current_op
            if centre is None or snap.graph.node_by_id(centre) is None:
                centre = snap.graph.nodes[0].id if snap.graph.nodes else -1
            return ViewSpec("near", centre, self.depth)
        if self._collapsed(len(snap.graph.nodes)):
            return ViewSpec("blocks", expanded=frozenset(self.expanded))
        return ViewSpec("all")

    @property
    def view_job(self) -> Job | None:
        """The background job preparing the shown view (plan or Graphviz layout), if any."""
        return self._job

    def _request_layout(self) -> None:
        snap = self.snapshot()
        if snap is None:
            return
        self._update_banner(snap)
        spec = self._spec(snap)
        base = (self.session.generation, snap.index)
        key = base + spec.key()
        if self._job is not None and self._job_key == key:
            return  # this very view is being prepared already
        self._job_key = key
        self._token += 1
        if self._job is not None:
            self._job.cancel()
            self._job = None
        self._busy_timer.stop()
        self.busy.hide()
        if spec.kind == "changes" and not spec.ops:
            removed = " (it only removed ops: see above)" if self.delta(snap).removed else ""
            self.view.show_message(f"{snap.name} added or rewrote no op{removed}.")
            self.snapshot_shown.emit()
            return
        plan, final = self.plans.get(key), self.cache.get(key)
        if plan is not None and final is not None:
            self._show(plan, final)
            return
        if plan is not None:
            self._have_plan(self._token, key, plan)
            return
        token = self._token
        if len(snap.graph.nodes) <= SYNC_PLAN_OPS:  # small: no worker round trip
            self._have_plan(token, key, plan_view(snap.graph, spec, self.blocks_cache.get(base)))
            return
        job = Job(plan_view, snap.graph, spec, self.blocks_cache.get(base), name="view")
        job.signals.result.connect(lambda plan: self._have_plan(token, key, plan))
        job.signals.error.connect(lambda exc: self._on_layout_error(token, exc))
        job.signals.finished.connect(lambda: self._on_job_done(job))
        self.busy_label.setText("Preparing the view\u2026")
        self._job = self.jobs.start(job)
        self._busy_timer.start()

    def _have_plan(self, token: int, key: tuple, plan: ViewPlan) -> None:
        self.plans.put(key, plan)
        self.blocks_cache[key[:2]] = plan.blocks
        if token != self._token:
            return
        self._job = None
        snap = self.snapshot()
        ops = len(snap.graph.nodes) if snap else 0
        if plan.spec.kind == "blocks" and not plan.collapsed and not plan.spec.expanded \
                and ops > LARGE_GRAPH_OPS and not self.whole_graph_ok:
            self._enter_focus()  # big and no repeated blocks: the neighbourhood view
            self._request_layout()
            return
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
        job = Job(graphviz_layout, plan, name="layout")
        job.signals.result.connect(lambda layout: self._on_layout(token, key, plan, layout))
        job.signals.error.connect(lambda exc: self._on_layout_error(token, exc))
        job.signals.finished.connect(lambda: self._on_job_done(job))
        what = f"Laying out {plan.size} nodes with Graphviz"
        self.busy_label.setText(what + (" (quick layout shown)\u2026" if plan.quick else "\u2026"))
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
            if not self.view.ops and not self.view.blocks:
                self.view.show_message("Layout cancelled. Use View > Neighbourhood for a "
                                       "smaller view, or pick the pass again.")
            self.snapshot_shown.emit()

    def _on_layout(self, token: int, key: tuple, plan: ViewPlan, layout: GraphLayout) -> None:
        self.cache.put(key, layout)
        if token == self._token:
            self._show(plan, layout)

    def _on_layout_error(self, token: int, exc: BaseException) -> None:
        if token != self._token:
            return
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
                              done=lambda: self._shown(first, keep_scale))

    def _shown(self, first: bool, keep_scale: float) -> None:
        self._apply_changes()
        self.view.set_sqnr(self.sqnr if self.show_sqnr else {})
        shown = self._select_current()
        selected = self.view.selected_op()
        if first or not shown or selected is None:
            self.view.home()
            if shown and selected is not None:
                self.view.centre_on(self.view.ops[selected])
        else:
            self.view.set_scale(keep_scale)
            self.view.centre_on(self.view.ops[selected])
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
            return
        plan = self._plan
        for key, block in (plan.blocks.items() if plan and plan.spec.kind == "blocks" else ()):
            if key in self.expanded and op_id in block.op_ids:  # fold the block back
                self.expanded.discard(key)
                self.current_op = op_id
                self._request_layout()
                return

    def _new_model(self) -> None:
        self.collapse, self._plan = None, None
        self.expanded.clear()
        self.plans.clear()
        self.blocks_cache.clear()

    def _on_block(self, key: str) -> None:
        self.expanded.add(key)
        self._request_layout()

    def set_view_mode(self, mode: str) -> None:
        """'blocks' (repeated blocks collapsed), 'all' (every op) or 'near' (neighbourhood)."""
        self.collapse = mode == "blocks"
        if mode == "near":
            self.set_focus_mode(True)
            return
        if mode == "blocks":
            self.expanded.clear()
        was = self.focus_mode
        self.focus_mode, self.whole_graph_ok = False, True
        self._update_depth_visible()
        if was:
            self.focus_mode_changed.emit(False)
        self._request_layout()

    def select_op(self, op_id: int) -> bool:
        """Select an op by id (from search, the SQNR table, ...), re-centring if needed."""
        self.current_op = op_id
        if self.view.select_op(op_id, centre=True):
            return True
        block = self.view.block_of.get(op_id)
        if self.focus_mode or block is not None:
            if block is not None:  # inside a collapsed block: expand it
                self.expanded.add(block)
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
        delta = self.delta() if self.show_changes else None
        self.view.mark_changed(delta.changed if delta is not None else ())

    def set_diff_mode(self, on: bool) -> None:
        """Draw only the ops the shown pass added or rewrote, one hop of context around them."""
        if on != self.diff_mode:
            self.diff_mode = on
            self.diff_mode_changed.emit(on)
            self._request_layout()

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
        elif snap is not None and self.diff_mode:
            delta = self.delta(snap)
            text = self._diff_text(snap, delta) if delta is not None else (
                "The loaded model has no previous pass to compare with: pick a pass to see "
                "what it changed. <a href='nodiff'>Show the graph</a>")
        elif snap is not None and self.focus_mode:
            text = (f"Showing the neighbourhood (depth {self.depth}) of the selected op of "
                    f"{len(snap.graph.nodes)} ops. Double-click an op to re-centre. "
                    "<a href='whole'>Show the whole graph</a>")
        elif snap is not None and self._plan is not None and self._plan.collapsed:
            fam = next(iter(self._plan.blocks.values())).family
            how = ("found by structure: the same ops, in the same order, repeat" if
                   fam == STRUCTURE_FAMILY else
                   f"found by name: ops named <code>{html.escape(fam)}</code>, # being the "
                   "block's number")
            text = (f"{len(snap.graph.nodes)} ops: {len(self._plan.collapsed)} repeated blocks "
                    f"are collapsed ({how}; weights inside the block that reads them). "
                    "Double-click a block to expand it, an op of an expanded block to fold "
                    "it. <a href='all'>Show every op</a>")
            if self.expanded:
                text += " \u00b7 <a href='blocks'>Collapse all</a>"
        elif snap is not None and self._plan is not None and self._plan.blocks:
            text = (f"{len(snap.graph.nodes)} ops, {len(self._plan.blocks)} repeated blocks. "
                    "<a href='blocks'>Collapse repeated blocks</a>")
        self.banner.setText(text)
        self.banner.setVisible(bool(text))

    def _diff_text(self, snap: Snapshot, delta: PassDelta) -> str:
        before = self.session.snapshots[self.index - 1].graph
        removed = Counter(n.op_type for n in before.nodes if n.id in delta.removed)
        text = (f"Only what <b>{snap.name}</b> changed: {len(delta.added)} ops added, "
                f"{len(delta.rewritten)} rewritten (outlined), with their neighbours")
        if removed:
            text += "; removed " + ", ".join(f"{k} \u00d7{v}" for k, v in removed.most_common(4))
            if len(removed) > 4:
                text += ", \u2026"
        return text + ". <a href='nodiff'>Show the whole graph</a>"

    def _banner_link(self, link: str) -> None:
        if link == "nodiff":
            self.set_diff_mode(False)
        elif link == "whole":
            self.set_focus_mode(False)
        elif link in ("all", "blocks"):
            self.set_view_mode(link)

    # ---- search ---------------------------------------------------------------------------
    def _search(self, text: str, move: bool = True) -> None:
        shown = self.view.find(text)
        graph = self.graph()
        partial = self.focus_mode or bool(self.view.blocks)
        if partial and graph is not None:  # search the whole snapshot, not the view
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
