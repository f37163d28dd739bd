"""Where benchmark, accuracy and advisor inputs come from (no Qt): generated data, the user's
``.npy`` / ``.npz`` file, a folder of images with a preprocessing preset, or a text file (one
sentence a line) through a tokenizer file (``tokenizer.json`` / ``vocab.txt``)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from qcore.bench.images import PRESETS, write_image_inputs
from qcore.bench.text_inputs import write_text_inputs

KINDS = {"generated": "Generated (random)", "file": "Data file (.npz / .npy)",
         "images": "Image folder", "text": "Text file + tokenizer\u2026"}
GENERATED_WARNING = ("Computed on generated random inputs: accuracy on random data says little "
                     "about real data. Choose your data in Benchmark \u203a Inputs.")


@dataclass(frozen=True)
class InputSource:
    kind: str = "generated"
    path: str = ""
    preset: str = "imagenet"
    tokenizer: str = ""  # kind "text": the tokenizer.json / vocab.txt the lines go through
    seq_length: int = 0  # kind "text": tokens per line where the model's length is dynamic
    # (qcore bench --seq-length); 0: qcore's default, the longest line

    @property
    def generated(self) -> bool:
        return self.kind == "generated" or not self.path or (
            self.kind == "text" and not self.tokenizer)

    def label(self) -> str:
        """How the source reads beside a number computed from it."""
        if self.generated:
            return "generated random inputs"
        if self.kind == "images":
            return f"images in {Path(self.path).name}/ ({self.preset})"
        if self.kind == "text":
            length = f", {self.seq_length} tokens" if self.seq_length else ""
            return f"{Path(self.path).name} through {Path(self.tokenizer).name}{length}"
        return Path(self.path).name

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @staticmethod
    def from_json(text: object) -> InputSource:
        """A remembered source; anything unreadable or stale is the generated one."""
        try:
            data = json.loads(str(text))
            source = InputSource(str(data["kind"]), str(data["path"]), str(data["preset"]),
                                 str(data.get("tokenizer", "")),
                                 max(0, int(data.get("seq_length", 0))))
        except (ValueError, KeyError, TypeError):
            return InputSource()
        ok = source.kind in KINDS and source.preset in PRESETS and (
            source.generated or Path(source.path).exists()) and (
            source.kind != "text" or Path(source.tokenizer).exists())
        return source if ok else InputSource()


def resolve(source: InputSource, model: str | Path, folder: str | Path) -> str | None:
    """The ``--inputs`` path for ``source``: None for generated data; images are written as
    an ``.npz`` into ``folder``, and so are tokenized lines (call it from a worker: it decodes
    every image)."""
    if source.generated:
        return None
    if source.kind == "images":
        target = Path(folder) / "images.npz"
        return str(write_image_inputs(source.path, model, PRESETS[source.preset], target))
    if source.kind == "text":
        return str(write_text_inputs(source.path, source.tokenizer, model,
                                     Path(folder) / "texts.npz", source.seq_length or None))
    return source.path


def with_inputs(settings: Any, source: InputSource, model: str | Path,
                folder: str | Path) -> Any:
    """``settings`` (benchmark or advisor) reading ``source``: unchanged for generated data."""
    data = resolve(source, model, folder)
    return settings if data is None else replace(settings, inputs=data)
