"""Find ops in the graph panel: the search bar's text selects the first match, F3 / Shift+F3
step through them. Matches light up in the view; a partial view (the neighbourhood, collapsed
blocks) searches the whole snapshot and brings the op found into view."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence, QShortcut

from app.headless.search import Matches, match_ops

if TYPE_CHECKING:
    from app.graph_panel import GraphPanel


class GraphSearch:
    def __init__(self, panel: GraphPanel) -> None:
        self.panel, self.bar = panel, panel.search
        self.matches = Matches()
        self.bar.changed.connect(self.find)
        self.bar.step.connect(self.step)
        self.bar.closed.connect(lambda: panel.view.setFocus(Qt.FocusReason.OtherFocusReason))
        for keys, direction in (("F3", 1), ("Shift+F3", -1)):
            shortcut = QShortcut(QKeySequence(keys), panel)
            shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            shortcut.activated.connect(lambda d=direction: self.step(d))

    def find(self, text: str, move: bool = True) -> None:
        """Mark the matches of ``text``; ``move`` selects the first."""
        panel = self.panel
        shown = panel.view.find(text)
        graph = panel.graph()
        partial = panel.state.near or bool(panel.view.blocks)
        # a partial view: search the whole snapshot, not the view
        self.matches.reset(match_ops(graph.nodes, text) if partial and graph else shown)
        if move and self.matches.ids:
            panel.select_op(self.matches.ids[0])
        self.bar.show_count(self.matches.pos, len(self.matches.ids))

    def refresh(self) -> None:
        """A new view: mark the matches in it (the selection stays)."""
        self.find(self.bar.field.text(), move=False)

    def step(self, direction: int) -> None:
        op_id = self.matches.step(direction)
        if op_id is not None:
            self.panel.select_op(op_id)
            self.bar.show_count(self.matches.pos, len(self.matches.ids))
