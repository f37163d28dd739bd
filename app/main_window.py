"""The main window: docks around the graph, menus and the status bar; what the selected op
shows and does (properties, skip, copy). The jobs it starts are in ``app.runs``."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QByteArray, Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent, QDragEnterEvent, QDropEvent, QGuiApplication
from PySide6.QtWidgets import (
    QFileDialog,
    QLabel,
    QMainWindow,
    QMenu,
    QMessageBox,
)

from app import exports, window_geometry
from app.about import AboutDialog
from app.actions import Actions
from app.compat import MainThreadGC, guard_singletons, prefer_ui_thread
from app.config_panel import ConfigPanel
from app.drops import dropped_path
from app.graph_panel import GraphPanel
from app.headless import child_calls
from app.headless.input_source import InputSource
from app.headless.view_state import Change, ViewState, fused_host, holds
from app.pass_list import PassList
from app.properties import PropertiesPanel
from app.resources import icon
from app.results_panel import ResultsPanel
from app.run_bar import RunBar
from app.runs import Runs
from app.settings import AppSettings
from app.state import Session
from app.workers import Job, JobPool
from qcore import render

MODEL_FILTER = ("Quant models (*.onnx *.pdmodel __model__);;ONNX models (*.onnx);;"
                "Paddle programs (*.pdmodel __model__);;All files (*)")


class MainWindow(QMainWindow):
    job_finished = Signal(str, bool)  # job name, succeeded
    CLOSE_WAIT_MS = 10000  # how long closing waits for cancelled jobs to end

    def __init__(self, settings: AppSettings | None = None) -> None:
        guard_singletons()
        prefer_ui_thread()
        super().__init__()
        self.setWindowTitle("Quant Inspector")
        self.setWindowIcon(icon("app"))
        self.setAcceptDrops(True)
        self.setDockNestingEnabled(True)
        self.settings = settings or AppSettings()
        self.session = Session(self)
        self.gc = MainThreadGC(self, idle=self._idle)
        self.jobs = JobPool(self)
        child_calls.start()  # now: the conversion process's imports overlap the UI's
        self._build_widgets()
        self.actions_ = Actions(self)
        self.actions_.build_menus([d.toggleViewAction() for d in self.docks])
        self.addToolBar(self.actions_.build_toolbar())
        self._build_status_bar()
        self.runs = Runs(self)
        for name, run in (("load_config", False), ("save_config", False), ("convert", True),
                          ("bench", True)):
            self.config_panel.add_button(self.actions_[name], run)
        self._connect()
        self.actions_.set_recent(self.settings.recent_files())
        self._restore()
        self._update_enabled()
        self.graph_panel.set_snapshot(-1)

    def _idle(self) -> bool:
        """No job runs and no view is being built (see MainThreadGC)."""
        return not self.jobs.running and self.graph_panel.view.items_ready()

    # ---- construction ---------------------------------------------------------------------
    def _build_widgets(self) -> None:
        self.view_state = ViewState()
        self.graph_panel = GraphPanel(self.session, self.jobs, self.view_state, self)
        self.setCentralWidget(self.graph_panel)
        self.pass_list = PassList()
        self.properties = PropertiesPanel()
        self.config_panel = ConfigPanel(self.session)
        self.results = ResultsPanel(self.session)
        area = Qt.DockWidgetArea
        self.docks = [window_geometry.make_dock(self, title, widget, where)
                      for title, widget, where in (
                          ("Passes", self.pass_list, area.LeftDockWidgetArea),
                          ("Properties", self.properties, area.RightDockWidgetArea),
                          ("Configuration", self.config_panel, area.BottomDockWidgetArea),
                          ("Results", self.results, area.BottomDockWidgetArea))]
        self.splitDockWidget(self.docks[2], self.docks[3], Qt.Orientation.Horizontal)

    def _build_status_bar(self) -> None:
        self.model_label = QLabel("")
        self.statusBar().addPermanentWidget(self.model_label)
        self.runner = RunBar(self, self.jobs)
        self.runner.finished.connect(self.job_finished)
        self.runner.busy_changed.connect(lambda _: self._update_enabled())

    def _connect(self) -> None:
        panel, session = self.graph_panel, self.session
        self.pass_list.snapshot_selected.connect(panel.set_snapshot)
        self.pass_list.drift_op_clicked.connect(self.runs.show_drifting_op)
        panel.snapshot_shown.connect(self.update_properties)
        panel.op_selected.connect(lambda _: self.update_properties())
        panel.selection_cleared.connect(self.update_properties)
        panel.tensor_selected.connect(self._show_tensor)
        panel.view.op_context_menu.connect(self._op_menu)
        panel.view.path_dropped.connect(self.open_dropped)
        self.view_state.observe(self._view_state_changed)
        self.config_panel.op_requested.connect(panel.select_op)
        self.results.op_requested.connect(self._select_from_results)
        self.results.accuracy.sqnr_changed.connect(self._sqnr_changed)
        self.results.per_op.per_op_changed.connect(self._per_op_changed)
        self.results.advisor.sqnr_changed.connect(self._sqnr_changed)
        self.results.advisor.set_run_action(self.actions_["advise"])
        session.config_changed.connect(self.refresh_config)
        session.result_changed.connect(self._update_enabled)
        session.model_changed.connect(self._restore_inputs)
        session.inputs_changed.connect(self._remember_inputs)

    def _restore_inputs(self) -> None:
        """The inputs the user chose for this model last time (generated data at first)."""
        if self.session.path is not None:
            saved = self.settings.model_inputs(self.session.path)
            self.session.set_inputs(InputSource.from_json(saved) if saved else InputSource())

    def _remember_inputs(self) -> None:
        if self.session.path is not None:
            self.settings.set_model_inputs(self.session.path, self.session.inputs.to_json())

    def _restore(self) -> None:
        self._sized = window_geometry.restore(self, self.settings)
        self.actions_["legend"].setChecked(bool(self.settings.value("legend", True)))
        self.actions_["changes"].setChecked(bool(self.settings.value("changes", True)))
        per_op = self.results.bench.per_op
        per_op.setChecked(bool(self.settings.value("per_op", False)))
        per_op.toggled.connect(lambda on: self.settings.set_value("per_op", on))
        self._per_op_changed(None)
        self.config_panel.tune.setChecked(self.settings.tune_for_speed())
        self.config_panel.tune.toggled.connect(self.settings.set_tune_for_speed)
        self.config_panel.set_tune_engine(self.settings.tune_engine())
        self.config_panel.tune_engine.currentIndexChanged.connect(
            lambda _: self.settings.set_tune_engine(self.config_panel.tune_engine_name()))
        self.config_panel.tune_budget.setValue(self.settings.tune_budget())
        self.config_panel.tune_budget.valueChanged.connect(self.settings.set_tune_budget)

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if not self._sized:  # first start: sensible dock sizes once the window has a size
            self._sized = True
            QTimer.singleShot(0, lambda: window_geometry.default_dock_sizes(
                self, self.docks, self.config_panel.minimumSizeHint().width() + 20))

    # ---- messages -------------------------------------------------------------------------
    def log(self, text: str, level: str = "info") -> None:
        self.results.log_panel.log(text, level)

    def status(self, text: str, msecs: int = 6000) -> None:
        self.statusBar().showMessage(text, msecs)

    def show_error(self, title: str, text: str) -> None:
        self.log(f"{title}: {text}", "error")
        QMessageBox.critical(self, title, text)

    # ---- opening --------------------------------------------------------------------------
    def open_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open quant model",
                                              self.settings.last_folder(), MODEL_FILTER)
        if path:
            self.open_model(path)

    def open_model(self, path: str | Path) -> Job | None:
        """Load and convert ``path`` in a worker with the default config (target kept)."""
        return self.runs.open_model(path)

    def clear_recent(self) -> None:
        self.settings.clear_recent()
        self.actions_.set_recent([])

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if dropped_path(event.mimeData()) is not None:
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        path = dropped_path(event.mimeData())
        if path is not None:
            event.acceptProposedAction()
            self.open_dropped(path)

    def open_dropped(self, path: str) -> None:
        """A model or config dropped anywhere on the window (the graph view too)."""
        if path.lower().endswith(".json"):
            exports.load_config(self, path)
        else:
            self.open_model(path)

    # ---- running jobs ---------------------------------------------------------------------
    @property
    def run_job(self) -> Job | None:
        return self.runner.job

    def cancel_job(self) -> None:
        if not self.runner.cancel():
            self.graph_panel.cancel_layout()

    def start_side_job(self, work, name: str, done_text: str) -> Job:
        return self.runner.side(work, name, done_text)

    def _update_enabled(self) -> None:
        has_result = self.session.result is not None
        busy = self.runner.busy
        for name in ("save_int8", "save_fp32", "export_snapshot", "export_all", "bench",
                     "convert", "advise", "verify"):
            self.actions_[name].setEnabled(has_result and not busy)
        report = self.results.report
        self.actions_["export_node_data"].setEnabled(
            not busy and report is not None and bool(report.per_op))
        self.actions_["open"].setEnabled(not busy)
        self.actions_["cancel"].setEnabled(busy)

    # ---- selection, properties, skipping -------------------------------------------------
    def update_properties(self) -> None:
        panel = self.graph_panel
        graph, op_id, snap = panel.graph(), self.view_state.selection, panel.snapshot()
        if graph is None or snap is None:
            self.properties.clear("Open a model to see its ops")
            return
        if op_id is None:
            self.properties.clear("Click an op (or a tensor) to see its properties")
            return
        node = graph.node_by_id(op_id)
        note = ""
        if node is None:
            host = fused_host(graph, op_id)
            if host is None:
                self.properties.show_missing(op_id, snap.stem)
                return
            node = graph.node_by_id(host)
            note = f"op {op_id} is fused into this op in {snap.stem}"
        self.properties.show_op(graph, node, self.session.preview_status(node), note)

    def _show_tensor(self, name: str) -> None:
        graph = self.graph_panel.graph()
        if graph is not None:
            self.properties.show_tensor(graph, name)

    def _selected_op(self) -> int | None:
        view_op = self.graph_panel.view.selected_op()
        return view_op if view_op is not None else self.view_state.selection

    def toggle_skip(self, op_id: int | None = None) -> None:
        op_id = self._selected_op() if op_id is None else op_id
        if op_id is None:
            self.status("Click an op first, then press S to skip it")
            return
        placed = self.session.placement_graph()
        node = placed.node_by_id(op_id) if placed else None
        if node is None and op_id not in self.session.skip_ids:
            self.status(f"Op {op_id} is not placed by quantize_placement (a quantization op "
                        "or one a pass created); skip the op it belongs to instead")
            return
        skipped = self.session.toggle_skip(op_id)
        label = node.label if node else str(op_id)
        self.status(f"{label} {'will stay FP32' if skipped else 'may be quantized again'}"
                    " \u2014 press Convert (Ctrl+R) to apply")

    def refresh_config(self) -> None:
        self.graph_panel.refresh_status()
        self.update_properties()

    def _op_menu(self, op_id: int, pos) -> None:
        menu = QMenu(self)
        skipped = op_id in self.session.skip_ids
        menu.addAction("Quantize this op" if skipped else "Skip this op (keep FP32)",
                       lambda: self.toggle_skip(op_id)).setShortcut("S")
        menu.addAction(f"Copy id {op_id}", lambda: QGuiApplication.clipboard().setText(
            str(op_id)))
        menu.addAction("Show the neighbourhood", lambda: (self.graph_panel.select_op(op_id),
                                                          self.actions_["focus"].setChecked(True)))
        menu.exec(pos)

    def _select_from_results(self, op_id: int) -> None:
        """Select an op a result names; an op the shown pass lacks (a Q/DQ op of the INT8
        model) is shown in the last pass that has it."""
        snaps, graph = self.session.snapshots, self.graph_panel.graph()
        if graph is not None and not holds(graph, op_id):
            rows = [i for i, snap in enumerate(snaps) if holds(snap.graph, op_id)]
            if rows:
                self.pass_list.setCurrentRow(rows[-1])
        self.graph_panel.select_op(op_id)
        self.update_properties()

    def _sqnr_changed(self, sqnr: dict) -> None:
        self.properties.set_sqnr(sqnr)
        self.graph_panel.overlays.set_sqnr(sqnr)
        self.update_properties()

    def _per_op_changed(self, result: object) -> None:
        """A per-op profile was chosen (None: none): list it with each op, colour with it."""
        self.properties.set_per_op(result)
        self.graph_panel.overlays.set_per_op(result)  # type: ignore[arg-type]
        for name in ("colour_ran", "colour_time"):
            self.actions_[name].setEnabled(self.graph_panel.overlays.per_op is not None)
        self.update_properties()

    def copy_id(self) -> None:
        op_id = self._selected_op()
        if op_id is not None:
            QGuiApplication.clipboard().setText(str(op_id))
            self.status(f"Copied {op_id}")

    # ---- view actions ---------------------------------------------------------------------
    def set_show_changes(self, on: bool) -> None:
        self.graph_panel.overlays.set_show_changes(on)
        self.settings.set_value("changes", on)

    def set_show_sqnr(self, on: bool) -> None:
        self.graph_panel.overlays.set_show_sqnr(on)

    def set_colour(self, mode: str) -> None:
        """Colour the ops by 'status', 'ran' or 'time' (View > Colour ops by)."""
        self.view_state.set_colour(mode)

    def set_legend(self, on: bool) -> None:
        self.graph_panel.set_legend_visible(on)
        self.settings.set_value("legend", on)

    def _view_state_changed(self, changes: frozenset[Change]) -> None:
        """Tick the view actions to match the view's state without triggering them again."""
        state = self.view_state
        for name, change, on in (("focus", Change.NEAR, state.near),
                                 ("diff", Change.DIFF, state.diff),
                                 (f"colour_{state.colour}", Change.COLOUR, True)):
            if change in changes:
                action = self.actions_[name]
                action.blockSignals(True)
                action.setChecked(on)
                action.blockSignals(False)

    def set_diff(self, on: bool) -> None:
        self.view_state.set_diff(on)

    def set_focus(self, on: bool) -> None:
        if on != self.view_state.near:
            self.view_state.set_near(on)

    # ---- files ----------------------------------------------------------------------------
    def save_int8(self, path: str | Path | None = None) -> None:
        exports.save_converted(self, "int8", path)

    def save_fp32(self, path: str | Path | None = None) -> None:
        exports.save_converted(self, "fp32", path)

    def export_snapshot(self, path: str | Path | None = None) -> None:
        exports.export_snapshot(self, path)

    def export_all(self, folder: str | Path | None = None) -> None:
        exports.export_all(self, folder)

    def export_results(self, path: str | Path | None = None) -> None:
        exports.export_results(self, path)

    def export_node_data(self, folder: str | Path | None = None) -> None:
        exports.export_node_data(self, folder)

    def load_config(self, path: str | Path | None = None) -> None:
        exports.load_config(self, path)

    def save_config(self, path: str | Path | None = None) -> None:
        exports.save_config(self, path)

    def about(self) -> None:
        AboutDialog(self).exec()

    def graphviz_available(self) -> bool:
        return render.find_dot() is not None

    # ---- closing --------------------------------------------------------------------------
    def closeEvent(self, event: QCloseEvent) -> None:
        self.settings.save_window(QByteArray(self.saveGeometry()), QByteArray(self.saveState()))
        self.settings.sync()
        self.graph_panel.shut_down()  # no slice, busy card or layout callback after this
        self.jobs.shutdown(self.CLOSE_WAIT_MS)
        self.gc.stop()
        super().closeEvent(event)
