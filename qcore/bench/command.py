"""The ``qcore bench`` subcommand: arguments, on-the-fly conversion, progress, outputs.

``qcore bench --quant Q.onnx`` alone converts Q with qcore for both targets into a temporary
folder and measures fp32 (the optimized FP32 model of the conversion), qdq and the INT8
models; models given with ``--fp32`` / ``--int8`` / ``--int8-onednn`` are used as given.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

import onnx

from qcore.bench.engines import parse_engines
from qcore.bench.errors import BenchCancelled
from qcore.bench.inputs import parse_dims
from qcore.bench.nodedata import node_data_files, planned_files
from qcore.bench.per_op import Decided, decisions_by_id
from qcore.bench.report import BenchReport
from qcore.bench.runner import BenchSettings, run_benchmark
from qcore.bench.text_inputs import write_text_inputs
from qcore.config import ConvertConfig
from qcore.files import OutputSet, save_model, temporary_folder
from qcore.status import RunStatus

ROLES = ("fp32", "qdq", "int8", "int8-onednn")


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]
               ) -> argparse.ArgumentParser:
    """Add ``bench`` to the ``qcore`` subcommands."""
    p = sub.add_parser(
        "bench", help="latency + accuracy of FP32 / QDQ / INT8 on ONNX Runtime and OpenVINO",
        description="Measure FP32, the QDQ quant model and the INT8 models on ONNX Runtime and "
        "OpenVINO (oneDNN), interleaved, and show which kernels ran. With --quant alone, "
        "the INT8 and FP32 models are converted on the fly.")
    p.add_argument("--fp32", help="FP32 model (default with --quant: qcore's optimized FP32)")
    p.add_argument("--quant", help="the QDQ quant model")
    p.add_argument("--int8", help="INT8 model for ONNX Runtime (qcore convert --target "
                   "onnxruntime)")
    p.add_argument("--int8-onednn", dest="int8_onednn",
                   help="INT8 model for OpenVINO / oneDNN (qcore convert --target onednn)")
    p.add_argument("--engine", default="onnxruntime,openvino",
                   help="comma-separated: onnxruntime, openvino (alias onednn)")
    p.add_argument("--threads", default="1", help="comma-separated thread counts, e.g. 1,2")
    p.add_argument("--batch", type=int, default=1, help="batch size for dynamic batch dims")
    p.add_argument("--warmup", type=int, default=10, help="unmeasured runs per model")
    p.add_argument("--iters", type=int, default=100, help="measured runs per model")
    p.add_argument("--seconds", type=float, default=None,
                   help="time budget per model instead of --iters")
    p.add_argument("--inputs", help=".npy (one input) or .npz (arrays keyed by input name)")
    p.add_argument("--texts", metavar="TXT",
                   help="token inputs from a text file, one sentence a line (a tab splits a "
                   "sentence pair), through --tokenizer")
    p.add_argument("--tokenizer", metavar="FILE",
                   help="HuggingFace tokenizer.json or WordPiece vocab.txt for --texts")
    p.add_argument("--seq-length", dest="seq_length", type=int, default=None, metavar="N",
                   help="--texts: pad / truncate to N tokens where the model's length is "
                   "dynamic (default: the longest line)")
    p.add_argument("--dims", default="", help="dynamic dims, e.g. batch=1,seq=128")
    p.add_argument("--seed", type=int, default=0, help="seed of generated inputs")
    p.add_argument("--samples", type=int, default=8, help="generated feeds (for accuracy)")
    p.add_argument("--accuracy", action="store_true", help="compare outputs with the reference")
    p.add_argument("--per-tensor", dest="per_tensor", action="store_true",
                   help="per-tensor SQNR against the reference, worst first")
    p.add_argument("--per-op", dest="per_op", action="store_true",
                   help="what ran per op id on each engine: precision, kernel and time (the "
                   "engines' profilers, at the first thread count), flagging ops whose "
                   "precision contradicts the conversion")
    p.add_argument("--per-op-runs", dest="per_op_runs", type=int, default=10,
                   help="profiled runs per model and engine for --per-op")
    p.add_argument("--node-data", dest="node_data", metavar="DIR",
                   help="write Model Explorer node-data JSON files (per-op time and "
                   "precision, per-tensor SQNR) into DIR")
    p.add_argument("--ops_to_quantize", "--ops-to-quantize", dest="ops_to_quantize", default="",
                   help="with --quant conversion: op types to quantize")
    p.add_argument("--op_ids_to_skip", "--op-ids-to-skip", dest="op_ids_to_skip", default="",
                   help="with --quant conversion: op ids to keep FP32")
    p.add_argument("--json", help="write the report as JSON (schema in qcore/bench/report.py)")
    p.add_argument("--csv", help="write one CSV row per model, engine and thread count")
    p.add_argument("-f", "--force", action="store_true", help="replace existing --json/--csv")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    parser: argparse.ArgumentParser = p
    return parser


def _threads(text: str) -> list[int]:
    try:
        values = [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        values = []
    if not values or min(values) < 1:
        raise ValueError(f"--threads takes comma-separated integers >= 1, got {text!r}")
    return values


class TerminalProgress:
    """A one-line bar on a TTY; otherwise one plain line whenever the phase changes."""

    def __init__(self, stream: TextIO = sys.stderr, width: int = 28) -> None:
        self.stream, self.width = stream, width
        self.tty = stream.isatty()
        self.last_message = ""
        self.drawn = False

    def __call__(self, done: int, total: int, message: str) -> None:
        frac = done / total if total else 1.0
        if self.tty:
            fill = int(frac * self.width)
            line = f"\r[{'#' * fill}{'.' * (self.width - fill)}] {frac:4.0%} {message[:60]:<60}"
            self.stream.write(line)
            self.drawn = True
        elif message != self.last_message:
            self.stream.write(f"[{frac:4.0%}] {message}\n")
        self.last_message = message
        self.stream.flush()

    def close(self) -> None:
        if self.tty and self.drawn:
            self.stream.write("\r" + " " * (self.width + 70) + "\r")
            self.stream.flush()
        self.drawn = False


Converted = tuple[list[str], dict[str, dict[int, Decided]]]


def _convert_missing(args: argparse.Namespace, models: dict[str, str], engines: list[str],
                     folder: Path, say: TextIO) -> Converted:
    """Fill missing fp32 / int8 / int8-onednn by converting --quant; returns the notes and,
    per converted INT8 model, the conversion's decisions by op id."""
    from qcore.convert import convert

    wanted = {"fp32": "onnxruntime"} if "fp32" not in models else {}
    if "int8" not in models and "int8-onednn" not in models:
        wanted["int8"] = "onnxruntime"
        if "openvino" in engines:
            wanted["int8-onednn"] = "onednn"
    if not wanted:
        return [], {}
    start = time.perf_counter()
    results = {}
    for target in sorted(set(wanted.values())):
        config = ConvertConfig.from_flags(args.ops_to_quantize, args.op_ids_to_skip, target)
        results[target] = convert(args.quant, config)
    for role, target in wanted.items():
        result = results[target]
        model = result.fp32_model() if role == "fp32" else result.int8_model()
        path = folder / f"{role}.onnx"
        save_model(model, path)
        models[role] = str(path)
    say.write(f"converted {args.quant} in {time.perf_counter() - start:.1f} s: "
              f"{', '.join(wanted)}\n")
    decisions = {role: decisions_by_id(results[target].decisions)
                 for role, target in wanted.items() if role != "fp32"}
    return [f"{', '.join(wanted)} converted from {args.quant} by qcore (temporary files; "
            "keep them with qcore convert)"], decisions


