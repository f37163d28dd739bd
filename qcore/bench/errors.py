"""Exceptions of the benchmark package."""

from __future__ import annotations

from typing import Any

from qcore.passes.base import Cancelled


class EngineUnavailable(RuntimeError):
    """The engine's package cannot be imported (or its device is missing)."""


class NotRunnable(ValueError):
    """A model the engine cannot run at all (for example com.microsoft ops on OpenVINO)."""


class BenchCancelled(Cancelled):
    """``cancelled()`` returned True; ``partial`` holds what was measured so far (or None)."""

    def __init__(self, message: str = "benchmark cancelled", partial: Any = None) -> None:
        super().__init__(message)
        self.partial = partial
