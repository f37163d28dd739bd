"""Every pass is linear in the graph's size (issue 15): the per-op work of a pass must not
rebuild whole-graph tables or rescan the op list. Checked by counting those rebuilds, which
must not grow with the graph (how long a 50,000-op conversion takes is a figure of
benchmarks/bench_scale.py)."""

from __future__ import annotations

import pytest

from devtools import modelgen
from qcore.convert import convert
from qcore.ir import Graph


def _whole_graph_walks(model, monkeypatch: pytest.MonkeyPatch) -> int:
    """How many times a conversion of ``model`` builds a consumer / producer map or inserts
    an op by position (each walks the whole op list)."""
    count = [0]
    for name in ("consumers", "producers", "add_node", "replace_input", "remove_nodes"):
        real = getattr(Graph, name)

        def counted(self, *args, _real=real, **kwargs):
            if _real.__name__ != "add_node" or kwargs.get("index") is not None:
                count[0] += 1
            return _real(self, *args, **kwargs)

        monkeypatch.setattr(Graph, name, counted)
    convert(model)
    monkeypatch.undo()
    return count[0]


@pytest.mark.parametrize("make", [modelgen.conv_chain, modelgen.qdq_chain], ids=["conv", "qdq"])
def test_whole_graph_walks_do_not_grow_with_the_graph(make, monkeypatch) -> None:
    small = _whole_graph_walks(make(20), monkeypatch)
    big = _whole_graph_walks(make(200), monkeypatch)
    assert big <= small + 5, f"{small} walks for 20 blocks, {big} for 200: a pass is quadratic"
