"""The graph view's state without a window: which view a snapshot gets, the mode switches,
what observers hear, and the banner that explains the view."""

from __future__ import annotations

import pytest

from app.headless import view_state
from app.headless.banner import banner_text
from app.headless.blocks import Block
from app.headless.diff import PassDelta
from app.headless.view_plan import ViewSpec
from app.headless.view_state import Change, ViewState, fused_host, holds
from qcore.convert import Snapshot
from qcore.ir import Graph, Node


def chain(ops: int) -> Graph:
    nodes = [Node(i, "Relu", [f"t{i}"], [f"t{i + 1}"]) for i in range(ops)]
    return Graph(nodes=nodes, initializers={}, inputs=[], outputs=[], tensors={},
                 opsets={"": 17})


@pytest.fixture
def heard() -> tuple[ViewState, list[frozenset[Change]]]:
    state = ViewState()
    changes: list[frozenset[Change]] = []
    state.observe(changes.append)
    return state, changes


def test_the_view_follows_the_size_until_the_user_chooses() -> None:
    state = ViewState()
    assert state.mode == "auto"
    assert state.spec(chain(10)) == ViewSpec("all")
    big = chain(view_state.BLOCKS_ABOVE_OPS + 1)
    assert state.spec(big).kind == "blocks"
    state.set_mode("all")
    assert state.spec(big) == ViewSpec("all") and state.mode == "all" and state.whole_graph
    state.set_mode("blocks")
    assert state.spec(chain(10)).kind == "blocks" and state.mode == "blocks"


def test_the_neighbourhood_is_centred_on_the_selection() -> None:
    state, graph = ViewState(), chain(30)
    state.set_near(True)
    assert state.spec(graph) == ViewSpec("near", 0, view_state.DEPTH)  # nothing selected
    state.select(12)
    state.set_depth(2)
    assert state.spec(graph) == ViewSpec("near", 12, 2)
    state.select(99)  # not in this snapshot
    assert state.spec(graph).centre == 0


def test_diff_mode_draws_the_changes_when_there_are_any() -> None:
    state, graph = ViewState(), chain(5)
    state.set_diff(True)
    delta = PassDelta(added={3}, rewritten={1})
    assert state.spec(graph, delta) == ViewSpec("changes", depth=1, ops=frozenset({1, 3}))
    assert state.spec(graph, None) == ViewSpec("all")  # the loaded model: nothing to diff


def test_mode_switches_and_what_observers_hear(heard) -> None:
    state, changes = heard
    state.set_near(True)
    assert changes[-1] == {Change.MODE, Change.NEAR} and not state.whole_graph
    state.set_near(True)  # again: the view is asked for again, the mode did not change
    assert changes[-1] == {Change.MODE}
    state.expand("block1", "block2")
    state.set_mode("blocks")  # leaves the neighbourhood and collapses every block again
    assert changes[-1] == {Change.MODE, Change.EXPANDED, Change.NEAR}
    assert not state.near and state.expanded == frozenset() and state.whole_graph
    state.set_diff(False)  # unchanged: nothing to hear
    state.set_depth(state.depth)
    assert changes[-1] == {Change.MODE, Change.EXPANDED, Change.NEAR}
    state.set_mode("near")
    assert state.near and state.collapse is False
    state.set_near(False)  # back to the whole graph, every op
    assert state.mode == "all"


def test_a_new_model_forgets_the_choices_made_for_the_old_one(heard) -> None:
    state, changes = heard
    state.set_near(True)
    state.set_depth(3)
    state.set_diff(True)
    state.set_mode("blocks")
    state.expand("layer1")
    state.select(7)
    state.new_model()
    assert changes[-1] == {Change.MODEL}
    assert (state.selection, state.collapse, state.whole_graph, state.expanded) == \
        (None, None, False, frozenset())
    assert state.depth == 3 and state.diff  # viewing habits stay


def test_big_graphs_without_blocks_start_in_the_neighbourhood(heard) -> None:
    state, changes = heard
    ops = view_state.LARGE_GRAPH_OPS + 1
    state.show_snapshot(0, ops)  # blocks collapsed by size: no neighbourhood yet
    assert changes[-1] == {Change.SNAPSHOT} and not state.near
    blocks_spec = ViewSpec("blocks")
    assert not state.fall_back_to_near(ops, blocks_spec, found_blocks=True)
    assert not state.fall_back_to_near(ops - 1, blocks_spec, found_blocks=False)
    assert state.fall_back_to_near(ops, blocks_spec, found_blocks=False)
    assert state.near and changes[-1] == {Change.NEAR}
    state.set_near(False)  # the user asked for the whole graph: it stays whole
    assert not state.fall_back_to_near(ops, blocks_spec, found_blocks=False)


def test_double_clicking_an_op_of_an_expanded_block_folds_it(heard) -> None:
    state, changes = heard
    blocks = {"b0": Block("b0", "b#", [1, 2]), "b1": Block("b1", "b#", [3, 4])}
    state.expand("b1")
    assert state.expanded_block(2, blocks) is None  # b0 is collapsed
    assert state.expanded_block(4, blocks) == "b1"
    state.fold("b1", 4)
    assert state.expanded == frozenset() and state.selection == 4
    assert changes[-1] == {Change.EXPANDED, Change.SELECTION}


def test_an_op_fused_away_is_found_in_its_host() -> None:
    graph = chain(3)
    graph.nodes[1].fused = ["Relu(1)", "Clip(9)"]
    assert fused_host(graph, 9) == 1 and fused_host(graph, 5) is None
    assert holds(graph, 9) and holds(graph, 2) and not holds(graph, 5)


def test_the_banner_says_what_is_shown() -> None:
    state, graph = ViewState(), chain(4)
    snap = Snapshot(index=1, name="fuse", graph=graph)
    assert banner_text(state, snap, None, None, None, "") == ""
    assert "Graphviz is missing" in banner_text(state, snap, None, None, None, "no dot")
    state.set_near(True)
    assert "neighbourhood (depth 6)" in banner_text(state, snap, None, None, None, "")
    state.set_diff(True)
    text = banner_text(state, snap, None, PassDelta(added={3}, removed={7}), chain(8), "")
    assert "Only what <b>fuse</b> changed: 1 ops added" in text and "Relu \u00d71" in text
    assert "no previous pass" in banner_text(state, snap, None, None, None, "")
