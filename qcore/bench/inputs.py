"""Benchmark inputs: the user's ``.npy`` / ``.npz`` data, or seeded data fitted to the model.

A *feed* is one ``{input name: array}`` dict, i.e. one inference. Data files:

- ``.npy``: one array, for a model with a single input.
- ``.npz``: one array per input name. Each array either has the input's rank, and its
  leading axis is a batch that is cut into feeds of ``batch`` rows (or the model's fixed
  leading size), or it has one more axis than the input: a list of samples, one per feed.
  An optional string array ``__source__`` says where the data came from (e.g. which text
  file and tokenizer); it is the source the report shows. A scalar input (shape ``[]``, such
  as a sample rate) given as one value goes into every feed.

Generated data fits each input's shape and element type: floats are N(0, 1); integer inputs
are token ids in [0, 100) (names containing ``mask`` get ones, ``type``/``segment`` zeros);
dynamic dimensions come from ``dims`` (``{"batch": 1, "seq": 128}``), else ``batch`` for the
leading or batch-like dimension, 128 for sequence-like names, 224 for height/width, 1 otherwise.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from onnx import helper


class InputError(ValueError):
    """The input data does not fit the model (missing name, wrong shape or type)."""


Feed = dict[str, np.ndarray]
Dim = int | str | None

BATCH_NAMES = {"batch", "batch_size", "batchsize", "n", "b", "bs", "unk__0"}
SEQ_WORDS = ("seq", "sequence", "length", "len", "token", "time")
SPATIAL_WORDS = ("height", "width")
DEFAULT_SEQ, DEFAULT_SPATIAL, DEFAULT_OTHER = 128, 224, 1
SOURCE_KEY = "__source__"  # in a .npz: a string naming where the data came from


@dataclass
class InputSpec:
    """One graph input: name, shape (int = fixed, str = symbolic, None = unknown), dtype."""

    name: str
    shape: list[Dim]
    dtype: np.dtype


@dataclass
class InputSet:
    """The feeds of one benchmark run and where they came from."""

    feeds: list[Feed]
    source: str
    notes: list[str] = field(default_factory=list)

    @property
    def shapes(self) -> dict[str, list[int]]:
        return {k: list(v.shape) for k, v in self.feeds[0].items()}

    @property
    def dtypes(self) -> dict[str, str]:
        return {k: str(v.dtype) for k, v in self.feeds[0].items()}

    @property
    def batch(self) -> int:
        """Samples per inference: the leading size of the first input (1 for scalars)."""
        first = next(iter(self.feeds[0].values()))
        return int(first.shape[0]) if first.ndim else 1


def model_inputs(path: str | Path) -> list[InputSpec]:
    """The graph inputs a caller must feed (initializers excluded)."""
    model = onnx.load(str(path), load_external_data=False)
    inits = {t.name for t in model.graph.initializer}
    specs = []
    for vi in model.graph.input:
        if vi.name in inits:
            continue
        tt = vi.type.tensor_type
        shape: list[Dim] = [
            d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
            for d in tt.shape.dim
        ]
        specs.append(InputSpec(vi.name, shape, np.dtype(helper.tensor_dtype_to_np_dtype(
            tt.elem_type))))
    return specs


def parse_dims(text: str) -> dict[str, int]:
    """``"batch=1,seq=128"`` -> ``{"batch": 1, "seq": 128}``."""
    dims: dict[str, int] = {}
    for item in text.split(","):
        if not item.strip():
            continue
        name, sep, value = item.partition("=")
        try:
            number = int(value)
        except ValueError:
            number = 0
        if not sep or not name.strip() or number < 1:
            raise InputError(f"--dims takes NAME=N pairs with N >= 1, got {item.strip()!r}")
        dims[name.strip()] = number
    return dims


def _default_dim(dim: Dim, index: int, batch: int) -> tuple[int, str]:
    """A value for an unnamed/unknown dynamic dimension, and why."""
    label = str(dim).lower() if dim else ""
    if index == 0 or label in BATCH_NAMES:
        return batch, "batch"
    if any(w in label for w in SEQ_WORDS):
        return DEFAULT_SEQ, "default for a sequence length"
    if any(w in label for w in SPATIAL_WORDS):
        return DEFAULT_SPATIAL, "default for an image size"
    return DEFAULT_OTHER, "default; set it with --dims"


def resolve_shape(
    spec: InputSpec, batch: int, dims: dict[str, int], notes: list[str] | None = None
) -> tuple[int, ...]:
    """The concrete shape to generate for ``spec``; dynamic dims explained in ``notes``."""
    shape = []
    for index, dim in enumerate(spec.shape):
        if isinstance(dim, int) and dim > 0:
            shape.append(dim)
            continue
        if isinstance(dim, str) and dim in dims:
            shape.append(dims[dim])
            continue
        value, why = _default_dim(dim, index, batch)
        shape.append(value)
        if notes is not None:
            label = f"'{dim}'" if dim else f"#{index}"
            note = f"{spec.name} dim {label} = {value} ({why})"
            if note not in notes:
                notes.append(note)
    return tuple(shape)


def _generate(spec: InputSpec, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    kind, name = spec.dtype.kind, spec.name.lower()
    if kind == "f":
        return rng.standard_normal(shape).astype(spec.dtype)
    if kind == "b":
        return np.ones(shape, dtype=spec.dtype)
    if kind in "iu":
        if "mask" in name:
            return np.ones(shape, dtype=spec.dtype)
        if "type" in name or "segment" in name:
            return np.zeros(shape, dtype=spec.dtype)
        info = np.iinfo(spec.dtype)
        high = 100 if info.max >= 100 else info.max + 1
        return rng.integers(max(info.min, 0), high, size=shape).astype(spec.dtype)
    raise InputError(f"input '{spec.name}' has type {spec.dtype}; give data with --inputs")


def generate_inputs(
    specs: list[InputSpec], count: int = 1, batch: int = 1,
    dims: dict[str, int] | None = None, seed: int = 0,
) -> InputSet:
    """``count`` seeded feeds fitted to ``specs``."""
    dims = dict(dims or {})
    notes: list[str] = []
    shapes = {s.name: resolve_shape(s, batch, dims, notes) for s in specs}
    symbolic = {d for s in specs for d in s.shape if isinstance(d, str)}
    for name in sorted(set(dims) - symbolic):
        notes.append(f"--dims {name}={dims[name]} matches no dynamic dimension of the model")
    _check_size(specs, shapes, max(1, count), batch)
    rng = np.random.default_rng(seed)
    feeds = [{s.name: _generate(s, shapes[s.name], rng) for s in specs}
             for _ in range(max(1, count))]
    return InputSet(feeds, f"generated (seed {seed})", notes)


#: Generated inputs larger than this are refused (a typo like --batch 100000).
MAX_GENERATED_BYTES = 2**31


def _check_size(specs: list[InputSpec], shapes: dict[str, tuple[int, ...]], count: int,
                batch: int) -> None:
    """Refuse generated data that would not fit in memory, before making it."""
    total = count * sum(int(np.prod(shapes[s.name], dtype=np.float64)) * s.dtype.itemsize
                        for s in specs)
    if total > MAX_GENERATED_BYTES:
        raise InputError(f"generated inputs would take {total / 2**30:.1f} GiB ({count} feed(s) "
                         f"at batch {batch}); lower --batch, --samples or --dims")


def check_finite(feeds: list[Feed], source: str, notes: list[str] | None = None) -> None:
    """Refuse NaN in float inputs; infinite values are refused too, unless ``notes`` is given
    (then one loud note per input says that the numbers may be meaningless).

    Raises:
        InputError: Naming the input and how many values are not finite.
    """
    for name in feeds[0] if feeds else []:
        arrays = [feed[name] for feed in feeds if feed[name].dtype.kind in "fc"]
        if not arrays:
            continue
        nans = sum(int(np.isnan(a).sum()) for a in arrays)
        infs = sum(int(np.isinf(a).sum()) for a in arrays)
        if nans:
            raise InputError(f"{source}: input '{name}' holds {nans} NaN value(s); every output "
                             "and accuracy figure would be NaN: fix the data")
        if infs and notes is None:
            raise InputError(f"{source}: input '{name}' holds {infs} infinite value(s); the "
                             "accuracy figures would be meaningless: fix the data")
        if infs and notes is not None:
            notes.append(f"WARNING: input '{name}' holds {infs} infinite value(s): outputs may "
                         "be inf or NaN and the accuracy figures meaningless")


def _fits(spec: InputSpec, shape: tuple[int, ...]) -> bool:
    return len(shape) == len(spec.shape) and all(
        not (isinstance(d, int) and d > 0) or d == s for d, s in zip(spec.shape, shape, strict=True)
    )


def _split(spec: InputSpec, array: np.ndarray, batch: int, notes: list[str]) -> list[np.ndarray]:
    """Cut one input's array into per-feed arrays."""
    want = "x".join(str(d) if d else "?" for d in spec.shape) or "scalar"
    bad = InputError(f"input '{spec.name}': array of shape {list(array.shape)} does not fit "
                     f"the model input [{want}] (nor is it a list of such samples)")
    if array.ndim and array.shape[0] == 0:
        raise InputError(f"input '{spec.name}': the array of shape {list(array.shape)} holds "
                         "no samples")
    if array.ndim == len(spec.shape) + 1:  # a list of samples, one per feed
        if not _fits(spec, array.shape[1:]):
            raise bad
        return list(array)
    if array.ndim != len(spec.shape):
        raise bad
    if array.ndim == 0:
        return [array]
    lead = spec.shape[0]
    fixed = lead if isinstance(lead, int) and lead > 0 else 0
    if not _fits(spec, (fixed or array.shape[0],) + array.shape[1:]):
        raise bad
    step = fixed or min(batch, array.shape[0])
    if array.shape[0] < step:
        raise InputError(f"input '{spec.name}': {array.shape[0]} rows but the model needs "
                         f"exactly {step}")
    if array.shape[0] % step:
        notes.append(f"{spec.name}: dropped the last {array.shape[0] % step} rows "
                     f"(not a full batch of {step})")
    return [array[i:i + step] for i in range(0, array.shape[0] - step + 1, step)]


