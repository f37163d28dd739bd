"""Writing outputs safely: atomically, and never over the input model.

Protobuf cannot serialize a message of 2 GiB or more, so :func:`save_model` stores the
weights of a bigger model in ``<name>.<hash>.data`` beside it (ONNX external data).
:class:`OutputSet` writes the outputs of one command all or nothing.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import onnx
from google.protobuf.message import EncodeError
from onnx import numpy_helper

#: A model whose proto would reach this size is saved with external data.
MAX_PROTO_BYTES = 2**31 - 2**24
#: With external data, tensors of at least this many bytes go into the data file.
EXTERNAL_MIN_BYTES = 1024
#: Offsets of tensors in the data file are multiples of this (lets runtimes mmap them).
EXTERNAL_ALIGN = 4096


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
                     _external_locations(str(path.resolve()), stat.st_mtime_ns, stat.st_size)]


@functools.lru_cache(maxsize=16)
def _external_locations(path: str, mtime_ns: int, size: int) -> tuple[str, ...]:
    """The external data locations an ONNX file names (none if it is not ONNX)."""
    del mtime_ns, size  # only part of the cache key
    try:
        model = onnx.load(path, load_external_data=False)
        tensors = list(model.graph.initializer)
    except Exception:  # noqa: BLE001 - not an ONNX model: it names no other file
        return ()
    found = {entry.value for tensor in tensors for entry in tensor.external_data
             if entry.key == "location" and entry.value}
    return tuple(sorted(found))


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
    for source in filter(None, inputs):
        for used in input_files(source):
            if _same_file(out, used):
                what = "the input model" if used == Path(source) else f"a file of {source}"
                raise OutputError(f"{out}: refusing to overwrite {what}")
    if out.is_dir():
        raise OutputError(f"{out}: is a folder; give a file name")
    out.parent.mkdir(parents=True, exist_ok=True)
    return out


#: Longest file name most file systems take, in bytes.
NAME_MAX = 255
#: Temporaries being written now (removed by :func:`remove_temporaries`, e.g. on SIGTERM).
_TEMPORARIES: set[Path] = set()


def _fit(name: str, limit: int) -> str:
    """``name`` cut to at most ``limit`` bytes of UTF-8 (whole characters only)."""
    return name.encode("utf-8")[:limit].decode("utf-8", errors="ignore")


def _new_temporary(target: Path) -> tuple[int, Path]:
    """A fresh hidden file beside ``target`` whose name fits :data:`NAME_MAX`, registered
    in :data:`_TEMPORARIES`; returns its open descriptor and path."""
    fd, tmp = tempfile.mkstemp(prefix=f".{_fit(target.name, 120)}.", suffix=".tmp",
                               dir=target.parent)
    _TEMPORARIES.add(Path(tmp))
    return fd, Path(tmp)


def _drop(path: Path) -> None:
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
            _drop(path)


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


#: OutputSet commits under way: a signal then waits for them (see :func:`committing`).
_COMMITS: list[object] = []


def committing() -> bool:
    """True while an :class:`OutputSet` renames its files into place (or undoes that)."""
    return bool(_COMMITS)


def _write_temporary(target: Path, data: bytes) -> Path:
    """``data`` in a fresh temporary beside ``target``, flushed to disk, mode 0644."""
    fd, tmp = _new_temporary(target)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(OSError):
            os.chmod(tmp, 0o644)  # mkstemp creates 0600; give the usual file permissions
    except BaseException:
        _drop(tmp)
        raise
    return tmp


def _file_kind(path: Path) -> str | None:
    """What a path that exists but is not a regular file is ("a FIFO"...), else None."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    for test, kind in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return kind
    return None if stat.S_ISREG(mode) else "a special file"


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
        self._staged.append((_write_temporary(out, data), out, False))
        return out

    def add_model(self, model: onnx.ModelProto, path: str | Path,
                  external_data: bool | None = None) -> Path:
        """Stage an ONNX model; see :func:`save_model` for ``external_data``."""
        out = self._target(path)
        if external_data is None:
            external_data = proto_size(model) >= MAX_PROTO_BYTES
        if not external_data:
            self._obsolete += [out.with_name(name) for name in _old_data_files(out, "")]
            return self.add_bytes(out, model.SerializeToString())
        data_tmp, data_name, light = _write_external_data(model, out)
        self._staged.append((data_tmp, check_output(out.with_name(data_name), *self.inputs),
                             True))
        if proto_size(light) >= MAX_PROTO_BYTES:
            raise OutputError(f"{out}: the model is too large to save even with its weights "
                              "in a separate data file")
        self._staged.append((_write_temporary(out, light.SerializeToString()), out, False))
        self._obsolete += [out.with_name(name) for name in _old_data_files(out, data_name)]
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
                    _TEMPORARIES.discard(backup)
                else:
                    _drop(out)
            raise
        finally:
            _COMMITS.remove(self)
            self._made = [] if len(done) == len(self._staged) else self._made
            self.discard()
        for _, backup in done:
            if backup is not None:
                _drop(backup)
        for old in self._obsolete:
            if not any(_same_file(old, used) for i in self.inputs for used in input_files(i)):
                _drop(old)
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
                _TEMPORARIES.discard(tmp)
                return None
            _drop(tmp)
            return None
        _refuse_special(out)
        backup = None
        if out.exists():
            fd, backup = _new_temporary(out)
            os.close(fd)
            try:
                os.unlink(backup)
                os.link(out, backup)
            except OSError:
                _drop(backup)
                backup = None
        try:
            os.replace(tmp, out)
        except BaseException:
            if backup is not None:
                _drop(backup)
            raise
        _TEMPORARIES.discard(tmp)
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
            _drop(tmp)
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


