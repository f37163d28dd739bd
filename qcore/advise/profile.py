"""Per-op time of a model on ONNX Runtime, from its profiler, keyed by qcore op id."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort

from qcore.temporaries import temporary_folder

_OP_ID = re.compile(r"#(\d+)")


def op_times(model: str | Path, feeds: Sequence[dict[str, np.ndarray]], runs: int = 10,
             threads: int = 1) -> dict[int, float]:
    """Mean kernel time in ms per run of every op, keyed by the op id in its node name
    (``name#id``, as qcore writes them; ONNX Runtime keeps it through its own rewrites)."""
    with temporary_folder("qcore-profile-") as tmp:
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.enable_profiling = True
        opts.profile_file_prefix = os.path.join(tmp, "profile")
        session = ort.InferenceSession(str(model), opts, providers=["CPUExecutionProvider"])
        for i in range(runs + 1):  # the first run is warm-up, but profiled too
            session.run(None, feeds[i % len(feeds)])
        events = json.loads(Path(session.end_profiling()).read_text())
    totals: dict[int, float] = {}
    for event in events:
        name = str(event.get("name", ""))
        if event.get("cat") != "Node" or not name.endswith("_kernel_time"):
            continue
        match = _OP_ID.search(name)
        if match:
            op_id = int(match.group(1))
            totals[op_id] = totals.get(op_id, 0.0) + float(event.get("dur", 0)) / 1e3
    return {op_id: ms / (runs + 1) for op_id, ms in sorted(totals.items())}
