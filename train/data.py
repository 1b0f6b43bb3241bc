"""Samples from a shards directory, through megatron-core's own dataset classes.

``BlendedMegatronDatasetBuilder`` / ``GPTDataset`` with per-split blends, as MediTron
trained: documents packed across sequence boundaries, no position or attention reset at
EOD, EOD tokens kept in the loss.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from typing import Any

import torch
from megatron.core.datasets.blended_megatron_dataset_builder import (
    BlendedMegatronDatasetBuilder,
)
from megatron.core.datasets.gpt_dataset import GPTDataset, GPTDatasetConfig
from torch.utils.data import Dataset, default_collate

from train.shards import SPLITS, TokenizerMeta, read_blends, read_tokenizer_meta

__all__ = ["ShardTokenizer", "build_datasets", "get_batch"]


class ShardTokenizer:
    """The part of a tokenizer that ``GPTDataset`` reads: vocabulary size and EOD id.

    No ``pad``: megatron-core then pads with a sentinel id, so no real token (MediTron's
    vocabulary has a ``<PAD>``) loses its loss.
    """

    def __init__(self, meta: TokenizerMeta) -> None:
        self.vocab_size = meta.vocab_size
        self.eod = meta.eod_id
        # Part of the dataset cache key: a different tokenizer must not reuse the indices.
        self.unique_identifiers = OrderedDict(
            [("class", type(self).__name__), ("name", meta.name), ("eod", meta.eod_id)]
        )


def build_datasets(
    shards: str | os.PathLike[str],
    *,
    seq_length: int,
    seed: int,
    num_samples: dict[str, int],
    cache_dir: str | os.PathLike[str],
) -> dict[str, Dataset[dict[str, torch.Tensor]]]:
    """One dataset per split present in ``blends.json`` and asked for in ``num_samples``.

    ``cache_dir`` receives megatron-core's index files, so the shards directory is only
    read. Each dataset holds at least the number of samples asked for (epochs repeat).
    Needs a ``megatron_session``: megatron-core's blended dataset asks for the rank.
    """
    blends = read_blends(shards)
    meta = read_tokenizer_meta(shards)
    present = [split for split in SPLITS if split in blends and num_samples.get(split)]
    per_split = [
        ([prefix for _, prefix in blends[split]], [weight for weight, _ in blends[split]])
        if split in present
        else None
        for split in SPLITS
    ]
    config = GPTDatasetConfig(
        random_seed=seed,
        sequence_length=seq_length,
        blend_per_split=per_split,
        tokenizer=ShardTokenizer(meta),
        reset_position_ids=False,
        reset_attention_mask=False,
        eod_mask_loss=False,
        path_to_cache=str(cache_dir),
    )
    sizes = [num_samples[split] if split in present else None for split in SPLITS]
    built = BlendedMegatronDatasetBuilder(GPTDataset, sizes, lambda: True, config).build()
    return {
        split: dataset for split, dataset in zip(SPLITS, built, strict=True) if dataset is not None
    }


def get_batch(
    dataset: Dataset[dict[str, Any]], start: int, size: int, device: torch.device
) -> dict[str, torch.Tensor]:
    """Samples ``start .. start + size - 1``, collated and moved to ``device``."""
    batch = default_collate([dataset[index] for index in range(start, start + size)])
    return {key: value.to(device, non_blocking=True) for key, value in batch.items()}
