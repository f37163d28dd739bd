"""The app's calls into the conversion process, one typed function per qcore entry point.

``qcore.child`` runs a qcore function named ``"module:function"`` in a warm child process (its
own GIL, so the window stays responsive while a model loads). The names are written here
only: the rest of the app calls these functions and gets their signatures checked. Each one
blocks until the child answers, so call it from a worker (``app.workers.Job``), which passes
``progress`` and ``cancelled``.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from app.headless.input_source import InputSource, with_inputs
from qcore.child import shared_runner

if TYPE_CHECKING:
    from qcore.advise import Advice, AdviseSettings, TunedStart
    from qcore.config import ConvertConfig
    from qcore.convert import ConversionResult
    from qcore.tune import TuneResult, TuneSettings
    from qcore.verify import VerifyReport

Progress = Callable[[int, int, str], None]
Cancelled = Callable[[], bool]


def start() -> None:
    """Start the conversion process ahead of the first call (its imports take seconds)."""
    shared_runner()


def convert_for_view(source: Path, config: ConvertConfig, *, progress: Progress | None = None,
                     cancelled: Cancelled | None = None,
                     partial: Callable[[ConversionResult], None] | None = None,
                     preview_above_ops: int = 0) -> ConversionResult:
    """Convert ``source`` and return its snapshots without the weights; ``partial`` gets the
    loaded model first when it has more than ``preview_above_ops`` ops (0: never)."""
    return shared_runner().call("qcore.convert:convert_for_view", source, config,
                                progress=progress, cancelled=cancelled, partial=partial,
                                preview_above_ops=preview_above_ops)


def write_converted(source: Path, config: ConvertConfig, outputs: dict[str, Path], *,
                    progress: Progress | None = None,
                    cancelled: Cancelled | None = None) -> dict[str, Path]:
    """Convert ``source`` and save the models named in ``outputs`` ("int8" and / or "fp32"
    -> path); returns the paths written."""
    return shared_runner().call("qcore.convert:write_converted", source, config, outputs,
                                progress=progress, cancelled=cancelled)


def verify(source: Path, config: ConvertConfig, *, progress: Progress | None = None,
           cancelled: Cancelled | None = None) -> VerifyReport:
    """``qcore verify`` on generated inputs: every snapshot against the source model."""
    return shared_runner().call("qcore.verify:verify", source, config, progress=progress,
                                cancelled=cancelled)


def advise(source: Path, base: ConvertConfig, settings: AdviseSettings, *,
           progress: Progress | None = None, cancelled: Cancelled | None = None,
           start: TunedStart | None = None) -> Advice:
    """The advisor's search for the fastest configuration within the accuracy bound;
    ``start``: what ``--tune`` measured of this key, to start from and reuse (``qcore advise
    --tune-cache``)."""
    return shared_runner().call("qcore.advise.search:advise", str(source), base, settings,
                                progress=progress, cancelled=cancelled, start=start)


@dataclass(frozen=True)
class TuneRun:
    """A tuned conversion of this session, for the advisor to reuse: the model (and its size
    and modification time then), the Benchmark inputs it was timed on, and what it measured."""

    source: Path
    stamp: tuple[int, int]
    inputs: InputSource
    tuned: TuneResult


def model_stamp(path: Path) -> tuple[int, int]:
    """The size and modification time of ``path`` (a changed file is another model)."""
    try:
        stat = path.stat()
    except OSError:
        return (-1, -1)
    return (stat.st_size, stat.st_mtime_ns)


def tuned_convert(source: Path, config: ConvertConfig, int8_out: Path | None = None,
                  settings: TuneSettings | None = None, inputs: InputSource | None = None, *,
                  progress: Progress | None = None, cancelled: Cancelled | None = None,
                  ) -> tuple[ConversionResult, TuneRun, Path | None]:
    """``qcore convert --tune [--engine E] [--tune-budget S] [--inputs F]``: time the unsure
    INT8 choices of ``config`` in the whole model (``qcore.tune.tune``, in the child) with
    ``settings``, on ``inputs`` (the Benchmark tab's; generated data when None), then convert
    with the tuned config for the view and, given ``int8_out``, save the INT8 model there.
    The measurements are cached beside ``int8_out`` (qcore's rule); without it (Convert, no
    output yet) nothing is kept. Returns the view's result, the run (for the advisor to
    reuse) and the file written."""
    from qcore.tune import TuneSettings, apply_reasons, cache_path

    cache = cache_path(int8_out) if int8_out is not None else None
    settings = settings or TuneSettings()
    stamp = model_stamp(Path(source))
    folder = Path(tempfile.mkdtemp(prefix="quant-inspector-tune-"))
    try:
        if inputs is not None and not inputs.generated:
            settings = with_inputs(settings, inputs, source, folder)  # images: an .npz
        tuned = shared_runner().call("qcore.tune:tune", source, config, settings, cache,
                                     progress=progress, cancelled=cancelled)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    result = convert_for_view(source, tuned.config, progress=progress, cancelled=cancelled)
    apply_reasons(result, tuned)
    written = None
    if int8_out is not None:  # last, so a Cancel before it leaves no file
        written = write_converted(source, tuned.config, {"int8": int8_out}, progress=progress,
                                  cancelled=cancelled)["int8"]
    return result, TuneRun(Path(source), stamp, inputs or InputSource(), tuned), written
