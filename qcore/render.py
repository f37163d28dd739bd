"""Run Graphviz ``dot`` safely: argv lists, no shell, a timeout, and atomic file writes.

Rendering is optional: DOT text can always be saved without Graphviz; every other format
needs the ``dot`` program on ``PATH`` and raises :class:`GraphvizMissing` when it is absent.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

from qcore.files import OutputSet
from qcore.passes.base import Cancelled
from qcore.temporaries import write_bytes_atomic

#: Output formats :func:`render` accepts (passed to ``dot`` as ``-T<fmt>``).
FORMATS: tuple[str, ...] = ("svg", "png", "pdf", "json", "xdot", "plain", "dot")

#: File suffix -> Graphviz format for :func:`export`; ``None`` means "write the DOT text".
EXPORT_SUFFIXES: dict[str, str | None] = {
    ".dot": None,
    ".gv": None,
    ".svg": "svg",
    ".png": "png",
    ".pdf": "pdf",
    ".json": "json",
}

INSTALL_HINT = (
    "Graphviz is not installed (the 'dot' program was not found on PATH). Install it with "
    "'sudo apt-get install graphviz' on Debian/Ubuntu, 'sudo dnf install graphviz' on Fedora, "
    "'brew install graphviz' on macOS, or from https://graphviz.org/download/ on Windows, then "
    "try again. Snapshots can still be saved as .dot files without Graphviz."
)


class GraphvizMissing(RuntimeError):
    """The Graphviz ``dot`` program is not available, so the graph cannot be rendered."""

    def __init__(self, message: str = INSTALL_HINT) -> None:
        super().__init__(message)


class RenderCancelled(Cancelled):
    """The caller cancelled a Graphviz run; ``dot`` was stopped."""


#: Graph attributes callers may pass to ``dot`` (validated: nothing else reaches its argv).
GRAPH_FLAG = re.compile(r"-G[A-Za-z0-9_]+=[A-Za-z0-9_.]+")


def find_dot() -> str | None:
    """Locate the Graphviz ``dot`` executable.

    Returns:
        The full path of ``dot`` on ``PATH``, or ``None`` when Graphviz is not installed.
    """
    return shutil.which("dot")


def _check_format(fmt: str) -> str:
    """Return the canonical spelling of ``fmt`` or raise ``ValueError`` if it is not allowed."""
    if not isinstance(fmt, str):
        raise ValueError(f"output format must be a string, not {type(fmt).__name__}")
    key = fmt.strip().lower()
    for allowed in FORMATS:
        if key == allowed:
            return allowed
    raise ValueError(f"unsupported Graphviz format {fmt!r}; choose one of {', '.join(FORMATS)}")


def render(dot_text: str, fmt: str, timeout: float | None = 120,
           cancelled: Callable[[], bool] | None = None, flags: Sequence[str] = ()) -> bytes:
    """Lay out and draw a DOT graph with Graphviz.

    Args:
        dot_text: The graph in the DOT language.
        fmt: One of :data:`FORMATS` (``svg``, ``png``, ``pdf``, ``json``, ``xdot``, ``plain``,
            ``dot``).
        timeout: Seconds to wait for ``dot`` before killing it; ``None`` waits forever.
        cancelled: Polled every 50 ms; returning True kills ``dot`` and raises
            :class:`RenderCancelled`.
        flags: Graph attributes for ``dot``, each ``-G<name>=<value>`` (e.g. effort limits).

    Returns:
        What ``dot -T<fmt>`` wrote to its standard output.

    Raises:
        ValueError: ``fmt`` is not one of :data:`FORMATS`, or a flag is not ``-Gname=value``.
        GraphvizMissing: The ``dot`` program is not installed.
        RenderCancelled: ``cancelled()`` returned True.
        RuntimeError: ``dot`` failed or timed out; the message holds its first error line.
    """
    fmt = _check_format(fmt)
    what = f"Graphviz 'dot -T{fmt}'"
    proc = _start_dot(fmt, flags)
    # Threads feed stdin and drain stdout / stderr (retrying Popen.communicate after a timeout
    # stops feeding stdin and deadlocks on big graphs) while this thread polls the clock and
    # ``cancelled``.
    out: list[bytes] = []
    err: list[bytes] = []
    threads = [threading.Thread(target=_feed, args=(proc.stdin, dot_text.encode("utf-8"))),
               threading.Thread(target=_drain, args=(proc.stdout, out)),
               threading.Thread(target=_drain, args=(proc.stderr, err))]
    for thread in threads:
        thread.daemon = True
        thread.start()
    _wait(proc, threads, timeout, cancelled, what)
    if proc.returncode != 0:
        raise RuntimeError(f"{what} failed: {_first_error_line(b''.join(err), proc.returncode)}")
    return b"".join(out)


def _start_dot(fmt: str, flags: Sequence[str]) -> subprocess.Popen[bytes]:
    """``dot -T<fmt> <flags>`` started with pipes (flags checked first)."""
    for flag in flags:
        if not GRAPH_FLAG.fullmatch(flag):
            raise ValueError(f"unsupported Graphviz flag {flag!r}; use -G<name>=<value>")
    exe = find_dot()
    if exe is None:
        raise GraphvizMissing()
    try:
        return subprocess.Popen(  # fixed argv, validated format and flags
            [exe, f"-T{fmt}", *flags], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, shell=False)
    except FileNotFoundError as exc:
        raise GraphvizMissing() from exc


def _wait(proc: subprocess.Popen[bytes], threads: list[threading.Thread],
          timeout: float | None, cancelled: Callable[[], bool] | None, what: str) -> None:
    """Wait for ``dot`` and its pipe threads; kill it after ``timeout`` or on a cancel."""
    start = time.monotonic()
    while proc.poll() is None:
        late = timeout is not None and time.monotonic() - start > timeout
        if late or (cancelled is not None and cancelled()):
            proc.kill()
            proc.wait()
            for thread in threads:
                thread.join(timeout=10)
            if late:
                raise RuntimeError(f"{what} did not finish within {timeout} s")
            raise RenderCancelled(f"{what} cancelled")
        time.sleep(0.05)
    for thread in threads:
        thread.join(timeout=10)


def _feed(pipe: IO[bytes] | None, data: bytes) -> None:
    if pipe is None:
        return
    try:
        pipe.write(data)
        pipe.close()
    except (BrokenPipeError, OSError, ValueError):
        pass  # Graphviz exited early (killed, or an error it reports on stderr)


def _drain(pipe: IO[bytes] | None, into: list[bytes]) -> None:
    if pipe is not None:
        into.append(pipe.read())


def _first_error_line(stderr: bytes, returncode: int) -> str:
    text = stderr.decode("utf-8", errors="replace")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    errors = [line for line in lines if line.lower().startswith("error")]
    if errors:
        return errors[0]
    return lines[0] if lines else f"exit status {returncode}"


# A PNG is scaled down to at most this many pixels on its long side: the 30,000 px pass of a
# big model is refused by common image viewers (SVG and PDF keep the whole graph at full size).
PNG_MAX_PIXELS = 12000
PNG_FLAGS = (f"-Gsize={PNG_MAX_PIXELS / 96:.2f}", "-Gdpi=96")  # one size: width and height


def export(dot_text: str, path: str | Path, timeout: float | None = 120,
           outputs: OutputSet | None = None) -> Path:
    """Save a graph, choosing the format from the file suffix.

    ``.dot`` / ``.gv`` store the DOT text itself and work without Graphviz; ``.svg``, ``.png``,
    ``.pdf`` and ``.json`` are rendered with ``dot``; a PNG is at most ``PNG_MAX_PIXELS`` on
    its long side. The file is written atomically.

    Args:
        dot_text: The graph in the DOT language.
        path: Destination file; its suffix selects the format.
        timeout: Seconds to wait for ``dot`` when rendering.
        outputs: Stage the file in this set (its ``commit`` writes it) instead.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        ValueError: The suffix is not one of :data:`EXPORT_SUFFIXES`.
        GraphvizMissing: Rendering is needed but Graphviz is not installed.
        RuntimeError: ``dot`` failed.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in EXPORT_SUFFIXES:
        choices = ", ".join(EXPORT_SUFFIXES)
        raise ValueError(f"cannot export to {path.name!r}: use one of these suffixes: {choices}")
    fmt = EXPORT_SUFFIXES[suffix]
    flags = PNG_FLAGS if fmt == "png" else ()
    data = dot_text.encode("utf-8") if fmt is None else render(dot_text, fmt, timeout,
                                                                flags=flags)
    if outputs is not None:
        return outputs.add_bytes(path, data)
    return write_bytes_atomic(path, data)


def layout_json(dot_text: str, timeout: float | None = 120,
                cancelled: Callable[[], bool] | None = None,
                flags: Sequence[str] = ()) -> dict[str, Any]:
    """Lay out a graph and return Graphviz's JSON description (positions, sizes, draw ops).

    Args:
        dot_text: The graph in the DOT language.
        timeout: Seconds to wait for ``dot``.

    Returns:
        The parsed output of ``dot -Tjson``.
    """
    layout = json.loads(render(dot_text, "json", timeout, cancelled, flags))
    if not isinstance(layout, dict):
        raise RuntimeError("Graphviz 'dot -Tjson' did not write a JSON object")
    return layout
