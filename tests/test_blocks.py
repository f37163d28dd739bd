"""Repeated blocks found from the graph's structure when node names say nothing.

Models are renamed as Paddle2ONNX names its ops (``p2o.MatMul.12``: a counter per op type),
so the name-based detection finds nothing and the structural fallback has to find the layers.
The tensor names are left alone: ``layer3.q.matmul`` tells the test which layer an op is in.
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from app.headless.blocks import STRUCTURE_FAMILY, Block, detect_blocks, top_level
from devtools import modelgen
from qcore.convert import convert
from qcore.ir import Graph
from qcore.ir_onnx import from_onnx

sys.path.insert(0, str(Path(__file__).resolve().parent))


LAYERS = 4
LAYER = re.compile(r"layer\d+")
RES_BLOCK = re.compile(r"stage\d+\.block\d+")


def p2o_names(model: onnx.ModelProto) -> onnx.ModelProto:
    """``model`` with every op renamed ``p2o.<OpType>.<n>``, n counted per op type."""
    counts: Counter[str] = Counter()
    for node in model.graph.node:
        node.name = f"p2o.{node.op_type}.{counts[node.op_type]}"
        counts[node.op_type] += 1
    return model


@pytest.fixture(scope="module")
def bert() -> onnx.ModelProto:
    fp32 = modelgen.bert_like(layers=LAYERS, hidden=64, heads=4, ffn=128, seq=16)
    return modelgen.quantize_qdq(fp32)


@pytest.fixture(scope="module")
def bert_p2o(bert: onnx.ModelProto, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("blocks") / "bert_p2o.onnx"
    renamed = onnx.ModelProto()
    renamed.CopyFrom(bert)
    onnx.save(p2o_names(renamed), str(path))
    return path


def computed(graph: Graph) -> dict[int, int]:
    """Op id -> position, for the ops that read something computed (not only weights)."""
    const = set(graph.initializers)
    found = {}
    for position, node in enumerate(graph.nodes):
        if all(t in const for t in node.inputs if t):
            const.update(node.outputs)  # weight DequantizeLinear: at the top of the graph
        else:
            found[node.id] = position
    return found


def check_blocks(graph: Graph, blocks: dict[str, Block], count: int) -> None:
    """``count`` structural blocks, disjoint, in graph order, all with the same op types (but
    the clamps remove_fake_ops restored: Relu or Clip by each layer's calibrated range)."""
    assert list(blocks) == [f"block{k}" for k in range(count)]
    assert {b.family for b in blocks.values()} == {STRUCTURE_FAMILY}
    ids = [i for b in blocks.values() for i in b.op_ids]
    assert len(ids) == len(set(ids))  # disjoint
    position = computed(graph)
    spans = [(min(position[i] for i in b.op_ids if i in position),
              max(position[i] for i in b.op_ids if i in position)) for b in blocks.values()]
    assert all(a[1] < b[0] for a, b in zip(spans, spans[1:], strict=False))  # ordered, apart
    op_type = {n.id: n.op_type for n in graph.nodes if not n.reason.startswith("restored")}
    shapes = {tuple(op_type[i] for i in b.op_ids if i in op_type) for b in blocks.values()}
    assert len(shapes) == 1 and len(next(iter(shapes))) >= 4


def tags(graph: Graph, block: Block, pattern: re.Pattern[str]) -> Counter[str]:
    """How many ops of ``block`` write a tensor named after each layer / residual block."""
    outputs = {n.id: n.outputs for n in graph.nodes}
    found: Counter[str] = Counter()
    for op_id in block.op_ids:
        names = {m.group(0) for t in outputs[op_id] for m in [pattern.search(t)] if m}
        found.update(names)
    return found


def test_the_layers_of_a_renamed_qdq_bert_are_found(bert_p2o: Path) -> None:
    graph = from_onnx(onnx.load(str(bert_p2o)))
    assert all(n.name.startswith("p2o.") for n in graph.nodes)
    blocks = detect_blocks(graph)
    # Every layer, the last one included: its output Q/DQ pair (on ``y``) matches the Q/DQ
    # pair that starts the next layer in the others, so all four layers look the same.
    check_blocks(graph, blocks, LAYERS)
    for k, block in enumerate(blocks.values()):
        assert set(tags(graph, block, LAYER)) == {f"layer{k}"}  # exactly one layer each
    # Shared weights (the attention scale, Gelu's constants: read by every layer) and the
    # input's Q/DQ stay outside; each layer's own weights join it.
    inside = {i for b in blocks.values() for i in b.op_ids}
    assert len(graph.nodes) - len(inside) == 5


def test_every_snapshot_of_the_conversion_keeps_the_layers(bert_p2o: Path) -> None:
    result = convert(bert_p2o)
    for snap in result.snapshots:  # fused, QLinear and float ops: the structure changes
        blocks = detect_blocks(snap.graph)
        check_blocks(snap.graph, blocks, LAYERS)
    graph = result.snapshots[-1].graph
    for k, block in enumerate(detect_blocks(graph).values()):
        layer, ops = tags(graph, block, LAYER).most_common(1)[0]
        # The first op may be the Quantize of the previous layer's output (named after it).
        assert layer == f"layer{k}" and ops >= 0.9 * len(block.op_ids)


def test_constants_every_layer_reads_do_not_tie_the_blocks_together(
        bert: onnx.ModelProto) -> None:
    """The attention scale and GELU's 0.5 are read by every layer: drawn outside the blocks
    they gave each collapsed block extra edges from the top of the graph, crossing it."""
    from app.headless.view_graph import build_view
    from qcore.dot import tensor_keys

    graph = from_onnx(bert)
    blocks = detect_blocks(graph)
    view = build_view(graph, blocks, set(), tensor_keys(graph))
    into = Counter(dst for _src, dst in view.edges)
    block_nodes = [n.key for n in view.nodes if n.kind == "block"]
    assert len(block_nodes) == LAYERS
    assert all(into[key] == 1 for key in block_nodes)  # the previous layer's output only
    drawn = {n.op_id for n in view.nodes if n.kind == "op"}
    shared = [n for n in graph.nodes if n.op_type == "DequantizeLinear"
              and all(t in graph.initializers for t in n.inputs)
              and len({b for b, blk in blocks.items()
                       for c in graph.consumers().get(n.outputs[0], []) if c.id in blk.op_ids}) > 1]
    assert shared and not drawn & {n.id for n in shared}


def test_names_still_win_when_they_tell(bert: onnx.ModelProto) -> None:
    """quantize_static keeps the model's names (``layer2.q.matmul``...): blocks by name."""
    graph = from_onnx(bert)
    blocks = detect_blocks(graph)
    assert top_level(blocks) == [f"layer{k}" for k in range(LAYERS)]
    assert {blocks[k].family for k in top_level(blocks)} == {"layer#"}


def resnet(blocks: tuple[int, ...]) -> Graph:
    fp32 = modelgen.resnet_like(image=32, classes=10, blocks=blocks, width=8)
    return from_onnx(p2o_names(modelgen.quantize_qdq(fp32, activation_type="int8",
                                                     symmetric_activations=True)))


def test_residual_blocks_of_a_renamed_resnet() -> None:
    graph = resnet((2, 3, 4))
    blocks = detect_blocks(graph)
    # The first block of each stage has a downsample conv: another structure. The run of
    # three identity blocks in stage 3 is found, then the same block in the other stages
    # (the same ops with other channel counts).
    check_blocks(graph, blocks, 6)
    found = [set(tags(graph, b, RES_BLOCK)) for b in blocks.values()]
    expected = [(1, 1), (2, 1), (2, 2), (3, 1), (3, 2), (3, 3)]
    assert found == [{f"stage{s}.block{b}"} for s, b in expected]


def test_weight_names_do_not_make_blocks() -> None:
    """paddle2onnx names ops ``p2o.*`` and weight DequantizeLinear ops after their weights
    (``ConvBnFusion_W_conv2d_3.w_0``): three such names once made one 'block' of 1,178 of a
    PP-OCR detector's 1,213 ops. Weights are not blocks: the structure finds the blocks, and
    each weight sits in the block that reads it."""
    graph = resnet((2, 3, 4))
    readers = graph.consumers()
    const = set(graph.initializers)
    weights = []
    for k, node in enumerate(graph.nodes):
        if all(not t or t in const for t in node.inputs):
            node.name = f"ConvBnFusion_W_batch_norm_{k % 3}.w_0_DequantizeLinear"
            const.update(node.outputs)
            weights.append(node)
    blocks = detect_blocks(graph)
    check_blocks(graph, blocks, 6)
    assert max(len(b.op_ids) for b in blocks.values()) <= len(graph.nodes) / 2
    owner = {i: key for key, b in blocks.items() for i in b.op_ids}
    inside = [w for w in weights if owner.get(readers[w.outputs[0]][0].id)]
    assert inside and all(owner.get(w.id) == owner[readers[w.outputs[0]][0].id]
                          for w in inside)


def test_identical_stages_are_the_blocks_that_cover_most() -> None:
    graph = resnet((3, 3, 3))
    blocks = detect_blocks(graph)
    # Each stage is the same ops (downsample block + two identity blocks): three stages cover
    # every residual block, more than the six identity blocks alone.
    check_blocks(graph, blocks, 3)
    found = [{t.split(".")[0] for t in tags(graph, b, RES_BLOCK)} for b in blocks.values()]
    assert found == [{"stage1"}, {"stage2"}, {"stage3"}]


def test_the_big_chain_matches_the_name_based_blocks() -> None:
    named = from_onnx(modelgen.qdq_chain(50))
    model = modelgen.qdq_chain(50)
    for i, node in enumerate(model.graph.node):
        node.name = f"n{i}"
    graph = from_onnx(model)
    blocks = detect_blocks(graph)
    check_blocks(graph, blocks, 50)
    by_name = detect_blocks(named)
    assert [b.op_ids for b in blocks.values()] == [b.op_ids for b in by_name.values()]


def _graph(nodes: list[onnx.NodeProto], inputs: list[str], output: str,
           weights: dict[str, np.ndarray]) -> Graph:
    values = [helper.make_tensor_value_info(name, TensorProto.FLOAT, [2, 8]) for name in inputs]
    inits = [numpy_helper.from_array(a, name) for name, a in weights.items()]
    out = helper.make_tensor_value_info(output, TensorProto.FLOAT, [2, 8])
    model = helper.make_model(helper.make_graph(nodes, "g", values, [out], inits),
                              opset_imports=[helper.make_opsetid("", 17)])
    return from_onnx(model)


def layers_with_mask(layers: int) -> Graph:
    """Unnamed residual layers that all read an attention-mask-like tensor."""
    weights = {"w": np.eye(8, dtype=np.float32), "one": np.ones((), np.float32)}
    nodes = [helper.make_node("Sub", ["one", "mask_in"], ["inv"]),
             helper.make_node("Mul", ["inv", "one"], ["mask"])]
    x = "x"
    for k in range(layers):
        nodes += [helper.make_node("MatMul", [x, "w"], [f"m{k}"]),
                  helper.make_node("Add", [f"m{k}", "mask"], [f"a{k}"]),
                  helper.make_node("Relu", [f"a{k}"], [f"r{k}"]),
                  helper.make_node("Add", [f"r{k}", x], [f"x{k}"])]
        x = f"x{k}"
    return _graph(nodes, ["x", "mask_in"], x, weights)


def test_a_mask_read_by_every_layer_does_not_hide_the_layers() -> None:
    graph = layers_with_mask(5)
    blocks = detect_blocks(graph)
    check_blocks(graph, blocks, 5)
    op_type = {n.id: n.op_type for n in graph.nodes}
    assert [op_type[i] for i in blocks["block0"].op_ids] == ["MatMul", "Add", "Relu", "Add"]


def test_no_repetition_no_blocks() -> None:
    kinds = ["Relu", "Sigmoid", "Tanh", "Abs", "Neg", "Exp", "Softsign", "Elu", "Floor",
             "Ceil", "Sin", "Cos"]
    nodes = [helper.make_node(kind, [f"t{k}"], [f"t{k + 1}"]) for k, kind in enumerate(kinds)]
    assert detect_blocks(_graph(nodes, ["t0"], f"t{len(kinds)}", {})) == {}


def test_two_instances_are_not_enough() -> None:
    assert len(detect_blocks(layers_with_mask(3))) == 3
    assert detect_blocks(layers_with_mask(2)) == {}


HF_PARTS = {"q": "attention/self/query", "k": "attention/self/key", "v": "attention/self/value",
            "o": "attention/output/dense", "ffn1": "intermediate/dense",
            "gelu": "intermediate/intermediate_act_fn", "ffn2": "output/dense"}
HF_OPS = {"attn.residual": "attention/output/Add",
          "attn.ln": "attention/output/LayerNorm/LayerNormalization",
          "ffn.residual": "output/Add", "ffn.ln": "output/LayerNorm/LayerNormalization"}


def hf_name(name: str) -> str:
    """``layer3.q.matmul`` as Hugging Face's exporter names it
    (``/encoder/layer.3/attention/self/query/matmul``); Q/DQ ops keep their suffix."""
    stem, sep, tail = name.rpartition("_")
    if tail in ("QuantizeLinear", "DequantizeLinear"):
        return hf_name(stem) + sep + tail
    m = re.fullmatch(r"layer(\d+)\.([a-z0-9]+)\.([a-z_]+)", name)
    if m is None or m[1] == "" or name.endswith(("weight", "bias", "beta", "gamma")):
        return name
    layer, part, op = m.groups()
    path = HF_OPS.get(f"{part}.{op}") or (f"{HF_PARTS[part]}/{op}" if part in HF_PARTS
                                          else f"attention/self/{op}")
    return f"/encoder/layer.{layer}/{path}"


@pytest.fixture(scope="module")
def hf_bert(bert: onnx.ModelProto) -> onnx.ModelProto:
    renamed = onnx.ModelProto()
    renamed.CopyFrom(bert)
    for node in renamed.graph.node:
        node.name = hf_name(node.name)
    return renamed


def test_name_levels_nest_like_the_model(hf_bert: onnx.ModelProto) -> None:
    """``/encoder/layer.1`` holds ``attention``, ``intermediate`` and ``output``;
    ``attention`` holds ``self`` (query, key, value) and ``output``; a weight's
    DequantizeLinear is in the innermost level that reads it."""
    from app.headless.view_graph import build_view, is_open
    from app.headless.view_state import ViewState
    from qcore.dot import tensor_keys

    graph = from_onnx(hf_bert)
    blocks = detect_blocks(graph)
    layer = "/encoder/layer.1"
    assert top_level(blocks) == [f"/encoder/layer.{k}" for k in range(LAYERS)]
    assert blocks[layer].family == "/encoder/layer.#"
    children = [k for k, b in blocks.items() if b.parent == layer]
    assert children == [f"{layer}/attention", f"{layer}/intermediate", f"{layer}/output"]
    assert [k for k, b in blocks.items() if b.parent == f"{layer}/attention"] == [
        f"{layer}/attention/self", f"{layer}/attention/output"]
    query = blocks[f"{layer}/attention/self/query"]
    assert query.parent == f"{layer}/attention/self"
    names = {graph.node_by_id(i).name for i in query.op_ids}
    assert "layer1.q.weight_DequantizeLinear" in names  # the weight with the op using it
    for block in blocks.values():  # a level is inside its parent
        if block.parent:
            assert set(block.op_ids) <= set(blocks[block.parent].op_ids)
    keys = tensor_keys(graph)
    drawn = build_view(graph, blocks, set(), keys).blocks
    assert list(drawn) == top_level(blocks)  # levels hide inside their collapsed block
    opened = build_view(graph, blocks, {layer}, keys).blocks
    assert layer not in opened and set(children) <= set(opened)
    assert not any(k.startswith(f"{layer}/attention/") for k in opened)
    deeper = build_view(graph, blocks, {layer, f"{layer}/attention"}, keys).blocks
    assert {f"{layer}/attention/self", f"{layer}/attention/output"} <= set(deeper)
    assert not is_open(f"{layer}/attention", blocks, {f"{layer}/attention"})  # parent shut
    state = ViewState()
    op = graph.node_by_id(query.op_ids[0]).id
    state.expand_to(op, blocks)  # a search hit opens every level down to the op
    assert state.expanded == {k for k, b in blocks.items() if op in b.op_ids}
    assert state.expanded_block(op, blocks) == f"{layer}/attention/self/query"  # innermost
    state.fold_parent(f"{layer}/attention/self/query", blocks)
    assert f"{layer}/attention/self" not in state.expanded


def test_expanding_one_level_shows_its_sub_blocks(qtbot, make_window, hf_bert: onnx.ModelProto,
                                                  tmp_path: Path, messages: list) -> None:
    from PySide6.QtCore import Qt

    path = tmp_path / "hf_bert_qdq.onnx"
    onnx.save(hf_bert, str(path))
    window = make_window()
    with qtbot.waitSignal(window.job_finished, timeout=60_000):
        window.open_model(path)
    panel = window.graph_panel

    def settled() -> bool:
        return panel.view_job is None and panel.view.items_ready()

    qtbot.waitUntil(settled, timeout=60_000)
    with qtbot.waitSignal(panel.snapshot_shown, timeout=60_000):
        panel.set_view_mode("blocks")
    qtbot.waitUntil(settled, timeout=60_000)
    layer = "/encoder/layer.2"
    assert set(panel.view.blocks) == {f"/encoder/layer.{k}" for k in range(LAYERS)}
    assert "opens level by level" in panel.banner.text()
    item = panel.view.blocks[layer]
    panel.view.centerOn(item)
    at = panel.view.mapFromScene(item.sceneBoundingRect().center())
    with qtbot.waitSignal(panel.snapshot_shown, timeout=60_000):
        qtbot.mouseDClick(panel.view.viewport(), Qt.MouseButton.LeftButton, pos=at)
    qtbot.waitUntil(lambda: settled() and f"{layer}/attention" in panel.view.blocks,
                    timeout=60_000)
    assert panel.state.expanded == {layer}
    assert {f"{layer}/attention", f"{layer}/intermediate", f"{layer}/output"} <= set(
        panel.view.blocks)
    assert layer not in panel.view.blocks and "/encoder/layer.1" in panel.view.blocks
    menu = panel.view.block_menu(panel.view.blocks[f"{layer}/attention"])
    actions = [a.text() for a in menu.actions()]
    assert actions == ["Expand", f"Collapse {layer}"]
    with qtbot.waitSignal(panel.snapshot_shown, timeout=60_000):
        menu.actions()[0].trigger()  # Expand: attention opens into self and output
    qtbot.waitUntil(lambda: settled() and f"{layer}/attention/self" in panel.view.blocks,
                    timeout=60_000)
    assert panel.state.expanded == {layer, f"{layer}/attention"}
    with qtbot.waitSignal(panel.snapshot_shown, timeout=60_000):
        panel.view.block_menu(panel.view.blocks[f"{layer}/attention/self"]).actions()[1].trigger()
    qtbot.waitUntil(lambda: settled() and f"{layer}/attention" in panel.view.blocks,
                    timeout=60_000)
    assert panel.state.expanded == {layer}
    window.close()
