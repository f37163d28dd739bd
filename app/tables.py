"""Read-only result tables, their cells and titles, shared by the Accuracy and Advisor tabs."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)


def read_only_table(columns: list[str], name: str) -> QTableWidget:
    """A compact, row-selecting table that cannot be edited."""
    table = QTableWidget(0, len(columns))
    table.setObjectName(name)
    table.setHorizontalHeaderLabels(columns)
    table.verticalHeader().hide()
    table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
    table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
    table.setSelectionMode(QTableWidget.SelectionMode.SingleSelection)
    table.setAlternatingRowColors(True)
    table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    table.horizontalHeader().setStretchLastSection(True)
    table.verticalHeader().setDefaultSectionSize(22)
    table.setWordWrap(False)
    return table


def cell(text: str, numeric: bool = False, data: object = None) -> QTableWidgetItem:
    """A cell showing ``text`` (also as its tip), right-aligned if ``numeric``; ``data`` goes
    to its user role (the op id a click selects)."""
    item = QTableWidgetItem(text)
    item.setToolTip(text)
    if numeric:
        item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    if data is not None:
        item.setData(Qt.ItemDataRole.UserRole, data)
    return item


def titled(title: str, widget: QWidget, hint: str = "") -> QWidget:
    """``widget`` under a bold title (and a grey hint)."""
    box = QWidget()
    column = QVBoxLayout(box)
    column.setContentsMargins(0, 0, 0, 0)
    column.setSpacing(2)
    label = QLabel(f"<b>{title}</b>" + (f" <span style='color:#666'>{hint}</span>"
                                        if hint else ""))
    column.addWidget(label)
    column.addWidget(widget, 1)
    return box
