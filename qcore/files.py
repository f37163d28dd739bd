"""Writing outputs safely: atomically, and never over the input model.

Protobuf cannot serialize a message of 2 GiB or more, so :func:`save_model` stores the
weights of a bigger model in ``<name>.<hash>.data`` beside it (ONNX external data, written by
:mod:`qcore.external_data`). :class:`OutputSet` writes the outputs of one command all or
nothing; its temporaries are registered in :mod:`qcore.temporaries`.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

import onnx

from qcore.external_data import (
    copy_without_initializers,
    external_locations,
    old_data_files,
    proto_size,
    write_external_data,
)
from qcore.safe_io import file_kind
from qcore.temporaries import (
    drop,
    forget_temporary,
    new_temporary,
    remove_temporaries,
    temporary_folder,
    write_bytes_atomic,
    write_temporary,
)

# Also importable from here, where they used to live.
__all__ = ["MAX_PROTO_BYTES", "OUTPUT_SUFFIXES", "OutputError", "OutputSet", "check_output",
           "committing", "copy_without_initializers", "input_files", "proto_size",
           "remove_temporaries", "save_model", "temporary_folder", "write_bytes_atomic"]

#: A model whose proto would reach this size is saved with external data.
MAX_PROTO_BYTES = 2**31 - 2**24

#: Files qcore writes; in a Paddle model folder they are not taken for parts of the model.
OUTPUT_SUFFIXES = frozenset({".onnx", ".data", ".json", ".csv", ".dot", ".gv", ".svg", ".png",
                             ".pdf", ".txt"})


class OutputError(ValueError):
    """An output path that must not or cannot be written."""


def input_files(source: str | Path) -> list[Path]:
    """The files a model given as ``source`` is read from, as far as they can be told.

    A folder (a Paddle model) counts with every file directly in it (Paddle may keep one
    file per parameter) except the kinds qcore writes (:data:`OUTPUT_SUFFIXES`); a Paddle
    ``.pdmodel`` with its ``.pdiparams``; an ONNX file with the external data files it names.
    """
    path = Path(source)
    if path.is_dir():
        return [path] + sorted(p for p in path.iterdir()
                               if p.is_file() and p.suffix.lower() not in OUTPUT_SUFFIXES)
    if path.suffix == ".pdmodel":
        return [path, path.with_suffix(".pdiparams"), path.with_suffix(".pdiparams.info")]
    if not path.is_file():
        return [path]
    stat = path.stat()
    return [path] + [path.parent / name for name in
                     external_locations(str(path.resolve()), stat.st_mtime_ns, stat.st_size)]


def _same_file(a: Path, b: Path) -> bool:
    try:
        if a.exists() and b.exists():
            return a.samefile(b)
        return a.resolve() == b.resolve()
    except (OSError, RuntimeError, ValueError):
        return False


def check_output(path: str | Path, *inputs: str | Path) -> Path:
    """Refuse an output path that is one of the inputs' files; create its folder.

    Raises:
        OutputError: ``path`` is (a file of) an input model (see :func:`input_files`), or a
            folder.
    """
    out = Path(path)
    for source in [i for i in inputs if i]:
        for used in input_files(source):
            if _same_file(out, used):
                what = "the input model" if used == Path(source) else f"a file of {source}"
                raise OutputError(f"{out}: refusing to overwrite {what}")
    if out.is_dir():
        raise OutputError(f"{out}: is a folder; give a file name")
    out.parent.mkdir(parents=True, exist_ok=True)
    return out


#: OutputSet commits under way: a signal then waits for them (see :func:`committing`).
_COMMITS: list[object] = []


def committing() -> bool:
    """True while an :class:`OutputSet` renames its files into place (or undoes that)."""
    return bool(_COMMITS)


def _file_kind(path: Path) -> str | None:
    """What a path that exists but is not a regular file is ("a FIFO"...), else None."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    return None if stat.S_ISREG(mode) else file_kind(mode)


def _refuse_special(out: Path) -> None:
    kind = _file_kind(out)
    if kind is not None:
        raise OutputError(f"{out}: is {kind}, not a regular file; refusing to replace it "
                          "(even with --force)")


