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


# ---- torchvision and paddle2onnx names (issue 16) --------------------------------------------

TV_LAYERS = (2, 2, 3, 2)  # residual blocks per layer, as ResNet-18's (2, 2, 2, 2)


def torchvision_model(style: str) -> onnx.ModelProto:
    """A small residual CNN whose ops are named like torchvision modules: ``dotted``
    (``layer3.1.conv2``), ``scoped`` (torch.onnx's ``/layer3/layer3.1/conv2/Conv``) or
    ``features`` (EfficientNet / MobileNet: ``features.4.0.block.1.0``). Stem and head are
    named ``conv1`` / ``relu`` / ``avgpool`` / ``flatten`` as in torchvision."""
    rng = np.random.default_rng(0)
    nodes: list[onnx.NodeProto] = []
    inits: list[onnx.TensorProto] = []
    width = 8

    def name(path: list[str], op: str) -> str:
        if style != "scoped":
            return ".".join(path)
        scopes, k = [], 0  # torch.onnx: item 0 of Sequential layer1 is the scope "layer1.0"
        while k < len(path):
            if k + 1 < len(path) and path[k + 1].isdigit():
                scopes += [path[k], f"{path[k]}.{path[k + 1]}"]
                k += 2
            else:
                scopes.append(path[k])
                k += 1
        return "/" + "/".join(scopes) + "/" + op

    def op(kind: str, inputs: list[str], path: list[str], **attrs) -> str:
        out = f"t{len(nodes)}"
        nodes.append(helper.make_node(kind, inputs, [out], name=name(path, kind), **attrs))
        return out

    def conv(x: str, path: list[str], k: int = 3) -> str:
        weight = ".".join(path) + ".weight"
        inits.append(numpy_helper.from_array(
            (rng.standard_normal((width, width, k, k)) * 0.2).astype(np.float32), weight))
        return op("Conv", [x, weight], path, pads=[k // 2] * 4)

    stem = ["features", "0"] if style == "features" else []
    x = conv("image", stem + ["0"] if stem else ["conv1"])
    x = op("Relu", [x], stem + ["1"] if stem else ["relu"])
    for li, blocks in enumerate(TV_LAYERS, start=1):
        for bi in range(blocks):
            if style == "features":
                base, y = ["features", str(li), str(bi)], x
                for k in range(3):
                    y = conv(y, [*base, "block", str(k), "0"], 3 if k == 1 else 1)
                    y = op("Relu", [y], [*base, "block", str(k), "1"])
                x = op("Add", [y, x], [*base, "add"])
                continue
            base = [f"layer{li}", str(bi)]
            y = op("Relu", [conv(x, [*base, "conv1"])], [*base, "relu"])
            y = conv(y, [*base, "conv2"])
            if bi == 0:
                x = conv(x, [*base, "downsample", "0"], 1)
            x = op("Relu", [op("Add", [y, x], [*base, "add"])], [*base, "relu_1"])
    out = op("Flatten", [op("GlobalAveragePool", [x], ["avgpool"])], ["flatten"])
    graph = helper.make_graph(
        nodes, "tv", [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, width, 8, 8])],
        [helper.make_tensor_value_info(out, TensorProto.FLOAT, [1, width])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _tree(blocks: dict[str, Block]) -> list[tuple[str, str]]:
    return [(key, block.parent) for key, block in blocks.items()]


@pytest.mark.parametrize("style", ["dotted", "scoped"])
def test_torchvision_layers_hold_their_residual_blocks(style: str) -> None:
    """``layer3`` holds ``layer3.0`` .. ``layer3.2`` (not the other way round, nor the blocks
    on their own), the same before and after quantize_static adds its Q/DQ ops; the stem
    and the head stay outside every block."""
    model = torchvision_model(style)
    lead = "/" if style == "scoped" else ""
    trees = []
    for graph in (from_onnx(model), from_onnx(modelgen.quantize_qdq(model))):
        blocks = detect_blocks(graph)
        assert top_level(blocks) == [f"{lead}layer{k}" for k in range(1, 5)]
        layer3 = f"{lead}layer3"
        inner = [f"{layer3}/layer3.{b}" if lead else f"layer3.{b}" for b in range(3)]
        assert [k for k, b in blocks.items() if b.parent == layer3] == inner
        assert not [k for k in blocks if k.endswith("/layer3/layer3")]  # "layer3.1": 1 scope
        inside = {i for b in blocks.values() for i in b.op_ids}
        outside = {n.name for n in graph.nodes if n.id not in inside
                   and n.op_type not in ("QuantizeLinear", "DequantizeLinear")}
        stem_head = {"conv1", "relu", "avgpool", "flatten"} if not lead else {
            "/conv1/Conv", "/relu/Relu", "/avgpool/GlobalAveragePool", "/flatten/Flatten"}
        assert outside == stem_head & {n.name for n in graph.nodes}  # ORT drops some Relu
        for block in blocks.values():  # a level holds more than one op (and its Q/DQ)
            real = [i for i in block.op_ids if graph.node_by_id(i).op_type not in (
                "QuantizeLinear", "DequantizeLinear") and graph.node_by_id(i).inputs[0]
                not in graph.initializers]
            assert len(real) >= 2
        trees.append(_tree(blocks))
    assert trees[0] == trees[1]


def test_efficientnet_features_nest_four_levels() -> None:
    """``features.3`` (a stage) holds ``features.3.1`` (an MBConv), which holds
    ``features.3.1.block`` and its ``features.3.1.block.1`` (conv + activation)."""
    graph = from_onnx(torchvision_model("features"))
    blocks = detect_blocks(graph)
    assert top_level(blocks) == [f"features.{k}" for k in range(1, 5)]
    assert [k for k, b in blocks.items() if b.parent == "features.3"] == [
        "features.3.0", "features.3.1", "features.3.2"]
    assert blocks["features.3.1.block"].parent == "features.3.1"
    assert [k for k, b in blocks.items() if b.parent == "features.3.1.block"] == [
        f"features.3.1.block.{k}" for k in range(3)]
    quantized = detect_blocks(from_onnx(modelgen.quantize_qdq(torchvision_model("features"))))
    # quantized, the stem (conv, activation and their Q/DQ) is big enough to be a block too
    assert [k for k in top_level(quantized) if k != "features.0"] == top_level(blocks)
    assert quantized["features.3.1.block"].parent == "features.3.1"


def test_quantizer_names_of_paddle_tensors_make_no_blocks(bert_p2o: Path) -> None:
    """Quantizers name a Q/DQ op after its tensor, and paddle2onnx names tensors after Paddle
    variables (``softmax_9.tmp_0``): Q/DQ ops alone do not make a name family (three such
    "blocks" of five Q/DQ ops once hid the 28 layers of PP-OCRv4's recogniser)."""
    model = onnx.load(str(bert_p2o))
    k = 0
    for node in model.graph.node:
        if node.op_type in ("QuantizeLinear", "DequantizeLinear") and k < 30:
            node.name = f"softmax_{k // 10}.tmp_0_{node.op_type}_{k % 10}"
            k += 1
    graph = from_onnx(model)
    check_blocks(graph, detect_blocks(graph), LAYERS)


ZOO = Path.home() / ".cache" / "quant-inspector" / "zoo" / "1"


@pytest.mark.parametrize("stem", ["ppocrv4_det", "ppocrv4_rec"])
def test_pp_ocr_blocks_come_from_the_structure(stem: str) -> None:
    """paddle2onnx's names (``p2o.Conv.12``) and the Paddle tensor names in the Q/DQ ops say
    nothing of layers: every quantized PP-OCR model of the zoo gets structural blocks, the
    same ones for each producer's Q/DQ placement, none nested."""
    files = sorted(ZOO.glob(f"{stem}.*.qdq.onnx"))
    if not files:
        pytest.skip(f"no {stem} in the zoo cache (tests/zoo.py makes it)")
    for path in files:
        graph = from_onnx(onnx.load(str(path)))
        assert sum(n.name.startswith("p2o.") for n in graph.nodes) > len(graph.nodes) / 3
        blocks = detect_blocks(graph)
        assert len(blocks) >= 3, path.name
        assert {b.family for b in blocks.values()} == {STRUCTURE_FAMILY}, path.name
        assert top_level(blocks) == list(blocks)  # no nested levels without names
        sizes = {len(b.op_ids) for b in blocks.values()}
        assert max(sizes) <= len(graph.nodes) / 2

