"""DOT snapshots (qcore.dot) and the Graphviz runner (qcore.render)."""

from __future__ import annotations

import html
import re
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper

from qcore import render
from qcore.config import ConvertConfig
from qcore.convert import ConversionResult, convert
from qcore.dot import to_dot, write_debug_snapshots
from qcore.ir import FusedActivation, Graph, Node, QParams, TensorInfo
from qcore.labels import COLORS, LEGEND, color_of, status_key
from qcore.render import GraphvizMissing, export, find_dot, layout_json

SAMPLES = Path(__file__).resolve().parents[1] / "resources" / "samples"
NEEDS_DOT = pytest.mark.skipif(find_dot() is None, reason="Graphviz dot not installed")
OP_LINE = re.compile(r'^\s*op_(\d+) \[label="((?:[^"\\]|\\.)*)"(.*)\];$', re.MULTILINE)


@pytest.fixture(scope="module")
def cnn() -> ConversionResult:
    return convert(SAMPLES / "cnn_qdq.onnx")


@pytest.fixture(scope="module")
def transformer() -> ConversionResult:
    return convert(SAMPLES / "transformer_qdq.onnx")


def op_lines(text: str) -> dict[int, tuple[str, str]]:
    """Op id -> (label as written, the rest of the attribute list)."""
    return {int(m.group(1)): (m.group(2), m.group(3)) for m in OP_LINE.finditer(text)}


def fill_of(attrs: str) -> str:
    match = re.search(r'fillcolor="(#[0-9a-f]{6})"', attrs)
    assert match, attrs
    return match.group(1)


# ---- to_dot -------------------------------------------------------------------------------


@NEEDS_DOT
@pytest.mark.parametrize("sample", ["cnn", "transformer"])
def test_every_snapshot_renders_with_graphviz(sample, request) -> None:
    result: ConversionResult = request.getfixturevalue(sample)
    texts = [to_dot(s.graph, title=s.stem) for s in result.snapshots]
    with ThreadPoolExecutor(max_workers=8) as pool:
        svgs = list(pool.map(lambda t: render.render(t, "svg", timeout=60), texts))
    for snap, svg in zip(result.snapshots, svgs, strict=True):
        text = svg.decode("utf-8")
        assert "<svg" in text, snap.stem
        for node in snap.graph.nodes:  # the op ids survive into the SVG for the app to use
            assert f'id="op_{node.id}"' in text, (snap.stem, node.label)


def test_labels_use_op_type_and_stable_id(cnn) -> None:
    conv_ids = [n.id for n in cnn.snapshots[0].graph.nodes if n.op_type == "Conv"]
    assert len(conv_ids) == 8
    seen_in = {i: 0 for i in conv_ids}
    for snap in cnn.snapshots:
        ops = op_lines(to_dot(snap.graph))
        assert set(ops) == {n.id for n in snap.graph.nodes}, snap.stem
        for node in snap.graph.nodes:
            assert ops[node.id][0].startswith(f"{node.op_type}({node.id})"), snap.stem
        for op_id in conv_ids:
            if op_id in ops:  # Conv(20) is still "...Conv(20)" after becoming QLinearConv
                assert f"Conv({op_id})" in ops[op_id][0], (snap.stem, ops[op_id][0])
                seen_in[op_id] += 1
    # every conv exists from the quant model to the INT8 model
    assert all(count == len(cnn.snapshots) for count in seen_in.values())


def test_labels_show_name_fused_ops_and_weight_shape(cnn) -> None:
    fused = next(s for s in cnn.snapshots if s.name == "fuse_activation")
    text = to_dot(fused.graph)
    ops = op_lines(text)
    stem = next(n for n in fused.graph.nodes if n.name == "stem.conv")
    label = ops[stem.id][0]
    assert label.startswith(f"Conv({stem.id})\\nstem.conv\\n+Relu(")
    assert "W 16x3x3x3" in label
    assert "_act" not in text  # private attributes are never printed
    for name in fused.graph.initializers:  # weights are not drawn as nodes
        assert f'label="{name}\\n' not in text and f'label="{name}"' not in text


def test_tensors_show_shape_and_scale(cnn) -> None:
    last = cnn.snapshots[-1].graph
    text = to_dot(last)
    assert re.search(r't_0 \[label="image\\nbatchx3x32x32\\nu8 s=[0-9.]+ zp=\d+"', text)
    # int8 tensors of the INT8 model get their scale from the QLinear ops around them
    assert re.search(r'label="pool_quantized\\nbatchx32x8x8\\nu8 s=[0-9.e-]+ zp=\d+"', text)


