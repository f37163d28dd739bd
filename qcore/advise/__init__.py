"""The quantization advisor: which ops to keep FP32, by measured accuracy and speed.

    from qcore.advise import AdviseSettings, advise
    advice = advise("model_qdq.onnx", settings=AdviseSettings(min_cosine=0.999))
    advice.flags()   # "--op_ids_to_skip 12,40" for `qcore convert`
"""

from __future__ import annotations

from qcore.advise.islands import Island, find_islands
from qcore.advise.profile import op_times
from qcore.advise.search import (
    Advice,
    AdviseSettings,
    Candidate,
    MeasuredPair,
    Sensitivity,
    TunedStart,
    advise,
    keep_float,
    rank_sensitive,
)

__all__ = ["Advice", "AdviseSettings", "Candidate", "Island", "MeasuredPair", "Sensitivity",
           "TunedStart", "advise", "find_islands", "keep_float", "op_times", "rank_sensitive"]
