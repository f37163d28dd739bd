"""The pass list: quant_orig, then every pass with its op count and what it changed."""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QPoint, QRect, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QMouseEvent, QPainter, QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QListWidget,
    QListWidgetItem,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QWidget,
)

from app.headless.diff import pass_delta
from qcore.convert import Snapshot
from qcore.verify import PassCheck, Status, VerifyReport

ROLE_DETAIL = Qt.ItemDataRole.UserRole + 1
ROLE_RIGHT = Qt.ItemDataRole.UserRole + 2
ROLE_MODIFIED = Qt.ItemDataRole.UserRole + 3
ROLE_DELTA = Qt.ItemDataRole.UserRole + 4
ROLE_DRIFT = Qt.ItemDataRole.UserRole + 5  # the verify line: text
ROLE_DRIFT_STATUS = Qt.ItemDataRole.UserRole + 6  # its Status value
ROLE_DRIFT_OP = Qt.ItemDataRole.UserRole + 7  # the first drifting op id, if any

DRIFT_COLOURS = {Status.OK.value: "#2e7d32", Status.ROUNDING.value: "#b26a00",
                 Status.DRIFT.value: "#c62828",
                 Status.NOT_RUNNABLE.value: "#c62828"}


def drift_text(row: PassCheck) -> str:
    """The verify line of one pass: its drift against the snapshot before it (a drifting
    pass names its first drifting op first, so the narrow list keeps it in view)."""
    if row.status == Status.SKIPPED:
        return "\u2013 not checked (an earlier pass failed)"
    if row.status == Status.NOT_RUNNABLE:
        return "\u2717 not runnable"
    diff = row.vs_previous
    figures = ""
    if diff is not None:
        error = "0" if diff.max_error == 0 else f"{diff.max_error:.1e}"
        figures = f"cos {diff.cosine:.7f} \u00b7 err {error}"
    if row.status == Status.OK:
        return f"\u2713 {figures}"
    if row.status == Status.ROUNDING:
        return f"\u2248 {figures} (rounding flips)"
    op = row.first_op
    return "\u2717 " + (f"{op.label} \u203a " if op else "drift ") + figures


def drift_tip(row: PassCheck) -> str:
    lines = [f"<b>verify: {row.status.value}</b> ({row.stage.value}, on {row.engine})"]
    for label, diff in (("vs the snapshot before", row.vs_previous),
                        ("vs the source", row.vs_source), ("vs the float model", row.vs_float)):
        if diff is not None:
            lines.append(f"{label}: cosine {diff.cosine:.7f}, max error {diff.max_error:.2e}")
    if row.first_op is not None:
        op = row.first_op
        lines.append(f"first drifting op: {op.label} '{op.name}', tensor {op.tensor} "
                     "(click the line to select it)")
        if op.note:
            lines.append(op.note)
    if row.reason:
        lines.append(row.reason)
    return "<br>".join(lines)


class PassDelegate(QStyledItemDelegate):
    """Two lines: ``NN name`` and the op count, then the pass summary and the +/-/~ op delta."""

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex) -> QSize:
        height = option.fontMetrics.height()
        lines = 3.6 if index.data(ROLE_DRIFT) else 2.6
        return QSize(200, int(height * lines) + 6)

    @staticmethod
    def drift_rect(option_rect: QRect, line_h: int) -> QRect:
        """Where the verify line is drawn (and clicked) inside an item's rect."""
        rect = option_rect.adjusted(8, 3, -8, -3)
        return QRect(rect.left(), rect.top() + 2 * (line_h + 2), rect.width(), line_h + 2)

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
        drift = str(index.data(ROLE_DRIFT) or "")
        if drift:
            colour = DRIFT_COLOURS.get(str(index.data(ROLE_DRIFT_STATUS)))
            painter.setPen(text_color if selected or colour is None else QColor(colour))
            if colour is None and not selected:
                painter.setPen(dim)
            third = self.drift_rect(option.rect, line_h)
            painter.drawText(third, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                             metrics.elidedText(drift, Qt.TextElideMode.ElideRight,
                                                third.width()))
        painter.restore()


class PassList(QListWidget):
    snapshot_selected = Signal(int)  # position in the snapshot list
    drift_op_clicked = Signal(int, int)  # row, op id: the verify line of a drifting pass

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

    def set_verify(self, report: VerifyReport) -> int:
        """Show each pass's drift from ``report`` (rows matched by pass name, in order);
        returns how many rows got a figure."""
        shown = 0
        for row, check in enumerate(report.rows[:self.count()]):
            item = self.item(row)
            if not item.text().endswith(f"  {check.name}"):
                break  # the list shows another conversion now
            item.setData(ROLE_DRIFT, drift_text(check))
            item.setData(ROLE_DRIFT_STATUS, check.status.value)
            item.setData(ROLE_DRIFT_OP, check.first_op.op_id if check.first_op else None)
            base = item.toolTip().split("<hr>")[0]
            item.setToolTip(f"{base}<hr>{drift_tip(check)}")
            shown += 1
        self.doItemsLayout()
        self.viewport().update()
        return shown

    def drift_op_at(self, pos: QPoint) -> tuple[int, int] | None:
        """(row, op id) when ``pos`` is on the verify line of a pass that names an op."""
        item = self.itemAt(pos)
        if item is None or item.data(ROLE_DRIFT_OP) is None:
            return None
        rect = PassDelegate.drift_rect(self.visualItemRect(item), self.fontMetrics().height())
        if not rect.contains(pos):
            return None
        return self.row(item), int(item.data(ROLE_DRIFT_OP))

    def drift_line_centre(self, row: int) -> QPoint:
        """The middle of a row's verify line, in viewport coordinates (for tests, scripts)."""
        rect = PassDelegate.drift_rect(self.visualItemRect(self.item(row)),
                                       self.fontMetrics().height())
        return rect.center()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        super().mouseReleaseEvent(event)
        if event.button() == Qt.MouseButton.LeftButton:
            hit = self.drift_op_at(event.position().toPoint())
            if hit is not None:
                self.drift_op_clicked.emit(*hit)

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
