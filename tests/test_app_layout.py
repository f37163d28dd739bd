"""The app's headless helpers: Graphviz JSON parsing, cancellable layout, neighbourhoods,
pass deltas and the preview colours of pending config edits."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import re
from pathlib import Path

import pytest

from app.headless.diff import pass_delta
from app.headless.layout import (
    LayoutCache,
    LayoutCancelled,
    compute_layout,
    neighbourhood,
    run_dot_json,
    tensor_keys,
)
from app.state import Session
from qcore import render
from qcore.config import ConvertConfig
from qcore.convert import convert
from qcore.dot import to_dot
from qcore.labels import shorten

SAMPLE = Path(__file__).resolve().parents[1] / "resources" / "samples" / "cnn_qdq.onnx"
needs_dot = pytest.mark.skipif(render.find_dot() is None, reason="Graphviz is not installed")


@pytest.fixture(scope="module")
def result():
    return convert(SAMPLE)


def test_tensor_keys_match_to_dot(result) -> None:
    for snap in (result.snapshots[0], result.snapshots[-1]):
        text = to_dot(snap.graph)
        for name, key in tensor_keys(snap.graph).items():
            match = re.search(rf'^  {key} \[label="([^"\\]*(?:\\.[^"\\]*)*)', text, re.M)
            assert match, key
            assert match.group(1).split("\\n")[0] == shorten(name).replace('"', '\\"')


@needs_dot
def test_layout_has_every_op_and_edge_in_scene_coordinates(result) -> None:
    graph = result.snapshots[-1].graph
    layout = compute_layout(graph)
    assert layout.op_ids == {n.id for n in graph.nodes}
    assert len(layout.edges) == to_dot(graph, legend=False).count(" -> ")
    for box in layout.nodes:
        assert 0 <= box.x <= layout.width and 0 <= box.y <= layout.height
    first = min(layout.nodes, key=lambda b: b.y)
    assert first.tensor == graph.input_names[0]  # y grows downwards: the input is on top
    for edge in layout.edges:
        assert len(edge.points) % 3 == 1 and len(edge.arrow) >= 3


def test_a_cancelled_layout_stops_graphviz(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    pid_file = tmp_path / "dot.pid"
    silent = tmp_path / "dot"  # a Graphviz that says its pid, then never answers
    silent.write_text(f"#!/bin/sh\necho $$ > '{pid_file}'\nexec tail -f /dev/null\n")
    silent.chmod(0o755)
    monkeypatch.setattr(render, "find_dot", lambda: str(silent))

    def running() -> bool:  # the user cancels once Graphviz runs
        return pid_file.exists() and pid_file.read_text().strip() != ""

    with pytest.raises(LayoutCancelled):
        run_dot_json("digraph { a -> b }", cancelled=running)
    with pytest.raises(ProcessLookupError):  # killed and reaped
        os.kill(int(pid_file.read_text()), 0)
    with pytest.raises(RuntimeError, match="within"):
        run_dot_json("digraph { a -> b }", timeout=0.3)


def test_layout_without_graphviz(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(render, "find_dot", lambda: None)
    with pytest.raises(render.GraphvizMissing):
        run_dot_json("digraph { a }")


def test_neighbourhood_keeps_nearby_ops(result) -> None:
    graph = result.snapshots[-1].graph
    near = neighbourhood(graph, 38, 1)  # the residual Add and its direct neighbours
    ids = {n.id for n in near.nodes}
    assert 38 in ids and 1 < len(ids) < len(graph.nodes)
    assert {n.id for n in neighbourhood(graph, 38, 50).nodes} == {n.id for n in graph.nodes}


def test_layout_cache_evicts_oldest() -> None:
    cache = LayoutCache(size=2)
    for key in ("a", "b", "c"):
        cache.put((key,), object())  # type: ignore[arg-type]
    assert cache.get(("a",)) is None and cache.get(("c",)) is not None and len(cache) == 2


def test_pass_delta_counts_added_removed_rewritten(result) -> None:
    snaps = {s.name: s for s in result.snapshots}
    fused = pass_delta(snaps["fuse_matmul_bias"].graph, snaps["fuse_activation"].graph)
    assert fused.removed and fused.rewritten and not fused.added
    assert fused.text().startswith("\u2212")
    quant = pass_delta(snaps["quantize_placement"].graph, snaps["quantize"].graph)
    assert quant.added and quant.rewritten  # Q/DQ ops added, Conv -> QLinearConv
    assert pass_delta(None, snaps["quantize"].graph).text() == ""


def test_preview_status_of_pending_edits(qapp, result) -> None:
    session = Session()
    session.set_result(SAMPLE, result, new_model=True)
    final = result.snapshots[-1].graph
    conv = final.node_by_id(23)
    assert session.preview_status(conv) == ("int8", False)
    session.toggle_skip(23)
    assert session.preview_status(conv) == ("skipped", True)
    session.set_ops_to_quantize(["Add"])
    assert session.preview_status(final.node_by_id(26)) == ("fp32", True)  # a Conv
    assert session.is_dirty()
    session.set_config(ConvertConfig())
    assert not session.is_dirty()
