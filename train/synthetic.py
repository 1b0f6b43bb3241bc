"""Small synthetic shards directories in the corpus pipeline's layout, for tests and checks.

Documents are walks of a sparse random Markov chain (each token has a few likely
successors), so a model has something to learn: the loss falls from ln(vocab) towards the
chain's entropy. Shards are written with megatron-core's own ``IndexedDatasetBuilder``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from megatron.core.datasets.indexed_dataset import IndexedDatasetBuilder
from tokenizers import Tokenizer
from tokenizers.models import WordLevel
from tokenizers.pre_tokenizers import WhitespaceSplit

__all__ = ["write_synthetic_shards"]

# Shards per split; train has two so its blend exercises weights.
_SHARDS = {"train": ("train_a", "train_b"), "valid": ("valid",), "test": ("test",)}


def _walk(
    rng: np.random.Generator, nexts: np.ndarray, cumulative: np.ndarray, length: int
) -> list[int]:
    tokens = [int(rng.integers(nexts.shape[0]))]
    for draw in rng.random(length - 1):
        row = tokens[-1]
        choice = min(int(np.searchsorted(cumulative[row], draw)), nexts.shape[1] - 1)
        tokens.append(int(nexts[row, choice]))
    return tokens


def _write_tokenizer(directory: Path, vocab_size: int, eod_id: int, json_file: bool) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    meta = {"kind": "bpe", "name": "synthetic", "vocab_size": vocab_size, "eod_id": eod_id}
    (directory / "tokenizer_meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    if json_file:
        vocab = {f"t{token}": token for token in range(vocab_size - 1)} | {"<eod>": eod_id}
        tokenizer = Tokenizer(WordLevel(vocab, unk_token="<eod>"))
        tokenizer.pre_tokenizer = WhitespaceSplit()
        tokenizer.save(str(directory / "tokenizer.json"))


def write_synthetic_shards(
    directory: str | Path,
    *,
    vocab_size: int = 96,
    docs_per_shard: int = 200,
    doc_length: tuple[int, int] = (16, 128),
    successors: int = 3,
    seed: int = 0,
    tokenizer_json: bool = True,
) -> Path:
    """Write ``blends.json``, ``tokenizer/`` and uint16 shards into ``directory``.

    The last id is EOD and ends every document. Train prefixes are relative (``train_a``,
    ``train_b``, weights 0.7 and 0.3), valid's too, test's absolute, as the contract allows.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    eod_id = vocab_size - 1
    words = vocab_size - 1
    # Sparse chain: `successors` next tokens per token with Dirichlet probabilities.
    nexts = rng.integers(words, size=(words, successors))
    cumulative = np.cumsum(rng.dirichlet(np.ones(successors), size=words), axis=1)
    for names in _SHARDS.values():
        for name in names:
            builder = IndexedDatasetBuilder(str(directory / f"{name}.bin"), dtype=np.uint16)
            for _ in range(docs_per_shard):
                tokens = _walk(rng, nexts, cumulative, int(rng.integers(*doc_length)))
                tokens.append(eod_id)
                builder.add_item(torch.tensor(tokens, dtype=torch.int64))
                builder.end_document()
            builder.finalize(str(directory / f"{name}.idx"))
    blends = {
        "train": [{"weight": 0.7, "prefix": "train_a"}, {"weight": 0.3, "prefix": "train_b"}],
        "valid": [{"weight": 1.0, "prefix": "valid"}],
        "test": [{"weight": 1.0, "prefix": str((directory / "test").resolve())}],
    }
    (directory / "blends.json").write_text(json.dumps(blends, indent=2) + "\n")
    _write_tokenizer(directory / "tokenizer", vocab_size, eod_id, tokenizer_json)
    return directory
