"""The find field over the graph: id, ``Type(id)``, name or op type. Typing selects the first
match; Enter accepts it and hands the keyboard to the graph (so S skips the op found);
Shift+Enter, F3 / Shift+F3 and the arrows step through the matches; Escape clears."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QHBoxLayout, QLabel, QLineEdit, QToolButton, QWidget


class SearchField(QLineEdit):
    escaped = Signal()
    previous = Signal()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Escape:
            self.escaped.emit()
            return
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and \
                event.modifiers() & Qt.KeyboardModifier.ShiftModifier:
            self.previous.emit()
            return
        super().keyPressEvent(event)


class SearchBar(QWidget):
    """Emits ``changed(text)`` while typing, ``step(+1/-1)`` for next / previous match, and
    ``closed`` when the user is done with the field (Enter or Escape)."""

    changed = Signal(str)
    step = Signal(int)
    closed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(2)
        self.field = SearchField(self)
        self.field.setPlaceholderText("Find op: id, name or type  (Ctrl+F)")
        self.field.setClearButtonEnabled(True)
        self.field.setMinimumWidth(240)
        self.count = QLabel("")
        self.count.setMinimumWidth(64)
        self.count.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.prev_button = self._button("\u25b2", "Previous match (Shift+F3)", -1)
        self.next_button = self._button("\u25bc", "Next match (F3)", 1)
        row.addWidget(self.field, 1)
        row.addWidget(self.count)
        row.addWidget(self.prev_button)
        row.addWidget(self.next_button)
        self.field.textChanged.connect(self.changed)
        self.field.returnPressed.connect(self.closed)
        self.field.previous.connect(lambda: self.step.emit(-1))
        self.field.escaped.connect(self._escape)

    def _button(self, text: str, tip: str, direction: int) -> QToolButton:
        button = QToolButton(self)
        button.setText(text)
        button.setToolTip(tip)
        button.setAutoRaise(True)
        button.clicked.connect(lambda: self.step.emit(direction))
        return button

    def _escape(self) -> None:
        self.field.clear()
        self.closed.emit()

    def activate(self) -> None:
        self.field.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.field.selectAll()

    def show_count(self, current: int, total: int) -> None:
        text = self.field.text().strip()
        if not text:
            self.count.setText("")
        elif total == 0:
            self.count.setText("no match")
        else:
            self.count.setText(f"{current + 1} of {total}")
