"""Which items are scored and which serve as in-context examples, built on corpus.benchmarks.

For each benchmark, the scored items are its evaluation split (EVALUATION_SPLITS) with a
gold answer, restricted to the chosen MMLU subjects and, with `max_items`, to a seeded
random subset (the same for every mode, seed and model, so runs compare item for item).

Shots come from the benchmark's own training material, as in MediTron: the first of
SHOT_SPLITS that the local copy has (MedQA/MedMCQA/PubMedQA train, MMLU dev), per MMLU
subject for MMLU. One set of k shots is drawn per (benchmark, subject group, seed) and
used for every item, as MediTron's `train.shuffle(seed).select(range(k))`.

Where a local copy has only evaluation items (the shared fixtures: MedQA and MedMCQA have
no train file), k items per seed are set aside as shots instead, taken from the evaluation
items outside the scored subset when there are enough, else from the subset, in which case
they are not scored for that seed. `shot_source` says which happened, and the results
table reports it.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from corpus.benchmarks import (
    EVALUATION_SPLITS,
    MMLU_MEDICAL,
    BenchmarkItem,
    load_benchmarks,
)

__all__ = ["SET_ASIDE", "SHOT_SPLITS", "BenchmarkPool", "load_pools"]

# Splits shots may come from, in order of preference; a benchmark's evaluation splits are
# never among them.
SHOT_SPLITS = ("train", "dev", "val", "valid", "validation")
SET_ASIDE = "test (set aside)"


@dataclass(frozen=True)
class BenchmarkPool:
    """One benchmark's scored items and where its shots come from.

    `items` is the scored subset (file order); `available` counts the evaluation items in
    the files before `max_items`. `shot_pools` maps a shot group (the MMLU subject, None
    elsewhere) to its training items; a group absent from it sets shots aside from
    `heldout` (its evaluation items outside the subset) or from `items`.
    """

    benchmark: str
    items: list[BenchmarkItem]
    available: int
    shot_pools: dict[str | None, list[BenchmarkItem]] = field(default_factory=dict)
    shot_splits: dict[str | None, str] = field(default_factory=dict)
    heldout: dict[str | None, list[BenchmarkItem]] = field(default_factory=dict)

    def shot_source(self, k: int) -> str | None:
        """The split shots come from ("train", "dev", …, or SET_ASIDE); None when k is 0."""
        if k == 0:
            return None
        groups = {group_of(i) for i in self.items}
        sources = sorted({self.shot_splits.get(g, SET_ASIDE) for g in groups})
        return "+".join(sources)

    def draw(self, k: int, seed: int) -> tuple[dict[str | None, list[BenchmarkItem]], set[str]]:
        """The k shots of each group for `seed`, and the ids of scored items set aside as
        shots (to leave out of scoring for this seed)."""
        shots: dict[str | None, list[BenchmarkItem]] = {}
        excluded: set[str] = set()
        if k == 0:
            return shots, excluded
        by_group: dict[str | None, list[BenchmarkItem]] = {}
        for item in self.items:
            by_group.setdefault(group_of(item), []).append(item)
        for group, scored in by_group.items():
            pool = self.shot_pools.get(group)
            from_scored = False
            if pool is None:
                heldout = self.heldout.get(group, [])
                from_scored = len(heldout) < k
                pool = scored if from_scored else heldout
            if len(pool) < k:
                raise ValueError(
                    f"{self.benchmark}{'' if group is None else ':' + group}: {k} shots asked"
                    f" for, only {len(pool)} items to draw them from"
                )
            # A string seed is hashed with SHA-512 by `random`: the same draw in every process.
            rng = random.Random(f"{self.benchmark}:{group}:{seed}")
            shots[group] = rng.sample(pool, k)
            if from_scored:
                excluded.update(s.item_id for s in shots[group])
        return shots, excluded


def group_of(item: BenchmarkItem) -> str | None:
    """The shot group: MMLU shots come from the item's own subject."""
    return item.subject if item.benchmark == MMLU_MEDICAL else None


def load_pools(
    root: Path,
    benchmarks: Sequence[str],
    subjects: Iterable[str],
    max_items: int | None = None,
    subset_seed: int = 0,
) -> tuple[dict[str, BenchmarkPool], list[str]]:
    """A pool per benchmark found under `root`, and what was asked for and not found
    (as `load_benchmarks` names it; a benchmark without scorable items is missing too)."""
    loaded = load_benchmarks(root, benchmarks)
    subjects = set(subjects)
    missing = [
        m
        for m in loaded.missing
        if not m.startswith(f"{MMLU_MEDICAL}:") or m.split(":", 1)[1] in subjects
    ]
    pools = {}
    for benchmark in benchmarks:
        own = [
            i
            for i in loaded.items
            if i.benchmark == benchmark
            and (benchmark != MMLU_MEDICAL or i.subject in subjects)
            and i.answer
        ]
        scorable = [i for i in own if i.split in EVALUATION_SPLITS[benchmark]]
        if not scorable:
            if benchmark not in missing:
                missing.append(benchmark)
            continue
        subset = _subset(scorable, max_items, f"{benchmark}:{subset_seed}")
        chosen = {i.item_id for i in subset}
        shot_pools, shot_splits, heldout = {}, {}, {}
        for group in {group_of(i) for i in scorable}:
            members = [i for i in own if group_of(i) == group]
            for split in SHOT_SPLITS:
                if split in EVALUATION_SPLITS[benchmark]:
                    continue
                pool = [i for i in members if i.split == split]
                if pool:
                    shot_pools[group], shot_splits[group] = pool, split
                    break
            heldout[group] = [
                i for i in scorable if group_of(i) == group and i.item_id not in chosen
            ]
        pools[benchmark] = BenchmarkPool(
            benchmark, subset, len(scorable), shot_pools, shot_splits, heldout
        )
    return pools, missing


def _subset(items: list[BenchmarkItem], limit: int | None, seed: str) -> list[BenchmarkItem]:
    if limit is None or len(items) <= limit:
        return items
    keep = set(random.Random(seed).sample(range(len(items)), limit))
    return [item for n, item in enumerate(items) if n in keep]
