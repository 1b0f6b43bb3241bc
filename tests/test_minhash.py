"""corpus.minhash: bit-for-bit agreement with the Python-integer reference on real texts,
determinism, short documents, LSH parameters against datasketch, band hashes, Jaccard."""

from __future__ import annotations

import random
import unicodedata

import numpy as np
import pyarrow as pa
import pytest
from pydantic import ValidationError

from corpus.minhash import (
    MERSENNE_PRIME,
    MinHashConfig,
    band_hashes,
    estimated_jaccard,
    jaccard,
    normalize_for_shingles,
    optimal_params,
    permutations,
    reference_shingles,
    reference_signature,
    shingle_hashes,
    shingle_set,
    signatures,
    signatures_from_shingles,
)
from corpus.pubmed_xml import parse_pubmed_file
from corpus.replay_jsonl import parse_replay_file
from tests.conftest import FIXTURES

CONFIG = MinHashConfig()


@pytest.fixture(scope="module")
def real_texts() -> list[str]:
    """Web, arXiv, NIH and StackExchange texts and PubMed titles + abstracts, all real."""
    texts = [
        row["text"]
        for path in sorted((FIXTURES / "redpajama").glob("*.json*"))
        for row in parse_replay_file(str(path))
        if isinstance(row, dict)
    ]
    texts += [
        f"{row['title']}\n{row['abstract']}"
        for row in parse_pubmed_file(str(FIXTURES / "pubmed_xml" / "pubmedsample_2019.xml.gz"))
        if isinstance(row, dict) and row.get("abstract")
    ]
    assert len(texts) > 150
    return texts


def _by_definition(text: str) -> str:
    """normalize_for_shingles written out character by character."""
    out = []
    for ch in unicodedata.normalize("NFKC", text).casefold():
        category = unicodedata.category(ch)
        if category[0] in "PSZ" or category in ("Cc", "Cs"):
            out.append(" ")
        elif category != "Cf":
            out.append(ch)
    return " ".join("".join(out).split())


# --- normalisation ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hello,   World!\n\tAgain.", "hello world again"),
        ("IL-6/STAT3 (p<0.05)", "il 6 stat3 p 0 05"),
        ("Ｆｕｌｌ－ｗｉｄｔｈ ＴＥＸＴ", "full width text"),  # NFKC
        ("STRASSE Straße", "strasse strasse"),  # casefold
        ("co\u00admorbidity zero\u200bwidth", "comorbidity zerowidth"),  # Cf deleted
        ("a\u00a0b\u2003c\u3000d\u2014e", "a b c d e"),  # Unicode spaces, em dash
        ("Naïve café — ½ dose ≥ 10 µg", "naïve café 1 2 dose 10 μg"),
        ("हिन्दी भाषा", "हिन्दी भाषा"),  # combining marks stay inside words
        ("医学研究。新しい、方法", "医学研究 新しい 方法"),
        ("lone \ud800 surrogate", "lone surrogate"),
        ("  ...  ", ""),
    ],
)
def test_normalize_examples(text: str, expected: str) -> None:
    assert normalize_for_shingles(text) == expected


def test_normalize_matches_definition(real_texts: list[str]) -> None:
    rng = random.Random(7)
    alphabet = [chr(c) for c in range(0x80)] + [
        "é", "ß", "ﬁ", "µ", "±", "–", "’", "\u00ad", "\u200b", "\u2028", "\x85", "Ａ", "İ",
        "ǅ", "\u0301", "日", "😀", "\U0001d400", "\ufeff",
    ]  # fmt: skip
    randoms = ["".join(rng.choices(alphabet, k=200)) for _ in range(300)]
    for text in real_texts + randoms:
        assert normalize_for_shingles(text) == _by_definition(text)


# --- shingles and signatures against the Python-integer reference ----------------------


def test_signatures_equal_python_int_reference(real_texts: list[str]) -> None:
    sig, has = signatures(real_texts, CONFIG)
    assert has.sum() > 100
    for text, row, flag in zip(real_texts, sig, has, strict=True):
        ref = reference_signature(text, CONFIG)
        assert (ref is not None) == flag
        if ref is not None:
            np.testing.assert_array_equal(row, ref)


