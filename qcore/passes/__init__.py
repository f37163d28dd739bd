"""The default pass pipeline, in the order of Paddle's ``Quant2Int8OnednnPass``."""

from __future__ import annotations

from qcore.passes.activation_signedness import ActivationSignedness
from qcore.passes.base import Context, Pass, PassManager, PassResult
from qcore.passes.cleanup import Cleanup
from qcore.passes.compute_weight_scales import ComputeWeightScales
from qcore.passes.dequantize_weights import DequantizeWeights
from qcore.passes.fold_batch_norm import FoldBatchNorm
from qcore.passes.fuse_activation import FuseActivation
from qcore.passes.fuse_hardswish import FuseHardSwish
from qcore.passes.fuse_matmul_bias import FuseMatMulBias
from qcore.passes.gather_scales import GatherScales
from qcore.passes.propagate_scales import PropagateScales
from qcore.passes.quantize import Quantize
from qcore.passes.quantize_placement import QuantizePlacement
from qcore.passes.remove_fake_ops import RemoveFakeOps
from qcore.passes.remove_identity import RemoveIdentity
from qcore.passes.squash import Squash


def fp32_passes() -> list[Pass]:
    """From the quant model to the clean, fused FP32 graph with every scale known."""
    return [
        GatherScales(),
        RemoveFakeOps(),
        DequantizeWeights(),
        RemoveIdentity(),
        FuseHardSwish(),
        FoldBatchNorm(),
        FuseMatMulBias(),
        FuseActivation(),
        ComputeWeightScales(),
        ActivationSignedness(),
        PropagateScales(),
    ]


def int8_passes() -> list[Pass]:
    """From the FP32 graph to the INT8 graph."""
    return [QuantizePlacement(), Quantize(), Squash(), Cleanup()]


def default_passes() -> list[Pass]:
    return fp32_passes() + int8_passes()


__all__ = ["Context", "Pass", "PassManager", "PassResult", "default_passes", "fp32_passes",
           "int8_passes"]
