"""Real token inputs from a text file (one sentence a line) through the user's tokenizer.

The tokenizer is a HuggingFace ``tokenizer.json`` or a BERT WordPiece ``vocab.txt``, both
read offline by the ``tokenizers`` package. A line holding a tab is a sentence pair (the two
halves encoded as a pair, as for cross-encoders). Each line becomes one feed: the model's
``input_ids``, ``attention_mask`` and ``token_type_ids`` (whichever it has), int, shape
``[1, seq]``, truncated and padded to the model's sequence length; where that length is
symbolic, to the length the caller gives, else to the longest line. Like
:mod:`qcore.bench.images`, the result can be written as the ``.npz`` that ``--inputs`` takes.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from qcore.bench.inputs import SOURCE_KEY, InputError, InputSet, InputSpec, model_inputs

if TYPE_CHECKING:
    from tokenizers import Encoding, Tokenizer

MAX_LINES = 256  # like MAX_IMAGES: a benchmark needs a few dozen feeds
MAX_SEQ = 512  # the longest sequence when neither the model nor the caller fixes one
ROLES = ("input_ids", "attention_mask", "token_type_ids")
PAD_TOKENS = ("[PAD]", "<pad>", "<|pad|>", "<|endoftext|>")


def load_tokenizer(path: str | Path) -> Tokenizer:
    """The tokenizer in ``path``: a HuggingFace ``tokenizer.json`` or a WordPiece
    ``vocab.txt`` (uncased BERT rules)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such tokenizer file")
    if path.suffix.lower() not in (".json", ".txt"):
        raise InputError(f"{path}: unsupported tokenizer file; give a HuggingFace "
                         "tokenizer.json or a WordPiece vocab.txt")
    try:
        from tokenizers import Tokenizer
        from tokenizers.implementations.bert_wordpiece import BertWordPieceTokenizer
    except ImportError:
        raise InputError("token inputs need the 'tokenizers' package "
                         "(pip install tokenizers)") from None
    try:
        if path.suffix.lower() == ".json":
            return Tokenizer.from_file(str(path))
        bert = BertWordPieceTokenizer(str(path), lowercase=True)
        inner: Tokenizer = bert._tokenizer
        return inner
    except Exception as exc:  # noqa: BLE001 - tokenizers raises bare Exception
        what = "HuggingFace tokenizer.json" if path.suffix.lower() == ".json" else \
            "WordPiece vocab.txt (one token a line, with [CLS], [SEP], [UNK])"
        detail = " ".join(str(exc).split())[:120]
        raise InputError(f"{path}: not a {what} ({detail})") from None


