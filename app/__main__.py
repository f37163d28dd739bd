"""``quant-inspector [MODEL.onnx] [--config cfg.json]``: start the desktop app."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

NO_DISPLAY = (
    "quant-inspector: no display found (DISPLAY / WAYLAND_DISPLAY are not set).\n"
    "Run it in a desktop session, or on a headless machine under a virtual X server:\n"
    "  xvfb-run -a quant-inspector MODEL.onnx\n"
    "The command-line tool needs no display: qcore convert --help (or make convert)."
)


TRACE_ENV = "QI_TRACE_STARTUP"  # benchmarks/bench_startup.py reads these stamps


def trace(event: str) -> None:
    """With ``QI_TRACE_STARTUP`` set: ``QI_STARTUP <event> <unix time>`` on stderr."""
    if os.environ.get(TRACE_ENV):
        print(f"QI_STARTUP {event} {time.time():.4f}", file=sys.stderr, flush=True)


def has_display() -> bool:
    """False on a Linux machine with no X or Wayland display and no Qt platform chosen."""
    if not sys.platform.startswith("linux") or os.environ.get("QT_QPA_PLATFORM"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="quant-inspector",
        description="Inspect, convert and benchmark QDQ ONNX quant models pass by pass.")
    parser.add_argument("model", nargs="?", help="a QDQ .onnx model (default: the bundled "
                        "sample)")
    parser.add_argument("--config", help="a config JSON (ops_to_quantize, op_ids_to_skip, "
                        "target) to load after opening")
    parser.add_argument("--no-sample", action="store_true",
                        help="start empty instead of opening the bundled sample")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if not has_display():
        print(NO_DISPLAY, file=sys.stderr)
        return 2
    from PySide6.QtWidgets import QApplication

    from app.compat import guard_singletons
    from app.resources import icon, sample_model, style_sheet
    from app.splash import loading_splash

    guard_singletons()
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("Quant Inspector")
    app.setOrganizationName("QuantInspector")
    app.setStyle("Fusion")
    app.setWindowIcon(icon("app"))
    app.setStyleSheet(style_sheet())
    splash = loading_splash()  # on screen before the engines are imported
    app.processEvents()
    trace("splash")
    from app.main_window import MainWindow  # onnx, numpy, pyqtgraph: the slow imports

    window = MainWindow()
    window.show()
    splash.finish(window)
    trace("window")
    if os.environ.get(TRACE_ENV):
        window.graph_panel.snapshot_shown.connect(lambda: trace("first_graph"))
    model = Path(args.model) if args.model else (None if args.no_sample else sample_model())
    if model is not None:
        job = window.open_model(model)
        if args.config and job is not None:
            job.signals.result.connect(lambda _: window.load_config(args.config))
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
