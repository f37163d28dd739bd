"""How big the graph's boxes are: text sizes, padding and the box that holds a label.

No Qt. Graphviz gets these sizes as fixed node sizes (``fastlayout.view_dot``) and the quick
layout uses the same ones, so a label drawn by the app fits the box Graphviz placed: the
window measures its real font once (:func:`use_metrics`); until then the widths of DejaVu
Sans (the widest common sans serif font) stand in. Tensor ellipses are sized so that every
line of the label lies inside the ellipse, not just inside its bounding box.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

OP_PX = 12.0  # op labels (the first line bold)
TENSOR_PX = 11.0  # tensor labels: at least ~10 px on screen at the starting zoom (0.9+)
BLOCK_PX = 12.0
OP_PAD_X, OP_PAD_Y = 9.0, 6.0  # room between an op's text and its border
TENSOR_PAD = 7.0
BLOCK_BAR = 22.0  # a collapsed block's INT8 bar below its text
SLACK = 1.04  # widths measured here may differ a little from the drawn ones (kerning)

_FIRST = 32  # the tables hold chr(32) .. chr(126)
# DejaVu Sans advance widths per px, regular and bold
_REGULAR = (
    0.318, 0.401, 0.46, 0.838, 0.636, 0.95, 0.78, 0.275, 0.39, 0.39, 0.5, 0.838, 0.318, 0.361,
    0.318, 0.337, *(0.636,) * 10, 0.337, 0.337, 0.838, 0.838, 0.838, 0.531, 1.0, 0.684,
    0.686, 0.698, 0.77, 0.632, 0.575, 0.775, 0.752, 0.295, 0.295, 0.656, 0.557, 0.863, 0.748,
    0.787, 0.603, 0.787, 0.695, 0.635, 0.611, 0.732, 0.684, 0.989, 0.685, 0.611, 0.685, 0.39,
    0.337, 0.39, 0.838, 0.5, 0.5, 0.613, 0.635, 0.55, 0.635, 0.615, 0.352, 0.635, 0.634,
    0.278, 0.278, 0.579, 0.278, 0.974, 0.634, 0.612, 0.635, 0.635, 0.411, 0.521, 0.392, 0.634,
    0.592, 0.818, 0.592, 0.592, 0.525, 0.636, 0.337, 0.636, 0.838)
_BOLD = (
    0.348, 0.456, 0.521, 0.838, 0.696, 1.002, 0.872, 0.306, 0.457, 0.457, 0.523, 0.838, 0.38,
    0.415, 0.38, 0.365, *(0.696,) * 10, 0.4, 0.4, 0.838, 0.838, 0.838, 0.58, 1.0, 0.774,
    0.762, 0.734, 0.83, 0.683, 0.683, 0.821, 0.837, 0.372, 0.372, 0.775, 0.637, 0.995, 0.837,
    0.85, 0.733, 0.85, 0.77, 0.72, 0.682, 0.812, 0.774, 1.103, 0.771, 0.724, 0.725, 0.457,
    0.365, 0.457, 0.838, 0.5, 0.5, 0.675, 0.716, 0.593, 0.716, 0.678, 0.435, 0.716, 0.712,
    0.343, 0.343, 0.665, 0.343, 1.042, 0.712, 0.687, 0.716, 0.716, 0.493, 0.595, 0.478, 0.712,
    0.652, 0.924, 0.645, 0.652, 0.582, 0.712, 0.365, 0.712, 0.838)


@dataclass(frozen=True)
class TextMetrics:
    """Advance widths per px of ``chr(32)`` .. ``chr(126)``, regular and bold, and the line
    height per px; other characters count as ``wide``."""

    regular: tuple[float, ...] = _REGULAR
    bold: tuple[float, ...] = _BOLD
    line: float = 1.164
    wide: float = 1.0

    def width(self, text: str, px: float, bold: bool = False) -> float:
        table = self.bold if bold else self.regular
        total = 0.0
        for ch in text:
            i = ord(ch) - _FIRST
            total += table[i] if 0 <= i < len(table) else self.wide
        return total * px * SLACK

    def line_height(self, px: float) -> float:
        return math.ceil(self.line * px)


_metrics = TextMetrics()


def use_metrics(metrics: TextMetrics) -> None:
    """The widths of the font the app really draws with (measured by the window once)."""
    global _metrics
    _metrics = metrics


def metrics() -> TextMetrics:
    return _metrics


def op_size(lines: Sequence[str]) -> tuple[float, float]:
    """An op's box: its lines at ``OP_PX`` (the first bold) with ``OP_PAD_X/Y`` around."""
    m = _metrics
    widest = max((m.width(t, OP_PX, i == 0) for i, t in enumerate(lines)), default=40.0)
    height = m.line_height(OP_PX) * max(len(lines), 1)
    return max(72.0, math.ceil(widest + 2 * OP_PAD_X)), max(32.0, height + 2 * OP_PAD_Y)


def ellipse_half_width(widths: Sequence[float], line_h: float, b: float) -> float:
    """The smallest half width ``a`` of an ellipse with half height ``b`` that holds lines
    of these ``widths``, stacked ``line_h`` apart around its centre."""
    top = -line_h * len(widths) / 2
    a = 0.0
    for i, w in enumerate(widths):
        far = max(abs(top + i * line_h), abs(top + (i + 1) * line_h))  # the line's far edge
        room = 1.0 - (far / b) ** 2
        a = max(a, w / 2 / math.sqrt(max(room, 1e-3)))
    return a


def tensor_size(lines: Sequence[str]) -> tuple[float, float]:
    """A tensor's ellipse: every line at ``TENSOR_PX`` inside it, ``TENSOR_PAD`` spare."""
    m = _metrics
    line_h = m.line_height(TENSOR_PX)
    widths = [m.width(t, TENSOR_PX) + TENSOR_PAD for t in lines] or [40.0]
    b = line_h * len(widths) / 2 * 1.45 + TENSOR_PAD / 2
    a = ellipse_half_width(widths, line_h, b)
    return max(64.0, math.ceil(2 * a)), max(30.0, math.ceil(2 * b))


def block_size(lines: Sequence[str]) -> tuple[float, float]:
    """A collapsed block: its lines at ``BLOCK_PX`` above the INT8 bar (the second line, its
    op count, gets the INT8 share appended when drawn)."""
    m = _metrics
    shown = [t + (" \u00b7 100% INT8" if i == 1 else "") for i, t in enumerate(lines)]
    widest = max((m.width(t, BLOCK_PX, i == 0) for i, t in enumerate(shown)), default=200.0)
    height = m.line_height(BLOCK_PX) * len(lines) + BLOCK_BAR + 2 * OP_PAD_Y
    return max(230.0, math.ceil(widest + 2 * OP_PAD_X + 8)), max(78.0, height)
