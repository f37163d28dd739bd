"""The advisor finds the op that hurts accuracy and the INT8 op left alone between FP32 ops."""

from __future__ import annotations

import json

from conftest import POOR_SCALE_TENSOR

from qcore.advise import AdviseSettings, advise, find_islands
from qcore.advise.command import text as advice_text
from qcore.cli import main
from qcore.config import ConvertConfig
from qcore.convert import convert


def test_the_op_with_a_poor_scale_ranks_first_and_the_advice_meets_the_bound(planted) -> None:
    settings = AdviseSettings(min_cosine=0.999, rounds=3)
    advice = advise(planted, settings=settings)
    producer = next(n for n in convert(planted).decisions if POOR_SCALE_TENSOR in n.outputs)
    assert advice.sensitive[0].op_id == producer.id
    assert not advice.candidates[0].meets_bound, "quantizing everything misses the bound"
    assert advice.best is not None and advice.best.meets_bound
    assert producer.id in advice.best.op_ids_to_skip
    assert advice.op_ms.get(producer.id, 0) > 0, "the profile names ops by their qcore id"
    assert f"--op_ids_to_skip {','.join(map(str, advice.best.op_ids_to_skip))}" == advice.flags()


def test_a_lone_int8_op_between_fp32_ops_is_found(samples) -> None:
    path = str(samples / "cnn_qdq.onnx")
    convs = [n.id for n in convert(path).decisions if n.op_type == "Conv"]
    lone = convs[len(convs) // 2]
    others = [n.id for n in convert(path).decisions if n.id != lone and n.op_type != "Conv"]
    result = convert(path, ConvertConfig(op_ids_to_skip=[c for c in convs if c != lone] + others))
    graph = result.snapshots[0].graph
    islands = find_islands(result.decisions, graph.input_names, graph.output_names)
    (island,) = [i for i in islands if lone in i.op_ids]
    assert island.lone and island.compute_ids == [lone] and island.conversions >= 2


def test_advise_cli_prints_flags_and_writes_candidates(planted, tmp_path, capsys) -> None:
    out = tmp_path / "candidates.json"
    code = main(["advise", "--quant_model_path", str(planted), "--min-cosine", "0.999",
                 "--rounds", "3", "--json", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "qcore convert" in printed and "--op_ids_to_skip" in printed
    data = json.loads(out.read_text())
    assert data["best"]["meets_bound"] and len(data["candidates"]) >= 2


def test_the_best_is_the_fastest_within_the_bound_timed_beside_fp32(planted) -> None:
    advice = advise(planted, settings=AdviseSettings(min_cosine=0.999, rounds=3))
    best = advice.best
    assert best is not None and best.meets_bound
    assert advice.fp32_ms is not None and advice.all_int8_ms is not None
    assert advice.all_int8 is advice.candidates[0]
    assert advice.all_int8.latency_ms == advice.all_int8_ms  # the table shows the final run
    timed_within = [c for c in advice.candidates if c.meets_bound and c.latency_ms is not None]
    finalists = {(tuple(c.op_ids_to_skip), tuple(c.ops_to_quantize)): c.latency_ms
                 for c in timed_within}
    assert best.latency_ms == min(finalists.values())
    assert advice.faster_than_fp32 == (best.latency_ms < advice.fp32_ms)
    text = advice_text(advice)
    assert "x the speed of FP32 (" in text and "everything INT8" in text


def test_flags_never_skip_ids_of_an_op_type_left_out(planted) -> None:
    types = {n.id: n.op_type for n in convert(planted).decisions}
    convs = [i for i, t in types.items() if t == "Conv"]
    base = ConvertConfig(["Conv", "Gemm"], convs[:2])
    advice = advise(planted, base, AdviseSettings(min_cosine=0.9999999, rounds=2,
                                                  max_steps=1, candidates=1))
    for candidate in advice.candidates:
        kept = candidate.ops_to_quantize
        assert all(types[i] in kept for i in candidate.op_ids_to_skip), candidate
