"""The configuration: ops_to_quantize ticks, the op_ids_to_skip list, target, run buttons."""

from __future__ import annotations

import re

from PySide6.QtCore import QEvent, Qt, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.state import Session
from qcore.config import TARGETS
from qcore.ops import SUPPORTED_OPS

TYPE_COLUMNS = 2
MAX_TYPES_WIDTH = 300  # px the op-type list may claim for one column
TUNE_ENGINES = (("auto (the target's engine)", ""), ("ONNX Runtime", "onnxruntime"),
                ("OpenVINO", "openvino"))


class ConfigPanel(QWidget):
    op_requested = Signal(int)  # a row of the skip list was clicked

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.type_boxes: dict[str, QCheckBox] = {}
        self._syncing = False
        row = QHBoxLayout(self)
        row.setContentsMargins(6, 4, 6, 6)
        row.addWidget(self._types_group(), 5)
        right = QVBoxLayout()
        right.addWidget(self._skip_group(), 1)
        right.addWidget(self._run_group())
        row.addLayout(right, 4)
        session.config_changed.connect(self.sync)
        session.result_changed.connect(self.rebuild_types)

    # ---- ops_to_quantize --------------------------------------------------------------
    def _types_group(self) -> QGroupBox:
        box = QGroupBox("Op types (ops_to_quantize)")
        column = QVBoxLayout(box)
        box.setToolTip("All ticked = every supported type (an empty ops_to_quantize).\n"
                       "Greyed types have no INT8 kernel and always stay FP32.")
        self.types_grid = QGridLayout()
        self.types_grid.setHorizontalSpacing(14)
        self.types_grid.setVerticalSpacing(4)
        inner = QWidget()
        inner.setLayout(self.types_grid)
        scroll = QScrollArea()
        scroll.installEventFilter(self)  # its width sets the number of columns
        self.types_scroll = scroll
        self._columns = TYPE_COLUMNS
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        scroll.setWidget(inner)
        buttons = QHBoxLayout()
        for text, state in (("All", True), ("None", False)):
            button = QPushButton(text)
            button.setFlat(True)
            button.clicked.connect(lambda _=False, s=state: self._set_all(s))
            buttons.addWidget(button)
        buttons.addStretch(1)
        column.addLayout(buttons)
        column.addWidget(scroll, 1)
        return box

    def rebuild_types(self) -> None:
        while self.types_grid.count():
            widget = self.types_grid.takeAt(0).widget()
            if widget is not None:  # off screen now: a message box opened right after runs
                widget.hide()  # its own event loop, where deleteLater waits (the old boxes
                widget.setParent(None)  # were drawn under the new ones)
                widget.deleteLater()
        self.type_boxes.clear()
        types = self.session.op_types()
        for op_type, count in sorted(types.items()):
            check = QCheckBox(f"{op_type} ({count})")
            check.setObjectName(f"type_{op_type}")
            if op_type not in SUPPORTED_OPS:
                check.setEnabled(False)
                check.setToolTip(f"{op_type}: no INT8 kernel; always FP32")
            else:
                check.setToolTip(f"Quantize the {count} {op_type} op(s)")
            check.toggled.connect(self._types_edited)
            self.type_boxes[op_type] = check
        if self.type_boxes:  # room for the longest name ("LayerNormalization (24)")
            widest = max(c.sizeHint().width() for c in self.type_boxes.values())
            bar = self.types_scroll.verticalScrollBar().sizeHint().width()
            self.types_scroll.setMinimumWidth(min(widest + bar + 6, MAX_TYPES_WIDTH))
        self._place_types(self._fitting_columns())
        self.sync()

    def _fitting_columns(self) -> int:
        """As many columns (at most TYPE_COLUMNS) as fit the panel without clipping a name."""
        if not self.type_boxes:
            return TYPE_COLUMNS
        widest = max(c.sizeHint().width() for c in self.type_boxes.values())
        room = self.types_scroll.width() - self.types_scroll.verticalScrollBar().sizeHint().width()
        spacing = self.types_grid.horizontalSpacing()
        return max(1, min(TYPE_COLUMNS, (room + spacing) // (widest + spacing)))

    def _place_types(self, columns: int) -> None:
        for check in self.type_boxes.values():
            self.types_grid.removeWidget(check)
        for i, check in enumerate(self.type_boxes.values()):
            self.types_grid.addWidget(check, i // columns, i % columns)
        for row in range(self.types_grid.rowCount()):
            self.types_grid.setRowStretch(row, 0)
        self.types_grid.setRowStretch(self.types_grid.rowCount(), 1)
        self._columns = columns

    def eventFilter(self, watched, event) -> bool:
        if event.type() == QEvent.Type.Resize and watched is self.types_scroll:
            columns = self._fitting_columns()
            if columns != self._columns:
                self._place_types(columns)
        return super().eventFilter(watched, event)

    def _set_all(self, state: bool) -> None:
        self._syncing = True
        for check in self.type_boxes.values():
            if check.isEnabled():
                check.setChecked(state)
        self._syncing = False
        self._types_edited()

    def _types_edited(self) -> None:
        if self._syncing:
            return
        enabled = {t: c for t, c in self.type_boxes.items() if c.isEnabled()}
        checked = [t for t, c in enabled.items() if c.isChecked()]
        if len(checked) == len(enabled):
            self.session.set_ops_to_quantize([])
        else:
            extra = [t for t in self.session.ops_to_quantize if t not in self.type_boxes]
            self.session.set_ops_to_quantize(checked + extra or ["(none)"])

    def set_type_checked(self, op_type: str, checked: bool) -> None:
        self.type_boxes[op_type].setChecked(checked)

    # ---- op_ids_to_skip ---------------------------------------------------------------
    def _skip_group(self) -> QGroupBox:
        box = QGroupBox("Keep FP32 (op_ids_to_skip)")
        column = QVBoxLayout(box)
        self.skip_list = QListWidget()
        self.skip_list.setObjectName("skipList")
        self.skip_list.setToolTip("Click a node and press S to add or remove it here")
        self.skip_list.itemClicked.connect(lambda item: self.op_requested.emit(item.data(
            Qt.ItemDataRole.UserRole)))
        remove = QAction("Remove", self.skip_list)
        remove.setShortcut(QKeySequence.StandardKey.Delete)
        remove.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
        remove.triggered.connect(self._remove_selected)
        self.skip_list.addAction(remove)
        self.skip_list.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)
        self.id_edit = QLineEdit()
        self.id_edit.setPlaceholderText("op ids")
        self.id_edit.setToolTip("Type op ids (e.g. 12, 40) and press Enter")
        self.id_edit.returnPressed.connect(self._add_typed)
        add = QToolButton(text="Add")
        add.setToolTip("Add the typed op ids")
        add.clicked.connect(self._add_typed)
        drop = QToolButton(text="Remove")
        drop.setToolTip("Remove the selected rows (Delete)")
        drop.clicked.connect(self._remove_selected)
        clear = QToolButton(text="Clear")
        clear.setToolTip("Empty the list")
        clear.clicked.connect(lambda: self.session.set_skip_ids(set()))
        edit_row = QHBoxLayout()
        edit_row.addWidget(self.id_edit, 1)
        for button in (add, drop, clear):
            edit_row.addWidget(button)
        column.addWidget(self.skip_list, 1)
        column.addLayout(edit_row)
        return box

    def _add_typed(self) -> None:
        ids = {int(v) for v in re.findall(r"\d+", self.id_edit.text())}
        if ids:
            self.session.set_skip_ids(self.session.skip_ids | ids)
        self.id_edit.clear()

    def _remove_selected(self) -> None:
        doomed = {i.data(Qt.ItemDataRole.UserRole) for i in self.skip_list.selectedItems()}
        self.session.set_skip_ids(self.session.skip_ids - doomed)

    def skip_ids_shown(self) -> list[int]:
        return [self.skip_list.item(i).data(Qt.ItemDataRole.UserRole)
                for i in range(self.skip_list.count())]

    # ---- target and run -----------------------------------------------------------------
    def _run_group(self) -> QWidget:
        box = QWidget()
        column = QVBoxLayout(box)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(4)
        top = QHBoxLayout()
        top.addWidget(QLabel("Target"))
        self.target = QComboBox()
        self.target.addItems(list(TARGETS))
        self.target.setToolTip("onnxruntime: QLinear ops for ONNX Runtime\n"
                               "onednn: squashed QDQ that OpenVINO runs on oneDNN INT8")
        self.target.currentTextChanged.connect(self.session.set_target)
        top.addWidget(self.target, 1)
        self.config_buttons = top
        column.addLayout(top)
        self.tune = QCheckBox("Tune for speed (measure on this machine)")
        self.tune.setObjectName("tuneForSpeed")
        self.tune.setToolTip(
            "qcore convert --tune: Convert and Save INT8 model time the unsure choices (small\n"
            "INT8 islands, ops at the border of FP32) INT8 against FP32 in the whole model on\n"
            "this machine and keep an op FP32 only where that is measured faster.\n"
            "This may take minutes (Cancel stops it). Save INT8 model caches the measurements\n"
            "beside the saved file (<name>.qcore-tune.json), so saving again is instant;\n"
            "Convert keeps none (it has no output file to put them beside).")
        self.run_buttons = QHBoxLayout()
        column.addLayout(self.run_buttons)
        column.addWidget(self.tune)  # under Convert, which it changes
        column.addLayout(self._tune_row())
        self.dirty = QLabel("")
        self.dirty.setObjectName("dirty")
        self.dirty.setWordWrap(True)
        column.addWidget(self.dirty)
        return box

    def _tune_row(self) -> QHBoxLayout:
        """Where and how long "Tune for speed" measures (``--engine``, ``--tune-budget``)."""
        row = QHBoxLayout()
        row.setContentsMargins(22, 0, 0, 0)  # under the box's text
        row.addWidget(QLabel("on"))
        self.tune_engine = QComboBox()
        for text, engine in TUNE_ENGINES:
            self.tune_engine.addItem(text, engine)
        self.tune_engine.setToolTip("The engine the choices are timed on (qcore convert --tune "
                                    "--engine); auto: the target's (onnxruntime: ONNX Runtime, "
                                    "onednn: OpenVINO)")
        self.tune_budget = QSpinBox()
        self.tune_budget.setRange(5, 7200)
        self.tune_budget.setSuffix(" s")
        self.tune_budget.setPrefix("budget ")
        self.tune_budget.setToolTip("How long the search may time (qcore convert --tune-budget; "
                                    "the final side-by-side check may exceed it). Inputs: the "
                                    "Benchmark tab's, when chosen there (--inputs)")
        row.addWidget(self.tune_engine, 1)
        row.addWidget(self.tune_budget)
        for widget in (self.tune_engine, self.tune_budget):
            widget.setEnabled(False)
            self.tune.toggled.connect(widget.setEnabled)
        return row

    def tune_engine_name(self) -> str:
        """"" (the target's engine), "onnxruntime" or "openvino"."""
        return str(self.tune_engine.currentData() or "")

    def set_tune_engine(self, engine: str) -> None:
        self.tune_engine.setCurrentIndex(max(0, self.tune_engine.findData(engine)))

    def add_button(self, action: QAction, run: bool) -> QToolButton:
        button = QToolButton()
        button.setDefaultAction(action)
        if run:
            button.setObjectName("runButton")
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
            button.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        else:
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonIconOnly)
        (self.run_buttons if run else self.config_buttons).addWidget(button)
        return button

    # ---- syncing from the session -------------------------------------------------------
    def sync(self) -> None:
        self._syncing = True
        session = self.session
        chosen = set(session.ops_to_quantize)
        for op_type, check in self.type_boxes.items():
            check.setChecked(check.isEnabled() and (not chosen or op_type in chosen))
        self.target.setCurrentText(session.target)
        self.skip_list.clear()
        for op_id in sorted(session.skip_ids):
            node = session.find_op(op_id)
            text = f"{op_id:>4}   {node.op_type}  {node.name}" if node else f"{op_id:>4}   ?"
            item = QListWidgetItem(text)
            item.setData(Qt.ItemDataRole.UserRole, op_id)
            if node is None:
                item.setToolTip("no op with this id in the model")
            self.skip_list.addItem(item)
        self.dirty.setText("Changed since the last conversion: press Convert (Ctrl+R)."
                           if session.is_dirty() else "")
        self._syncing = False