@contextlib.contextmanager
def _ctrl_c_cancels() -> Iterator[threading.Event]:
    """Ctrl-C sets an event that the benchmark polls, so a partial report still prints; a
    second Ctrl-C interrupts at once."""
    event = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield event
        return
    def handler(*_: object) -> None:
        if event.is_set():  # a second Ctrl-C stops at once
            raise KeyboardInterrupt
        event.set()

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield event
    finally:
        signal.signal(signal.SIGINT, previous)


def _warnings(report: BenchReport) -> list[str]:
    """What makes the figures meaningless: infinite inputs, NaN accuracy."""
    found = [note.removeprefix("WARNING: ") for note in report.inputs.get("notes", [])
             if note.startswith("WARNING: ")]
    for result in report.accuracy or []:
        nan = [o.name for o in result.outputs if math.isnan(o.cosine_min)]
        if nan:
            found.append(f"{result.test} vs {result.reference} on {result.engine}: the cosine of "
                         f"{', '.join(nan)} is NaN (the outputs hold NaN or infinite values)")
    return found


def run(args: argparse.Namespace) -> int:
    """Run ``qcore bench``; exit code 0, or 2 for bad input (via ValueError / OSError)."""
    given = {"fp32": args.fp32, "qdq": args.quant, "int8": args.int8,
             "int8-onednn": args.int8_onednn}
    models = {role: path for role, path in given.items() if path}
    if not models:
        raise ValueError("give at least --quant Q.onnx (or --fp32 / --int8 / --int8-onednn)")
    for role, path in models.items():
        if not Path(path).is_file():
            raise ValueError(f"{path}: no such model file (--{role})")
        try:
            onnx.load(path, load_external_data=False)
        except Exception as exc:  # noqa: BLE001 - protobuf raises its own error types
            raise ValueError(f"{path}: not an ONNX model ({type(exc).__name__})") from None
    _check_texts(args)
    if args.node_data and not (args.per_op or args.per_tensor):
        raise ValueError("--node-data writes the --per-op and --per-tensor results: give one")
    with OutputSet(*models.values(), force=args.force) as outputs:
        for out in (args.json, args.csv):
            if out:
                outputs.plan(out)
        if args.node_data:
            folder = outputs.make_folder(args.node_data)
            for name in planned_files(ROLES, parse_engines(args.engine)) if args.per_op else []:
                outputs.plan(folder / name)
        return _run(args, models, outputs)


