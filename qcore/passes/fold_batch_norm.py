"""Fold BatchNormalization into the Conv before it."""

from __future__ import annotations

import numpy as np

from qcore.ir import Graph, Node, QParams
from qcore.passes.base import Context, Fact, Pass, PassResult
from qcore.passes.util import absorb, single_consumer


def _scale_source_ints(g: Graph, weight: str, folded: str, factor: np.ndarray) -> None:
    """W' = W * factor is the source's int8 weight with each output channel's scale times
    |factor| (and the sign in the integers): record that, so the INT8 Conv computes with the
    source's integers instead of a new quantization of W'. Only for symmetric int8 weights,
    per tensor or per output channel, and nonzero factors."""
    params, ints = g.weight_qparams.get(weight), g.weight_ints.get(weight)
    if params is None or ints is None or params.dtype != np.int8 or \
            np.any(params.zero_point != 0) or np.any(factor == 0) or ints.ndim < 2:
        return
    if params.per_channel and (params.axis is None or params.axis % ints.ndim != 0):
        return
    sign = np.sign(factor).reshape(-1, *([1] * (ints.ndim - 1)))
    if np.any((sign < 0) & (ints == -128)):
        return  # -(-128) is not an int8
    scale = (np.broadcast_to(params.scale, factor.shape) * np.abs(factor)).astype(np.float32)
    g.weight_qparams[folded] = QParams(scale, np.zeros(scale.shape, np.int8), 0)
    g.weight_ints[folded] = (ints.astype(np.int16) * sign).astype(np.int8)


class FoldBatchNorm(Pass):
    """Paddle ``conv_bn_fuse_pass``: W' = W * g/sqrt(v+eps), B' = (B - m) * g/sqrt(v+eps) + b.
    The source's int8 weight stays: its scales take the factor (``_scale_source_ints``)."""

    name = "fold_batch_norm"
    requires = frozenset({Fact.FLOAT_WEIGHTS})

    def apply(self, ctx: Context) -> PassResult:
        g = ctx.graph
        folded = 0
        consumers = g.consumers()
        done: list[Node] = []  # the ops merged into others, removed once at the end
        for conv in list(g.nodes):
            if conv.op_type != "Conv" or conv.domain or conv.inputs[1] not in g.initializers:
                continue
            bn = single_consumer(g, consumers, conv.outputs[0])
            if bn is None or bn.op_type != "BatchNormalization" or len(bn.outputs) > 1:
                continue
            if conv.outputs[0] in g.act_qparams or g.source_quantized(bn, conv.outputs[0]):
                continue  # the source rounds the Conv output before the BN (NNCF, PicoDet)
            if not all(name in g.initializers for name in bn.inputs[1:5]):
                continue
            if len(conv.inputs) > 2 and conv.inputs[2] and conv.inputs[2] not in g.initializers:
                continue
            gamma, beta, mean, var = (g.initializers[n].astype(np.float64) for n in bn.inputs[1:5])
            factor = gamma / np.sqrt(var + bn.attrs.get("epsilon", 1e-5))
            weight = g.initializers[conv.inputs[1]].astype(np.float64)
            has_bias = len(conv.inputs) > 2 and bool(conv.inputs[2])
            bias = g.initializers[conv.inputs[2]].astype(np.float64) if has_bias else 0.0
            new_w = (weight * factor.reshape(-1, *([1] * (weight.ndim - 1)))).astype(np.float32)
            new_b = ((bias - mean) * factor + beta).astype(np.float32)
            w_name = g.unique_name(f"{conv.inputs[1]}_bn")
            b_name = g.unique_name(f"{bn.outputs[0]}_bias")
            g.initializers[w_name] = new_w
            _scale_source_ints(g, conv.inputs[1], w_name, factor)
            g.initializers[b_name] = new_b
            conv.inputs = [conv.inputs[0], w_name, b_name]
            absorb(g, consumers, conv, bn)
            done.append(bn)
            folded += 1
        g.remove_nodes(done)
        return PassResult(modified=folded > 0, summary=f"folded {folded} BatchNormalization")