def test_status_colours(cnn, transformer) -> None:
    for result in (cnn, transformer):
        graph = result.snapshots[-1].graph
        ops = op_lines(to_dot(graph))
        keys = {status_key(n) for n in graph.nodes}
        assert "int8" in keys and "fake" in keys
        for node in graph.nodes:
            assert fill_of(ops[node.id][1]) == color_of(node)
            if node.status == "int8":
                assert color_of(node) == COLORS["int8"]
            if node.op_type in ("QuantizeLinear", "DequantizeLinear"):
                assert color_of(node) == COLORS["fake"]
    fp32 = [n for n in transformer.snapshots[-1].graph.nodes if n.op_type == "LayerNormalization"]
    assert fp32 and all(color_of(n) == COLORS["fp32"] for n in fp32)
    assert all(color_of(n) == COLORS["undecided"] for n in cnn.snapshots[2].graph.nodes
               if n.op_type == "Conv")
    assert [name for name, _, _ in LEGEND] == list(COLORS)


def test_skipped_ops_are_red_and_say_why() -> None:
    result = convert(SAMPLES / "cnn_qdq.onnx", ConvertConfig(op_ids_to_skip=[23]))
    graph = result.snapshots[-1].graph
    node = graph.node_by_id(23)
    assert node is not None and node.status == "fp32"
    assert color_of(node) == COLORS["skipped"]
    label, attrs = op_lines(to_dot(graph))[23]
    assert fill_of(attrs) == COLORS["skipped"] and "skipped by id" in label
    assert "skipped by id" in attrs  # tooltip


def test_to_dot_is_deterministic(transformer) -> None:
    again = convert(SAMPLES / "transformer_qdq.onnx")
    for a, b in zip(transformer.snapshots, again.snapshots, strict=True):
        first = to_dot(a.graph, "t", {1, 2})
        assert first == to_dot(a.graph, "t", {2, 1})
        assert first == to_dot(b.graph, "t", {1, 2})


def test_highlight_and_legend(cnn) -> None:
    graph = cnn.snapshots[-1].graph
    node = graph.nodes[1]
    text = to_dot(graph, highlight={node.id})
    assert 'penwidth=3' in op_lines(text)[node.id][1]
    assert "cluster_legend" in text and "legend_highlight" in text
    plain = to_dot(graph, legend=False)
    assert "cluster_legend" not in plain and "penwidth=3" not in plain


def weird_graph() -> Graph:
    """Names with quotes, backslashes, newlines, braces and non-ASCII characters."""
    names = ['in "x"\\', "a\\nb\\N\nc{d}|<e>", "ünï ✓ " + "long" * 20, 'out\\"']
    nodes = [
        Node(0, "Relu", [names[0]], [names[1]], name='say "hi"\\'),
        Node(1, "Conv", [names[1], "w"], [names[2]], act=FusedActivation("Relu", 0, 1, 9),
             fused=["Relu(9)"], status="fp32", reason='no "kernel" \\ here'),
        Node(2, "Add", [names[2], names[2]], [names[3]], status="int8"),
    ]
    return Graph(
        nodes=nodes,
        initializers={"w": np.zeros((4, 3, 1, 1), np.float32)},
        inputs=[helper.make_tensor_value_info(names[0], TensorProto.FLOAT, [1, 3, 2, 2])],
        outputs=[helper.make_tensor_value_info(names[3], TensorProto.FLOAT, None)],
        tensors={names[0]: TensorInfo(TensorProto.FLOAT, ["N", 3, None, 2])},
        opsets={"": 17},
        act_qparams={names[1]: QParams(np.float32(0.5), np.uint8(3))},
    )


