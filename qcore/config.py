"""The user's conversion choices, with the same keys as the CLI flags."""

from __future__ import annotations

import contextlib
import json
import operator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import SupportsIndex

TARGETS = ("onnxruntime", "onednn")


@dataclass
class ConvertConfig:
    """``ops_to_quantize`` empty means every supported type; ``op_ids_to_skip`` are op ids."""

    ops_to_quantize: list[str] = field(default_factory=list)
    op_ids_to_skip: list[int] = field(default_factory=list)
    target: str = "onnxruntime"

    def __post_init__(self) -> None:
        if self.target not in TARGETS:
            raise ValueError(f"unknown target {self.target!r}; choose one of {', '.join(TARGETS)}")
        self.op_ids_to_skip = sorted({_op_id(i) for i in self.op_ids_to_skip})
        if not all(isinstance(s, str) for s in self.ops_to_quantize):
            raise ValueError("ops_to_quantize takes op type names (strings)")
        self.ops_to_quantize = sorted({s.strip() for s in self.ops_to_quantize if s.strip()})

    @classmethod
    def from_flags(
        cls, ops_to_quantize: str = "", op_ids_to_skip: str = "", target: str = "onnxruntime"
    ) -> ConvertConfig:
        """Parse Paddle-style comma-separated flag values."""
        ops = [s for s in ops_to_quantize.split(",") if s.strip()]
        try:
            ids = [int(s) for s in op_ids_to_skip.split(",") if s.strip()]
        except ValueError as exc:
            raise ValueError(f"--op_ids_to_skip takes comma-separated integers: {exc}") from None
        return cls(ops, ids, target)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json() + "\n")

    @classmethod
    def load(cls, path: str | Path) -> ConvertConfig:
        """Read a JSON config; every value is checked, and a wrong one named in words.

        Raises:
            ValueError: Not JSON, not an object, an unknown key, ``op_ids_to_skip`` not
                integers (bools and floats are refused), ``ops_to_quantize`` not strings, or
                an unknown ``target``.
        """
        if Path(path).exists() and not Path(path).is_file():
            raise ValueError(f"{path}: not a regular file (a config is a JSON file)")
        try:
            data = json.loads(Path(path).read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not a JSON file ({exc.msg}, line {exc.lineno})") from None
        except UnicodeDecodeError:
            raise ValueError(f"{path}: not a JSON file (not UTF-8 text)") from None
        if not isinstance(data, dict):
            raise ValueError(f"{path}: a config is a JSON object with the keys "
                             f"ops_to_quantize, op_ids_to_skip and target, not {_kind(data)}")
        known = {"ops_to_quantize", "op_ids_to_skip", "target"}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown keys in {path}: {', '.join(sorted(unknown))}")
        ops = _strings(path, data.get("ops_to_quantize", []))
        ids = _ints(path, data.get("op_ids_to_skip", []))
        target = data.get("target", "onnxruntime")
        if not isinstance(target, str) or target not in TARGETS:
            raise ValueError(f"{path}: target must be one of {', '.join(TARGETS)}, not "
                             f"{json.dumps(target)[:40]}")
        return cls(ops, ids, target)


def _op_id(value: object) -> int:
    """An op id: an integer (numpy's too), never a bool or a float that would be truncated."""
    if isinstance(value, SupportsIndex) and not isinstance(value, bool):
        with contextlib.suppress(TypeError):
            return operator.index(value)
    raise ValueError(f"op_ids_to_skip takes integer op ids, not {value!r}")


def _kind(value: object) -> str:
    """How a JSON value is called in a message: ``a list``, ``the number 5``, ``null``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"the boolean {json.dumps(value)}"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the string {json.dumps(value)[:40]}"
    return "a list" if isinstance(value, list) else "an object"


def _strings(path: str | Path, value: object) -> list[str]:
    """``ops_to_quantize``: a list of op type strings, or one comma-separated string."""
    if isinstance(value, str):
        return [s for s in value.split(",") if s.strip()]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        bad = value if not isinstance(value, list) else next(
            v for v in value if not isinstance(v, str))
        raise ValueError(f"{path}: ops_to_quantize must be a list of op type names, but it "
                         f"holds {_kind(bad)}")
    return list(value)


def _ints(path: str | Path, value: object) -> list[int]:
    """``op_ids_to_skip``: a list of integers (not bools, not floats), or one comma-separated
    string of them."""
    if isinstance(value, str):
        try:
            return [int(s) for s in value.split(",") if s.strip()]
        except ValueError:
            raise ValueError(f"{path}: op_ids_to_skip must list integer op ids, not "
                             f"{json.dumps(value)[:40]}") from None
    if not isinstance(value, list):
        raise ValueError(f"{path}: op_ids_to_skip must be a list of integer op ids, not "
                         f"{_kind(value)}")
    for item in value:
        if isinstance(item, bool) or not isinstance(item, int):
            raise ValueError(f"{path}: op_ids_to_skip must list integer op ids, but it "
                             f"holds {_kind(item)}")
    return list(value)