def test_other_config_equals_reference(real_texts: list[str]) -> None:
    config = MinHashConfig(num_perm=64, ngram=3, seed=12345, min_shingles=3)
    texts = real_texts[::5]
    sig, has = signatures(texts, config)
    for text, row, flag in zip(texts, sig, has, strict=True):
        ref = reference_signature(text, config)
        assert (ref is not None) == flag
        if ref is not None:
            np.testing.assert_array_equal(row, ref)


def test_shingle_sets_equal_reference(real_texts: list[str]) -> None:
    values, offsets = shingle_hashes(real_texts, CONFIG)
    for i, text in enumerate(real_texts):
        doc = values[offsets[i] : offsets[i + 1]]
        assert set(doc.tolist()) == reference_shingles(text, CONFIG)
        assert np.all(np.diff(doc.astype(np.int64)) > 0)  # sorted, distinct
        assert shingle_set(text, CONFIG) == frozenset(doc.tolist())
    assert int(values.max()) < MERSENNE_PRIME


def test_modular_arithmetic_at_the_edges() -> None:
    """(a*x + b) mod p on the hardest inputs, one shingle per document."""
    config = MinHashConfig(min_shingles=1)
    a, b = permutations(config.num_perm, config.seed)
    edges = [0, 1, 2, (1 << 29) - 1, 1 << 29, (1 << 32) - 1, 1 << 32, (1 << 32) + 1]
    edges += [(1 << 61) - 2, (1 << 61) - 3, (1 << 60), (1 << 61) - (1 << 32)]
    edges += random.Random(3).sample(range(MERSENNE_PRIME), 50)
    values = np.array(edges, dtype=np.uint64)
    offsets = np.arange(len(edges) + 1, dtype=np.int64)
    sig, has = signatures_from_shingles(values, offsets, config)
    assert has.all()
    for x, row in zip(edges, sig, strict=True):
        expected = [
            (ai * x + bi) % MERSENNE_PRIME for ai, bi in zip(a.tolist(), b.tolist(), strict=True)
        ]
        assert row.tolist() == expected


def test_pinned_values() -> None:
    """Stored signatures must stay comparable with new ones: a numpy Generator stream or
    hash change would break that silently, so the first values are pinned."""
    a, b = permutations(128, 1)
    assert a[:3].tolist() == [1180180315279482015, 2191620069684565259, 332409435200520986]
    assert b[:3].tolist() == [654413208501308313, 724343447131633073, 721839216809268966]
    assert sorted(shingle_set("The quick brown fox jumps over the lazy dog", CONFIG)) == [
        649816788384411376,
        731475710682062078,
        884256862535762570,
        1061735850667865824,
        1189523989889676299,
    ]


def test_permutation_ranges() -> None:
    a, b = permutations(4096, 99)
    assert int(a.min()) >= 1 and int(a.max()) < MERSENNE_PRIME
    assert int(b.max()) < MERSENNE_PRIME
    assert not a.flags.writeable


# --- determinism and short documents ---------------------------------------------------


def test_same_signature_alone_in_any_batch_and_order(real_texts: list[str]) -> None:
    texts = real_texts[:60]
    batch, has = signatures(texts, CONFIG)
    alone = [signatures([t], CONFIG) for t in texts]
    for i in range(len(texts)):
        np.testing.assert_array_equal(batch[i], alone[i][0][0])
        assert has[i] == alone[i][1][0]
    order = np.random.default_rng(1).permutation(len(texts))
    shuffled, _ = signatures([texts[i] for i in order], CONFIG)
    np.testing.assert_array_equal(shuffled, batch[order])
    mixed, mixed_has = signatures([None, texts[3], "", texts[4]], CONFIG)
    np.testing.assert_array_equal(mixed[[1, 3]], batch[[3, 4]])
    assert mixed_has.tolist() == [False, has[3], False, has[4]]


