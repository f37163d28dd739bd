"""Time from launch to the splash, to the main window and to the first graph.

    python benchmarks/bench_startup.py [--runs 3] [--models sample,bert]

Starts the real app (``python -m app MODEL``) in a fresh process per run (offscreen unless
DISPLAY is set), reads the stamps it prints with QI_TRACE_STARTUP=1, and prints the median
of each figure per model. Acceptance (issue 16): something on screen in under 1.5 s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def model(kind: str) -> Path:
    if kind == "sample":
        return ROOT / "resources" / "samples" / "cnn_qdq.onnx"
    from bench_big_graphs import model_path

    return model_path(kind)


def one_run(path: Path, limit: float = 120) -> dict[str, float]:
    env = dict(os.environ, QI_TRACE_STARTUP="1")
    env.setdefault("QT_QPA_PLATFORM", "offscreen" if not env.get("DISPLAY") else "xcb")
    start = time.time()
    proc = subprocess.Popen([sys.executable, "-m", "app", str(path)], cwd=ROOT, env=env,
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    stamps: dict[str, float] = {}
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            if line.startswith("QI_STARTUP "):
                _, event, when = line.split()
                stamps.setdefault(event, float(when) - start)
            if "first_graph" in stamps or time.time() - start > limit:
                break
    finally:
        proc.kill()
        proc.wait()
    return stamps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--models", default="sample,bert")
    args = parser.parse_args()
    print(f"{'model':8} {'splash s':>9} {'window s':>9} {'first graph s':>14}  (median of "
          f"{args.runs} runs)")
    ok = True
    for kind in args.models.split(","):
        path = model(kind)
        runs = [one_run(path) for _ in range(args.runs)]
        med = {e: statistics.median(r.get(e, float("inf")) for r in runs)
               for e in ("splash", "window", "first_graph")}
        print(f"{kind:8} {med['splash']:9.2f} {med['window']:9.2f} {med['first_graph']:14.2f}")
        ok = ok and med["splash"] < 1.5
    print("PASS" if ok else "FAIL (nothing on screen within 1.5 s)")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
