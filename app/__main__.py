"""``quant-inspector [MODEL.onnx] [--config cfg.json]``: start the desktop app."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


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
    from PySide6.QtWidgets import QApplication

    from app.compat import guard_singletons
    from app.main_window import MainWindow
    from app.resources import icon, sample_model, style_sheet

    guard_singletons()
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("Quant Inspector")
    app.setOrganizationName("QuantInspector")
    app.setStyle("Fusion")
    app.setWindowIcon(icon("app"))
    app.setStyleSheet(style_sheet())
    window = MainWindow()
    window.show()
    model = Path(args.model) if args.model else (None if args.no_sample else sample_model())
    if model is not None:
        job = window.open_model(model)
        if args.config and job is not None:
            job.signals.result.connect(lambda _: window.load_config(args.config))
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
