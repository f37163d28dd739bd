"""Fold BatchNormalization into the Conv before it."""

from __future__ import annotations

import numpy as np

from qcore.ir import Node
from qcore.passes.base import Context, Fact, Pass, PassResult
from qcore.passes.util import absorb, single_consumer


class FoldBatchNorm(Pass):
    """Paddle ``conv_bn_fuse_pass``: W' = W * g/sqrt(v+eps), B' = (B - m) * g/sqrt(v+eps) + b."""

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
            g.initializers[b_name] = new_b
            conv.inputs = [conv.inputs[0], w_name, b_name]
            absorb(g, consumers, conv, bn)
            done.append(bn)
            folded += 1
        g.remove_nodes(done)
        return PassResult(modified=folded > 0, summary=f"folded {folded} BatchNormalization")