def test_short_documents_get_no_signature() -> None:
    short = [
        "",
        "Heart failure.",
        "one two three four",  # fewer words than ngram: no shingle at all
        "Acute kidney injury in children after cardiac surgery: a review",  # 6 shingles
        "the same words " * 40,  # many words, 3 distinct shingles
    ]
    sig, has = signatures(short, CONFIG)
    assert not has.any()
    assert (sig == MERSENNE_PRIME).all()
    assert all(reference_signature(t, CONFIG) is None for t in short)
    long_enough = " ".join(f"w{i}" for i in range(CONFIG.ngram + CONFIG.min_shingles - 1))
    assert signatures([long_enough], CONFIG)[1].tolist() == [True]


def test_empty_batch() -> None:
    sig, has = signatures([], CONFIG)
    assert sig.shape == (0, CONFIG.num_perm) and has.shape == (0,)


def test_shingle_hashes_are_an_arrow_large_list(real_texts: list[str]) -> None:
    values, offsets = shingle_hashes(real_texts[:20], CONFIG)
    column = pa.LargeListArray.from_arrays(offsets, values.view(np.int64))
    assert len(column) == 20
    assert column[5].as_py() == values[offsets[5] : offsets[6]].astype(np.int64).tolist()


# --- Jaccard ---------------------------------------------------------------------------


def _shifted_pair(n_words: int, shift: int) -> tuple[str, str, float]:
    """Two windows of one distinct-word sequence: exact Jaccard known in closed form."""
    words = [f"w{i}" for i in range(n_words + shift)]
    shingles = n_words - CONFIG.ngram + 1
    common = shingles - shift
    return (
        " ".join(words[:n_words]),
        " ".join(words[shift:]),
        common / (shingles + shift),
    )


def test_jaccard_exact() -> None:
    a, b, expected = _shifted_pair(300, 40)
    sa, sb = shingle_set(a, CONFIG), shingle_set(b, CONFIG)
    assert jaccard(sa, sb) == pytest.approx(expected)
    va, oa = shingle_hashes([a, b], CONFIG)
    assert jaccard(va[oa[0] : oa[1]], va[oa[1] : oa[2]]) == pytest.approx(expected)
    assert jaccard(set(), set()) == 0.0
    assert jaccard(sa, sa) == 1.0


def test_estimated_jaccard_close_to_exact(real_texts: list[str]) -> None:
    errors = []
    for shift in range(0, 200, 10):
        a, b, exact = _shifted_pair(400, shift)
        sig, _ = signatures([a, b], CONFIG)
        errors.append(estimated_jaccard(sig[0], sig[1]) - exact)
    # Real texts against themselves with sentences cut away from the front.
    for text in [t for t in real_texts if len(t.split()) > 300][:20]:
        words = text.split()
        for cut in (10, 50, 100):
            other = " ".join(words[cut:])
            exact = jaccard(shingle_set(text, CONFIG), shingle_set(other, CONFIG))
            sig, _ = signatures([text, other], CONFIG)
            errors.append(estimated_jaccard(sig[0], sig[1]) - exact)
    errors = np.abs(np.array(errors))
    # The estimator's standard deviation is at most 0.5 / sqrt(128) = 0.044.
    assert errors.max() < 0.16
    assert errors.mean() < 0.035


def test_estimated_jaccard_rowwise() -> None:
    x = np.array([[1, 2, 3, 4], [1, 2, 3, 4]], dtype=np.uint64)
    y = np.array([[1, 2, 0, 0], [1, 2, 3, 4]], dtype=np.uint64)
    np.testing.assert_allclose(estimated_jaccard(x, y), [0.5, 1.0])


# --- LSH -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("threshold", "num_perm", "weights"),
    [
        (0.7, 128, (0.5, 0.5)),
        (0.8, 128, (0.5, 0.5)),
        (0.5, 256, (0.5, 0.5)),
        (0.9, 64, (0.5, 0.5)),
        (0.7, 128, (0.3, 0.7)),
        (0.85, 100, (0.8, 0.2)),
    ],
)
def test_optimal_params_equal_datasketch(
    threshold: float, num_perm: int, weights: tuple[float, float]
) -> None:
    from datasketch.lsh import _optimal_param

    expected = _optimal_param(threshold, num_perm, *weights)
    assert optimal_params(threshold, num_perm, *weights) == expected


