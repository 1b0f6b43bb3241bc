"""The shards directory contract, read without torch or megatron-core.

``<shards>/blends.json``: ``{"train": [{"weight": w, "prefix": p}, ...], "valid": [...],
"test": [...]}``; a prefix is the shard path without ``.bin``/``.idx``, absolute or relative
to the directory; a split may be absent. ``<shards>/tokenizer/tokenizer_meta.json``:
``{"kind": "bpe" | "huggingface" | "sentencepiece", "name", "vocab_size", "eod_id", ...}``
with ``tokenizer.json`` or ``tokenizer.model`` beside it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from corpus import megatron_shards

__all__ = [
    "SPLITS",
    "Blend",
    "ShardsError",
    "TokenizerMeta",
    "read_blends",
    "read_tokenizer_meta",
]

SPLITS = ("train", "valid", "test")

Blend = list[tuple[float, str]]


class ShardsError(ValueError):
    """A shards directory that does not hold what training needs."""


@dataclass(frozen=True)
class TokenizerMeta:
    """``tokenizer/tokenizer_meta.json`` of a shards directory."""

    kind: str
    name: str
    vocab_size: int
    eod_id: int
    directory: Path

    @property
    def tokenizer_json(self) -> Path | None:
        """The HF tokenizers file, when the tokenizer has one."""
        path = self.directory / "tokenizer.json"
        return path if path.is_file() else None

    @property
    def sentencepiece_model(self) -> Path | None:
        """The SentencePiece model, when the tokenizer has one."""
        path = self.directory / "tokenizer.model"
        return path if path.is_file() else None


def read_tokenizer_meta(shards: str | os.PathLike[str]) -> TokenizerMeta:
    """Read and check ``<shards>/tokenizer/tokenizer_meta.json``."""
    directory = Path(shards) / "tokenizer"
    path = directory / "tokenizer_meta.json"
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ShardsError(f"{path}: {exc}") from exc
    if not isinstance(raw, dict):
        raise ShardsError(f"{path}: expected a JSON object")
    kind, vocab_size, eod_id = raw.get("kind"), raw.get("vocab_size"), raw.get("eod_id")
    if kind not in ("bpe", "huggingface", "sentencepiece"):
        raise ShardsError(f"{path}: kind must be bpe, huggingface or sentencepiece, got {kind!r}")
    if not isinstance(vocab_size, int) or isinstance(vocab_size, bool) or vocab_size < 2:
        raise ShardsError(f"{path}: vocab_size must be an integer >= 2, got {vocab_size!r}")
    if not isinstance(eod_id, int) or isinstance(eod_id, bool) or not 0 <= eod_id < vocab_size:
        raise ShardsError(f"{path}: eod_id must be an integer in [0, vocab_size), got {eod_id!r}")
    return TokenizerMeta(
        kind=kind,
        name=str(raw.get("name", "")),
        vocab_size=vocab_size,
        eod_id=eod_id,
        directory=directory,
    )


def read_blends(shards: str | os.PathLike[str]) -> dict[str, Blend]:
    """The splits of ``<shards>/blends.json`` (corpus.megatron_shards' format), ready to train.

    A relative prefix is joined to ``shards`` (as given: relative stays relative). Checks
    that every shard exists and holds tokens: megatron-core loops forever on a split that
    has none (STACK.md).
    """
    shards = Path(shards)
    try:
        recorded = megatron_shards.read_blends(shards)
    except (OSError, ValueError) as exc:
        raise ShardsError(str(exc)) from exc
    blends: dict[str, Blend] = {}
    for split, entries in recorded.items():
        blend: Blend = []
        for weight, prefix in entries:
            resolved = shards / prefix  # an absolute prefix stays as it is
            _check_shard(resolved, f"{shards / 'blends.json'}: {split}")
            blend.append((weight, str(resolved)))
        if blend:
            blends[split] = blend
    if "train" not in blends:
        raise ShardsError(f"{shards / 'blends.json'}: no train split")
    return blends


def _check_shard(prefix: Path, where: str) -> None:
    for suffix in (".bin", ".idx"):
        if not prefix.with_name(prefix.name + suffix).is_file():
            raise ShardsError(f"{where}: shard {prefix}{suffix} is missing")
    # The .bin is the tokens back to back: empty means no tokens.
    if prefix.with_name(prefix.name + ".bin").stat().st_size == 0:
        raise ShardsError(f"{where}: shard {prefix} holds no tokens")
