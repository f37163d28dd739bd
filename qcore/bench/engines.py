"""Inference engines behind one small interface: load a model, run it, say what ran.

Two engines exist:

- ``onnxruntime``: ONNX Runtime's CPU execution provider (:mod:`qcore.bench.ort_engine`).
- ``openvino``: OpenVINO's CPU plugin, which is built on oneDNN; this is the project's
  "oneDNN" engine (:mod:`qcore.bench.openvino_engine`). It reads ONNX QDQ models directly
  but not ONNX Runtime's ``com.microsoft`` QOperator ops, so its INT8 model is the one
  written with ``--target onednn``.

An engine whose Python package is missing raises :class:`EngineUnavailable` from
:func:`get_engine`; nothing is ever faked.
"""

from __future__ import annotations

import abc
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx

from qcore.bench.errors import EngineUnavailable, NotRunnable

__all__ = ["ENGINES", "Engine", "EngineProfile", "EngineUnavailable", "Kernel", "NotRunnable",
           "Session", "WhatRan", "get_engine", "parse_engines"]

ENGINES = ("onnxruntime", "openvino")

Feeds = Mapping[str, np.ndarray]
Tick = Callable[[], object]


@dataclass
class WhatRan:
    """Which kernels a model ran with on one engine: the answer to "why is INT8 slow?".

    Attributes:
        summary: One line, e.g. "8 of 9 Convolution/FullyConnected/MatMul layers ran INT8".
        int8_ops: Compute ops / layers that ran on integer kernels (None: unknown).
        compute_ops: All compute ops / layers (conv, matmul, gemm, fully connected).
        histogram: Kernel name (OpenVINO primitiveType) or op type (ONNX Runtime) -> count.
        float_ops: Compute ops that stayed floating point, as "OpType name" strings.
        notes: Anything else worth knowing (how it was measured, caveats).
    """

    summary: str
    int8_ops: int | None = None
    compute_ops: int | None = None
    histogram: dict[str, int] = field(default_factory=dict)
    float_ops: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class Kernel:
    """One op / layer as the engine executed it, before mapping to qcore op ids.

    Attributes:
        name: The engine's name (ONNX Runtime node name, OpenVINO layer name).
        op_type: The engine's op / layer type (``QLinearConv``, ``Convolution``).
        kernel: The implementation (ONNX Runtime: op and domain; OpenVINO: primitiveType).
        precision: ``int8``, ``float``, ``q/dq`` (a quantize / dequantize) or ``other``.
        time_ms: Mean time per inference (0 for a layer the engine did not execute).
        originals: Names of the model's ops it ran (OpenVINO ``originalLayersNames``; for
            ONNX Runtime, the node's own name, which its optimizer may have changed).
        inputs: Tensor names it read (ONNX Runtime's optimized graph; may be empty).
        outputs: Tensor names it wrote.
        detail: The engine's own words about it (precisions, provider).
        executed: False for a layer the engine planned but never ran (folded into its
            neighbours or done at compile time).
    """

    name: str
    op_type: str
    kernel: str
    precision: str
    time_ms: float
    originals: list[str] = field(default_factory=list)
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    detail: str = ""
    executed: bool = True


@dataclass
class EngineProfile:
    """What :meth:`Engine.profile` measured: every kernel, over ``runs`` inferences."""

    kernels: list[Kernel]
    runs: int
    outputs: dict[str, np.ndarray] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


class Session(abc.ABC):
    """One model loaded on one engine with a fixed thread count."""

    #: Graph input names the session expects.
    input_names: list[str]

    @abc.abstractmethod
    def run(self, feeds: Feeds) -> dict[str, np.ndarray]:
        """Run one inference; returns output name -> array."""

    @abc.abstractmethod
    def what_ran(self) -> WhatRan:
        """Which kernels ran (call after at least one :meth:`run`)."""

    def close(self) -> None:  # noqa: B027 - an optional hook
        """Release the engine's resources (optional)."""


class Engine(abc.ABC):
    """An inference engine. Subclasses set :attr:`name` and implement the methods."""

    name: str = ""

    @abc.abstractmethod
    def version(self) -> str:
        """The engine's version string."""

    def settings(self) -> dict[str, str]:
        """Engine settings recorded with the results (beyond threads)."""
        return {}

    def notes(self) -> list[str]:
        """Caveats shown with the results (e.g. a pinned precision)."""
        return []

    def check(self, path: Path) -> str | None:
        """Why the model cannot run on this engine, or None when it can be tried."""
        return None

    @abc.abstractmethod
    def load(self, path: Path, threads: int, shapes: Mapping[str, tuple[int, ...]]) -> Session:
        """Load and compile ``path`` for ``threads`` threads and the given input shapes."""

    def profile(self, path: Path, threads: int, feeds: Sequence[Feeds], runs: int,
                folder: Path, tick: Tick | None = None) -> EngineProfile:
        """Run ``path`` once unmeasured, then ``runs`` times with the engine's per-op
        profiler on; ``folder`` is a scratch folder for the engine's files, ``tick`` is
        called before every run (it may raise to cancel).

        Raises:
            NotRunnable: the engine cannot run the model, or has no per-op profiler.
        """
        raise NotRunnable(f"{self.name} has no per-op profiler")


def get_engine(name: str) -> Engine:
    """The engine called ``name``.

    Raises:
        ValueError: ``name`` is not one of :data:`ENGINES`.
        EngineUnavailable: the engine's package cannot be imported.
    """
    if name == "onnxruntime":
        from qcore.bench.ort_engine import OrtEngine

        return OrtEngine()
    if name == "openvino":
        from qcore.bench.openvino_engine import OpenVinoEngine

        return OpenVinoEngine()
    raise ValueError(f"unknown engine {name!r}; choose from {', '.join(ENGINES)}")


def parse_engines(text: str) -> list[str]:
    """``"onnxruntime,openvino"`` -> names, checked; ``onednn`` is an alias of openvino."""
    names = []
    for raw in text.split(","):
        name = raw.strip().lower()
        if not name:
            continue
        name = {"onednn": "openvino", "ort": "onnxruntime", "ov": "openvino"}.get(name, name)
        if name not in ENGINES:
            raise ValueError(f"unknown engine {raw.strip()!r}; choose from {', '.join(ENGINES)}")
        if name not in names:
            names.append(name)
    if not names:
        raise ValueError("no engine given")
    return names


def model_domains(path: Path) -> dict[str, list[str]]:
    """Non-default op domains used by the model's nodes -> sorted op types."""
    model = onnx.load(str(path), load_external_data=False)
    found: dict[str, set[str]] = {}
    for node in model.graph.node:
        if node.domain not in ("", "ai.onnx"):
            found.setdefault(node.domain, set()).add(node.op_type)
    return {domain: sorted(ops) for domain, ops in found.items()}


_ID = re.compile(r"#(\d+)")


def op_id_of(name: str) -> int | None:
    """The qcore op id in a node name like ``conv1#12`` (or ``conv1#12_token_3``)."""
    match = _ID.search(name)
    return int(match.group(1)) if match else None


def first_line(exc: BaseException, limit: int = 300) -> str:
    """A short, one-line form of an engine's (often multi-line) error message."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    useful = [ln for ln in lines if not ln.startswith(("Exception from", "Check 'false'"))]
    text = " ".join((useful or lines or [type(exc).__name__])[:3])
    return text if len(text) <= limit else text[: limit - 3] + "..."
