"""The main window's docks and its size on the screen it opens on: the remembered geometry
shrunk to fit this screen, or first-start sizes (the arithmetic is ``headless.window_fit``)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QDockWidget, QFrame, QMainWindow, QScrollArea, QWidget

from app.headless import window_fit
from app.settings import AppSettings


def make_dock(window: QMainWindow, title: str, widget: QWidget,
              area: Qt.DockWidgetArea) -> QDockWidget:
    dock = QDockWidget(title, window)
    dock.setObjectName(f"dock_{title.lower()}")
    if area == Qt.DockWidgetArea.BottomDockWidgetArea:  # may shrink on a short screen
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(widget)
        widget = scroll
    dock.setWidget(widget)
    dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                     | QDockWidget.DockWidgetFeature.DockWidgetClosable
                     | QDockWidget.DockWidgetFeature.DockWidgetFloatable)
    window.addDockWidget(area, dock)
    return dock


def available(window: QWidget) -> tuple[int, int]:
    """The size of the screen area the window may use."""
    screen = window.screen() or QGuiApplication.primaryScreen()
    area = screen.availableGeometry()
    return area.width(), area.height()


def restore(window: QMainWindow, settings: AppSettings) -> bool:
    """Centre the window at its first-start size, then apply the remembered geometry (shrunk
    to this screen) and dock layout; False if there was no dock layout to restore."""
    space = available(window)
    width, height = window_fit.first_size(space)
    window.resize(width, height)
    window.move(max(0, (space[0] - width) // 2), max(0, (space[1] - height) // 2))
    geometry, state = settings.geometry(), settings.window_state()
    if geometry is not None:
        window.restoreGeometry(geometry)  # then shrunk if this screen is smaller
        window.resize(*window_fit.fitted((window.width(), window.height()), space))
    return state is not None and window.restoreState(state)


def default_dock_sizes(window: QMainWindow, docks: list[QDockWidget], config_width: int) -> None:
    """First start: docks sized to the window (passes, properties, configuration, results),
    the configuration at least ``config_width`` wide so its controls show in full."""
    config, results = docks[2:]
    sizes = window_fit.dock_sizes(window.width(), window.height())
    window.resizeDocks(docks[:2], [sizes.passes, sizes.properties], Qt.Orientation.Horizontal)
    window.resizeDocks([config], [sizes.bottom], Qt.Orientation.Vertical)
    wide = max(sizes.configuration, config_width)
    window.resizeDocks([config, results], [wide, window.width() - wide],
                       Qt.Orientation.Horizontal)
