"""Benchmark results: :class:`BenchReport`, its JSON schema, CSV and text forms.

JSON schema, ``schema_version`` 1 (``BenchReport.to_json()``; read back with
``BenchReport.from_json()``). Times are in milliseconds unless the key ends in ``_s``.
Floats that are not finite (an SQNR of identical tensors) are written as the strings
``"inf"``, ``"-inf"`` or ``"nan"``, since JSON has no such numbers.

- ``schema_version`` (int), ``created`` (ISO 8601 UTC), ``cancelled`` (bool: partial results),
  ``notes`` (list of str: caveats about the whole run).
- ``settings``: the :class:`qcore.bench.runner.BenchSettings` used: ``engines``, ``threads``
  (list), ``batch``, ``warmup``, ``iters``, ``seconds`` (null = iteration-driven), ``seed``,
  ``inputs`` (data file or null), ``dims``, ``samples``, ``accuracy``, ``per_tensor``,
  ``per_op``, ``per_op_runs``.
- ``system``: ``cpu``, ``logical_cpus``, ``cpu_flags`` (e.g. avx512_vnni, amx_int8),
  ``platform``, ``python``.
- ``engines``: one object per requested engine: ``name``, ``available``, ``version``,
  ``reason`` (why unavailable), ``settings`` (e.g. INFERENCE_PRECISION_HINT), ``notes``.
- ``models``: role / label (``fp32``, ``qdq``, ``int8``, ``int8-onednn`` or any) -> path.
- ``inputs``: ``source`` (file or "generated (seed N)"), ``shapes``, ``dtypes``, ``batch``,
  ``feeds`` (number of distinct feeds), ``notes`` (how dynamic dimensions were filled).
- ``results``: one object per (model, engine, threads): ``model``, ``path``, ``engine``,
  ``threads``, ``batch``, ``status`` (``ok``, ``skipped``: the engine cannot run this model,
  ``failed``: it raised), ``reason`` (why skipped / failed, or "partial: cancelled after N
  measured runs"), ``load_s`` (load + compile), ``latency_ms``
  (``p50``, ``p90``, ``p99``, ``mean``, ``min``, ``max``, ``std``, ``count``) or null,
  ``samples_ms`` (every measured run, in order), ``throughput_per_s``
  (``batch * 1000 / mean``), ``speedup_vs_fp32`` (``p50 of fp32 / p50 of this model`` on the
  same engine and threads, null without an ``fp32`` result), ``what_ran`` (``summary``,
  ``int8_ops``, ``compute_ops``, ``histogram``, ``float_ops``, ``notes``) or null.
- ``accuracy``: one object per (reference, test, engine): ``reference``, ``test``, ``engine``,
  ``samples``, ``status``, ``reason``, ``outputs`` (per graph output: ``name``, ``shape``,
  ``cosine`` (mean over samples), ``cosine_min``, ``max_abs_diff``, ``mean_abs_diff``,
  ``ref_max_abs``, ``top1_agreement`` and ``top5_overlap`` as fractions or null when the output
  is not classifier-shaped, ``rows``), ``per_tensor`` (null, or per tensor worst first:
  ``tensor``, ``shape``, ``sqnr_db``, ``max_abs_diff``, ``op_type``, ``op_id``, ``op_name``,
  ``dequantized``) and ``per_tensor_note``.
- ``per_op`` (empty unless ``settings.per_op``): one object per (model, engine) at the first
  thread count (:class:`qcore.bench.per_op.PerOpResult`): ``model``, ``path``, ``engine``,
  ``threads``, ``runs`` (profiled inferences), ``status``, ``reason``, ``ops`` (per op id,
  longest first: ``op_id``, ``op_type`` and ``name`` in the model, ``precision`` (``int8``,
  ``float``, ``q/dq``, ``other``: what the engine ran), ``kernel``, ``time_ms`` (mean per
  inference; 0 for an op that ran inside another), ``kind`` (``compute``, ``q/dq``,
  ``reorder``, ``other``), ``fused_into`` (op id or null), ``decided`` (``int8`` / ``fp32``
  from the conversion, "" when unknown), ``detail`` (the engine's words), ``flag`` (why it is
  flagged, or "")), ``unmapped`` (engine kernels of no op id, same keys, ``op_id`` null),
  ``summary`` (``total_ms``, ``ops`` (precision -> count), ``compute_int8``,
  ``compute_float``, ``qdq`` / ``reorder`` / ``unmapped`` (``count``, ``ms``), ``flagged``,
  ``not_seen``), ``cpu_flags``, ``flags_checked`` (the decisions were known), ``notes``.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from qcore.bench.accuracy import AccuracyResult, OutputAccuracy, TensorError
from qcore.bench.engines import WhatRan
from qcore.bench.per_op import PerOpResult
from qcore.bench.per_op import from_dict as per_op_from_dict
from qcore.status import RunStatus

SCHEMA_VERSION = 1
CSV_FIELDS = ["model", "engine", "threads", "batch", "status", "p50_ms", "p90_ms", "p99_ms",
              "mean_ms", "throughput_per_s", "speedup_vs_fp32", "load_s", "int8_ops",
              "compute_ops", "what_ran", "engine_version", "path", "reason"]


@dataclass
class LatencyStats:
    """Latency percentiles (linear interpolation) of the measured runs, in ms."""

    p50: float
    p90: float
    p99: float
    mean: float
    min: float
    max: float
    std: float
    count: int

    @classmethod
    def from_samples(cls, samples_ms: list[float]) -> LatencyStats:
        a = np.asarray(samples_ms, dtype=np.float64)
        p50, p90, p99 = (float(v) for v in np.percentile(a, [50, 90, 99]))
        return cls(p50, p90, p99, float(a.mean()), float(a.min()), float(a.max()),
                   float(a.std()), int(a.size))


@dataclass
class BenchResult:
    """One model on one engine with one thread count."""

    model: str
    path: str
    engine: str
    threads: int
    batch: int = 1
    status: RunStatus = RunStatus.OK
    reason: str = ""
    load_s: float | None = None
    latency_ms: LatencyStats | None = None
    samples_ms: list[float] = field(default_factory=list)
    throughput_per_s: float | None = None
    speedup_vs_fp32: float | None = None
    what_ran: WhatRan | None = None

    def __post_init__(self) -> None:
        self.status = RunStatus(self.status)  # also when read back from JSON


@dataclass
class EngineInfo:
    name: str
    available: bool
    version: str = ""
    reason: str = ""
    settings: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


@dataclass
class BenchReport:
    """Everything one benchmark run measured, with the settings and machine it ran on."""

    settings: dict[str, Any]
    system: dict[str, Any]
    engines: list[EngineInfo]
    models: dict[str, str]
    inputs: dict[str, Any]
    results: list[BenchResult] = field(default_factory=list)
    accuracy: list[AccuracyResult] = field(default_factory=list)
    per_op: list[PerOpResult] = field(default_factory=list)
    created: str = ""
    cancelled: bool = False
    notes: list[str] = field(default_factory=list)
    schema_version: int = SCHEMA_VERSION

    # ---- lookups ---------------------------------------------------------------------------
    def result(self, model: str, engine: str, threads: int) -> BenchResult | None:
        for r in self.results:
            if (r.model, r.engine, r.threads) == (model, engine, threads):
                return r
        return None

    def engine(self, name: str) -> EngineInfo | None:
        return next((e for e in self.engines if e.name == name), None)

    # ---- JSON ------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = _encode(asdict(self))
        return data

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BenchReport:
        data = _decode(data)
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise ValueError(f"benchmark report schema_version {version!r} is not "
                             f"{SCHEMA_VERSION}")
        results = []
        for r in data.get("results", []):
            r = dict(r)
            r["latency_ms"] = LatencyStats(**r["latency_ms"]) if r.get("latency_ms") else None
            r["what_ran"] = WhatRan(**r["what_ran"]) if r.get("what_ran") else None
            results.append(BenchResult(**r))
        accuracy = []
        for a in data.get("accuracy", []):
            a = dict(a)
            a["outputs"] = [OutputAccuracy(**o) for o in a.get("outputs", [])]
            if a.get("per_tensor") is not None:
                a["per_tensor"] = [TensorError(**t) for t in a["per_tensor"]]
            accuracy.append(AccuracyResult(**a))
        return cls(
            settings=data["settings"], system=data["system"],
            engines=[EngineInfo(**e) for e in data.get("engines", [])],
            models=data["models"], inputs=data["inputs"], results=results, accuracy=accuracy,
            per_op=[per_op_from_dict(p) for p in data.get("per_op", [])],
            created=data.get("created", ""), cancelled=data.get("cancelled", False),
            notes=data.get("notes", []), schema_version=version,
        )

    @classmethod
    def from_json(cls, text: str) -> BenchReport:
        return cls.from_dict(json.loads(text))

    # ---- CSV and text ----------------------------------------------------------------------
    def to_csv(self) -> str:
        """One row per (model, engine, threads); accuracy stays in the JSON."""
        out = io.StringIO()
        writer = csv.DictWriter(out, CSV_FIELDS, lineterminator="\n")
        writer.writeheader()
        for r in self.results:
            lat = r.latency_ms
            eng = self.engine(r.engine)
            writer.writerow({
                "model": r.model, "engine": r.engine, "threads": r.threads, "batch": r.batch,
                "status": r.status, "p50_ms": _num(lat.p50 if lat else None),
                "p90_ms": _num(lat.p90 if lat else None),
                "p99_ms": _num(lat.p99 if lat else None),
                "mean_ms": _num(lat.mean if lat else None),
                "throughput_per_s": _num(r.throughput_per_s),
                "speedup_vs_fp32": _num(r.speedup_vs_fp32), "load_s": _num(r.load_s),
                "int8_ops": "" if not r.what_ran or r.what_ran.int8_ops is None
                else r.what_ran.int8_ops,
                "compute_ops": "" if not r.what_ran or r.what_ran.compute_ops is None
                else r.what_ran.compute_ops,
                "what_ran": r.what_ran.summary if r.what_ran else "",
                "engine_version": eng.version if eng else "", "path": r.path,
                "reason": r.reason,
            })
        return out.getvalue()

    def text(self) -> str:
        """A readable report: settings, latency tables, what ran, accuracy."""
        from qcore.bench.text import render

        return render(self)


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:.6g}"


def _encode(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_encode(v) for v in value]
    return value


_SPECIAL = {"inf": math.inf, "-inf": -math.inf, "nan": math.nan}
_FLOAT_KEYS = {"sqnr_db", "cosine", "cosine_min", "max_abs_diff", "mean_abs_diff",
               "ref_max_abs", "speedup_vs_fp32", "throughput_per_s"}


def _decode(value: Any, key: str = "") -> Any:
    if isinstance(value, str) and key in _FLOAT_KEYS and value in _SPECIAL:
        return _SPECIAL[value]
    if isinstance(value, dict):
        return {k: _decode(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v, key) for v in value]
    return value