def _cast(spec: InputSpec, array: np.ndarray) -> np.ndarray:
    if array.dtype == spec.dtype:
        return array
    same_kind = (array.dtype.kind == spec.dtype.kind or {array.dtype.kind, spec.dtype.kind}
                 <= {"i", "u"})
    if not same_kind:
        raise InputError(f"input '{spec.name}': data has type {array.dtype}, the model wants "
                         f"{spec.dtype}")
    return array.astype(spec.dtype)


def _load(path: Path) -> np.ndarray:
    """One array from a ``.npy`` file, with a clear error for anything else."""
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise InputError(f"{path}: not a .npy array file ({_first(exc)})") from None
    if not isinstance(array, np.ndarray):
        raise InputError(f"{path}: not a .npy array file (it is an archive)")
    return array


def _load_npz(path: Path) -> dict[str, np.ndarray]:
    """The arrays of a ``.npz`` file, with a clear error for anything else."""
    if not zipfile.is_zipfile(path):
        raise InputError(f"{path}: not a .npz archive (not a zip file)")
    try:
        data = np.load(path, allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise InputError(f"{path}: not a .npz archive (it holds a single array; name it "
                             ".npy)")
        with data:
            return {k: data[k] for k in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        if isinstance(exc, InputError):
            raise
        raise InputError(f"{path}: not a .npz archive ({_first(exc)})") from None


def _first(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:120] or type(exc).__name__


def _repeat_scalars(per_input: dict[str, list[np.ndarray]], specs: list[InputSpec]) -> None:
    """A scalar input given as one value (it has no batch axis to cut) goes into every feed
    the other inputs make."""
    most = max((len(v) for v in per_input.values()), default=0)
    for spec in specs:
        arrays = per_input[spec.name]
        if not spec.shape and len(arrays) == 1 and most > 1:
            per_input[spec.name] = arrays * most


def _contiguous(array: np.ndarray) -> np.ndarray:
    """``array`` in C order with its shape kept: ``np.ascontiguousarray`` makes a scalar
    (shape ``[]``, e.g. a sample rate) one-dimensional, which the model then refuses."""
    return np.require(array, requirements="C")


def load_inputs(path: str | Path, specs: list[InputSpec], batch: int = 1) -> InputSet:
    """Feeds from a ``.npy`` (single-input models) or ``.npz`` (one array per input name)."""
    path = Path(path)
    if path.exists() and not path.is_file():
        raise InputError(f"{path}: not a regular file (input data is a .npy or .npz file)")
    if not path.is_file():
        raise InputError(f"{path}: no such input data file")
    names = [s.name for s in specs]
    source = str(path)
    if path.suffix == ".npy":
        if len(specs) != 1:
            raise InputError(f"{path}: a .npy holds one array but the model has {len(specs)} "
                             f"inputs ({', '.join(names)}); use a .npz keyed by input name")
        arrays = {names[0]: _load(path)}
    elif path.suffix == ".npz":
        arrays = _load_npz(path)
        label = arrays.pop(SOURCE_KEY, None)
        if label is not None and label.dtype.kind == "U" and label.size == 1:
            source = str(label.reshape(()))
    else:
        raise InputError(f"{path}: input data must be .npy or .npz")
    missing = [n for n in names if n not in arrays]
    unknown = [k for k in arrays if k not in names]
    if missing or unknown:
        what = (f"no array for input {', '.join(repr(n) for n in missing)}" if missing
                else f"unknown input {', '.join(repr(k) for k in unknown)}")
        raise InputError(f"{path}: {what}; the file has {', '.join(arrays) or 'nothing'}, "
                         f"the model's inputs are {', '.join(names)}")
    notes: list[str] = []
    per_input = {s.name: _split(s, _cast(s, arrays[s.name]), batch, notes) for s in specs}
    _repeat_scalars(per_input, specs)
    counts = {len(v) for v in per_input.values()}
    if len(counts) != 1 or 0 in counts:
        sizes = ", ".join(f"{k}: {len(v)}" for k, v in per_input.items())
        raise InputError(f"{path}: the inputs give different numbers of samples ({sizes})")
    feeds = [{name: _contiguous(v[i]) for name, v in per_input.items()}
             for i in range(counts.pop())]
    check_finite(feeds, str(path), notes)
    return InputSet(feeds, source, notes)


def check_feeds(feeds: Feed, specs: list[InputSpec], label: str) -> None:
    """Raise :class:`InputError` when ``feeds`` cannot be fed to a model with ``specs``."""
    for spec in specs:
        if spec.name not in feeds:
            raise InputError(f"model '{label}' has input '{spec.name}' that the data does "
                             f"not provide (it has {', '.join(feeds)})")
        if not _fits(spec, feeds[spec.name].shape):
            raise InputError(f"model '{label}': input '{spec.name}' of shape {spec.shape} "
                             f"cannot take data of shape {list(feeds[spec.name].shape)}")
