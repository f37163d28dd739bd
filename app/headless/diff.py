"""What a pass changed: ops added, removed and rewritten, by stable op id."""

from __future__ import annotations

from dataclasses import dataclass, field

from qcore.ir import Graph


@dataclass
class PassDelta:
    added: set[int] = field(default_factory=set)
    removed: set[int] = field(default_factory=set)
    rewritten: set[int] = field(default_factory=set)  # same id, new op type or fused ops

    @property
    def changed(self) -> set[int]:
        """Ops to highlight in the new snapshot."""
        return self.added | self.rewritten

    def text(self) -> str:
        parts = []
        if self.added:
            parts.append(f"+{len(self.added)}")
        if self.removed:
            parts.append(f"\u2212{len(self.removed)}")
        if self.rewritten:
            parts.append(f"~{len(self.rewritten)}")
        return " ".join(parts)


def pass_delta(before: Graph | None, after: Graph) -> PassDelta:
    if before is None:
        return PassDelta()
    old = {n.id: n for n in before.nodes}
    new = {n.id: n for n in after.nodes}
    delta = PassDelta(set(new) - set(old), set(old) - set(new))
    for op_id in set(new) & set(old):
        a, b = old[op_id], new[op_id]
        if (a.op_type, a.fused) != (b.op_type, b.fused):
            delta.rewritten.add(op_id)
    return delta
