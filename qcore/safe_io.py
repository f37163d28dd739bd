"""Reading model files without surprises: only regular files, only inside the model's
folder, and exactly the bytes asked for. ``ModelError`` is the one error reading raises."""

from __future__ import annotations

import os
import stat
from pathlib import Path, PurePosixPath, PureWindowsPath


class ModelError(ValueError):
    """The file is not a model we can read; the message says why in one line."""


def confined_file(folder: Path, location: str, where: str) -> Path:
    """``location`` inside ``folder``, refusing any way out of it.

    Only a relative path to a file inside ``folder`` (or below it) is accepted: no absolute
    path, no drive, no ``..``, no symbolic link leading elsewhere. ONNX external data and
    Paddle parameter files both go through here.

    Raises:
        ModelError: The location leads outside ``folder``; ``where`` starts the message.
    """
    posix, windows = PurePosixPath(location), PureWindowsPath(location)
    if (not location or posix.is_absolute() or windows.is_absolute() or windows.drive
            or windows.root or "\x00" in location or ".." in posix.parts
            or ".." in windows.parts):
        raise ModelError(f"{where} is at {location!r}: refusing a location outside the "
                         "model's folder (it must be a relative path to a file beside the model)")
    target = folder / location
    try:
        escapes = not target.resolve().is_relative_to(folder.resolve())
    except (OSError, RuntimeError, ValueError):
        escapes = True
    if escapes:
        raise ModelError(f"{where} is at {location!r}, which leads outside the model's folder: "
                         "refused")
    return target


def regular_file_size(path: Path, where: str, hint: str = "") -> int:
    """The size of ``path``, which must be a regular file (not missing, not a FIFO, device
    or folder, which reading would block on or misread)."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise ModelError(f"{where} is missing{hint}") from None
    except OSError as exc:
        raise ModelError(f"{where}: cannot read {path.name!r} ({exc.strerror or exc})") from None
    if not stat.S_ISREG(info.st_mode):
        raise ModelError(f"{where}: {path.name!r} is {file_kind(info.st_mode)}, not a regular "
                         "file: refused")
    return info.st_size


def file_kind(mode: int) -> str:
    """What a file of this ``st_mode`` is, for messages: "a folder", "a FIFO (named pipe)",
    ..., or "a special file" (never asked about a regular file)."""
    for test, kind in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return kind
    return "a special file"


def read_regular(path: Path, offset: int, length: int, where: str) -> bytes:
    """Exactly ``length`` bytes at ``offset`` of the regular file ``path``, never more.

    Opened without blocking and checked again once open, so a file swapped for a FIFO after
    the first check cannot hang the reader."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise ModelError(f"{where}: cannot read {path.name!r} ({exc.strerror or exc})") from None
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ModelError(f"{where}: {path.name!r} is not a regular file: refused")
        handle.seek(offset)
        data = handle.read(length)
    if len(data) != length:
        raise ModelError(f"{where}: {path.name!r} ends early ({len(data)} of {length} bytes)")
    return data
