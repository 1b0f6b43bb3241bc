"""Benchmark contamination: which documents contain the text of a benchmark item.

The scheme, which the driver that builds the index and every worker that matches with it
must share (it depends on no process, machine or byte order):

- text -> `normalize_tokens`: NFKC, format characters (soft hyphen, zero-width space)
  deleted, casefold, then the runs of Unicode letters and digits. Case, punctuation, line
  breaks and spacing make no difference: "5-year-old" and "5 year old" give the same tokens.
- token value = the first 8 bytes (little-endian) of the token's UTF-8 BLAKE2b, low bit set
  so that it is never 0; 0 stands for a token outside the index's vocabulary.
- hash of tokens t1..tL: h = 0, then h = h * BASE + value(ti) mod 2^64 for each token. One
  Horner step turns the hashes of all windows of length L into those of length L + 1, so a
  batch of documents is hashed at every window length with two array operations each.

What is indexed of each item:

- Multiple choice: the question followed by its options, once without and once with their
  letters ("... a <option A> b <option B> ..."), since a copy prints them either way. Every
  n-gram of these sequences counts except those inside a single option (letter included):
  an option alone is an answer statement found in any textbook, not a copy of the item.
- PubMedQA: the question, each context paragraph and the long answer as separate sequences
  (an abstract puts section labels between them); yes/no/maybe are labels, not text.
- An n-gram found in items with different questions is dropped: such n-grams are templates
  ("which of the following is the most appropriate next step in management of this") or
  boilerplate (vital signs, lab panels, ethics statements) and would flag any USMLE-prep
  page or abstract without pointing at an item. Items sharing one question (a MedQA
  question in its 5- and 4-option forms) keep theirs.
- An item with fewer than n tokens (question and options, letters not counted), or with
  shared n-grams only, is matched whole: a document matches it when it holds the item's
  whole token sequence (with or without option letters) contiguously.

PubMedQA items are also identified by PMID (`BenchmarkIndex.pmids`): the abstract that an
item was made from is contaminated whatever its wording in the corpus.
"""

from __future__ import annotations

import functools
import hashlib
import io
import itertools
import json
import re
import unicodedata
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from corpus.benchmarks import PUBMEDQA, BenchmarkItem

DEFAULT_N = 13
FILTER_BITS = 24  # a 2 MiB filter: about 3% of windows pass it with 500,000 n-grams
BASE = np.uint64(0x9E3779B97F4A7C15)  # odd, so multiplying by it loses no bits mod 2^64
_FORMAT_CHARS = re.compile("[\u00ad\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff]")
_WORD = re.compile(r"[^\W_]+")

MatchKind = Literal["ngram", "whole"]


def normalize_tokens(text: str) -> list[str]:
    """Casefolded word tokens (runs of Unicode letters and digits) of NFKC `text`."""
    if not text.isascii():
        text = _FORMAT_CHARS.sub("", unicodedata.normalize("NFKC", text))
    return _WORD.findall(text.casefold())


@dataclass(frozen=True)
class Match:
    """A document holds `n_overlapping` distinct indexed n-grams of the item ("ngram"), or
    its whole token sequence ("whole"; n_overlapping counts the forms found, with and
    without option letters)."""

    item_id: str
    benchmark: str
    kind: MatchKind
    n_overlapping: int


@dataclass(frozen=True)
class Coverage:
    """Shares of a benchmark's items that the index can find: by n-grams, by n-grams of the
    question alone (without its options), and by their whole text."""

    items: int
    ngram_share: float
    question_ngram_share: float
    whole_share: float


