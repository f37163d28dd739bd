"""The ``qcore import-paddle`` subcommand: a Paddle quant model -> a QDQ ONNX file."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    """Register ``import-paddle`` on the ``qcore`` subcommand parser."""
    parser = sub.add_parser(
        "import-paddle",
        help="Paddle / PaddleSlim quant model -> QDQ .onnx (no Paddle needed)",
        description="Read a Paddle inference or quant model (__model__ + parameter files, or "
                    ".pdmodel + .pdiparams) and write it as an int8 QDQ ONNX model. ONNX "
                    "node names keep the Paddle op index: paddle_op_<index>_<type>.",
    )
    for name, kwargs in (
        ("model_dir", {"required": True, "help": "model folder, or its program file"}),
        ("model_filename", {"default": None, "help": "program file name in the folder"}),
        ("params_filename", {"default": None, "help": "combined parameters file name"}),
    ):
        dashed = name.replace("_", "-")
        parser.add_argument(f"--{name}", f"--{dashed}", dest=name, **kwargs)
    parser.add_argument("-o", "--output", required=True, help="the .onnx file to write")
    parser.add_argument("--no-out-thresholds", action="store_true",
                        help="do not turn out_threshold / only_observer scales into Q/DQ "
                             "pairs (the model then computes exactly what Paddle computes)")
    parser.add_argument("-f", "--force", action="store_true", help="replace an existing output")
    return parser


def run(args: argparse.Namespace) -> int:
    """Import, save atomically, print one summary line. Errors propagate as ModelError /
    OutputError for ``qcore.cli.main`` to report."""
    from qcore.files import OutputSet
    from qcore.paddle.importer import import_paddle, locate

    locate(args.model_dir, args.model_filename, args.params_filename)
    with OutputSet(args.model_dir, force=args.force) as outputs:
        out = outputs.plan(args.output)
        model = import_paddle(args.model_dir, args.model_filename, args.params_filename,
                              out_thresholds=not args.no_out_thresholds)
        outputs.add_model(model, out)
        outputs.commit()
    kinds: dict[str, int] = {}
    for node in model.graph.node:
        kinds[node.op_type] = kinds.get(node.op_type, 0) + 1
    weights = sum(1 for t in model.graph.initializer if t.data_type == 3 and len(t.dims) > 1)
    print(f"wrote {out} ({out.stat().st_size / 1024:.1f} KiB): {len(model.graph.node)} ONNX "
          f"nodes, {kinds.get('QuantizeLinear', 0)} QuantizeLinear, "
          f"{kinds.get('DequantizeLinear', 0)} DequantizeLinear, {weights} int8 weights")
    return 0
