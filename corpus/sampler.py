"""A deterministic token-budget sample of documents: the Replay part of the mix.

Each document gets a priority from its doc_id and a seed alone, so the sample does not depend
on input order or partitioning:

    priority = first 8 bytes of SHA-256(f"{seed}:{doc_id}" as UTF-8), a big-endian unsigned int

(ties, which need a 64-bit collision, go to the smaller doc_id). The total budget is split
into integer per-subset budgets by `subset_budgets`. Then, per subset:

    sort the subset's documents by (priority, doc_id), take the running sum of n_tokens, and
    keep every document whose running sum *before* it is < the subset's budget.

So a subset's sample is a prefix of its priority order and reaches its budget within one
document (or takes all when the subset holds fewer tokens than its budget). Adding documents
can only push out the selected documents at the end of that prefix, as many as the budget
needs. A Spark job does the same without collecting documents:

- priority order: `priority_hex_sql(seed)` is a SQL expression giving the priority as 16 lower-
  case hex digits (lexicographic order = numeric order; a LongType would overflow);
- budgets: `subset_budgets` over `groupBy("subset").sum("n_tokens")`, collected (a few rows);
- the rule: `Window.partitionBy("subset").orderBy(<priority hex>, "doc_id")
  .rowsBetween(Window.unboundedPreceding, -1)`, `coalesce(sum("n_tokens").over(w), 0)`
  `< budget` of the row's subset.

doc_ids must be unique (`select` checks; the others cannot).
"""

from __future__ import annotations

import hashlib
import heapq
import math
from collections.abc import Iterable
from fractions import Fraction

import numpy as np
import pyarrow as pa

_PRIORITY_BYTES = 8
_SHARE_SUM_TOLERANCE = 1e-6


def _digest(doc_id: str, seed: int) -> bytes:
    return hashlib.sha256(f"{seed}:{doc_id}".encode()).digest()[:_PRIORITY_BYTES]


def priority(doc_id: str, seed: int) -> int:
    """The document's place in the sampling order for `seed`: smaller is taken first."""
    return int.from_bytes(_digest(doc_id, seed), "big")


def priorities(doc_ids: Iterable[str] | pa.Array | pa.ChunkedArray, seed: int) -> np.ndarray:
    """`priority` of each doc_id, as a uint64 array (for a pandas/Arrow UDF or a chunk)."""
    if isinstance(doc_ids, pa.Array | pa.ChunkedArray):
        if doc_ids.null_count:
            raise ValueError("doc_ids contain nulls")
        doc_ids = doc_ids.to_pylist()
    packed = b"".join(_digest(doc_id, seed) for doc_id in doc_ids)
    return np.frombuffer(packed, dtype=">u8").astype(np.uint64)


def priority_hex_sql(seed: int, doc_id_column: str = "doc_id") -> str:
    """Spark SQL for the priority as 16 hex digits, ordered as `priority` orders ints."""
    return f"substring(sha2(concat('{int(seed)}:', `{doc_id_column}`), 256), 1, 16)"


def subset_budgets(
    tokens_per_subset: dict[str, int],
    budget_tokens: int,
    shares: dict[str, float] | None,
) -> dict[str, int]:
    """Integer token budgets per subset that add up to `budget_tokens`.

    Without `shares`, each subset's share is its part of the input tokens (a subset with no
    tokens gets 0). Given shares must be >= 0 and sum to 1; subsets left out get 0, and a
    subset with a share but no documents keeps its budget unfilled (nothing is moved to
    the others). Rounding: floor, then one more token to the largest remainders (ties by
    subset name), computed exactly.
    """
    if budget_tokens < 0:
        raise ValueError(f"budget_tokens {budget_tokens} is negative")
    if shares is None:
        if any(tokens < 0 for tokens in tokens_per_subset.values()):
            raise ValueError("token counts must be >= 0")
        weights = {subset: Fraction(tokens) for subset, tokens in tokens_per_subset.items()}
    else:
        if any(not math.isfinite(s) or s < 0 for s in shares.values()):
            raise ValueError(f"shares must be finite and >= 0: {shares}")
        if abs(math.fsum(shares.values()) - 1) > _SHARE_SUM_TOLERANCE:
            raise ValueError(f"shares must sum to 1: {shares}")
        weights = {subset: Fraction(share) for subset, share in shares.items()}
        weights.update({s: Fraction(0) for s in tokens_per_subset if s not in shares})
    total = sum(weights.values())
    if total == 0:
        return dict.fromkeys(sorted(weights), 0)
    quotas = {subset: budget_tokens * w / total for subset, w in weights.items()}
    budgets = {subset: math.floor(q) for subset, q in quotas.items()}
    left = budget_tokens - sum(budgets.values())
    by_remainder = sorted(quotas, key=lambda s: (budgets[s] - quotas[s], s))
    for subset in by_remainder[:left]:
        budgets[subset] += 1
    return dict(sorted(budgets.items()))