@dataclass(eq=False)
class BenchmarkIndex:
    """N-gram and whole-text hashes of benchmark items, in sorted uint64 arrays with the
    item number of each entry beside them (an n-gram shared by items with one question has
    an entry per item). Plain arrays and lists: it pickles compactly for a Spark broadcast,
    and `to_bytes` / `from_bytes` store it without pickle."""

    n: int
    item_ids: list[str]
    benchmarks: list[str]
    pmids: frozenset[int]
    vocab: dict[str, int]
    ngram_hashes: np.ndarray
    ngram_items: np.ndarray
    whole_hashes: np.ndarray
    whole_items: np.ndarray
    whole_lengths: tuple[int, ...]

    @classmethod
    def build(cls, items: Sequence[BenchmarkItem], n: int = DEFAULT_N) -> BenchmarkIndex:
        return _build(items, n)[0]

    @functools.cached_property
    def hash_filter(self) -> np.ndarray:
        """One bit per value of a hash's top FILTER_BITS bits, set where an indexed hash has
        it: most windows of a document are ruled out by one lookup instead of binary
        searches. Derived on first use; not pickled."""
        present = np.zeros(1 << FILTER_BITS, bool)
        for hashes in (self.ngram_hashes, self.whole_hashes):
            present[hashes >> np.uint64(64 - FILTER_BITS)] = True
        return np.packbits(present, bitorder="little")

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "hash_filter"}

    def matches(self, text: str, min_ngram_hits: int = 1) -> list[Match]:
        """The items that `text` contains, in item order."""
        return find_contamination([text], self, min_ngram_hits)[0]

    def to_bytes(self) -> bytes:
        meta = {
            "n": self.n,
            "item_ids": self.item_ids,
            "benchmarks": self.benchmarks,
            "pmids": sorted(self.pmids),
            "tokens": list(self.vocab),
            "whole_lengths": list(self.whole_lengths),
        }
        buffer = io.BytesIO()
        np.savez(
            buffer,
            meta=np.frombuffer(json.dumps(meta).encode(), np.uint8),
            token_values=np.fromiter(self.vocab.values(), np.uint64, len(self.vocab)),
            ngram_hashes=self.ngram_hashes,
            ngram_items=self.ngram_items,
            whole_hashes=self.whole_hashes,
            whole_items=self.whole_items,
        )
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> BenchmarkIndex:
        with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
            meta = json.loads(arrays["meta"].tobytes())
            return cls(
                n=meta["n"],
                item_ids=meta["item_ids"],
                benchmarks=meta["benchmarks"],
                pmids=frozenset(meta["pmids"]),
                vocab=dict(zip(meta["tokens"], arrays["token_values"].tolist(), strict=True)),
                ngram_hashes=arrays["ngram_hashes"],
                ngram_items=arrays["ngram_items"],
                whole_hashes=arrays["whole_hashes"],
                whole_items=arrays["whole_items"],
                whole_lengths=tuple(meta["whole_lengths"]),
            )


def find_contamination(
    texts: Sequence[str], index: BenchmarkIndex, min_ngram_hits: int = 1
) -> list[list[Match]]:
    """For each text, the items it contains (in item order): those with at least
    `min_ngram_hits` distinct n-grams in it, and the whole-matched items it holds."""
    values, doc_of = _encode(texts, index.vocab)
    # Windows holding a token outside the vocabulary (or a document separator) match nothing.
    unknown = np.concatenate(([0], np.cumsum(values == 0)))
    found: list[tuple[int, int, MatchKind, int]] = []
    wanted = {index.n, *index.whole_lengths}
    hashes = values
    for length in range(1, max(wanted) + 1):
        if length > 1:
            hashes = hashes[:-1] * BASE + values[length - 1 :]
        if not len(hashes):
            break
        if length not in wanted:
            continue
        starts = np.flatnonzero(unknown[length:] == unknown[:-length])
        starts = starts[_may_be_indexed(hashes[starts], index.hash_filter)]
        windows, docs = hashes[starts], doc_of[starts]
        if length == index.n:
            found += _hits(windows, docs, index.ngram_hashes, index.ngram_items, "ngram")
        if length in index.whole_lengths:
            found += _hits(windows, docs, index.whole_hashes, index.whole_items, "whole")
    results: list[list[Match]] = [[] for _ in texts]
    for doc, item, kind, count in sorted(found):
        if kind == "whole" or count >= min_ngram_hits:
            results[doc].append(Match(index.item_ids[item], index.benchmarks[item], kind, count))
    return results


