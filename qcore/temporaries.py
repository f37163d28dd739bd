"""Temporary files beside their targets, and a registry of them for cleaning up.

Every temporary qcore writes is registered here while it exists, so that a SIGTERM handler
can remove them all (:func:`remove_temporaries`) before the process ends.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

#: Longest file name most file systems take, in bytes.
NAME_MAX = 255
#: Temporaries being written now (removed by :func:`remove_temporaries`, e.g. on SIGTERM).
_TEMPORARIES: set[Path] = set()


def fit_name(name: str, limit: int) -> str:
    """``name`` cut to at most ``limit`` bytes of UTF-8 (whole characters only)."""
    return name.encode("utf-8")[:limit].decode("utf-8", errors="ignore")


def new_temporary(target: Path) -> tuple[int, Path]:
    """A fresh hidden file beside ``target`` whose name fits :data:`NAME_MAX`, registered
    in :data:`_TEMPORARIES`; returns its open descriptor and path."""
    fd, tmp = tempfile.mkstemp(prefix=f".{fit_name(target.name, 120)}.", suffix=".tmp",
                               dir=target.parent)
    _TEMPORARIES.add(Path(tmp))
    return fd, Path(tmp)


def drop(path: Path) -> None:
    """Remove a temporary (or backup) file, ignoring one that is gone already."""
    with contextlib.suppress(OSError):
        path.unlink(missing_ok=True)
    _TEMPORARIES.discard(path)


def remove_temporaries() -> None:
    """Remove every temporary this process is writing (a SIGTERM handler calls this)."""
    for path in list(_TEMPORARIES):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
            _TEMPORARIES.discard(path)
        else:
            drop(path)


def register_temporary(path: str | Path) -> Path:
    """Have :func:`remove_temporaries` remove ``path`` (a file or folder) too."""
    _TEMPORARIES.add(Path(path))
    return Path(path)


def forget_temporary(path: str | Path) -> None:
    """``path`` was removed or kept by its owner: :func:`remove_temporaries` leaves it."""
    _TEMPORARIES.discard(Path(path))


@contextlib.contextmanager
def temporary_folder(prefix: str) -> Iterator[str]:
    """``tempfile.TemporaryDirectory`` that :func:`remove_temporaries` also removes."""
    with tempfile.TemporaryDirectory(prefix=prefix, ignore_cleanup_errors=True) as tmp:
        register_temporary(tmp)
        try:
            yield tmp
        finally:
            forget_temporary(tmp)


def write_temporary(target: Path, data: bytes) -> Path:
    """``data`` in a fresh temporary beside ``target``, flushed to disk, mode 0644."""
    fd, tmp = new_temporary(target)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(OSError):
            os.chmod(tmp, 0o644)  # mkstemp creates 0600; give the usual file permissions
    except BaseException:
        drop(tmp)
        raise
    return tmp


def write_bytes_atomic(path: str | Path, data: bytes) -> Path:
    """Write to a temporary file beside ``path`` and rename it into place: readers never see
    a half-written file, and a failed write leaves the old file untouched."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = write_temporary(path, data)
    try:
        os.replace(tmp, path)
    except BaseException:
        drop(tmp)
        raise
    forget_temporary(tmp)
    return path