def _check(doc_id: str, n_tokens: int) -> None:
    if n_tokens < 0:
        raise ValueError(f"{doc_id}: n_tokens {n_tokens} is negative")


def select(
    docs: Iterable[tuple[str, str, int]],
    budget_tokens: int,
    shares: dict[str, float] | None,
    seed: int,
) -> set[str]:
    """The doc_ids sampled from (doc_id, subset, n_tokens) triples by the rule above."""
    by_subset: dict[str, list[tuple[str, int]]] = {}
    seen: set[str] = set()
    for doc_id, subset, n_tokens in docs:
        _check(doc_id, n_tokens)
        if doc_id in seen:
            raise ValueError(f"duplicate doc_id {doc_id!r}")
        seen.add(doc_id)
        by_subset.setdefault(subset, []).append((doc_id, n_tokens))
    tokens = {subset: sum(n for _, n in rows) for subset, rows in by_subset.items()}
    budgets = subset_budgets(tokens, budget_tokens, shares)
    selected: set[str] = set()
    for subset, rows in by_subset.items():
        prio = priorities((doc_id for doc_id, _ in rows), seed).tolist()
        order = sorted(range(len(rows)), key=lambda i: (prio[i], rows[i][0]))
        counts = np.fromiter((rows[i][1] for i in order), dtype=np.int64, count=len(rows))
        before = np.cumsum(counts) - counts
        keep = int(np.searchsorted(before, budgets[subset], side="left"))
        selected.update(rows[i][0] for i in order[:keep])
    return selected


class _Kept:
    """A document in the sample; heapq's smallest is the last in priority order."""

    __slots__ = ("doc_id", "key", "n_tokens")

    def __init__(self, doc_id: str, n_tokens: int, seed: int) -> None:
        self.doc_id = doc_id
        self.n_tokens = n_tokens
        self.key = (priority(doc_id, seed), doc_id)

    def __lt__(self, other: _Kept) -> bool:
        return self.key > other.key


class StreamingSampler:
    """`select` over documents seen one at a time, holding only the documents that are in
    the sample so far (about the budget in tokens, plus one document per subset).

    Shares are required: the budgets must be known before the documents are. The final
    `selected()` equals `select(same docs, budget_tokens, shares, seed)`.
    """

    def __init__(self, budget_tokens: int, shares: dict[str, float], seed: int) -> None:
        self.seed = seed
        self.budgets = subset_budgets({}, budget_tokens, shares)
        self._heaps: dict[str, list[_Kept]] = {subset: [] for subset in self.budgets}
        self._tokens = dict.fromkeys(self.budgets, 0)

    def offer(self, doc_id: str, subset: str, n_tokens: int) -> bool:
        """Consider one document; True when it is in the sample for now."""
        _check(doc_id, n_tokens)
        budget = self.budgets.get(subset, 0)
        if budget == 0:
            return False
        heap = self._heaps[subset]
        doc = _Kept(doc_id, n_tokens, self.seed)
        # A full sample takes the document only if it comes before the current last one.
        if self._tokens[subset] >= budget and doc.key >= heap[0].key:
            return False
        heapq.heappush(heap, doc)
        self._tokens[subset] += n_tokens
        # Drop the last while the others still reach the budget without it.
        while self._tokens[subset] - heap[0].n_tokens >= budget:
            self._tokens[subset] -= heapq.heappop(heap).n_tokens
        return doc.key <= heap[0].key

    def selected(self) -> set[str]:
        """The doc_ids in the sample."""
        return {doc.doc_id for heap in self._heaps.values() for doc in heap}

    def tokens(self) -> dict[str, int]:
        """Tokens in the sample per subset."""
        return dict(self._tokens)
