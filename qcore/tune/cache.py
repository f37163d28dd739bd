"""The measurements of ``--tune``, kept beside the INT8 output (``<name>.qcore-tune.json``).

An entry holds every trial timed for one *key*: the model's content hash, the conversion
of its default placement (so a changed converter misses too), the config, the engine and its
version, the machine (CPU model and flags, logical CPUs), the thread count and the inputs.
Any change gives a new key, and the message says which of these changed. Trials are keyed by
the two ``op_ids_to_skip`` sets they compared, so the search replays from the cache without
timing anything; the final check (default, tuned and FP32 side by side) is keyed by the
tuned set, and ``summary`` is the last run's result in a few numbers. The file is replaced
atomically after every trial (an interrupted run keeps what it measured); it is never the
input model, and a file that is not ours is not read.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from qcore.files import check_output, write_bytes_atomic
from qcore.safe_io import ModelError, regular_file_size
from qcore.tune.timing import PairTiming, Stats

FORMAT = "qcore-tune/1"
SUFFIX = ".qcore-tune.json"
MAX_BYTES = 16 * 2**20
MAX_ENTRIES = 8  # keys kept per file (other engines, thread counts...), newest first

#: What each key field is called in a message.
FIELD_NAMES = {
    "model_sha256": "the model", "default_int8_sha256": "qcore's conversion",
    "config": "the config", "engine": "the engine", "engine_version": "the engine version",
    "machine": "the machine", "threads": "the thread count", "inputs": "the inputs",
}

TrialKey = tuple[tuple[int, ...], tuple[int, ...]]


def cache_path(int8_path: str | Path) -> Path:
    """``out/int8.onnx`` -> ``out/int8.qcore-tune.json``."""
    path = Path(int8_path)
    stem = path.stem if path.suffix == ".onnx" else path.name
    return path.with_name(stem + SUFFIX)


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(2**20), b""):
            digest.update(block)
    return digest.hexdigest()


def key_of(fields: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


def _trial_key(base: list[int] | tuple[int, ...], trial: list[int] | tuple[int, ...]
               ) -> TrialKey:
    return tuple(sorted(base)), tuple(sorted(trial))


class TuneCache:
    """One key's trials, read from and written to ``path`` (None: in memory only)."""

    def __init__(self, path: Path | None, fields: dict[str, Any], *inputs: str | Path) -> None:
        self.path, self.fields, self.key = path, fields, key_of(fields)
        self.trials: dict[TrialKey, PairTiming] = {}
        self.finals: dict[tuple[int, ...], list[Stats]] = {}  # tuned set -> default, tuned, fp32
        self.summary: dict[str, Any] = {}
        self.others: list[dict[str, Any]] = []  # entries of other keys, kept in the file
        # the largest --tune-budget a search of this key ran out of (0: none did); a run
        # with no larger budget replays the cache and measures nothing new
        self.stopped_at = 0.0
        self.note = "no cache file" if path is None else ""
        if path is not None:
            check_output(path, *inputs)  # never the input model
            self._read(path)

    def _read(self, path: Path) -> None:
        if not path.exists():
            self.note = f"no cache yet ({path.name})"
            return
        try:
            if regular_file_size(path, str(path)) > MAX_BYTES:
                raise ValueError("too large")
            data = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(data, dict) or data.get("format") != FORMAT:
                raise ValueError(f"not a {FORMAT} file")
            entries = [e for e in data.get("entries", []) if isinstance(e, dict)]
        except (ModelError, OSError, ValueError) as exc:
            self.note = f"cache {path.name} not used ({' '.join(str(exc).split())[:80]})"
            if isinstance(exc, ModelError):
                self.path = None  # not a regular file: leave it alone
            return
        mine = next((e for e in entries if e.get("key") == self.key), None)
        self.others = [e for e in entries if e is not mine][: MAX_ENTRIES - 1]
        if mine is None:
            self.note = self._miss(entries)
            return
        self._entry(mine)
        summary = mine.get("summary")
        self.summary = summary if isinstance(summary, dict) else {}
        self.note = f"cache {path.name}: {len(self.trials)} measurements"

    def _entry(self, mine: dict[str, Any]) -> None:
        """Read this key's entry (a malformed trial or final is skipped)."""
        stopped = mine.get("stopped_at_budget_s", 0.0)
        self.stopped_at = float(stopped) if isinstance(stopped, int | float) else 0.0
        for trial in mine.get("trials", []):
            try:
                key = _trial_key(trial["base"], trial["trial"])
                self.trials[key] = PairTiming.from_dict(trial["timing"])
            except (KeyError, TypeError, ValueError):
                continue
        for final in mine.get("finals", []):
            try:
                self.finals[tuple(sorted(final["tuned"]))] = [Stats.from_dict(d)
                                                              for d in final["stats"]]
            except (KeyError, TypeError, ValueError):
                continue

    def _miss(self, entries: list[dict[str, Any]]) -> str:
        """Which key fields differ from the newest entry (why nothing was reused)."""
        if not entries or not isinstance(entries[0].get("fields"), dict):
            return "cache holds no measurements for this model"
        old = entries[0]["fields"]
        changed = [FIELD_NAMES.get(k, k) for k in self.fields if old.get(k) != self.fields[k]]
        return ("cache not reused: " + ", ".join(changed) + " changed since it was measured"
                if changed else "cache holds no measurements for this model")

    def lookup(self, base: list[int], trial: list[int]) -> PairTiming | None:
        return self.trials.get(_trial_key(base, trial))

    def store(self, base: list[int], trial: list[int], timing: PairTiming) -> None:
        """Remember a trial and rewrite the file atomically."""
        self.trials[_trial_key(base, trial)] = timing
        self.write()

    def final(self, tuned: list[int]) -> list[Stats] | None:
        """The final check of ``tuned`` (default, tuned, FP32; then their faster halves), if
        measured."""
        found = self.finals.get(tuple(sorted(tuned)))
        return found if found is not None and len(found) == 6 else None

    def store_final(self, tuned: list[int], stats: list[Stats]) -> None:
        self.finals[tuple(sorted(tuned))] = stats
        self.write()

    def store_summary(self, summary: dict[str, Any]) -> None:
        """Keep the last run's summary (see ``TuneResult.summary``) in the entry."""
        self.summary = summary
        self.write()

    def stopped(self, budget_s: float) -> None:
        """A search ran out of ``budget_s``: remember it (see :attr:`stopped_at`)."""
        if budget_s > self.stopped_at:
            self.stopped_at = budget_s
            self.write()

    def write(self) -> None:
        if self.path is None:
            return
        entry = {"key": self.key, "fields": self.fields, "stopped_at_budget_s": self.stopped_at,
                 "summary": self.summary,
                 "trials": [{"base": list(b), "trial": list(t), "timing": v.to_dict()}
                            for (b, t), v in self.trials.items()],
                 "finals": [{"tuned": list(k), "stats": [asdict(x) for x in v]}
                            for k, v in self.finals.items()]}
        data = {"format": FORMAT, "entries": [entry, *self.others]}
        write_bytes_atomic(self.path, (json.dumps(data, indent=1) + "\n").encode())
