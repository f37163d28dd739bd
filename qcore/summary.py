"""Human-readable summaries of a model and of a conversion."""

from __future__ import annotations

from collections import Counter

from qcore.convert import ConversionResult
from qcore.ir import Graph
from qcore.loader import quantization_summary


def decisions(result: ConversionResult) -> list[dict[str, object]]:
    """One row per op after fusion: id, type, name, INT8 or FP32, and the reason."""
    return [
        {
            "id": node.id,
            "op_type": node.op_type,
            "name": node.name,
            "fused": list(node.fused),
            "int8": node.status == "int8",
            "reason": node.reason,
        }
        for node in result.decisions
    ]


def conversion_text(result: ConversionResult) -> str:
    """The summary `qcore convert` prints: counts, then every FP32 op with its reason."""
    rows = decisions(result)
    int8 = [r for r in rows if r["int8"]]
    lines = [
        f"{len(int8)} of {len(rows)} ops run in INT8 "
        f"({', '.join(f'{t} {n}' for t, n in Counter(r['op_type'] for r in int8).most_common())})",
        f"INT8 model: {_hist(result.int8)}",
    ]
    fp32 = [r for r in rows if not r["int8"]]
    if fp32:
        lines.append("ops kept in FP32:")
        width = max(len(f"{r['op_type']}({r['id']})") for r in fp32)
        for r in fp32:
            label = printable(f"{r['op_type']}({r['id']})")
            lines.append(f"  {label:<{width}}  {printable(str(r['reason']))}")
    lines.append(f"converted in {result.seconds:.2f} s")
    return "\n".join(lines)


def model_text(graph: Graph, show_ids: bool = True) -> str:
    """What `qcore info` prints: op histogram, quantization found, and the op ids."""
    q = quantization_summary(graph)
    lines = [
        f"graph {printable(graph.name)!r}: {len(graph.nodes)} ops, "
        f"{len(graph.initializers)} initializers",
        f"inputs:  {', '.join(_tensor_text(graph, n) for n in graph.input_names)}",
        f"outputs: {', '.join(_tensor_text(graph, n) for n in graph.output_names)}",
        "opsets:  " + ", ".join(f"{d or 'ai.onnx'} {v}" for d, v in sorted(graph.opsets.items())),
        f"quantization: {q['QuantizeLinear']} QuantizeLinear, {q['DequantizeLinear']} "
        f"DequantizeLinear ({q['weight_dq']} on weights, {q['activation_dq']} on activations)",
        f"ops: {_hist(graph)}",
    ]
    if not q["QuantizeLinear"] and not q["DequantizeLinear"]:
        lines.append("no QDQ quantization found: this is not a quant model")
    if show_ids:
        lines.append("op ids (use them with --op_ids_to_skip):")
        for node in graph.nodes:
            lines.append(f"  {printable(node.label):<28} {printable(node.name)}")
    return "\n".join(lines)


def printable(text: str) -> str:
    """``text`` with control characters escaped, so names from a file cannot forge lines or
    send terminal escape codes."""
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode()
                   for ch in text)


def _hist(graph: Graph) -> str:
    return ", ".join(f"{printable(k)} {v}" for k, v in graph.op_histogram().items())


def _tensor_text(graph: Graph, name: str) -> str:
    shape = graph.shape(name)
    dims = "x".join(str(d) if d is not None else "?" for d in shape) if shape else "?"
    return printable(f"{name}[{dims}]")
