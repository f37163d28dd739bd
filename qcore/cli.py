"""`qcore` command line: convert (Paddle save_quant_model.py flags), info, dot."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import warnings
from pathlib import Path
from typing import Any

from qcore.advise import command as advise_command
from qcore.bench import command as bench_command
from qcore.config import TARGETS, ConvertConfig
from qcore.convert import ConversionResult, NoQuantizationError, Snapshot, convert
from qcore.files import OutputError, OutputSet, committing
from qcore.loader import ModelError, load_graph
from qcore.paddle import command as paddle_command
from qcore.summary import conversion_text, model_text
from qcore.temporaries import remove_temporaries
from qcore.tune import apply_reasons, tune_text
from qcore.tune import command as tune_command
from qcore.verify_command import add_parser as add_verify_parser
from qcore.verify_command import run as cmd_verify


def _flag(parser: argparse.ArgumentParser, name: str, **kwargs: Any) -> None:
    """Accept Paddle's underscore spelling and the dash spelling of a flag."""
    dashed = name.replace("_", "-")
    names = [f"--{name}"] + ([f"--{dashed}"] if dashed != name else [])
    parser.add_argument(*names, dest=name, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="qcore",
        description="Convert QDQ ONNX quant models into INT8 models, pass by pass.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    conv = sub.add_parser("convert", help="quant model -> INT8 model (Paddle save_quant_model.py)")
    _flag(conv, "quant_model_path", required=True,
          help="the QDQ .onnx quant model, or a Paddle model folder / .pdmodel")
    _flag(conv, "int8_model_save_path", required=True, help="where to write the INT8 .onnx")
    _flag(conv, "fp32_model_save_path", default="", help="also write the clean FP32 model")
    _flag(conv, "ops_to_quantize", default="", help="comma-separated op types (default: all)")
    _flag(conv, "op_ids_to_skip", default="", help="comma-separated op ids to keep FP32")
    _flag(conv, "config", default="", help="JSON file with ops_to_quantize / op_ids_to_skip")
    conv.add_argument("--target", choices=TARGETS, default=None,
                      help="onnxruntime: QLinear ops (default); onednn: QDQ for OpenVINO")
    conv.add_argument("--debug", nargs="?", const="debug", default=None, metavar="DIR",
                      help="write quant_orig.dot and int8_NN_<pass>.dot into DIR (default ./debug)")
    conv.add_argument("-q", "--quiet", action="store_true", help="print only errors")
    conv.add_argument("-f", "--force", action="store_true", help="replace existing outputs")
    tune_command.add_arguments(conv)

    info = sub.add_parser("info", help="op histogram, quantization found and op ids")
    info.add_argument("model")
    info.add_argument("--no-ids", action="store_true", help="do not list the op ids")

    dot = sub.add_parser("dot", help="write one pass snapshot as .dot, .svg, .png or .pdf")
    dot.add_argument("model")
    dot.add_argument("--pass", dest="pass_name", default="",
                     help="snapshot name, stem or index (default: the last pass)")
    dot.add_argument("-o", "--output", required=True, help="FILE.dot / .svg / .png / .pdf")
    _flag(dot, "ops_to_quantize", default="")
    _flag(dot, "op_ids_to_skip", default="")
    dot.add_argument("--target", choices=TARGETS, default="onnxruntime")
    dot.add_argument("-f", "--force", action="store_true", help="replace an existing output")

    bench_command.add_parser(sub)
    advise_command.add_parser(sub)
    sub.choices["advise"].add_argument("-f", "--force", action="store_true",
                                       help="replace an existing --json file")
    paddle_command.add_parser(sub)
    add_verify_parser(sub)
    return parser


def _config(args: argparse.Namespace) -> ConvertConfig:
    base = ConvertConfig.load(args.config) if getattr(args, "config", "") else None
    flags = ConvertConfig.from_flags(args.ops_to_quantize, args.op_ids_to_skip,
                                     args.target or (base.target if base else "onnxruntime"))
    if base is None:
        return flags
    return ConvertConfig(
        flags.ops_to_quantize or base.ops_to_quantize,
        flags.op_ids_to_skip or base.op_ids_to_skip,
        flags.target,
    )


def _check_outputs(source: str, force: bool, *paths: str) -> None:
    """Outputs must not be the input nor each other, and existing files are replaced only
    with --force (checked again when they are written)."""
    planned = OutputSet(source, force=force)
    for path in filter(None, paths):
        planned.plan(path)


def _check_debug_folder(folder: str, force: bool) -> None:
    """``--debug DIR`` replaces the snapshots already in DIR only with --force."""
    path = Path(folder)
    if path.exists() and not path.is_dir():
        raise OutputError(f"--debug {folder}: is a file, not a folder")
    old = sorted(path.glob("quant_orig.dot")) + sorted(path.glob("int8_*.dot"))
    if old and not force:
        raise OutputError(f"--debug {folder} already holds {old[0].name}; pass --force to "
                          "replace the snapshots")


def cmd_convert(args: argparse.Namespace) -> int:
    with OutputSet(args.quant_model_path, force=args.force) as outputs:
        models = [outputs.plan(path) for path in (args.int8_model_save_path,
                                                  args.fp32_model_save_path) if path]
        if args.debug is not None:
            _check_debug_folder(args.debug, args.force)
        config = _config(args)
        tune_command.check(args)
        tuned = tune_command.run(args, config, models[0]) if args.tune else None
        result = convert(args.quant_model_path, tuned.config if tuned else config)
        if tuned is not None:
            apply_reasons(result, tuned)
        outputs.add_model(result.int8_model(), models[0])
        if len(models) > 1:
            outputs.add_model(result.fp32_model(), models[1])
        if args.debug is not None:
            from qcore.dot import write_debug_snapshots

            write_debug_snapshots(result.snapshots, args.debug, outputs)
        outputs.commit()
    for warning in result.warnings:
        print(f"qcore: warning: {warning}", file=sys.stderr)
    if not args.quiet:
        print(f"ops_to_quantize: {','.join(config.ops_to_quantize) or '(all supported)'}")
        print(f"op_ids_to_skip:  {','.join(map(str, config.op_ids_to_skip)) or '(none)'}")
        print(conversion_text(result))
        if tuned is not None:
            print(tune_text(tuned, result))
        if args.debug is not None:
            print(f"debug snapshots: {len(result.snapshots)} .dot files in {args.debug}")
        for path in models:
            print(f"wrote {path} ({path.stat().st_size / 1024:.1f} KiB)")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    print(model_text(load_graph(args.model), show_ids=not args.no_ids))
    return 0


def _pick_snapshot(result: ConversionResult, wanted: str) -> Snapshot:
    if not wanted:
        return result.snapshots[-1]
    for snap in result.snapshots:
        if wanted in (snap.name, snap.stem, str(snap.index)):
            return snap
    names = ", ".join(s.name for s in result.snapshots)
    raise ValueError(f"no pass {wanted!r}; choose one of: {names}")


def cmd_dot(args: argparse.Namespace) -> int:
    from qcore.dot import to_dot
    from qcore.render import export

    args.config = ""
    with OutputSet(args.model, force=args.force) as outputs:
        out = outputs.plan(args.output)
        result = convert(args.model, _config(args))
        snap = _pick_snapshot(result, args.pass_name)
        export(to_dot(snap.graph, title=snap.stem), out, outputs=outputs)
        outputs.commit()
    print(f"wrote {out} ({snap.stem})")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    return bench_command.run(args)


def cmd_advise(args: argparse.Namespace) -> int:
    _check_outputs(args.quant_model_path, args.force, args.json)
    return advise_command.run(args, tune_command.advise_start)


COMMANDS = {"convert": cmd_convert, "info": cmd_info, "dot": cmd_dot, "bench": cmd_bench,
            "advise": cmd_advise, "import-paddle": paddle_command.run,
            "verify": cmd_verify}


def _one_line(exc: BaseException) -> str:
    """An exception's message on one line (names in it may hold newlines)."""
    return " ".join(str(exc).split()) or type(exc).__name__


class Terminated(BaseException):
    """SIGTERM arrived: unwind (every ``with`` removes its temporaries) and exit 143."""


#: Seconds SIGTERM waits for the unwinding before exiting hard (a handler's exception is
#: lost when it lands in a ``__del__``).
TERMINATE_GRACE = 10.0
_HARD_EXITS: list[threading.Timer] = []  # cancelled once the unwinding reached main()


def _terminate(signum: int, frame: object) -> None:
    """Remove the temporaries at once (unless files are being renamed into place, which
    then finishes or undoes itself), unwind with ``Terminated``, and exit hard if that
    exception is swallowed."""
    if not committing():
        remove_temporaries()
    timer = threading.Timer(TERMINATE_GRACE, _exit_terminated)
    timer.daemon = True
    _HARD_EXITS.append(timer)
    timer.start()
    raise Terminated


def _exit_terminated() -> None:
    remove_temporaries()
    print("qcore: error: terminated", file=sys.stderr, flush=True)
    os._exit(143)


def main(argv: list[str] | None = None) -> int:
    """Run one command. Every failure prints one ``qcore: error:`` line: exit 2 for bad input
    or outputs, 1 for a failed conversion or run, 130 when interrupted, 143 on SIGTERM (the
    temporaries are removed and no output is half-written)."""
    args = build_parser().parse_args(argv)
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        return _run(args)
    except Terminated:
        remove_temporaries()
        print("qcore: error: terminated", file=sys.stderr)
        return 143
    finally:
        while _HARD_EXITS:
            _HARD_EXITS.pop().cancel()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _run(args: argparse.Namespace) -> int:
    try:
        # Library warnings (numpy overflow on odd scales, say) become one line each too.
        with warnings.catch_warnings(record=True) as caught:
            try:
                return COMMANDS[args.command](args)
            finally:
                for text in dict.fromkeys(f"{w.category.__name__}: {w.message}" for w in caught):
                    print(f"qcore: warning: {' '.join(text.split())}", file=sys.stderr)
    except (ModelError, NoQuantizationError, OutputError, ValueError, OSError) as exc:
        print(f"qcore: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except RuntimeError as exc:
        print(f"qcore: error: {_one_line(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("qcore: error: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug must still end with one line, not a trace
        if os.environ.get("QCORE_TRACEBACK"):
            raise
        print(f"qcore: error: internal error ({type(exc).__name__}: {_one_line(exc)}); please "
              "report it (QCORE_TRACEBACK=1 shows the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