def write_bytes_atomic(path: str | Path, data: bytes) -> Path:
    """Write to a temporary file beside ``path`` and rename it into place: readers never see
    a half-written file, and a failed write leaves the old file untouched."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _write_temporary(path, data)
    try:
        os.replace(tmp, path)
    except BaseException:
        _drop(tmp)
        raise
    _TEMPORARIES.discard(tmp)
    return path


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


def proto_size(model: onnx.ModelProto) -> float:
    """The serialized size of ``model`` in bytes (infinite when protobuf cannot tell)."""
    try:
        return model.ByteSize()
    except (EncodeError, ValueError, OverflowError):
        return float("inf")


def copy_without_initializers(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of ``model`` whose main graph has no initializers (cheap for huge models)."""
    light = onnx.ModelProto()
    _copy_fields(model, light, skip="graph")
    _copy_fields(model.graph, light.graph, skip="initializer")
    return light


def _copy_fields(source: object, target: object, skip: str) -> None:
    for field, value in source.ListFields():  # type: ignore[attr-defined]
        if field.name == skip:
            continue
        if field.is_repeated:
            getattr(target, field.name).extend(value)
        elif field.message_type is not None:
            getattr(target, field.name).CopyFrom(value)
        else:
            setattr(target, field.name, value)


def _tensor_bytes(tensor: onnx.TensorProto) -> bytes | None:
    """The raw little-endian bytes of a tensor worth moving to the data file, else None."""
    if tensor.data_type == onnx.TensorProto.STRING:
        return None
    if onnx.external_data_helper.uses_external_data(tensor):
        return None
    if tensor.HasField("raw_data"):
        data = tensor.raw_data
    elif tensor.ByteSize() >= EXTERNAL_MIN_BYTES:
        data = numpy_helper.to_array(tensor).tobytes()
    else:
        return None
    return data if len(data) >= EXTERNAL_MIN_BYTES else None


def data_file_name(out: Path, digest: str) -> str:
    """The data file of model ``out`` holding data with this digest (fits NAME_MAX)."""
    tail = f".{digest}.data"
    return _fit(out.name, NAME_MAX - len(tail)) + tail


def _old_data_files(out: Path, keep: str) -> list[str]:
    """Data files the model now at ``out`` uses that qcore named for it, except ``keep``."""
    if not out.is_file():
        return []
    stat_ = out.stat()
    names = _external_locations(str(out.resolve()), stat_.st_mtime_ns, stat_.st_size)
    ours = re.compile(re.escape(_fit(out.name, NAME_MAX - 22)) + r"(\.[0-9a-f]{16})?\.data")
    return [n for n in names if n != keep and "/" not in n and ours.fullmatch(n)]


def _write_external_data(model: onnx.ModelProto, out: Path,
                         ) -> tuple[Path, str, onnx.ModelProto]:
    """Write the big tensors of ``model`` to a temporary beside ``out``.

    Returns:
        The temporary, the data file name (:func:`data_file_name` of its content hash) and
        the model without those tensors' bytes, pointing at that name.
    """
    light = copy_without_initializers(model)
    fd, tmp = _new_temporary(out)
    os.close(fd)
    digest = hashlib.blake2b(digest_size=8)
    stored_entries = []
    try:
        offset = 0
        with open(tmp, "wb") as handle:
            for tensor in model.graph.initializer:
                data = _tensor_bytes(tensor)
                if data is None:
                    light.graph.initializer.append(tensor)
                    continue
                pad = -offset % EXTERNAL_ALIGN
                handle.write(b"\0" * pad)
                digest.update(b"\0" * pad)
                offset += pad
                handle.write(data)
                digest.update(data)
                stored = light.graph.initializer.add()
                stored.name, stored.data_type = tensor.name, tensor.data_type
                stored.dims.extend(tensor.dims)
                stored.data_location = onnx.TensorProto.EXTERNAL
                stored_entries.append((stored, offset, len(data)))
                offset += len(data)
                del data
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(OSError):
            os.chmod(tmp, 0o644)
    except BaseException:
        _drop(tmp)
        raise
    name = data_file_name(out, digest.hexdigest())
    for stored, offset, length in stored_entries:
        for key, value in (("location", name), ("offset", str(offset)), ("length", str(length))):
            entry = stored.external_data.add()
            entry.key, entry.value = key, value
    return tmp, name, light