def _check_texts(args: argparse.Namespace) -> None:
    if bool(args.texts) != bool(args.tokenizer):
        raise ValueError("--texts and --tokenizer go together (a text file through a tokenizer)")
    if args.texts and args.inputs:
        raise ValueError("give --inputs or --texts, not both")
    if args.seq_length is not None and not args.texts:
        raise ValueError("--seq-length applies to --texts")


def _text_settings(args: argparse.Namespace, settings: BenchSettings, model: str,
                   folder: Path) -> BenchSettings:
    """``settings`` reading the ``--texts`` feeds, written as an .npz (which names its
    source) into ``folder``; unchanged without ``--texts``."""
    if not args.texts:
        return settings
    target = write_text_inputs(args.texts, args.tokenizer, model, folder / "texts.npz",
                               args.seq_length)
    return dataclasses.replace(settings, inputs=str(target))


def _settings(args: argparse.Namespace, engines: list[str]) -> BenchSettings:
    return BenchSettings(
        engines=engines, threads=_threads(args.threads), batch=args.batch, warmup=args.warmup,
        iters=args.iters, seconds=args.seconds, seed=args.seed, inputs=args.inputs,
        dims=parse_dims(args.dims), samples=args.samples, accuracy=args.accuracy,
        per_tensor=args.per_tensor, per_op=args.per_op, per_op_runs=args.per_op_runs)


def _measure(models: dict[str, str], settings: BenchSettings, quiet: bool,
             stop: threading.Event, decisions: dict[str, dict[int, Decided]]
             ) -> BenchReport | None:
    """The benchmark with a progress bar; None when cancelled (the partial report printed)."""
    progress = None if quiet else TerminalProgress()
    try:
        return run_benchmark(models, settings, progress, stop.is_set, decisions)
    except BenchCancelled as exc:
        if progress:
            progress.close()
        if exc.partial is not None:
            sys.stdout.write(exc.partial.text())
        print("qcore: error: cancelled", file=sys.stderr)
        return None
    finally:
        if progress:
            progress.close()


def _write(args: argparse.Namespace, report: BenchReport, outputs: OutputSet) -> None:
    """Stage --json / --csv / --node-data and commit them together."""
    texts = {args.json: report.to_json(), args.csv: report.to_csv()}
    for out, text in texts.items():
        if out:
            outputs.add_bytes(out, (text if text.endswith("\n") else text + "\n").encode())
    written = [out for out in (args.json, args.csv) if out]
    if args.node_data:
        files = node_data_files(report)
        for name, data in files.items():
            outputs.add_bytes(Path(args.node_data) / name, (json.dumps(data, indent=2,
                                                                        allow_nan=False)
                                                             + "\n").encode())
        if files:
            written.append(f"{args.node_data}/ ({len(files)} Model Explorer node-data files)")
    outputs.commit()
    for out in written:
        print(f"wrote {out}")


def _check(report: BenchReport) -> None:
    """Raise ValueError (exit code 2) when nothing could be measured."""
    if not any(e.available for e in report.engines):
        raise ValueError("no engine available: " + "; ".join(
            f"{e.name}: {e.reason}" for e in report.engines))
    if not any(r.status is RunStatus.OK for r in report.results):
        raise ValueError("no model could be measured; see the reasons above")
    if report.accuracy and not any(a.status is RunStatus.OK for a in report.accuracy):
        raise ValueError("no accuracy comparison could be made; see the reasons above")


def _run(args: argparse.Namespace, models: dict[str, str], outputs: OutputSet) -> int:
    """The benchmark itself; the reports are written through ``outputs``, all or none."""
    engines = parse_engines(args.engine)
    settings = _settings(args, engines)
    with temporary_folder("qcore_bench_") as tmp, _ctrl_c_cancels() as stop:
        settings = _text_settings(args, settings, next(iter(models.values())), Path(tmp))
        notes: list[str] = []
        decisions: dict[str, dict[int, Decided]] = {}
        if args.quant:
            notes, decisions = _convert_missing(args, models, engines, Path(tmp), sys.stderr)
        models = {role: models[role] for role in ROLES if role in models}
        report = _measure(models, settings, args.quiet, stop, decisions)
    if report is None:
        return 130
    report.notes[:0] = notes
    sys.stdout.write(report.text())
    for warning in _warnings(report):
        print(f"qcore: warning: {warning}", file=sys.stderr)
    _write(args, report, outputs)
    _check(report)
    return 0