def coverage_report(items: Sequence[BenchmarkItem], n: int = DEFAULT_N) -> dict[str, Coverage]:
    """Per benchmark, the shares of its items that an index of `items` finds by n-grams (of
    the question alone, or with its options) and by their whole text."""
    index, question_only = _build(items, n)
    with_ngrams = set(index.ngram_items.tolist())
    whole = set(index.whole_items.tolist())
    by_benchmark: dict[str, list[int]] = defaultdict(list)
    for i, benchmark in enumerate(index.benchmarks):
        by_benchmark[benchmark].append(i)
    report = {}
    for benchmark, members in by_benchmark.items():
        total = len(members)
        report[benchmark] = Coverage(
            items=total,
            ngram_share=sum(i in with_ngrams for i in members) / total,
            question_ngram_share=sum(i in question_only for i in members) / total,
            whole_share=sum(i in whole for i in members) / total,
        )
    return report


def _may_be_indexed(hashes: np.ndarray, bits: np.ndarray) -> np.ndarray:
    top = hashes >> np.uint64(64 - FILTER_BITS)
    return (bits[top >> np.uint64(3)] >> (top & np.uint64(7)).astype(np.uint8)) & 1 == 1


def _hits(
    windows: np.ndarray,
    docs: np.ndarray,
    table: np.ndarray,
    table_items: np.ndarray,
    kind: MatchKind,
) -> list[tuple[int, int, MatchKind, int]]:
    """(document, item, kind, distinct entries hit) for the windows found in `table`."""
    if not len(table) or not len(windows):
        return []
    lo = np.searchsorted(table, windows)
    hit = np.flatnonzero(table[np.minimum(lo, len(table) - 1)] == windows)
    if not len(hit):
        return []
    # An n-gram can have an entry per item (items sharing a question): take them all.
    lo = lo[hit]
    per_hit = np.searchsorted(table, windows[hit], side="right") - lo
    first = np.repeat(np.cumsum(per_hit) - per_hit, per_hit)
    entries = np.repeat(lo, per_hit) + np.arange(per_hit.sum()) - first
    # A repeated n-gram counts once per document; then distinct entries per (document, item).
    pairs = np.unique(np.column_stack((np.repeat(docs[hit], per_hit), entries)), axis=0)
    doc_items = np.column_stack((pairs[:, 0], table_items[pairs[:, 1]]))
    keys, counts = np.unique(doc_items, axis=0, return_counts=True)
    return [(int(d), int(i), kind, int(c)) for (d, i), c in zip(keys, counts, strict=True)]


