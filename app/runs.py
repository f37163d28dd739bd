"""The jobs the Run menu starts from the main window: open and convert a model (the passes run
in the conversion process; a big model is drawn as loaded meanwhile), benchmark, advise and
verify. One runs at a time, with progress and Cancel in the status bar (``RunBar``); the
results go to the session and the panels."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtWidgets import QMessageBox

from app.headless import child_calls
from app.headless.view_state import holds
from app.workers import Job
from qcore.config import ConvertConfig
from qcore.convert import REASON_NOT_QUANT, ConversionResult
from qcore.summary import conversion_text, model_text
from qcore.verify import VerifyReport
from qcore.verify_command import report_text, verdict

if TYPE_CHECKING:
    from app.headless.child_calls import TuneRun
    from app.main_window import MainWindow

PREVIEW_ABOVE_OPS = 400  # models this big are drawn as loaded while their passes run


class Runs:
    def __init__(self, window: MainWindow) -> None:
        self.window, self.session, self.runner = window, window.session, window.runner
        self.results, self.pass_list = window.results, window.pass_list
        self.previewed: Path | None = None  # the model whose preview is shown, if any
        self.verify_report: VerifyReport | None = None  # the last `Verify passes` result

    def open_model(self, path: str | Path) -> Job | None:
        """Load and convert ``path`` in a worker with the default config (target kept)."""
        path = Path(path)
        config = ConvertConfig(target=self.session.target)
        return self._start("open", path, config)

    # ---- convert ------------------------------------------------------------------------
    def convert(self) -> Job | None:
        if self.session.path is None:
            self.status("Open a model first (Ctrl+O)")
            return None
        if self.window.config_panel.tune.isChecked():
            return self._start_tuned(self.session.path, self.session.config(), None)
        return self._start("convert", self.session.path, self.session.config())

    def save_tuned(self, out: Path) -> Job | None:
        """Save INT8 model with "Tune for speed": the tuned conversion, cached beside ``out``."""
        config = self.session.applied_config()
        if self.session.path is None or config is None:
            return None
        return self._start_tuned(self.session.path, config, out)

    def _start_tuned(self, path: Path, config: ConvertConfig, out: Path | None) -> Job | None:
        if self.runner.busy:
            self.status("Wait for the running job to finish, or cancel it")
            return None
        from qcore.tune import NATURAL_ENGINE, TuneSettings

        panel = self.window.config_panel
        engine = panel.tune_engine_name()
        settings = TuneSettings(engine=engine or None, budget_s=float(panel.tune_budget.value()))
        inputs = self.session.inputs
        job = Job(child_calls.tuned_convert, path, config, out, settings, inputs,
                  name="convert" if out is None else "save int8")
        job.signals.result.connect(lambda value: self._tuned(path, config, *value))
        where = (f"measurements cached beside {out.name}" if out is not None else
                 "Convert keeps no measurements: Save INT8 model caches them beside the file")
        self.log(f"Tuning {path.name} for speed on this machine (may take minutes; {where}): "
                 f"ops_to_quantize={config.ops_to_quantize or 'all'}, "
                 f"op_ids_to_skip={config.op_ids_to_skip}, target={config.target}; "
                 f"engine {engine or NATURAL_ENGINE[config.target]}, budget "
                 f"{settings.budget_s:g} s, inputs: {inputs.label()}")
        return self.runner.run(job, f"Tuning {path.name}")

    def _tuned(self, path: Path, base: ConvertConfig, result: ConversionResult,
               run: TuneRun, written: Path | None) -> None:
        from qcore.tune.text import tune_text  # the tuner's imports load on first use

        tuned = run.tuned
        self._converted("convert", path, result, base, run)
        self.log(tune_text(tuned, result))
        ids = tuned.tuned_ids
        cache = ("none (Convert keeps no measurements)" if tuned.cache_path is None else
                 f"used, nothing timed ({tuned.cache_path})" if tuned.timed == 0 else
                 f"{tuned.cached} measurements reused, {tuned.timed} new saved in "
                 f"{tuned.cache_path}")
        self.log(f"Tuning kept {len(ids)} op{'' if len(ids) == 1 else 's'} FP32"
                 f"{' (' + ', '.join(map(str, ids)) + ')' if ids else ''}; tune cache: {cache}",
                 "ok")
        if written is not None:
            self.log(f"Saved the tuned INT8 model to {written}", "ok")
            self.status(f"Saved the tuned INT8 model to {written}")

    def _start(self, kind: str, path: Path, config: ConvertConfig) -> Job | None:
        if self.runner.busy:
            self.status("Wait for the running job to finish, or cancel it")
            return None
        job = Job(child_calls.convert_for_view, path, config, name=kind)
        if kind == "open":  # a big model is drawn as loaded while its passes run
            job.kwargs.update(partial=job.signals.partial.emit,
                              preview_above_ops=PREVIEW_ABOVE_OPS)
            job.signals.partial.connect(lambda preview: self._preview(path, preview))
            job.signals.finished.connect(self._open_finished)
        verb = "Opening" if kind == "open" else "Converting"
        job.signals.result.connect(lambda result: self._converted(kind, path, result))
        self.log(f"{verb} {path.name}: ops_to_quantize={config.ops_to_quantize or 'all'}, "
                 f"op_ids_to_skip={config.op_ids_to_skip}, target={config.target}")
        return self.runner.run(job, f"{verb} {path.name}")

    def _new_model(self, path: Path) -> None:
        """Forget the previous model's results and config (its views and selection go when
        the session announces the new model)."""
        self.results.clear()
        self.session.set_config(ConvertConfig(target=self.session.target))
        self.window.actions_.set_recent(self.window.settings.add_recent(path))
        self.window.setWindowTitle(f"{path.name} \u2014 Quant Inspector")

    def _preview(self, path: Path, preview: ConversionResult) -> None:
        """The loaded model, shown while its passes still run (``preview.complete`` False)."""
        self._new_model(path)
        self.previewed = path
        self.session.set_result(path, preview, True)
        self.pass_list.set_snapshots(preview.snapshots, 0)
        ops = len(preview.snapshots[0].graph.nodes)
        self.window.model_label.setText(f"{path.name} \u00b7 {ops} ops \u00b7 converting\u2026")

    def _open_finished(self) -> None:
        """An open that showed a preview but failed or was cancelled: say the graph shown
        is the model as loaded, not converted."""
        if self.previewed is None:
            return
        name, self.previewed = self.previewed.name, None
        self.window.model_label.setText(f"{name} \u00b7 not converted")
        self.log("The passes did not finish: the graph shown is the model as loaded. "
                 "Press Convert (Ctrl+R) to try again.", "warn")

    def _converted(self, kind: str, path: Path, result: ConversionResult,
                   tuned_base: ConvertConfig | None = None, tune: TuneRun | None = None) -> None:
        new_model = kind == "open"
        previewed = new_model and self.previewed == path
        self.previewed = None
        keep = self.pass_list.currentRow()
        if new_model:
            if not previewed:
                self._new_model(path)
            self.log(model_text(result.snapshots[0].graph, show_ids=False))
        self.session.set_result(path, result, new_model and not previewed, previewed,
                                tuned_base, tune)
        self.results.set_decisions(result)
        self.pass_list.set_snapshots(result.snapshots, 0 if new_model else keep)
        for warning in result.snapshots[0].graph.warnings:
            self.log(warning, "warn")
        if not result.quantized:
            self.log(REASON_NOT_QUANT + ": showing its graph. Quantize it first (for example "
                     "with onnxruntime.quantization.quantize_static, QDQ format).", "warn")
        else:
            self.log(conversion_text(result), "ok")
        ops = len(result.snapshots[0].graph.nodes)
        self.window.model_label.setText(f"{path.name} \u00b7 {ops} ops"
                                        f" \u00b7 {len(result.quantized_ids)} INT8")
        self.status(f"{'Opened' if new_model else 'Converted'} {path.name} in "
                    f"{result.seconds:.2f} s")
        self.window.refresh_config()
        if not result.quantized:  # last: the window shows the new model behind the box
            QMessageBox.information(self.window, "Not a quant model", "This model has no "
                                    "quantization: its graph is shown, but there is nothing "
                                    "to convert. Quantize it first (QDQ format).")

    # ---- benchmark ----------------------------------------------------------------------
    def ready(self) -> bool:
        """A model is open and no job runs; otherwise say so in the status bar."""
        if self.session.result is None:
            self.status("Open a model first (Ctrl+O)")
            return False
        if not self.session.result.complete:
            self.status("The model is not converted yet: press Convert (Ctrl+R)")
            return False
        if self.runner.busy:
            self.status("Wait for the running job to finish, or cancel it")
            return False
        return True

    def benchmark(self) -> Job | None:
        if not self.ready():
            return None
        job = self.results.make_bench_job()
        if job is None:
            return None
        job.signals.result.connect(self.results.show_report)
        self.results.bench.show_running()
        job.signals.finished.connect(self.results.bench.show_stopped)
        self.results.show_tab("Benchmark")
        self.log(f"Benchmark started ({self.results.settings_text()})")
        if self.session.is_dirty():
            self.log("The configuration changed since the last conversion: this benchmark "
                     "times the last converted models; press Convert first to time the new "
                     "choice.", "warn")
        return self.runner.run(job, "Benchmarking")

    # ---- advisor ------------------------------------------------------------------------
    def run_advisor(self) -> Job | None:
        if not self.ready():
            return None
        job = self.results.advisor.make_job()
        if job is None:
            return None
        self.results.show_tab("Advisor")
        return self.runner.run(job, "Advising")

    # ---- verify -------------------------------------------------------------------------
    def verify(self) -> Job | None:
        """Run ``qcore verify`` on the converted model (generated inputs) in the background."""
        if not self.ready() or self.session.path is None:
            return None
        result = self.session.result
        job = Job(child_calls.verify, self.session.path, result.config, name="verify")
        job.signals.result.connect(self._verified)
        self.log(f"Verifying every pass of {self.session.path.name} (target "
                 f"{result.config.target}, generated inputs)")
        return self.runner.run(job, "Verifying")

    def _verified(self, report: VerifyReport) -> None:
        self.verify_report = report
        self.pass_list.set_verify(report)
        self.log(report_text(report).rstrip(), "ok" if report.ok else "warn")
        self.status(verdict(report))

    def show_drifting_op(self, row: int, op_id: int) -> None:
        """Show the drifting pass (or the one before it, for an op the pass removed) with the
        op selected."""
        snaps = self.session.snapshots
        graph = snaps[row].graph
        if not holds(graph, op_id) and row > 0:
            row -= 1
        self.pass_list.setCurrentRow(row)
        self.window.graph_panel.select_op(op_id)
        self.window.update_properties()

    def log(self, text: str, level: str = "info") -> None:
        self.window.log(text, level)

    def status(self, text: str) -> None:
        self.window.status(text)
