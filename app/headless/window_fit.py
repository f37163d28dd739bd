"""Window and dock sizes that fit the screen the window opens on (Qt-free arithmetic)."""

from __future__ import annotations

from dataclasses import dataclass

PREFERRED = (1560, 980)  # on a big screen
SCREEN_SHARE = 0.94  # of the available area, on smaller screens


@dataclass(frozen=True)
class DockSizes:
    """First-start sizes: the side docks' widths, the bottom row's height and the
    configuration's share of it."""

    passes: int
    properties: int
    bottom: int
    configuration: int


def first_size(available: tuple[int, int]) -> tuple[int, int]:
    """The window's first-start size on a screen with ``available`` logical pixels."""
    return tuple(min(p, int(a * SCREEN_SHARE)) for p, a in zip(PREFERRED, available,
                                                                strict=True))  # type: ignore[return-value]


def fitted(size: tuple[int, int], available: tuple[int, int]) -> tuple[int, int]:
    """A remembered ``size`` shrunk to the screen it now opens on (never grown)."""
    return tuple(min(s, a) for s, a in zip(size, available, strict=True))  # type: ignore[return-value]


def dock_sizes(width: int, height: int) -> DockSizes:
    """Docks that leave the graph about half the width and half the height."""
    bottom = max(170, min(300, int(height * 0.3)))
    return DockSizes(passes=max(170, min(290, int(width * 0.17))),
                     properties=max(200, min(360, int(width * 0.22))),
                     bottom=bottom, configuration=int(width * 0.36))
