"""The line above the graph that says what the view shows and how to see more (rich text;
its links are 'nodiff', 'whole', 'all' and 'blocks', see GraphPanel)."""

from __future__ import annotations

import html
from collections import Counter

from app.headless.blocks import STRUCTURE_FAMILY, top_level
from app.headless.diff import PassDelta
from app.headless.view_plan import ViewPlan
from app.headless.view_state import ViewState
from qcore.convert import Snapshot
from qcore.ir import Graph


def banner_text(state: ViewState, snap: Snapshot | None, plan: ViewPlan | None,
                delta: PassDelta | None, before: Graph | None, graphviz_problem: str) -> str:
    """The banner for ``snap`` drawn from ``plan``; ``delta`` is what its pass changed from
    ``before`` (in diff mode); ``graphviz_problem`` is why Graphviz cannot lay out, if so."""
    if graphviz_problem:
        return ("<b>Graphviz is missing or failed</b> \u2014 the graph view needs the "
                "<code>dot</code> program. " + graphviz_problem)
    if snap is None:
        return ""
    ops = len(snap.graph.nodes)
    if state.diff:
        if delta is None or before is None:
            return ("The loaded model has no previous pass to compare with: pick a pass to see "
                    "what it changed. <a href='nodiff'>Show the graph</a>")
        return diff_text(snap, delta, before)
    if state.near:
        return (f"Showing the neighbourhood (depth {state.depth}) of the selected op of "
                f"{ops} ops. Double-click an op to re-centre. "
                "<a href='whole'>Show the whole graph</a>")
    if plan is not None and plan.collapsed:
        fam = next(iter(plan.blocks.values())).family
        how = ("found by structure: the same ops, in the same order, repeat" if
               fam == STRUCTURE_FAMILY else
               f"found by name: ops named <code>{html.escape(fam)}</code>, # being the "
               "block's number")
        top = top_level(plan.blocks)
        levels = [k for k in plan.blocks if plan.blocks[k].parent == top[0]]
        if levels:  # nested name levels
            names = ", ".join(f"<code>{html.escape(k[len(top[0]):].lstrip('/.'))}</code>"
                              for k in levels[:3])
            more = ", \u2026" if len(levels) > 3 else ""
            how += (f"; each opens level by level along the names ({names}{more} in <code>"
                    f"{html.escape(top[0])}</code>)")
        text = (f"{ops} ops: {len(plan.collapsed)} blocks are collapsed ({len(top)} repeated "
                f"blocks {how}; weights inside the block that reads them). Double-click a "
                "block to expand it, an op of an expanded block to fold it. "
                "<a href='all'>Show every op</a>")
        if state.expanded:
            text += " \u00b7 <a href='blocks'>Collapse all</a>"
        return text
    if plan is not None and plan.blocks:
        return (f"{ops} ops, {len(top_level(plan.blocks))} repeated blocks. "
                "<a href='blocks'>Collapse repeated blocks</a>")
    return ""


def diff_text(snap: Snapshot, delta: PassDelta, before: Graph) -> str:
    removed = Counter(n.op_type for n in before.nodes if n.id in delta.removed)
    text = (f"Only what <b>{snap.name}</b> changed: {len(delta.added)} ops added, "
            f"{len(delta.rewritten)} rewritten (outlined), with their neighbours")
    if removed:
        text += "; removed " + ", ".join(f"{k} \u00d7{v}" for k, v in removed.most_common(4))
        if len(removed) > 4:
            text += ", \u2026"
    return text + ". <a href='nodiff'>Show the whole graph</a>"
