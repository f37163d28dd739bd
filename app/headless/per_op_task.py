"""What ran, per op id (no Qt): qcore's per-op profile of the INT8 model on each engine.

Each engine profiles the INT8 model written for it: ONNX Runtime the ``int8`` model (QLinear
ops), OpenVINO the ``int8-onednn`` one (squashed QDQ), each checked against the decisions of
its own conversion (the target changes some of them), so an op skipped by id that still ran
INT8, or an op made INT8 that ran in float, is flagged.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.headless import child_calls

if TYPE_CHECKING:
    from qcore.bench.per_op import Decided, PerOpResult
    from qcore.bench.progress import Progress
    from qcore.convert import ConversionResult

#: engine -> the INT8 model (benchmark role) it profiles
ENGINE_MODEL = {"onnxruntime": "int8", "openvino": "int8-onednn"}
TARGET_OF = {"int8": "onnxruntime", "int8-onednn": "onednn"}
ProgressFn = Callable[[int, int, str], None]


def per_op_roles(engines: Sequence[str]) -> list[str]:
    """The INT8 models the chosen engines profile, in engine order."""
    return list(dict.fromkeys(ENGINE_MODEL[e] for e in engines if e in ENGINE_MODEL))


def units(engines: Sequence[str], runs: int) -> int:
    """Progress units of the profile: one per profiled run."""
    return len([e for e in engines if e in ENGINE_MODEL]) * runs


def decisions_for(source: Path, result: ConversionResult, roles: Sequence[str],
                  cancelled: Callable[[], bool] | None = None
                  ) -> dict[str, dict[int, Decided]]:
    """Role -> op id -> decision: the shown conversion's for its own target, a conversion
    with the same ops and skips for the other target (in the conversion process)."""
    from qcore.bench.per_op import decisions_by_id

    out: dict[str, dict[int, Decided]] = {}
    for role in roles:
        target = TARGET_OF[role]
        if target == result.config.target:
            out[role] = decisions_by_id(result.decisions)
        else:
            other = child_calls.convert_for_view(
                source, dataclasses.replace(result.config, target=target), cancelled=cancelled)
            out[role] = decisions_by_id(other.decisions)
    return out


def profile_engines(paths: Mapping[str, Path], engines: Sequence[str], settings: Any,
                    decisions: Mapping[str, Mapping[int, Decided]], tracker: Progress,
                    cpu_flags: Sequence[str], done: list[PerOpResult]) -> list[PerOpResult]:
    """Profile ``paths[ENGINE_MODEL[engine]]`` on every engine at the first thread count;
    each result is appended to ``done`` as it comes (a Cancel keeps those)."""
    from qcore.bench.engines import EngineUnavailable, get_engine
    from qcore.bench.per_op import PerOpResult, run_per_op
    from qcore.bench.runner import prepare_inputs
    from qcore.status import RunStatus

    roles = {e: ENGINE_MODEL[e] for e in engines if e in ENGINE_MODEL}
    feeds = prepare_inputs({r: paths[r] for r in roles.values()}, settings).feeds
    threads, runs = int(settings.threads[0]), int(settings.per_op_runs)
    for name, role in roles.items():
        tracker.check()
        try:
            engine = get_engine(name)
        except EngineUnavailable as exc:
            done.append(PerOpResult(role, str(paths[role]), name, threads,
                                    status=RunStatus.SKIPPED, reason=str(exc)))
            tracker.advance(runs)
            continue
        done.extend(run_per_op({role: paths[role]}, [engine], feeds, threads, runs,
                               decisions, tracker, cpu_flags))
    return done


class TwoPhases:
    """One progress bar over the benchmark and the per-op profile after it: the benchmark
    reports its own total, the profile counts on from there."""

    def __init__(self, progress: ProgressFn | None, extra: int) -> None:
        self.progress, self.extra, self.first_total = progress, extra, 0

    def first(self, done: int, total: int, message: str) -> None:
        self.first_total = total
        if self.progress is not None:
            self.progress(done, total + self.extra, message)

    def second(self, done: int, total: int, message: str) -> None:
        if self.progress is not None:
            self.progress(self.first_total + done, self.first_total + total, message)