def _encode(texts: Sequence[str], vocab: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
    """Token values of all texts end to end, each followed by a 0 separator, and the text
    number of each position."""
    get, zeros = vocab.get, itertools.repeat(0)
    encoded = [[*map(get, normalize_tokens(text), zeros), 0] for text in texts]
    lengths = [len(e) for e in encoded]
    flat = itertools.chain.from_iterable(encoded)
    values = np.fromiter(flat, np.uint64, sum(lengths))
    return values, np.repeat(np.arange(len(texts)), lengths)


def _sequences(item: BenchmarkItem) -> list[tuple[list[str], list[int]]]:
    """The token sequences indexed for an item, each token with its segment: 0 for the
    question, k for the k-th option (and its letter), -1 for PubMedQA's other texts."""
    if item.benchmark == PUBMEDQA:
        texts = [*(item.context or "").split("\n"), item.long_answer or ""]
        sequences = [(tokens, [-1] * len(tokens)) for t in texts if (tokens := normalize_tokens(t))]
        question = normalize_tokens(item.question)
        return [(question, [0] * len(question)), *sequences]
    question = normalize_tokens(item.question)
    plain, plain_segs = list(question), [0] * len(question)
    lettered, lettered_segs = list(question), [0] * len(question)
    for k, (letter, text) in enumerate(sorted(item.options.items()), 1):
        tokens = normalize_tokens(text)
        plain += tokens
        plain_segs += [k] * len(tokens)
        lettered += [letter.casefold(), *tokens]
        lettered_segs += [k] * (len(tokens) + 1)
    return [(plain, plain_segs), (lettered, lettered_segs)]


def _build(items: Sequence[BenchmarkItem], n: int) -> tuple[BenchmarkIndex, set[int]]:
    """The index, and the numbers of the items that n-grams of their question alone find."""
    if n < 1:
        raise ValueError(f"n must be >= 1, not {n}")
    vocab: dict[str, int] = {}
    hashes, owners, in_question = [], [], []
    item_values: list[list[np.ndarray]] = []
    for i, item in enumerate(items):
        item_values.append([])
        sequences = _sequences(item)
        # Fewer than n tokens (a multiple-choice item counted without option letters).
        short = item.benchmark != PUBMEDQA and len(sequences[0][0]) < n
        for tokens, segments in sequences:
            for t in tokens:
                if t not in vocab:
                    vocab[t] = _hash64(t)
            values = np.fromiter((vocab[t] for t in tokens), np.uint64, len(tokens))
            item_values[i].append(values)
            if len(tokens) < n or short:
                continue
            segs = np.asarray(segments)
            first, last = segs[: len(segs) - n + 1], segs[n - 1 :]
            # Out: windows inside one option (they start and end in the same option).
            keep = (first <= 0) | (first != last)
            hashes.append(_window_hashes(values, n)[keep])
            owners.append(np.full(int(keep.sum()), i, np.int32))
            in_question.append(last[keep] == 0)
    h = np.concatenate(hashes or [np.empty(0, np.uint64)])
    item = np.concatenate(owners or [np.empty(0, np.int32)])
    question_only = np.concatenate(in_question or [np.empty(0, bool)])
    question_keys = np.array(
        [_hash64(" ".join(normalize_tokens(it.question))) for it in items], np.uint64
    )
    key = question_keys[item]
    order = np.lexsort((item, key, h))
    h, item, key, question_only = h[order], item[order], key[order], question_only[order]
    new_hash = np.r_[True, h[1:] != h[:-1]]
    new_key = new_hash | np.r_[True, key[1:] != key[:-1]]
    group = np.cumsum(new_hash) - 1
    # Kept: the n-grams whose items all have one question (see the module docstring).
    shared = np.bincount(group, weights=new_key)[group] > 1
    kept = ~shared & (new_hash | np.r_[True, item[1:] != item[:-1]])
    with_ngrams = set(item[kept].tolist())
    whole_hashes, whole_items, whole_lengths = [], [], set()
    for i, values in enumerate(item_values):
        if i in with_ngrams or not values:
            continue
        # PubMedQA's separate sequences are one text here; plain and lettered forms are two.
        forms = [np.concatenate(values)] if items[i].benchmark == PUBMEDQA else values
        for form in {(_window_hashes(v, len(v))[0], len(v)) for v in forms}:
            whole_hashes.append(form[0])
            whole_items.append(i)
            whole_lengths.add(form[1])
    whole_order = np.argsort(np.array(whole_hashes, np.uint64), kind="stable")
    index = BenchmarkIndex(
        n=n,
        item_ids=[it.item_id for it in items],
        benchmarks=[it.benchmark for it in items],
        pmids=frozenset(it.pmid for it in items if it.pmid is not None),
        vocab=vocab,
        ngram_hashes=h[kept],
        ngram_items=item[kept],
        whole_hashes=np.array(whole_hashes, np.uint64)[whole_order],
        whole_items=np.array(whole_items, np.int32)[whole_order],
        whole_lengths=tuple(sorted(whole_lengths)),
    )
    return index, set(item[~shared & question_only].tolist())


def _hash64(text: str) -> int:
    """The first 8 bytes of the UTF-8 BLAKE2b of `text`, low bit set (never 0)."""
    digest = hashlib.blake2b(text.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") | 1


def _window_hashes(values: np.ndarray, length: int) -> np.ndarray:
    """Hashes of all windows of `length` consecutive token values."""
    count = len(values) - length + 1
    if count <= 0:
        return np.empty(0, np.uint64)
    hashes = values[:count].copy()
    for j in range(1, length):
        hashes = hashes * BASE + values[j : count + j]
    return hashes
