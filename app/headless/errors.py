"""Turn exceptions from qcore into a title and one clear message for the user."""

from __future__ import annotations

from qcore.convert import NoQuantizationError
from qcore.files import OutputError
from qcore.loader import ModelError
from qcore.passes.base import PassError
from qcore.render import GraphvizMissing

TITLES = {
    "open": "Cannot open the model",
    "convert": "Conversion failed",
    "benchmark": "Benchmark failed",
}


def describe_error(job: str, exc: BaseException) -> tuple[str, str]:
    title = TITLES.get(job, f"{job.capitalize()} failed")
    if isinstance(exc, ModelError):
        return title, str(exc)
    if isinstance(exc, NoQuantizationError):
        return "Not a quant model", f"This model has no quantization to convert: {exc}"
    if isinstance(exc, GraphvizMissing):
        return "Graphviz is missing", str(exc)
    if isinstance(exc, OutputError):
        return "Cannot save there", str(exc)
    if isinstance(exc, PassError):
        return title, f"{exc}\n\nThe log has the details."
    if isinstance(exc, OSError):
        return title, f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": ")
    if isinstance(exc, (ValueError, RuntimeError)):
        return title, str(exc) or type(exc).__name__
    return f"Unexpected error in {job}", f"{type(exc).__name__}: {exc}\n\nThe log has the " \
                                          "traceback."