class OutputSet:
    """The outputs of one command, written all or nothing.

    :meth:`plan` checks every target first (not an input, not a special file, no two the
    same file, existing only with ``force``); :meth:`add_bytes` / :meth:`add_model` write
    temporaries beside the targets; :meth:`commit` renames them all into place, checking
    again that targets made meanwhile are not replaced without ``force``, and undoes the
    renames already made if one fails. Leaving the ``with`` block without committing (an
    error, SIGTERM) removes the temporaries; no target is touched.
    """

    def __init__(self, *inputs: str | Path, force: bool = False) -> None:
        self.inputs = [i for i in inputs if i]
        self.force = force
        self.targets: list[Path] = []
        self._staged: list[tuple[Path, Path, bool]] = []  # (temporary, target, replaceable)
        self._obsolete: list[Path] = []  # old data files of replaced models
        self._made: list[Path] = []  # folders plan() created, removed again if left empty

    def __enter__(self) -> OutputSet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.discard()

    def plan(self, path: str | Path) -> Path:
        """Check ``path`` as one more output of this set and reserve it.

        Raises:
            OutputError: The path is an input, a folder or special file, another output of
                this set, or exists and ``force`` is off.
        """
        missing = [p for p in Path(path).absolute().parents if not p.exists()]
        out = check_output(path, *self.inputs)
        self._made += [p for p in missing if p.is_dir()]
        _refuse_special(out)
        for other in self.targets:
            if _same_file(out, other):
                raise OutputError(f"{path} and {other} are the same file; give each output "
                                  "its own name")
        if out.exists() and not self.force:
            raise OutputError(f"{path} exists; pass --force to replace it")
        self.targets.append(out)
        return out

    def _target(self, path: str | Path) -> Path:
        """A planned target not written yet, or ``path`` planned now."""
        out = Path(path)
        staged = {target for _, target, _ in self._staged}
        for target in self.targets:
            if target == out or _same_file(target, out):
                if target in staged:
                    raise OutputError(f"{path} and {target} are the same file; give each "
                                      "output its own name")
                return target
        return self.plan(out)

    def add_bytes(self, path: str | Path, data: bytes) -> Path:
        """Write ``data`` to a temporary for ``path`` (planned now if it was not)."""
        out = self._target(path)
        self._staged.append((write_temporary(out, data), out, False))
        return out

    def add_model(self, model: onnx.ModelProto, path: str | Path,
                  external_data: bool | None = None) -> Path:
        """Stage an ONNX model; see :func:`save_model` for ``external_data``."""
        out = self._target(path)
        if external_data is None:
            external_data = proto_size(model) >= MAX_PROTO_BYTES
        if not external_data:
            self._obsolete += [out.with_name(name) for name in old_data_files(out, "")]
            return self.add_bytes(out, model.SerializeToString())
        data_tmp, data_name, light = write_external_data(model, out)
        self._staged.append((data_tmp, check_output(out.with_name(data_name), *self.inputs),
                             True))
        if proto_size(light) >= MAX_PROTO_BYTES:
            raise OutputError(f"{out}: the model is too large to save even with its weights "
                              "in a separate data file")
        self._staged.append((write_temporary(out, light.SerializeToString()), out, False))
        self._obsolete += [out.with_name(name) for name in old_data_files(out, data_name)]
        return out

    def commit(self) -> list[Path]:
        """Rename every temporary into place, or none: returns the targets."""
        done: list[tuple[Path, Path | None]] = []
        _COMMITS.append(self)
        try:
            for tmp, out, replaceable in self._staged:
                done.append((out, self._install(tmp, out, replaceable)))
        except BaseException:
            for out, backup in reversed(done):
                if backup is not None:
                    os.replace(backup, out)
                    forget_temporary(backup)
                else:
                    drop(out)
            raise
        finally:
            _COMMITS.remove(self)
            self._made = [] if len(done) == len(self._staged) else self._made
            self.discard()
        for _, backup in done:
            if backup is not None:
                drop(backup)
        for old in self._obsolete:
            if not any(_same_file(old, used) for i in self.inputs for used in input_files(i)):
                drop(old)
        _sync_folders({out.parent for out in self.targets})
        return list(self.targets)

    def _install(self, tmp: Path, out: Path, replaceable: bool) -> Path | None:
        """Move one temporary to its target; returns a backup of a replaced file (None when
        there was none)."""
        if not (self.force or replaceable):
            try:
                os.link(tmp, out)  # atomic: fails if another process made ``out`` meanwhile
            except FileExistsError:
                raise OutputError(f"{out} exists (made while this command ran); pass --force "
                                  "to replace it") from None
            except OSError:  # no hard links here: check, then rename
                if out.exists():
                    raise OutputError(f"{out} exists; pass --force to replace it") from None
                os.replace(tmp, out)
                forget_temporary(tmp)
                return None
            drop(tmp)
            return None
        _refuse_special(out)
        backup = None
        if out.exists():
            fd, backup = new_temporary(out)
            os.close(fd)
            try:
                os.unlink(backup)
                os.link(out, backup)
            except OSError:
                drop(backup)
                backup = None
        try:
            os.replace(tmp, out)
        except BaseException:
            if backup is not None:
                drop(backup)
            raise
        forget_temporary(tmp)
        return backup

    def make_folder(self, path: str | Path) -> Path:
        """Create folder ``path`` (and its parents) for outputs; removed again, if still
        empty, when the set is discarded without a commit."""
        folder = Path(path)
        if folder.exists() and not folder.is_dir():
            raise OutputError(f"{folder}: is a file, not a folder")
        self._made += [p for p in [folder, *folder.absolute().parents] if not p.exists()]
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def discard(self) -> None:
        """Remove the temporaries not committed (and the folders made for them, if empty)."""
        for tmp, _, _ in self._staged:
            drop(tmp)
        self._staged = []
        for folder in sorted(self._made, key=lambda p: len(p.parts), reverse=True):
            with contextlib.suppress(OSError):
                folder.rmdir()
        self._made = []


def _sync_folders(folders: set[Path]) -> None:
    """Flush the renames in ``folders`` to disk (where the platform allows it)."""
    for folder in folders:
        with contextlib.suppress(OSError, AttributeError):
            fd = os.open(folder, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


def save_model(model: onnx.ModelProto, path: str | Path, *inputs: str | Path,
               external_data: bool | None = None) -> Path:
    """Save an ONNX model atomically, refusing to overwrite any of ``inputs``.

    Args:
        model: The model; it is not changed.
        path: The ``.onnx`` file to write (replaced if it exists, unless it is not a
            regular file).
        *inputs: Files that must not be overwritten (the input model).
        external_data: Store the weights in a data file beside the model, named after the
            model and the data's content (``<name>.<hash>.data``) so that the pair commits as
            one unit: the data file first, then the model that points at it; by default only
            when the proto would reach :data:`MAX_PROTO_BYTES` (protobuf's 2 GiB limit).

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        OutputError: ``path`` (or its data file) is one of ``inputs``, or a folder or special
            file, or the model is too large even with external data.
    """
    with OutputSet(*inputs, force=True) as outputs:
        out = outputs.add_model(model, path, external_data)
        outputs.commit()
    return out
