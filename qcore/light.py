"""Conversion results without their weights: small enough to send between processes.

A viewer needs every snapshot's ops, tensors, shapes and scales, but not the weights, which
are most of the bytes (about 500 MB across BERT-base's snapshots). ``lighten`` replaces every
array above ``KEEP_ELEMENTS`` by a stub that unpickles as a read-only, zero-strided array of
the same shape and dtype (one element of memory), and marks the graphs ``light``.
``export_model`` refuses a light graph, so zeros can never be saved by mistake.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from qcore.ir import Graph

if TYPE_CHECKING:
    from qcore.convert import ConversionResult

KEEP_ELEMENTS = 4096  # scales, zero points, biases and small constants stay real


def _placeholder(shape: tuple[int, ...], dtype: str) -> np.ndarray:
    return np.broadcast_to(np.zeros((), dtype=np.dtype(dtype)), shape)


class _Stub:
    """Pickles as ``_placeholder(shape, dtype)``."""

    def __init__(self, array: np.ndarray) -> None:
        self.shape, self.dtype = tuple(array.shape), array.dtype.str

    def __reduce__(self) -> tuple[Callable[[tuple[int, ...], str], np.ndarray],
                                  tuple[tuple[int, ...], str]]:
        return (_placeholder, (self.shape, self.dtype))


def _stubbed(table: dict[str, np.ndarray], stubs: dict[int, _Stub]) -> dict[str, np.ndarray]:
    """``table`` with its big arrays replaced by stubs, which become arrays only when
    unpickled: a light graph is for sending to another process, not for computing."""
    out: dict[str, np.ndarray | _Stub] = {}
    for name, array in table.items():
        if isinstance(array, np.ndarray) and array.size > KEEP_ELEMENTS:
            out[name] = stubs.setdefault(id(array), _Stub(array))
        else:
            out[name] = array
    return out  # type: ignore[return-value]  # the stubs unpickle as arrays


def light_graph(graph: Graph, stubs: dict[int, _Stub] | None = None) -> Graph:
    """A shallow copy of ``graph`` whose big arrays are stubs (pass ``stubs`` to share them
    between snapshots)."""
    stubs = {} if stubs is None else stubs
    light = copy.copy(graph)
    light.initializers = _stubbed(graph.initializers, stubs)
    light.weight_ints = _stubbed(graph.weight_ints, stubs)
    light.light = True
    return light


def lighten(result: ConversionResult) -> ConversionResult:
    """``result`` with every graph made light (the original is not changed)."""
    stubs: dict[int, _Stub] = {}
    light = copy.copy(result)
    light.snapshots = [copy.copy(s) for s in result.snapshots]
    for snapshot in light.snapshots:
        snapshot.graph = light_graph(snapshot.graph, stubs)
    light.int8 = light_graph(result.int8, stubs)
    light.fp32 = light_graph(result.fp32, stubs)
    return light
