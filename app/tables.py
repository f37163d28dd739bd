"""Read-only result tables shared by the Accuracy and Advisor tabs."""

from __future__ import annotations

from PySide6.QtWidgets import QHeaderView, QTableWidget


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
