"""Finding ops by what the user types in the search field."""

from __future__ import annotations

import re
from collections.abc import Iterable

from qcore.ir import Node


def match_ops(nodes: Iterable[Node], text: str) -> list[int]:
    """Ids of the ops matching ``text``: an id, ``Type(id)``, or part of a name or op type."""
    text = text.strip()
    if not text:
        return []
    label = re.fullmatch(r"\w*\((\d+)\)", text)
    wanted = int(label.group(1)) if label else (int(text) if text.isdigit() else None)
    if wanted is not None:
        return [n.id for n in nodes if n.id == wanted]
    low = text.lower()
    return [n.id for n in nodes if low in n.op_type.lower() or low in n.name.lower()]


class Matches:
    """The ops a search found and the one F3 / Shift+F3 stepped to."""

    def __init__(self) -> None:
        self.ids: list[int] = []
        self.pos = 0

    def reset(self, ids: list[int]) -> None:
        self.ids, self.pos = ids, 0

    def step(self, direction: int) -> int | None:
        """The next (+1) or previous (-1) match, wrapping around; None without matches."""
        if not self.ids:
            return None
        self.pos = (self.pos + direction) % len(self.ids)
        return self.ids[self.pos]