@NEEDS_DOT
def test_escaping_survives_graphviz() -> None:
    graph = weird_graph()
    text = to_dot(graph, title='ti"tle\\')
    layout = layout_json(text)
    labels = {obj["name"]: obj["label"] for obj in layout["objects"] if "label" in obj}
    assert labels["op_0"] == 'Relu(0)\\nsay "hi"\\\\'
    assert labels["op_1"].startswith("Conv(1)\\n+Relu(9)\\nW 4x3x1x1\\nFP32: no ")
    assert labels["t_0"] == 'in "x"\\\\\\nNx3x?x2'
    assert labels["t_1"] == "a\\\\nb\\\\N c{d}|<e>\\nu8 s=0.5 zp=3"
    assert labels["t_2"].startswith("ünï ✓ long") and "..." in labels["t_2"]
    assert layout["label"] == 'ti"tle\\\\'
    assert "_act" not in text
    assert text.count("t_2 -> op_2") == 2
    # what the reader sees: every character shown literally, one line per label line
    svg = render.render(text, "svg").decode("utf-8")
    shown = [html.unescape(t) for t in re.findall(r"<text[^>]*>([^<]*)</text>", svg)]
    for line in ['ti"tle\\', 'in "x"\\', "Nx3x?x2", 'say "hi"\\', "a\\nb\\N c{d}|<e>",
                 'FP32: no "kernel" \\ here', 'out\\"', "u8 s=0.5 zp=3"]:
        assert line in shown, (line, shown)


# ---- debug snapshots -----------------------------------------------------------------------


def test_write_debug_snapshots(cnn, tmp_path) -> None:
    out = tmp_path / "debug" / "nested"
    paths = write_debug_snapshots(cnn.snapshots, out)
    names = [p.name for p in paths]
    assert names[0] == "quant_orig.dot"
    assert all(re.fullmatch(r"int8_\d\d_[a-z0-9_]+\.dot", n) for n in names[1:])
    assert names == [f"{s.stem}.dot" for s in cnn.snapshots]
    assert sorted(p.name for p in out.iterdir()) == sorted(names)  # no temp files left
    text = paths[-1].read_text(encoding="utf-8")
    assert text.startswith("digraph G {") and text.rstrip().endswith("}")
    assert cnn.snapshots[-1].stem in text
    again = write_debug_snapshots(cnn.snapshots, out)  # overwriting works and is identical
    assert [p.read_bytes() for p in again] == [p.read_bytes() for p in paths]


# ---- render / export -----------------------------------------------------------------------


@NEEDS_DOT
def test_export_formats(cnn, tmp_path) -> None:
    text = to_dot(cnn.snapshots[-1].graph, title="cnn")
    dot_file = export(text, tmp_path / "g.dot")
    assert dot_file.read_text(encoding="utf-8") == text
    assert export(text, tmp_path / "g.svg").read_bytes().lstrip().startswith(b"<")
    assert b"<svg" in (tmp_path / "g.svg").read_bytes()[:1000]
    assert export(text, tmp_path / "g.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.dot", "g.png", "g.svg"]
    with pytest.raises(ValueError, match="suffix"):
        export(text, tmp_path / "g.txt")


@NEEDS_DOT
def test_layout_json_and_dot_errors() -> None:
    layout = layout_json("digraph G { a -> b }")
    assert {o["name"] for o in layout["objects"]} == {"a", "b"}
    with pytest.raises(RuntimeError, match="syntax error"):
        render.render("digraph G { a -> }", "svg")


@pytest.mark.parametrize("fmt", ["ps", "svg -o /tmp/x", "png;rm", "", "-Tsvg", "../svg"])
def test_render_rejects_bad_formats(fmt) -> None:
    with pytest.raises(ValueError, match="format"):
        render.render("digraph G {}", fmt)


def test_missing_graphviz(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert find_dot() is None
    with pytest.raises(GraphvizMissing, match="apt-get install graphviz"):
        render.render("digraph G {}", "svg")
    with pytest.raises(GraphvizMissing):
        export("digraph G {}", tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()
    assert export("digraph G {}", tmp_path / "x.dot").read_text() == "digraph G {}"
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(GraphvizMissing):
        layout_json("digraph G {}")


def test_source_gives_a_graphviz_source_for_notebooks(samples) -> None:
    from qcore.convert import convert
    from qcore.dot import source

    snap = convert(str(samples / "cnn_qdq.onnx")).snapshots[-1]
    src = source(snap.graph, title=snap.stem)
    assert src.source.startswith("digraph")
    if find_dot() is not None:
        assert src.pipe(format="svg").lstrip().startswith((b"<?xml", b"<svg"))


@pytest.mark.parametrize("flag", ["-o/tmp/x", "-Gsplines=line;rm", "-Kneato", "-G a=b"])
def test_render_accepts_only_graph_attribute_flags(flag) -> None:
    with pytest.raises(ValueError, match="unsupported Graphviz flag"):
        render.render("digraph G { a }", "svg", flags=(flag,))
