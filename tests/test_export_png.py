"""PNG export stays within what image viewers open; SVG keeps the whole graph."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from qcore import render

needs_dot = pytest.mark.skipif(render.find_dot() is None, reason="Graphviz dot not installed")


@needs_dot
def test_a_tall_graph_exports_as_a_png_viewers_open(tmp_path: Path) -> None:
    chain = "digraph G {\n" + "".join(f"  n{i} -> n{i + 1};\n" for i in range(400)) + "}\n"
    tall = Image.open(render.export(chain, tmp_path / "tall.png"))
    assert max(tall.size) <= render.PNG_MAX_PIXELS
    assert max(tall.size) > render.PNG_MAX_PIXELS * 0.9  # scaled to fit, not shrunk further
    svg = render.export(chain, tmp_path / "tall.svg").read_text()
    assert "n400" in svg  # the whole graph, at full size


@needs_dot
def test_a_small_graph_keeps_its_size(tmp_path: Path) -> None:
    small = Image.open(render.export("digraph G { a -> b }", tmp_path / "small.png"))
    assert max(small.size) < 400
