"""Menus, toolbar and keyboard shortcuts. Every action calls a method of the main window."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QMenu, QToolBar

from app.resources import icon

if TYPE_CHECKING:
    from app.main_window import MainWindow

# name: (text, shortcut(s), icon, tooltip, slot name on the window)
SPECS: dict[str, tuple[str, tuple[str, ...], str, str, str]] = {
    "open": ("&Open model\u2026", ("Ctrl+O",), "open", "Open a QDQ .onnx model", "open_dialog"),
    "save_int8": ("Save &INT8 model\u2026", ("Ctrl+S",), "save", "Save the converted INT8 model",
                  "save_int8"),
    "save_fp32": ("Save &FP32 model\u2026", ("Ctrl+Shift+S",), "", "Save the clean FP32 model",
                  "save_fp32"),
    "load_config": ("&Load config\u2026", ("Ctrl+Shift+O",), "load",
                    "Load ops_to_quantize / op_ids_to_skip / target (the CLI's --config file)",
                    "load_config"),
    "save_config": ("Save &config\u2026", ("Ctrl+Alt+S",), "save",
                    "Save the configuration as JSON (qcore convert --config)", "save_config"),
    "export_snapshot": ("&Export this pass\u2026", ("Ctrl+E",), "export",
                        "Save the shown snapshot as .svg, .png, .pdf or .dot", "export_snapshot"),
    "export_all": ("Export &all passes (.dot)\u2026", ("Ctrl+Shift+E",), "",
                   "Write quant_orig.dot and int8_NN_<pass>.dot for every pass", "export_all"),
    "export_results": ("Export &results\u2026", ("Ctrl+Alt+E",), "",
                       "Save the benchmark results as JSON or CSV", "export_results"),
    "export_node_data": ("Export &node data (Model Explorer)\u2026", (), "",
                         "Save the per-op time and precision (and per-tensor SQNR) of the last "
                         "benchmark as Model Explorer node-data JSON files", "export_node_data"),
    "quit": ("&Quit", ("Ctrl+Q",), "", "Quit", "close"),
    "find": ("&Find op\u2026", ("Ctrl+F",), "find", "Find an op by id, name or type",
             "graph_panel.search.activate"),
    "toggle_skip": ("&Skip / quantize selected op", ("S",), "skip",
                    "Add the selected op to op_ids_to_skip, or remove it", "toggle_skip"),
    "copy_id": ("&Copy op id", ("Ctrl+Shift+C",), "", "Copy the selected op's id", "copy_id"),
    "zoom_in": ("Zoom &in", ("Ctrl+=", "Ctrl++"), "zoom_in", "Zoom in", "graph_panel.view.zoom_in"),
    "zoom_out": ("Zoom &out", ("Ctrl+-",), "zoom_out", "Zoom out", "graph_panel.view.zoom_out"),
    "fit": ("&Fit to window", ("Ctrl+0",), "fit", "Show the whole graph", "graph_panel.view.fit"),
    "actual": ("Actual si&ze", ("Ctrl+1",), "", "Zoom to 100%", "graph_panel.view.actual_size"),
    "prev_pass": ("&Previous pass", ("Alt+Up",), "up", "Show the previous snapshot",
                  "pass_list.previous"),
    "next_pass": ("&Next pass", ("Alt+Down",), "down", "Show the next snapshot", "pass_list.next"),
    "changes": ("Highlight &changes", ("Ctrl+H",), "", "Outline the ops the pass created or "
                "rewrote", "set_show_changes"),
    "sqnr": ("SQNR &badges", ("Ctrl+Shift+Q",), "", "Show each op's worst output SQNR from "
             "the last benchmark", "set_show_sqnr"),
    "colour_status": ("Conversion &status", (), "", "Colour the ops by their INT8 / FP32 "
                      "decision", "set_colour"),
    "colour_ran": ("What &ran (INT8 / float)", (), "", "Colour the ops by the precision the "
                   "engine ran them with (needs a benchmark with 'Per op')", "set_colour"),
    "colour_time": ("&Time per op", (), "", "Colour the ops by their time, white to red "
                    "(needs a benchmark with 'Per op')", "set_colour"),
    "legend": ("&Legend", ("Ctrl+Shift+L",), "", "Show the colour legend", "set_legend"),
    "focus": ("&Neighbourhood of selection", ("Ctrl+Shift+N",), "focus",
              "Lay out only the ops near the selection (fast for big graphs)", "set_focus"),
    "diff": ("Only what the pass c&hanged", ("Ctrl+Shift+D",), "",
             "Draw only the ops the shown pass added or rewrote, with their neighbours",
             "set_diff"),
    "convert": ("&Convert", ("Ctrl+R",), "convert",
                "Run the pass pipeline with this configuration", "runs.convert"),
    "bench": ("&Benchmark", ("Ctrl+B",), "bench",
              "Time FP32, QDQ and INT8 models and compare accuracy", "runs.benchmark"),
    "advise": ("Run &advisor", ("Ctrl+Shift+A",), "",
               "Search which ops to keep FP32 for the fastest model within the accuracy bound "
               "(Results \u203a Advisor)", "runs.run_advisor"),
    "verify": ("&Verify passes", ("Ctrl+Shift+V",), "",
               "Run the source and every snapshot on the same inputs; the pass list shows each "
               "pass's drift and the first op that drifts (qcore verify)", "runs.verify"),
    "cancel": ("C&ancel", ("Ctrl+.",), "cancel", "Stop the running job", "cancel_job"),
    "about": ("&About Quant Inspector", (), "", "Versions and license", "about"),
}
CHECKABLE = {"changes": True, "sqnr": True, "legend": True, "focus": False, "diff": False,
             "colour_status": True, "colour_ran": False, "colour_time": False}
COLOUR_ACTIONS = {"colour_status": "status", "colour_ran": "ran", "colour_time": "time"}


def _resolve(window: MainWindow, path: str):
    """``"graph_panel.view.fit"`` -> that bound method, looked up when the action fires."""
    target: object = window
    for part in path.split("."):
        target = getattr(target, part)
    return target


class Actions:
    def __init__(self, window: MainWindow) -> None:
        self.window = window
        self.all: dict[str, QAction] = {}
        for name, (text, keys, icon_name, tip, slot) in SPECS.items():
            action = QAction(text, window)
            if keys:
                action.setShortcuts([QKeySequence(k) for k in keys])
                native = QKeySequence.SequenceFormat.NativeText
                tip += f"  ({QKeySequence(keys[0]).toString(native)})"
            action.setToolTip(tip)
            action.setStatusTip(tip)
            if icon_name:
                action.setIcon(icon(icon_name))
            if name in COLOUR_ACTIONS:  # one of three: the window gets the mode ticked
                action.setCheckable(True)
                action.setChecked(CHECKABLE[name])
                action.toggled.connect(lambda on, m=COLOUR_ACTIONS[name]:
                                       window.set_colour(m) if on else None)
            elif name in CHECKABLE:
                action.setCheckable(True)
                action.setChecked(CHECKABLE[name])
                action.toggled.connect(lambda on, s=slot: _resolve(window, s)(on))
            else:
                action.triggered.connect(lambda _=False, s=slot: _resolve(window, s)())
            action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
            self.all[name] = action
            window.addAction(action)
        self.recent_menu = QMenu("Open &recent", window)
        self.colour_menu = QMenu("C&olour ops by", window)
        group = QActionGroup(window)
        group.setExclusive(True)
        for name in COLOUR_ACTIONS:
            group.addAction(self.all[name])
            self.colour_menu.addAction(self.all[name])

    def __getitem__(self, name: str) -> QAction:
        return self.all[name]

    def build_menus(self, docks: list[QAction]) -> None:
        bar = self.window.menuBar()
        groups = {
            "&File": ["open", self.recent_menu, "-", "save_int8", "save_fp32", "-",
                      "load_config", "save_config", "-", "export_snapshot", "export_all",
                      "export_results", "export_node_data", "-", "quit"],
            "&Edit": ["find", "toggle_skip", "copy_id"],
            "&View": ["zoom_in", "zoom_out", "fit", "actual", "-", "prev_pass", "next_pass",
                      "-", "changes", "sqnr", self.colour_menu, "legend", "focus", "diff", "-",
                      *docks],
            "&Run": ["convert", "bench", "advise", "verify", "cancel"],
            "&Help": ["about"],
        }
        for title, entries in groups.items():
            menu = bar.addMenu(title)
            for entry in entries:
                if entry == "-":
                    menu.addSeparator()
                elif isinstance(entry, QMenu):
                    menu.addMenu(entry)
                elif isinstance(entry, QAction):
                    menu.addAction(entry)
                else:
                    menu.addAction(self.all[entry])

    def build_toolbar(self) -> QToolBar:
        bar = QToolBar("Main toolbar", self.window)
        bar.setObjectName("mainToolbar")
        bar.setIconSize(QSize(20, 20))
        bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        for name in ("open", "save_int8", "|", "convert", "bench", "cancel", "|",
                     "prev_pass", "next_pass", "|", "zoom_out", "zoom_in", "fit", "focus", "|",
                     "export_snapshot"):
            if name == "|":
                bar.addSeparator()
            else:
                bar.addAction(self.all[name])
        for name in ("prev_pass", "next_pass", "zoom_out", "zoom_in", "fit", "focus"):
            bar.widgetForAction(self.all[name]).setToolButtonStyle(
                Qt.ToolButtonStyle.ToolButtonIconOnly)
        return bar

    def set_recent(self, files: list[str]) -> None:
        menu = self.recent_menu
        menu.clear()
        for i, path in enumerate(files):
            action = menu.addAction(recent_label(path, i))
            action.setToolTip(path)
            action.setStatusTip(path)
            action.triggered.connect(lambda _=False, p=path: self.window.open_model(p))
        if files:
            menu.addSeparator()
            menu.addAction("Clear list", self.window.clear_recent)
        menu.setEnabled(bool(files))


def recent_label(path: str, index: int, folder_chars: int = 60) -> str:
    """``&1  model.onnx   ~/models/resnet``: the name, then its folder (home as ``~``, long
    folders shortened in the middle), so files of the same name can be told apart."""
    file = Path(path)
    folder = str(file.parent)
    home = str(Path.home())
    if folder == home or folder.startswith(home + "/"):
        folder = "~" + folder[len(home):]
    if len(folder) > folder_chars:
        keep = folder_chars - 1
        folder = folder[:keep // 3] + "\u2026" + folder[-(keep - keep // 3):]
    name = file.name.replace("&", "&&")
    prefix = f"&{index + 1}  " if index < 9 else ""
    return f"{prefix}{name}   {folder.replace('&', '&&')}"
