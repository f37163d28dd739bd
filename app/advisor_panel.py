"""The Advisor tab: the accuracy bound, the candidates the search tries, the ops that lose the
most accuracy and the lone INT8 ops, with one click to apply the advice to the configuration."""

from __future__ import annotations

import math

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QColor, QFont
from PySide6.QtWidgets import (
    QCheckBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTableWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.graph_items import sqnr_colour
from app.headless.advisor_task import (
    advice_summary,
    best_config,
    bound_text,
    keep_output_float,
    run_advisor,
    tuned_start,
)
from app.state import Session
from app.tables import cell, read_only_table, titled
from app.workers import Job
from qcore.advise import Advice, AdviseSettings, Candidate
from qcore.config import ConvertConfig

CANDIDATE_COLUMNS = ["#", "Bound", "Cosine", "Top-1", "ms", "Keep FP32", "Step", "Op types"]
SENSITIVE_COLUMNS = ["", "SQNR", "Drop", "Op"]
LONE_COLUMNS = ["", "Q/DQ", "Op"]
IDLE_SUMMARY = ("Set the accuracy bound and press Run advisor (Ctrl+Shift+A). It starts "
                "from the configuration panel's op types and skips.")
OK_COLOUR, MISS_COLOUR, BEST_COLOUR = "#d5ecd2", "#f4d0cc", "#b9e3b3"


class AdvisorPanel(QWidget):
    op_requested = Signal(int)  # a row was clicked: select the op in the graph
    sqnr_changed = Signal(object)  # {op id: output SQNR dB} to show as badges, or the fallback
    message = Signal(str, str)  # text, level: for the log

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.advice: Advice | None = None
        self.inputs_text = ""  # what the last search was measured on
        self.base: ConvertConfig | None = None
        self.fallback_sqnr = dict  # what the badges show when the heat map is off
        self._live = 0
        column = QVBoxLayout(self)
        column.setContentsMargins(4, 4, 4, 4)
        column.setSpacing(4)
        column.addLayout(self._controls())
        self.summary = QLabel(IDLE_SUMMARY)
        self.summary.setObjectName("advisorSummary")
        self.summary.setWordWrap(True)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        summary_row = QHBoxLayout()
        summary_row.addWidget(self.summary, 1)
        summary_row.addWidget(self.heat)
        summary_row.addWidget(self.apply_button)
        column.addLayout(summary_row)
        self.candidates = read_only_table(CANDIDATE_COLUMNS, "advisorCandidates")
        self.candidates.setToolTip("Every configuration tried; the best is bold. Click a row "
                                   "to select its first FP32 op")
        self.candidates.cellClicked.connect(lambda r, _c: self._clicked(self.candidates, r))
        self.sensitive = read_only_table(SENSITIVE_COLUMNS, "advisorSensitive")
        self.sensitive.setToolTip("INT8 ops ranked by the SQNR they lose between their inputs "
                                  "and their output. Click a row to select the op")
        self.sensitive.cellClicked.connect(lambda r, _c: self._clicked(self.sensitive, r))
        self.lone = read_only_table(LONE_COLUMNS, "advisorLone")
        self.lone.setToolTip("INT8 ops alone between FP32 ops: each pays its own quantize and "
                             "dequantize. Click a row to select the op")
        self.lone.cellClicked.connect(lambda r, _c: self._clicked(self.lone, r))
        right = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(titled("Sensitive ops", self.sensitive, "worst first"))
        right.addWidget(titled("Lone INT8 ops", self.lone))
        right.setStretchFactor(0, 3)
        right.setStretchFactor(1, 1)
        right.setSizes([200, 60])
        self.lone.setMinimumHeight(48)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(titled("Candidates tried", self.candidates))
        split.addWidget(right)
        split.setStretchFactor(0, 1)
        split.setStretchFactor(1, 1)
        column.addWidget(split, 1)
        for table, tips in ((self.sensitive, ["", "SQNR (dB) of the op's INT8 output",
                                              "SQNR (dB) the op loses from its inputs to its "
                                              "output", ""]),
                            (self.lone, ["", "Quantize + dequantize ops the lone op costs", ""])):
            for c, tip in enumerate(tips):
                if tip:
                    table.horizontalHeaderItem(c).setToolTip(tip)
        session.config_changed.connect(self._refresh_skip_buttons)
        session.model_changed.connect(self._new_model)

    # ---- controls -----------------------------------------------------------------------
    def _controls(self) -> QHBoxLayout:
        row = QHBoxLayout()
        row.addWidget(QLabel("Min cosine"))
        self.min_cosine = QDoubleSpinBox()
        self.min_cosine.setObjectName("minCosine")
        self.min_cosine.setDecimals(5)
        self.min_cosine.setRange(0.0, 1.0)
        self.min_cosine.setSingleStep(0.0005)
        self.min_cosine.setValue(0.999)
        self.min_cosine.setToolTip("Lowest cosine of any output against the FP32 model")
        row.addWidget(self.min_cosine)
        self.use_agreement = QCheckBox("Min top-1")
        self.use_agreement.setToolTip("Also require this top-1 agreement on classifier outputs")
        row.addWidget(self.use_agreement)
        self.min_agreement = QDoubleSpinBox()
        self.min_agreement.setObjectName("minAgreement")
        self.min_agreement.setDecimals(1)
        self.min_agreement.setRange(0.0, 100.0)
        self.min_agreement.setSuffix(" %")
        self.min_agreement.setValue(99.5)
        self.min_agreement.setEnabled(False)
        self.use_agreement.toggled.connect(self.min_agreement.setEnabled)
        row.addWidget(self.min_agreement)
        row.addWidget(QLabel("Timed runs"))
        self.rounds = QSpinBox()
        self.rounds.setRange(1, 1000)
        self.rounds.setValue(20)
        self.rounds.setToolTip("Runs per model when comparing speed (median)")
        row.addWidget(self.rounds)
        self.run_button = QToolButton()
        self.run_button.setObjectName("runButton")
        self.run_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        row.addWidget(self.run_button)
        row.addStretch(1)
        self.heat = QCheckBox("SQNR on graph")
        self.heat.setToolTip("Show each INT8 op's output SQNR from the advisor as badges on "
                             "the graph (red = loses the most)")
        self.heat.setChecked(True)
        self.heat.toggled.connect(self._push_heat)
        self.apply_button = QPushButton("Apply best configuration")
        self.apply_button.setObjectName("applyBest")
        self.apply_button.setToolTip("Set ops_to_quantize and op_ids_to_skip to the best "
                                     "candidate; press Convert (Ctrl+R) to see it")
        self.apply_button.setEnabled(False)
        self.apply_button.clicked.connect(self.apply_best)
        return row

    def set_run_action(self, action) -> None:
        self.run_button.setDefaultAction(action)

    def settings(self) -> AdviseSettings:
        agreement = self.min_agreement.value() / 100 if self.use_agreement.isChecked() else None
        return AdviseSettings(min_cosine=self.min_cosine.value(), min_agreement=agreement,
                              rounds=self.rounds.value())

    def bound_text(self) -> str:
        return bound_text(self.settings())

    # ---- the job ------------------------------------------------------------------------
    def make_job(self) -> Job | None:
        session = self.session
        if session.result is None or session.path is None:
            return None
        self.clear()
        self.base = session.config()
        self.inputs_text = session.inputs.label()
        settings = self.settings()
        start, reuse = tuned_start(session.tune, session.path, self.base, settings,
                                   session.inputs)
        job = Job(run_advisor, session.path, self.base, settings, session.inputs,
                  name="advisor", start=start)
        job.signals.progress.connect(self._progress)
        job.signals.result.connect(self.show_advice)
        job.signals.cancelled.connect(lambda: self._stopped("Cancelled"))
        job.signals.error.connect(lambda exc: self._stopped(f"Failed: {exc}"))
        self.summary.setText(f"Searching for the fastest configuration with {self.bound_text()}"
                             f" on {session.inputs.label()}\u2026 (a row per candidate as it "
                             "is measured)")
        self.message.emit(f"Advisor started: {self.bound_text()}, base ops_to_quantize="
                          f"{self.base.ops_to_quantize or 'all'}, op_ids_to_skip="
                          f"{self.base.op_ids_to_skip}", "info")
        if reuse:  # what it reuses of Tune for speed, or why not
            self.message.emit(f"Advisor {reuse}" if start is not None else f"Advisor: {reuse}",
                              "info" if start is not None else "warn")
        return job

    def _progress(self, done: int, _total: int, message: str) -> None:
        """One row per candidate as it is measured (the message carries its cosine and, when
        timed, its latency); the full table replaces these rows at the end."""
        if not message or done == 0:
            return
        row = self.candidates.rowCount()
        self.candidates.insertRow(row)
        self._live += 1
        cells = [cell(str(self._live), True), cell("\u2026"), cell(""), cell(""),
                 cell(""), cell(""), cell(message), cell("")]
        for c, item in enumerate(cells):
            item.setForeground(QColor("#777777"))
            self.candidates.setItem(row, c, item)
        self.candidates.scrollToBottom()

    def _stopped(self, text: str) -> None:
        self.summary.setText(f"{text}. Nothing to apply; press Run advisor to try again.")

    def _new_model(self) -> None:
        """Another model: the last advice names ops of the previous one."""
        self.clear()
        self.summary.setText(IDLE_SUMMARY)

    def clear(self) -> None:
        self.advice = None
        self._live = 0
        for table in (self.candidates, self.sensitive, self.lone):
            table.setRowCount(0)
        self.apply_button.setEnabled(False)
        if self.heat.isChecked():
            self.sqnr_changed.emit(self.fallback_sqnr())

    # ---- showing the advice -------------------------------------------------------------
    def show_advice(self, advice: Advice) -> None:
        self.advice = advice
        self._fill_candidates(advice)
        self._fill_sensitive(advice)
        self._fill_lone(advice)
        self._refresh_skip_buttons()
        best = advice.best
        self.apply_button.setEnabled(best is not None)
        self.summary.setText(self.summary_text(advice))
        self.message.emit(self.summary_text(advice, html=False), "ok")
        self._push_heat()

    def summary_text(self, advice: Advice, html: bool = True) -> str:
        return advice_summary(advice, self.bound_text(), self.inputs_text, html)

    def _fill_candidates(self, advice: Advice) -> None:
        table = self.candidates
        table.setRowCount(0)
        bold = QFont(table.font())
        bold.setBold(True)
        for i, cand in enumerate(advice.candidates):
            table.insertRow(i)
            is_best = cand is advice.best
            top1 = "" if cand.agreement is None else f"{100 * cand.agreement:.1f}%"
            ms = "" if cand.latency_ms is None else f"{cand.latency_ms:.3f}"
            ids = ", ".join(map(str, cand.op_ids_to_skip)) or "\u2014"
            types = ", ".join(cand.ops_to_quantize) or "all"
            mark = "\u2713 best" if is_best else ("\u2713" if cand.meets_bound else "\u2717")
            first = cand.op_ids_to_skip[0] if cand.op_ids_to_skip else None
            cells = [cell(str(i + 1), True), cell(mark), cell(f"{cand.cosine:.5f}", True),
                     cell(top1, True), cell(ms, True), cell(ids), cell(cand.note),
                     cell(types)]
            for c, item in enumerate(cells):
                item.setData(Qt.ItemDataRole.UserRole, first)
                if is_best:
                    item.setFont(bold)
                if c == 1:
                    item.setBackground(QColor(BEST_COLOUR if is_best else OK_COLOUR
                                              if cand.meets_bound else MISS_COLOUR))
                    item.setForeground(QColor("#111111"))
                table.setItem(i, c, item)
        if advice.best is not None:
            row = advice.candidates.index(advice.best)
            QTimer.singleShot(0, lambda: self._scroll_to(row))

    def _scroll_to(self, row: int) -> None:
        item = self.candidates.item(row, 0) if row < self.candidates.rowCount() else None
        if item is not None:
            self.candidates.scrollToItem(item)

    def _fill_sensitive(self, advice: Advice) -> None:
        table = self.sensitive
        table.setRowCount(0)
        for i, s in enumerate(advice.sensitive):
            table.insertRow(i)
            colour = sqnr_colour(s.sqnr_db) if math.isfinite(s.sqnr_db) else ""
            cells = [cell(""), cell(f"{s.sqnr_db:.1f}", True), cell(f"{s.drop_db:.1f}", True),
                     cell(self._label(s.op_id, s.op_type))]
            for c, item in enumerate(cells):
                item.setData(Qt.ItemDataRole.UserRole, s.op_id)
                table.setItem(i, c, item)
            if colour:
                cells[1].setBackground(QColor(colour))
                cells[1].setForeground(QColor("#111111"))
            ids = keep_output_float(self.session.result, s.op_id)
            table.setCellWidget(i, 0, self._skip_button(
                ids, f"Keep {', '.join(map(str, ids))} FP32 so the output of op {s.op_id} stays "
                "float (an INT8 reader would quantize it again)"))

    def _fill_lone(self, advice: Advice) -> None:
        table = self.lone
        table.setRowCount(0)
        cost = {i.compute_ids[0]: i.conversions for i in advice.islands if i.lone}
        for i, op_id in enumerate(advice.lone_ops):
            table.insertRow(i)
            node = self.session.find_op(op_id)
            cells = [cell(""), cell(str(cost.get(op_id, "")), True),
                     cell(self._label(op_id, node.op_type if node else "?"))]
            for c, item in enumerate(cells):
                item.setData(Qt.ItemDataRole.UserRole, op_id)
                table.setItem(i, c, item)
            table.setCellWidget(i, 0, self._skip_button(
                [op_id], f"Keep op {op_id} FP32 (saves its quantize and dequantize)"))
        if not advice.lone_ops:
            table.insertRow(0)
            table.setItem(0, 0, cell("none: every INT8 op has an INT8 neighbour"))
            table.setSpan(0, 0, 1, len(LONE_COLUMNS))

    def _label(self, op_id: int, op_type: str) -> str:
        node = self.session.find_op(op_id)
        name = f"  {node.name}" if node is not None and node.name else ""
        return f"{op_type}({op_id}){name}"

    # ---- skipping -----------------------------------------------------------------------
    def _skip_button(self, ids: list[int], tip: str) -> QToolButton:
        button = QToolButton()
        button.setProperty("skip_ids", ids)
        button.setToolTip(tip)
        button.setAutoRaise(True)
        button.clicked.connect(lambda _=False, b=button: self._toggle(b.property("skip_ids")))
        self._set_button_text(button)
        return button

    def _set_button_text(self, button: QToolButton) -> None:
        ids = set(button.property("skip_ids"))
        skipped = ids <= self.session.skip_ids
        label = ", ".join(map(str, sorted(ids)))
        button.setText(f"Quantize {label}" if skipped else f"Skip {label}")

    def _toggle(self, ids: list[int]) -> None:
        session = self.session
        if set(ids) <= session.skip_ids:
            session.set_skip_ids(session.skip_ids - set(ids))
            self.message.emit(f"Advisor: ops {ids} may be quantized again (press Convert)",
                              "info")
        else:
            session.set_skip_ids(session.skip_ids | set(ids))
            self.message.emit(f"Advisor: ops {ids} will stay FP32 (press Convert)", "info")

    def _refresh_skip_buttons(self) -> None:
        for table in (self.sensitive, self.lone):
            for row in range(table.rowCount()):
                button = table.cellWidget(row, 0)
                if isinstance(button, QToolButton):
                    self._set_button_text(button)

    def apply_best(self) -> bool:
        if self.advice is None:
            return False
        config = best_config(self.advice, self.session.target)
        if config is None:
            return False
        self.session.set_config(config)
        self.message.emit(f"Applied the advisor's configuration: ops_to_quantize="
                          f"{config.ops_to_quantize or 'all'}, op_ids_to_skip="
                          f"{config.op_ids_to_skip}; press Convert (Ctrl+R) to run it", "ok")
        return True

    def best(self) -> Candidate | None:
        return self.advice.best if self.advice else None

    # ---- graph --------------------------------------------------------------------------
    def heat_map(self) -> dict[int, float]:
        if self.advice is None:
            return {}
        return {s.op_id: s.sqnr_db for s in self.advice.sensitive if math.isfinite(s.sqnr_db)}

    def _push_heat(self) -> None:
        if self.heat.isChecked() and self.advice is not None:
            self.sqnr_changed.emit(self.heat_map())
        else:
            self.sqnr_changed.emit(self.fallback_sqnr())

    def _clicked(self, table: QTableWidget, row: int) -> None:
        item = table.item(row, 0)
        op_id = item.data(Qt.ItemDataRole.UserRole) if item is not None else None
        if op_id is not None:
            self.op_requested.emit(int(op_id))
