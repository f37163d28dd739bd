"""Screenshots of the real window for the README, taken under a real X server.

    xvfb-run -a -s "-screen 0 1280x720x24" python docs/make_screenshots.py sample docs/x.png

One scenario per run (the scale factor and palette are fixed when Qt starts):
``sample`` (the bundled CNN at its placement pass), ``dark`` (the same in a dark palette),
``accuracy MODEL IMAGES`` (a benchmark on a folder of images, Accuracy tab), ``advisor MODEL``
(the advisor's result), ``advisor-tuned`` (Convert with Tune for speed, then the advisor
reusing it), ``first MODEL`` (a big model's first view), ``blocks MODEL [BLOCK ...]`` (the
collapsed-blocks view; the BLOCKs given expanded, in their frames), ``converted`` (the sample
converted with Conv 23 skipped, its last pass), ``perop [MODEL [ENGINE [SKIP_ID] [time]]]`` (a
benchmark with 'Per op': the What ran tab and the graph coloured by what ran, or by time;
default: the sample on ONNX Runtime with Conv 23 skipped).
Set QT_SCALE_FACTOR=1.5 for a 150 % screen.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from PySide6.QtCore import QSettings, Qt, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

SAMPLE = ROOT / "resources" / "samples" / "cnn_qdq.onnx"
LIMIT_MS = 600_000


def main() -> None:
    scenario, out, *rest = sys.argv[1:]
    app = QApplication([])
    app.setStyle("Fusion")
    if scenario == "dark":
        from test_app_palette import dark_palette

        app.setPalette(dark_palette())
    from app.resources import style_sheet

    app.setStyleSheet(style_sheet())
    from app.headless.input_source import InputSource
    from app.main_window import MainWindow
    from app.settings import AppSettings
    from qcore.config import ConvertConfig

    settings = AppSettings(QSettings(tempfile.mktemp(suffix=".ini"), QSettings.Format.IniFormat))
    window = MainWindow(settings)
    window.show()
    model = Path(rest[0]) if rest else SAMPLE
    steps: list = []

    def shoot() -> None:
        app.primaryScreen().grabWindow(0).save(out)
        print("saved", out)
        app.quit()

    def after(signal, action) -> None:
        """Run ``action`` once ``signal`` fires (then go on with the next step)."""
        def once(*_args: object) -> None:
            signal.disconnect(once)
            QTimer.singleShot(1500, action)
        signal.connect(once)

    def placement() -> None:
        names = [s.name for s in window.session.snapshots]
        window.pass_list.setCurrentRow(names.index("quantize_placement"))
        QTimer.singleShot(2500, shoot)

    def accuracy() -> None:
        bench = window.results.bench
        bench.engine_boxes["openvino"].setChecked(False)
        bench.model_boxes["int8-onednn"].setChecked(False)
        bench.iters.setValue(5)
        window.session.set_inputs(InputSource("images", rest[1], rest[2] if len(rest) > 2
                                              else "imagenet"))
        after(window.job_finished, lambda: (window.results.show_tab("Accuracy"),
                                            give_results_room(),
                                            QTimer.singleShot(1000, shoot)))
        window.runs.benchmark()

    def give_results_room() -> None:
        """As a user reading the accuracy would: Configuration and Properties closed, the
        Results dock taller, so the numbers and the SQNR table are in view at 1280x720."""
        passes, properties, config, results = window.docks
        config.hide()
        properties.hide()
        window.resizeDocks([results], [window.height() // 2], Qt.Orientation.Vertical)

    def advisor() -> None:
        window.results.advisor.rounds.setValue(3)
        after(window.job_finished, shoot)
        window.runs.run_advisor()

    def tuned_advisor() -> None:
        """Convert with Tune for speed (a 10 s budget), then the advisor reusing it."""
        window.config_panel.tune.setChecked(True)
        window.config_panel.tune_budget.setValue(10)
        after(window.job_finished, advisor)
        window.runs.convert()

    def when_laid_out(then=None) -> None:
        """Shoot (or ``then``) once Graphviz has laid the view out (polled: a screenshot,
        not a test)."""
        panel = window.graph_panel
        if panel.view_job is None and panel.view.items_ready():
            if then is not None:
                then()
                return
            if panel.view.frames:  # an expanded block: its frame, at a readable zoom
                rect = next(f for f in panel.view.frames.values() if not f.parent_key).rect
                port = panel.view.viewport().rect()
                scale = max(0.45, min(0.9, port.width() / (rect.width() + 60)))
                panel.view.set_scale(scale)
                panel.view.centerOn(rect.center().x(),
                                    rect.top() + port.height() / (2 * scale) - 30)
            elif panel.view.blocks:  # show the blocks, not the inputs at the top
                block = list(panel.view.blocks.values())[len(panel.view.blocks) // 3]
                panel.view.centerOn(block)
            QTimer.singleShot(800, shoot)
        else:
            QTimer.singleShot(500, lambda: when_laid_out(then))

    def blocks() -> None:
        """The collapsed blocks; with more arguments, those blocks expanded (framed)."""
        window.graph_panel.set_view_mode("blocks")
        expand = rest[1:]
        if expand:
            QTimer.singleShot(1000, lambda: when_laid_out(lambda: (
                window.graph_panel.state.expand(*expand),
                QTimer.singleShot(1000, when_laid_out))))
        else:
            QTimer.singleShot(1000, when_laid_out)

    engine = rest[1] if len(rest) > 1 else "onnxruntime"
    skip = [int(v) for v in rest[2:] if v.isdigit()] if len(rest) > 1 else [23]

    def per_op(next_step=None) -> None:
        """Convert with the skip (and the engine's target), benchmark with 'Per op'."""
        window.session.set_config(ConvertConfig(op_ids_to_skip=skip, target="onednn" if
                                                engine == "openvino" else "onnxruntime"))
        after(window.job_finished, next_step or per_op_bench)
        window.runs.convert()

    def last_pass() -> None:
        after(window.graph_panel.snapshot_shown, lambda: select(skip[0]))
        window.pass_list.setCurrentRow(len(window.session.snapshots) - 1)

    def per_op_bench() -> None:
        bench = window.results.bench
        for role, box in bench.model_boxes.items():
            box.setChecked(role in ("fp32", "int8", "int8-onednn"))
        for name, box in bench.engine_boxes.items():
            box.setChecked(name == engine)
        bench.iters.setValue(20)
        bench.per_op.setChecked(True)
        after(window.job_finished, per_op_view)
        window.runs.benchmark()

    def per_op_view() -> None:
        window.docks[2].hide()  # Configuration: the What ran table gets the room
        window.resizeDocks([window.docks[3]], [window.height() // 2], Qt.Orientation.Vertical)
        window.set_colour("time" if "time" in rest else "ran")
        window.results.show_tab("What ran")
        result = window.results.per_op.result
        flagged = [r.op_id for r in result.ops if r.flag] if result else []
        shown = flagged[0] if flagged else (skip[0] if skip else None)
        after(window.graph_panel.snapshot_shown, lambda: select(shown))
        names = [s.name for s in window.session.snapshots]
        window.pass_list.setCurrentRow(names.index("quantize_placement"))

    def select(op_id: int | None) -> None:
        """Select ``op_id``, and shoot once Graphviz's layout (not the quick one) is drawn."""
        if op_id is not None:
            window.graph_panel.select_op(op_id)
            window.update_properties()

        def centred() -> None:
            item = window.graph_panel.view.ops.get(op_id) if op_id is not None else None
            if item is not None:
                window.graph_panel.view.centre_on(item)
            QTimer.singleShot(800, shoot)

        QTimer.singleShot(1000, lambda: when_laid_out(centred))

    then = {"sample": placement, "dark": placement, "accuracy": accuracy, "advisor": advisor,
            "advisor-tuned": tuned_advisor,
            "first": when_laid_out, "blocks": blocks, "perop": per_op,
            "converted": lambda: per_op(last_pass)}[scenario]
    after(window.job_finished, then)
    window.open_model(model)
    QTimer.singleShot(LIMIT_MS, app.quit)
    steps.append(then)
    app.exec()


if __name__ == "__main__":
    main()
