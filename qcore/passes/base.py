"""Pass infrastructure: a pass is a small class with a ``name`` and ``apply``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from qcore.config import ConvertConfig
from qcore.ir import Graph


@dataclass
class PassResult:
    modified: bool
    summary: str = ""


@dataclass
class Context:
    """What every pass sees: the graph it rewrites and the user's configuration."""

    graph: Graph
    config: ConvertConfig = field(default_factory=ConvertConfig)


class Pass:
    """Base class. Subclasses set ``name`` and implement ``apply``."""

    name: str = "pass"

    def apply(self, ctx: Context) -> PassResult:
        raise NotImplementedError


class PassError(RuntimeError):
    """A pass failed; the message names the pass."""


SnapshotHook = Callable[[int, Pass, Context, PassResult], None]
CancelCheck = Callable[[], bool]


class Cancelled(RuntimeError):
    """The caller asked to stop between two passes."""


class PassManager:
    """Runs an explicit list of passes, calling one hook after each pass."""

    def __init__(self, passes: Sequence[Pass]) -> None:
        self.passes = list(passes)

    def run(
        self,
        ctx: Context,
        hook: SnapshotHook | None = None,
        cancelled: CancelCheck | None = None,
    ) -> list[PassResult]:
        results = []
        for index, p in enumerate(self.passes):
            if cancelled is not None and cancelled():
                raise Cancelled(f"cancelled before pass {p.name}")
            try:
                result = p.apply(ctx)
            except Exception as exc:
                raise PassError(f"pass {index:02d} {p.name} failed: {exc}") from exc
            results.append(result)
            if hook is not None:
                hook(index, p, ctx, result)
        return results
