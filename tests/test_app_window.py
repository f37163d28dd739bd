"""The window fits the screen it opens on: first-start size, dock sizes, scrolling bottom docks."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest

from app.headless import window_fit


@pytest.mark.parametrize("screen", [(1280, 720), (1067, 667), (1920, 1080), (2560, 1440)])
def test_the_first_size_fits_the_screen_and_leaves_the_graph_room(screen) -> None:
    width, height = window_fit.first_size(screen)
    assert width <= screen[0] and height <= screen[1]
    assert (width, height) == tuple(min(p, int(s * 0.94))
                                    for p, s in zip(window_fit.PREFERRED, screen, strict=True))
    docks = window_fit.dock_sizes(width, height)
    assert width - docks.passes - docks.properties >= 0.45 * width  # the graph's share
    assert height - docks.bottom - 90 >= 0.45 * height  # less menus, toolbar and status bar


def test_a_remembered_size_shrinks_to_a_smaller_screen() -> None:
    assert window_fit.fitted((1560, 980), (1280, 720)) == (1280, 720)
    assert window_fit.fitted((900, 600), (1280, 720)) == (900, 600)  # never grown


def test_the_window_opens_inside_the_screen(qtbot, make_window) -> None:
    window = make_window()
    area = window.screen().availableGeometry()
    qtbot.waitUntil(lambda: window.graph_panel.view.width() > 0)
    assert window.width() <= area.width() and window.height() <= area.height()
    shown = [d for d in window.docks if d.isVisible() and not d.visibleRegion().isEmpty()]
    assert len(shown) >= 3  # passes, properties and one of the bottom two at least
    for dock in shown:
        assert window.rect().contains(dock.geometry()), dock.objectName()
    assert window.graph_panel.view.width() >= 0.4 * window.width()


def test_the_bottom_docks_scroll_so_a_narrow_screen_holds_the_window(make_window) -> None:
    """Configuration and Results scroll instead of holding the window wide: it fits a 1600 px
    screen at 150 % (1002 logical px at 94 %)."""
    from PySide6.QtWidgets import QScrollArea

    window = make_window()
    config, results = window.docks[2:]
    assert isinstance(config.widget(), QScrollArea) and isinstance(results.widget(), QScrollArea)
    assert config.widget().widget() is window.config_panel
    assert window.minimumSizeHint().width() <= window_fit.first_size((1067, 667))[0]


@pytest.mark.parametrize("width", [460, 700, 1400])
def test_legend_labels_never_overlap(qtbot, width: int) -> None:
    from PySide6.QtWidgets import QLabel, QWidget

    from app.legend import LegendWidget, Swatch

    host = QWidget()  # the graph panel gives the legend its width, as here
    qtbot.addWidget(host)
    legend = LegendWidget(host)
    host.resize(width, 40)
    legend.setGeometry(0, 0, width, legend.sizeHint().height())
    host.show()
    qtbot.waitUntil(lambda: legend.width() == width and legend.layout().geometry().width() > 0)
    children = legend.findChildren(QLabel) + legend.findChildren(Swatch)
    shown = sorted((w.geometry() for w in children if w.isVisible()), key=lambda r: r.x())
    assert len(shown) >= 10  # the statuses at least
    for left, right in zip(shown, shown[1:], strict=False):
        assert left.right() < right.left(), "legend entries drawn over each other"
    assert all(w.isVisible() for w in legend.extras) == (width >= legend.full_width)