def test_config_derives_and_checks_lsh_params() -> None:
    assert (CONFIG.bands, CONFIG.rows) == optimal_params(0.6, 128)
    assert (CONFIG.bands, CONFIG.rows) == (18, 7)
    assert MinHashConfig(bands=16, rows=8).bands == 16
    assert MinHashConfig.model_validate(CONFIG.model_dump()) == CONFIG
    for bad in (
        {"bands": 16},
        {"bands": 20, "rows": 8},
        {"candidate_threshold": 0.9},
        {"num_perm": 128, "unknown": 1},
    ):
        with pytest.raises(ValidationError):
            MinHashConfig(**bad)


def test_band_hashes() -> None:
    rng = np.random.default_rng(0)
    sig = rng.integers(0, MERSENNE_PRIME, size=(1000, 128), dtype=np.uint64)
    bands, rows = CONFIG.bands, CONFIG.rows
    hashes = band_hashes(sig, bands, rows)
    assert hashes.dtype == np.int64 and hashes.shape == (1000, bands)
    # Same signature, same hashes; the same in another batch too.
    np.testing.assert_array_equal(band_hashes(sig[[7, 7]], bands, rows), hashes[[7, 7]])
    # One changed value changes exactly its own band.
    changed = sig[:1].copy()
    changed[0, 2 * rows + 1] ^= np.uint64(1)
    differs = band_hashes(changed, bands, rows)[0] != hashes[0]
    assert differs.tolist() == [b == 2 for b in range(bands)]
    # Unrelated signatures: no bucket shared across 1000 documents and all bands.
    assert len(np.unique(hashes)) == hashes.size
    # Equal row values in different bands still land in different buckets.
    flat = np.full((1, 128), 5, dtype=np.uint64)
    assert len(set(band_hashes(flat, bands, rows)[0].tolist())) == bands
    # Signatures read back from a Spark bigint column hash the same.
    np.testing.assert_array_equal(band_hashes(sig.view(np.int64), bands, rows), hashes)
    with pytest.raises(ValueError):
        band_hashes(sig, 20, 8)


def test_near_duplicates_share_a_band_and_unrelated_do_not(real_texts: list[str]) -> None:
    long_texts = [t for t in real_texts if len(t.split()) > 200][:30]
    edited = []
    for text in long_texts:
        words = text.split()
        words[len(words) // 2] = "CHANGED"
        edited.append(" ".join(words))
    sig, has = signatures(long_texts + edited, CONFIG)
    assert has.all()
    hashes = band_hashes(sig, CONFIG.bands, CONFIG.rows)
    n = len(long_texts)
    shared = [(hashes[i] == hashes[n + i]).any() for i in range(n)]
    assert all(shared)
    unrelated = [(hashes[i] == hashes[j]).any() for i in range(n) for j in range(i + 1, n)]
    assert not any(unrelated)


def test_benchmark_generator_is_deterministic_and_labelled(real_texts: list[str]) -> None:
    from bench.near_dup_data import labelled_set, scale_docs

    pool = [t for t in real_texts if len(t.split()) > 150]
    first = labelled_set(n_bases=4, n_unrelated=6, levels=(0.9, 0.6), seed=3, pool=pool)
    assert first == labelled_set(n_bases=4, n_unrelated=6, levels=(0.9, 0.6), seed=3, pool=pool)
    texts = {doc.doc_id: doc.text for doc in first.docs}
    assert len(first.docs) == 4 + 4 * 2 + 6 and len(first.pairs) == 8
    for pair in first.pairs:
        exact = jaccard(
            shingle_set(texts[pair.base_id], CONFIG), shingle_set(texts[pair.copy_id], CONFIG)
        )
        assert pair.jaccard == exact < 1.0
        assert abs(exact - pair.target) < 0.1
    scaled = list(scale_docs(300, seed=1, dup_rate=0.2, pool=pool))
    assert scaled == list(scale_docs(300, seed=1, dup_rate=0.2, pool=pool))
    by_id = {doc.doc_id: doc.text for doc in scaled}
    copies = [doc for doc in scaled if doc.dup_of]
    assert copies
    for doc in copies:
        exact = jaccard(shingle_set(by_id[doc.dup_of], CONFIG), shingle_set(doc.text, CONFIG))
        assert doc.jaccard == exact
