"""The user's conversion choices, with the same keys as the CLI flags."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

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
        self.op_ids_to_skip = sorted({int(i) for i in self.op_ids_to_skip})
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
        data = json.loads(Path(path).read_text())
        known = {"ops_to_quantize", "op_ids_to_skip", "target"}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown keys in {path}: {', '.join(sorted(unknown))}")
        ops = data.get("ops_to_quantize", [])
        ids = data.get("op_ids_to_skip", [])
        if isinstance(ops, str):
            ops = [s for s in ops.split(",") if s.strip()]
        if isinstance(ids, str):
            ids = [int(s) for s in ids.split(",") if s.strip()]
        return cls(list(ops), list(ids), data.get("target", "onnxruntime"))