def text_lines(path: str | Path) -> list[str]:
    """The non-blank lines of ``path``, stripped (at most ``MAX_LINES``)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such text file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a UTF-8 text file (one sentence a line)") from None
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        raise InputError(f"{path}: no sentences (the file is empty; give one sentence a line)")
    return lines[:MAX_LINES]


def token_roles(specs: list[InputSpec]) -> dict[str, str]:
    """``{model input name: role}`` with role one of ``ROLES``; InputError for a model whose
    inputs are not all 2-D integer token inputs with an ``input_ids``."""
    roles: dict[str, str] = {}
    for spec in specs:
        name = spec.name.lower()
        role = ("attention_mask" if "mask" in name
                else "token_type_ids" if "type" in name or "segment" in name
                else "input_ids" if "ids" in name or name in ("input", "tokens")
                else None)
        if role is None or len(spec.shape) != 2 or not np.issubdtype(spec.dtype, np.integer):
            names = ", ".join(f"{s.name} {s.shape} {s.dtype}" for s in specs)
            raise InputError(f"a text file feeds token inputs ({', '.join(ROLES)}: 2-D "
                             f"integers); this model has {names}: give a .npz keyed by input "
                             "name instead")
        if role in roles.values():
            raise InputError(f"the model has two inputs that read as {role}: "
                             f"{', '.join(s.name for s in specs)}")
        roles[spec.name] = role
    if "input_ids" not in roles.values():
        raise InputError(f"the model has no input_ids input (it has "
                         f"{', '.join(s.name for s in specs)})")
    return roles


def _fixed(specs: list[InputSpec], axis: int) -> int | None:
    sizes = {s.shape[axis] for s in specs if isinstance(s.shape[axis], int)}
    sizes.discard(0)
    if len(sizes) > 1:
        raise InputError(f"the model's token inputs disagree on axis {axis}: "
                         f"{', '.join(f'{s.name} {s.shape}' for s in specs)}")
    size = next(iter(sizes), None)
    return int(size) if isinstance(size, int) and size > 0 else None


def _pad_id(tokenizer: Tokenizer) -> int:
    padding: dict[str, Any] | None = tokenizer.padding
    if padding and isinstance(padding.get("pad_id"), int):
        return int(padding["pad_id"])
    for token in PAD_TOKENS:
        found = tokenizer.token_to_id(token)
        if found is not None:
            return int(found)
    return 0


def encode_lines(lines: list[str], tokenizer: Tokenizer, limit: int) -> list[Encoding]:
    """Each line encoded (a tab splits a sentence pair), truncated to ``limit`` tokens."""
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=limit)
    out = []
    for line in lines:
        first, tab, second = line.partition("\t")
        out.append(tokenizer.encode(first.strip(), second.strip()) if tab and second.strip()
                   else tokenizer.encode(first.strip()))
    return out


def load_text_inputs(texts: str | Path, tokenizer: str | Path, model: str | Path,
                     length: int | None = None) -> InputSet:
    """One feed per line of ``texts``, tokenized by ``tokenizer`` for ``model``'s token
    inputs, each ``[1, seq]``: ``seq`` is the model's fixed length, else ``length``, else the
    longest line (at most ``MAX_SEQ``)."""
    specs = model_inputs(model)
    roles = token_roles(specs)
    if _fixed(specs, 0) not in (None, 1):
        raise InputError(f"a text file gives one sentence per feed; the model's batch is "
                         f"fixed at {_fixed(specs, 0)}: give a .npz instead")
    fixed = _fixed(specs, 1)
    if length is not None and length < 2:
        raise InputError(f"sequence length {length}: give at least 2 tokens")
    if fixed is not None and length is not None and length != fixed:
        raise InputError(f"sequence length {length} given, but the model's is fixed at {fixed}")
    lines = text_lines(texts)
    tok = load_tokenizer(tokenizer)
    encodings = encode_lines(lines, tok, fixed or length or MAX_SEQ)
    seq = fixed or length or max(len(e.ids) for e in encodings)
    pad = _pad_id(tok)
    notes: list[str] = []
    cut = sum(bool(e.overflowing) for e in encodings)
    if cut:
        notes.append(f"{cut} of {len(lines)} lines truncated to {seq} tokens")
    feeds = []
    for enc in encodings:
        rest = seq - len(enc.ids)
        values = {"input_ids": list(enc.ids) + [pad] * rest,
                  "attention_mask": list(enc.attention_mask) + [0] * rest,
                  "token_type_ids": list(enc.type_ids) + [0] * rest}
        feeds.append({spec.name: np.array([values[roles[spec.name]]], dtype=spec.dtype)
                      for spec in specs})
    source = (f"{texts} through {tokenizer} "
              f"({len(lines)} lines, {seq} tokens)")
    return InputSet(feeds, source, notes)


def save_feeds(inputs: InputSet, target: str | Path) -> Path:
    """``inputs`` saved as the ``.npz`` that ``--inputs`` takes: per input, an
    ``(N, *shape)`` array (one sample per feed), and the source under ``SOURCE_KEY``."""
    target = Path(target)
    arrays: dict[str, Any] = {name: np.stack([feed[name] for feed in inputs.feeds])
                              for name in inputs.feeds[0]}
    arrays[SOURCE_KEY] = np.array(inputs.source)
    np.savez(target, **arrays)
    return target


def write_text_inputs(texts: str | Path, tokenizer: str | Path, model: str | Path,
                      target: str | Path, length: int | None = None) -> Path:
    """``load_text_inputs`` saved as the ``.npz`` that ``--inputs`` takes."""
    return save_feeds(load_text_inputs(texts, tokenizer, model, length), target)
