"""The pass list: quant_orig, then every pass with its op count and what it changed."""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QRect, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QPainter, QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QListWidget,
    QListWidgetItem,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QWidget,
)

from app.diff import pass_delta
from qcore.convert import Snapshot

ROLE_DETAIL = Qt.ItemDataRole.UserRole + 1
ROLE_RIGHT = Qt.ItemDataRole.UserRole + 2
ROLE_MODIFIED = Qt.ItemDataRole.UserRole + 3
ROLE_DELTA = Qt.ItemDataRole.UserRole + 4


class PassDelegate(QStyledItemDelegate):
    """Two lines: ``NN name`` and the op count, then the pass summary and the +/-/~ op delta."""

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex) -> QSize:
        height = option.fontMetrics.height()
        return QSize(200, int(height * 2.6) + 6)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex) -> None:
        painter.save()
        style = option.widget.style() if option.widget else None
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        opt.text = ""
        if style:
            style.drawControl(QStyle.ControlElement.CE_ItemViewItem, opt, painter, option.widget)
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        pal = option.palette
        text_color = pal.color(QPalette.ColorRole.HighlightedText if selected
                               else QPalette.ColorRole.Text)
        dim = QColor(text_color)
        if not selected:
            dim = pal.color(QPalette.ColorRole.PlaceholderText)
        modified = bool(index.data(ROLE_MODIFIED))
        rect = option.rect.adjusted(8, 3, -8, -3)
        line_h = option.fontMetrics.height()
        bold = QFont(option.font)
        bold.setBold(modified)
        painter.setFont(bold)
        painter.setPen(text_color if modified else dim)
        count = str(index.data(ROLE_RIGHT) or "")
        count_w = option.fontMetrics.horizontalAdvance(count) + 10
        top = QRect(rect.left(), rect.top(), rect.width() - count_w, line_h + 2)
        name = painter.fontMetrics().elidedText(str(index.data(Qt.ItemDataRole.DisplayRole)),
                                                Qt.TextElideMode.ElideRight, top.width())
        painter.drawText(top, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, name)
        painter.setFont(option.font)
        painter.setPen(text_color if selected else dim)
        painter.drawText(QRect(rect.right() - count_w, rect.top(), count_w, line_h + 2),
                         Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, count)
        small = QFont(option.font)
        if option.font.pointSizeF() > 0:
            small.setPointSizeF(max(7.0, option.font.pointSizeF() * 0.9))
        painter.setFont(small)
        metrics = painter.fontMetrics()
        delta = str(index.data(ROLE_DELTA) or "")
        delta_w = metrics.horizontalAdvance(delta) + (10 if delta else 0)
        second = QRect(rect.left(), rect.top() + line_h + 2, rect.width() - delta_w, line_h + 2)
        detail = metrics.elidedText(str(index.data(ROLE_DETAIL) or ""),
                                    Qt.TextElideMode.ElideRight, second.width())
        painter.drawText(second, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                         detail)
        if delta:
            painter.setPen(text_color if selected else QColor("#1f5fbf"))
            painter.drawText(QRect(rect.right() - delta_w, second.top(), delta_w, line_h + 2),
                             Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, delta)
        painter.restore()


class PassList(QListWidget):
    snapshot_selected = Signal(int)  # position in the snapshot list

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setItemDelegate(PassDelegate(self))
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setUniformItemSizes(True)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setAlternatingRowColors(True)
        self.currentRowChanged.connect(self._changed)

    def set_snapshots(self, snapshots: list[Snapshot], select: int = 0) -> None:
        self.blockSignals(True)
        self.clear()
        previous = None
        for snap in snapshots:
            delta = pass_delta(previous, snap.graph)
            number = "\u2014" if snap.index < 0 else f"{snap.index:02d}"
            item = QListWidgetItem(f"{number}  {snap.name}")
            change = delta.text()
            item.setData(ROLE_RIGHT, f"{len(snap.graph.nodes)} ops")
            item.setData(ROLE_DELTA, change)
            item.setData(ROLE_DETAIL, snap.summary or ("no change" if not snap.modified else ""))
            item.setData(ROLE_MODIFIED, snap.modified)
            tip = [f"<b>{snap.stem}</b>", snap.summary, f"{len(snap.graph.nodes)} ops"]
            if change:
                tip.append(f"{len(delta.added)} added, {len(delta.removed)} removed, "
                           f"{len(delta.rewritten)} rewritten (new type or fused ops)")
            if not snap.modified:
                tip.append("<i>this pass changed nothing</i>")
            item.setToolTip("<br>".join(t for t in tip if t))
            self.addItem(item)
            previous = snap.graph
        self.blockSignals(False)
        if snapshots:
            self.setCurrentRow(max(0, min(select, len(snapshots) - 1)))

    def _changed(self, row: int) -> None:
        if row >= 0:
            self.snapshot_selected.emit(row)

    def step(self, direction: int) -> None:
        row = self.currentRow() + direction
        if 0 <= row < self.count():
            self.setCurrentRow(row)

    def previous(self) -> None:
        self.step(-1)

    def next(self) -> None:
        self.step(1)
