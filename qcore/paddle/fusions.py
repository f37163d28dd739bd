"""The tensors whose recorded output scales Paddle's INT8 flow never applies.

``Quant2Int8OnednnPass`` gathers a scale for every variable (``out_threshold`` attributes,
``only_observer`` quantize_linear ops), then runs its FP32 fusions before it quantizes:
conv + batch_norm, conv + bias ``elementwise_add``, conv + activation, matmul / mul + bias,
matmul + activation. The variables inside a fused chain disappear with their scales, so a
Q/DQ pair there would quantize a tensor that no INT8 kernel ever sees (the pre-activation
output of a conv, measured on PP-OCR's direction classifier: cosine 0.9998 at the tensor,
0.98 at the softmax). ``fused_away`` names those variables so that the importer leaves
them unquantized.
"""

from __future__ import annotations

from qcore.paddle.program import Op, Program

CONV = frozenset({"conv2d", "depthwise_conv2d", "conv2d_transpose",
                  "depthwise_conv2d_transpose"})
LINEAR = frozenset({"mul", "matmul", "matmul_v2", "fc"})
# conv_activation_onednn_fuse_pass / matmul_activation_onednn_fuse_pass
ACTIVATIONS = frozenset({"relu", "relu6", "clip", "brelu", "leaky_relu", "hard_swish",
                         "hard_sigmoid", "swish", "silu", "gelu", "sigmoid", "tanh", "abs",
                         "sqrt", "mish"})
DEQUANTIZE = frozenset({"fake_dequantize_max_abs", "fake_channel_wise_dequantize_max_abs"})
MAIN_OUT = {"batch_norm": "Y", "quantize_linear": "Y", "dequantize_linear": "Y"}


def _out(op: Op) -> str | None:
    slot = MAIN_OUT.get(op.type) or ("Output" if op.type in CONV else "Out")
    return op.output(slot)


def _passes_through(op: Op) -> bool:
    """Ops that stand between a conv and its consumer without being a fusion boundary."""
    return op.type in DEQUANTIZE or bool(op.attr("only_observer", False))


def fused_away(program: Program) -> set[str]:
    """Outputs of conv / linear ops (and of the batch_norm / bias add fused into them) whose
    one reader, past dequantize and observer ops, is fused into them by Paddle."""
    readers: dict[str, list[Op]] = {}
    for op in program.ops:
        for names in op.inputs.values():
            for name in names:
                readers.setdefault(name, []).append(op)
    params = {name for name, var in program.vars.items() if var.persistable}
    chain, heads = _chains(program, params)
    found = set()
    for name in heads:
        reader = _reader(name, readers)
        if reader is None:
            continue
        bias = reader.type == "elementwise_add" and reader.input("Y") in params
        if reader.type in ACTIVATIONS or bias or (chain[name] and reader.type == "batch_norm"):
            found.add(name)
    return found


def _chains(program: Program, params: set[str]) -> tuple[dict[str, bool], list[str]]:
    """Variables inside a conv (True) or linear (False) chain, and those of them an op
    computes (not a pass-through)."""
    chain: dict[str, bool] = {}
    heads: list[str] = []
    for op in program.ops:
        out, x = _out(op), op.input("X")
        if out is None:
            continue
        if _passes_through(op) and x in chain:
            chain[out] = chain[x]
            continue
        if op.type in CONV or op.type in LINEAR:
            chain[out] = op.type in CONV
        elif op.type == "batch_norm" and chain.get(x or ""):
            chain[out] = True
        elif op.type == "elementwise_add" and x in chain and op.input("Y") in params:
            chain[out] = chain[x or ""]
        else:
            continue
        heads.append(out)
    return chain, heads


def _reader(name: str, readers: dict[str, list[Op]]) -> Op | None:
    """The one op that reads ``name``, looking past dequantize and observer ops."""
    for _ in range(8):
        users = readers.get(name, [])
        if len(users) != 1:
            return None
        user = users[0]
        if not _passes_through(user):
            return user
        nxt = _out(user)
        if nxt is None:
            return None
        name = nxt
    return None
