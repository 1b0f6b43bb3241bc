"""The deterministic token-budget sampler: batch, distributed (simulated) and streaming."""

from __future__ import annotations

import hashlib
import random

import numpy as np
import pyarrow as pa
import pytest

from corpus.sampler import (
    StreamingSampler,
    priorities,
    priority,
    priority_hex_sql,
    select,
    subset_budgets,
)

SHARES = {"arxiv": 0.5, "c4": 0.3, "github": 0.2}
Doc = tuple[str, str, int]


def make_docs(n: int, seed: int = 0, prefix: str = "d") -> list[Doc]:
    rng = random.Random(seed)
    subsets = ["arxiv", "c4", "c4", "github", "book"]
    return [(f"{prefix}{i}", rng.choice(subsets), rng.randint(0, 900)) for i in range(n)]


def tokens_by_subset(docs: list[Doc], chosen: set[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for doc_id, subset, n in docs:
        if doc_id in chosen:
            out[subset] = out.get(subset, 0) + n
    return out


def ordered(docs: list[Doc], subset: str, seed: int) -> list[Doc]:
    return sorted((d for d in docs if d[1] == subset), key=lambda d: (priority(d[0], seed), d[0]))


def test_priority_definition_and_vector_forms() -> None:
    ids = ["replay:c4:abc", "replay:arxiv:1712.01076", "é ü"]
    expected = [int(hashlib.sha256(f"7:{i}".encode()).hexdigest()[:16], 16) for i in ids]
    assert [priority(i, 7) for i in ids] == expected
    for form in (ids, pa.array(ids), pa.chunked_array([ids[:1], ids[1:]])):
        out = priorities(form, 7)
        assert out.dtype == np.uint64
        assert out.tolist() == expected
    assert priorities([], 7).tolist() == []
    with pytest.raises(ValueError):
        priorities(pa.array(["a", None]), 7)
    assert priority("a", 1) != priority("a", 2)


def test_priority_hex_sql_spells_the_same_hash() -> None:
    # sha2(concat('<seed>:', doc_id), 256) is SHA-256's lower-case hex; its first 16 digits
    # are the priority, and string order on them is the numeric order.
    assert priority_hex_sql(-3) == "substring(sha2(concat('-3:', `doc_id`), 256), 1, 16)"
    ids = [f"x{i}" for i in range(200)]
    by_hex = sorted(ids, key=lambda i: hashlib.sha256(f"-3:{i}".encode()).hexdigest()[:16])
    assert sorted(ids, key=lambda i: priority(i, -3)) == by_hex


def test_subset_budgets() -> None:
    assert subset_budgets({"a": 300, "b": 100}, 100, None) == {"a": 75, "b": 25}
    assert sum(subset_budgets({"a": 1, "b": 1, "c": 1}, 100, None).values()) == 100
    # Equal remainders go to the subset names in order.
    assert subset_budgets({"a": 1, "b": 1, "c": 1}, 100, None) == {"a": 34, "b": 33, "c": 33}
    assert subset_budgets({"a": 10, "z": 5}, 1000, SHARES) == {
        "a": 0,
        "arxiv": 500,
        "c4": 300,
        "github": 200,
        "z": 0,
    }
    assert subset_budgets({"a": 0}, 100, None) == {"a": 0}
    assert subset_budgets({}, 7, {"x": 0.1, "y": 0.2, "z": 0.7}) == {"x": 1, "y": 1, "z": 5}
    for bad in ({"a": 0.5}, {"a": 1.5, "b": -0.5}, {"a": float("nan")}):
        with pytest.raises(ValueError):
            subset_budgets({}, 10, bad)
    with pytest.raises(ValueError):
        subset_budgets({"a": 1}, -1, None)


@pytest.mark.parametrize("shares", [None, SHARES], ids=["proportional", "explicit"])
def test_budget_is_hit_within_one_document_per_subset(shares: dict | None) -> None:
    docs = make_docs(3000)
    budget = 200_000
    chosen = select(docs, budget, shares, seed=11)
    available = tokens_by_subset(docs, {d[0] for d in docs})
    budgets = subset_budgets(available, budget, shares)
    got = tokens_by_subset(docs, chosen)
    for subset, subset_budget in budgets.items():
        taken = ordered([d for d in docs if d[0] in chosen], subset, 11)
        if subset_budget == 0:
            assert not taken
            continue
        # Reached, and without its last document the subset would be below budget.
        assert subset_budget <= got[subset] < subset_budget + taken[-1][2]


def test_shares_are_respected() -> None:
    docs = make_docs(4000, seed=5)
    budget = 300_000
    got = tokens_by_subset(docs, select(docs, budget, SHARES, seed=1))
    assert set(got) == set(SHARES)  # "book" has no share
    for subset, share in SHARES.items():
        assert share * budget <= got[subset] < share * budget + 900


def test_same_sample_for_any_input_order() -> None:
    docs = make_docs(2000)
    reference = select(docs, 100_000, None, seed=3)
    for shuffle_seed in range(3):
        shuffled = docs[:]
        random.Random(shuffle_seed).shuffle(shuffled)
        assert select(shuffled, 100_000, None, seed=3) == reference
        assert select(iter(shuffled), 100_000, None, seed=3) == reference


def distributed(docs: list[Doc], partitions: int, budget: int, seed: int) -> set[str]:
    """What the Spark job does: priorities and partial token sums per partition, then the
    documented window rule over the union."""
    chunks = [docs[i::partitions] for i in range(partitions)]
    rows: list[tuple[str, str, str, int]] = []
    totals: dict[str, int] = {}
    for chunk in chunks:
        prio = priorities(pa.array([d[0] for d in chunk]), seed)
        rows.extend((s, f"{int(p):016x}", i, n) for (i, s, n), p in zip(chunk, prio, strict=True))
        for _, subset, n in chunk:
            totals[subset] = totals.get(subset, 0) + n
    budgets = subset_budgets(totals, budget, None)
    kept: set[str] = set()
    running: dict[str, int] = {}
    for subset, _, doc_id, n in sorted(rows):
        if running.get(subset, 0) < budgets[subset]:
            kept.add(doc_id)
        running[subset] = running.get(subset, 0) + n
    return kept


def test_same_sample_for_any_partitioning() -> None:
    docs = make_docs(2500, seed=9)
    random.Random(1).shuffle(docs)
    reference = select(docs, 150_000, None, seed=21)
    assert distributed(docs, 1, 150_000, 21) == reference
    assert distributed(docs, 8, 150_000, 21) == reference


def test_a_different_seed_gives_a_different_sample() -> None:
    docs = make_docs(2000)
    samples = [frozenset(select(docs, 100_000, None, seed=s)) for s in range(4)]
    assert len(set(samples)) == 4


def test_adding_documents_only_pushes_out_the_end_of_the_prefix() -> None:
    old_docs = make_docs(1500, seed=2)
    new_docs = old_docs + make_docs(1500, seed=3, prefix="n")
    seed, budget = 4, 80_000
    old = select(old_docs, budget, SHARES, seed)
    new = select(new_docs, budget, SHARES, seed)
    budgets = subset_budgets({}, budget, SHARES)
    for subset, subset_budget in budgets.items():
        order = [d[0] for d in ordered(new_docs, subset, seed)]
        kept = [i for i in order if i in new]
        assert kept == order[: len(kept)]  # a prefix of the priority order
        dropped = {d[0] for d in old_docs if d[0] in old and d[0] not in new and d[1] == subset}
        # Old documents leave only from behind the new sample, and only once it is full.
        assert all(order.index(i) >= len(kept) for i in dropped)
        if dropped:
            assert tokens_by_subset(new_docs, new)[subset] >= subset_budget
    assert old - new  # the test data does push some out
    # Documents that come after every selected one change nothing.
    last = {
        s: max(priority(i, seed) for i, t, _ in old_docs if i in old and t == s) for s in SHARES
    }
    late = [
        (i, t, n)
        for i, t, n in make_docs(3000, seed=8, prefix="z")
        if t in SHARES and priority(i, seed) > last[t]
    ]
    assert late
    assert select(old_docs + late, budget, SHARES, seed) == old


def test_everything_or_nothing() -> None:
    docs = make_docs(300)
    assert select(docs, 10**9, None, seed=0) == {d[0] for d in docs}
    assert select(docs, 0, None, seed=0) == set()
    assert select([], 100, None, seed=0) == set()


def test_bad_input_raises() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        select([("a", "c4", 1), ("a", "c4", 1)], 10, None, seed=0)
    with pytest.raises(ValueError, match="negative"):
        select([("a", "c4", -1)], 10, None, seed=0)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("budget", [0, 1, 5_000, 150_000, 10**8])
def test_streaming_equals_batch(seed: int, budget: int) -> None:
    docs = make_docs(2000, seed=seed)
    sampler = StreamingSampler(budget, SHARES, seed)
    accepted = {doc_id for doc_id, subset, n in docs if sampler.offer(doc_id, subset, n)}
    chosen = sampler.selected()
    assert chosen == select(docs, budget, SHARES, seed)
    assert chosen <= accepted  # a refused document never comes back
    assert sampler.tokens() == {s: tokens_by_subset(docs, chosen).get(s, 0) for s in SHARES}
    # Bounded memory: at most one document past each budget.
    for subset, tokens in sampler.tokens().items():
        assert tokens < sampler.budgets[subset] + 901


def test_streaming_with_zero_token_documents() -> None:
    docs = [(f"z{i}", "c4", i % 3) for i in range(500)]
    sampler = StreamingSampler(50, {"c4": 1.0}, seed=5)
    for doc in reversed(docs):
        sampler.offer(*doc)
    assert sampler.selected() == select(docs, 50, {"c4": 1.0}, seed=5)
