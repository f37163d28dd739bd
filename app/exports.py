"""Saving things: INT8 / FP32 models, snapshots (.dot/.svg/.png/.pdf), configs, results and
their Model Explorer node data.

Each function takes the main window, asks for a path when none is given, and does the work
in a worker when it may take a while. Outputs are written atomically by qcore.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtWidgets import QFileDialog

from app.headless import child_calls
from qcore import render
from qcore.config import ConvertConfig
from qcore.dot import snapshot_title, to_dot, write_debug_snapshots
from qcore.files import write_bytes_atomic

if TYPE_CHECKING:
    from app.main_window import MainWindow

SNAPSHOT_FILTERS = "SVG image (*.svg);;PNG image (*.png);;PDF (*.pdf);;Graphviz DOT (*.dot)"
MODEL_FILTER = "ONNX model (*.onnx)"
CONFIG_FILTER = "Config JSON (*.json)"


def _ask_save(window: MainWindow, title: str, name: str, filters: str) -> Path | None:
    folder = Path(window.settings.last_folder())
    path, _ = QFileDialog.getSaveFileName(window, title, str(folder / name), filters)
    if not path:
        return None
    window.settings.remember_folder(path)
    return Path(path)


def save_converted(window: MainWindow, kind: str, path: str | Path | None = None) -> None:
    """Save the INT8 (``kind="int8"``) or clean FP32 model; never over the input model."""
    session = window.session
    if session.result is None or session.path is None or not session.result.complete:
        window.status("Nothing to save: open and convert a model first")
        return
    stem = session.path.stem.removesuffix("_qdq")
    suffix = f"_{kind}" if kind == "fp32" else f"_int8_{session.result.config.target}"
    if path is None:
        path = _ask_save(window, f"Save {kind.upper()} model", f"{stem}{suffix}.onnx",
                         MODEL_FILTER)
    if path is None:
        return
    if kind == "int8" and window.config_panel.tune.isChecked():
        window.runs.save_tuned(Path(path))  # measured, with progress and Cancel
        return
    result, source = session.result, session.path

    def work(progress, cancelled) -> Path:
        written = child_calls.write_converted(source, result.config, {kind: path},
                                              cancelled=cancelled)
        return written[kind]

    window.start_side_job(work, f"save {kind}", f"Saved the {kind.upper()} model to {{}}")


def export_snapshot(window: MainWindow, path: str | Path | None = None) -> None:
    snap = window.graph_panel.snapshot()
    if snap is None:
        window.status("Nothing to export: open a model first")
        return
    if path is None:
        path = _ask_save(window, "Export pass", f"{snap.stem}.svg", SNAPSHOT_FILTERS)
    if path is None:
        return
    path = Path(path)
    if not path.suffix:
        path = path.with_suffix(".svg")
    text = to_dot(snap.graph, title=snapshot_title(snap))

    def work(progress, cancelled) -> Path:
        return render.export(text, path)

    window.start_side_job(work, "export", "Exported the snapshot to {}")


def export_all(window: MainWindow, folder: str | Path | None = None) -> None:
    snaps = window.session.snapshots
    if not snaps:
        window.status("Nothing to export: open a model first")
        return
    if folder is None:
        folder = QFileDialog.getExistingDirectory(window, "Export all passes as .dot",
                                                  window.settings.last_folder())
        if not folder:
            return
        window.settings.remember_folder(folder)

    def work(progress, cancelled) -> Path:
        write_debug_snapshots(snaps, folder)
        return Path(folder)

    window.start_side_job(work, "export all", f"Wrote {len(snaps)} .dot files to {{}}")


def save_config(window: MainWindow, path: str | Path | None = None) -> None:
    if path is None:
        stem = window.session.path.stem if window.session.path else "quant"
        path = _ask_save(window, "Save config", f"{stem}_config.json", CONFIG_FILTER)
    if path is None:
        return
    try:
        window.session.config().save(path)
    except (OSError, ValueError) as exc:
        window.show_error("Cannot save the config", str(exc))
        return
    window.log(f"Saved the config to {path}", "ok")


def load_config(window: MainWindow, path: str | Path | None = None) -> None:
    if path is None:
        path, _ = QFileDialog.getOpenFileName(window, "Load config",
                                              window.settings.last_folder(), CONFIG_FILTER)
        if not path:
            return
        window.settings.remember_folder(path)
    try:
        config = ConvertConfig.load(path)
    except (OSError, ValueError) as exc:
        window.show_error("Cannot load the config", f"{path}: {exc}")
        return
    window.session.set_config(config)
    window.log(f"Loaded the config from {path}: {config.to_json()}")


def export_results(window: MainWindow, path: str | Path | None = None) -> None:
    report = window.results.report
    if report is None:
        window.status("No benchmark results yet: run Benchmark (Ctrl+B) first")
        return
    if path is None:
        stem = window.session.path.stem if window.session.path else "bench"
        path = _ask_save(window, "Export results", f"{stem}_bench.json",
                         "JSON (*.json);;CSV (*.csv)")
    if path is None:
        return
    path = Path(path)
    text = report.to_csv() if path.suffix.lower() == ".csv" else report.to_json()

    def work(progress, cancelled) -> Path:
        return write_bytes_atomic(path, text.encode("utf-8"))

    window.start_side_job(work, "export results", "Exported the results to {}")


def export_node_data(window: MainWindow, folder: str | Path | None = None) -> None:
    """The last benchmark's per-op time and precision (and per-tensor SQNR) as Model Explorer
    node-data JSON files (``qcore.bench.nodedata``), one per metric, into ``folder``."""
    from qcore.bench.nodedata import node_data_files

    report = window.results.report
    files = node_data_files(report) if report is not None and report.per_op else {}
    if not files:
        window.status("No per-op results yet: tick 'Per op' and run Benchmark (Ctrl+B)")
        return
    if folder is None:
        folder = QFileDialog.getExistingDirectory(window, "Export node data (one JSON file "
                                                  "per metric)", window.settings.last_folder())
        if not folder:
            return
        window.settings.remember_folder(folder)
    target = Path(folder)

    def work(progress, cancelled) -> Path:
        target.mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            text = json.dumps(data, indent=2, allow_nan=False) + "\n"
            write_bytes_atomic(target / name, text.encode("utf-8"))
        return target

    window.start_side_job(work, "export node data",
                          f"Wrote {len(files)} node-data files (Model Explorer) to {{}}")
