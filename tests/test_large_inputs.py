"""The scale-run input generator (bench/large_inputs.py): its files parse with the project's
own parsers, hold the asked counts and duplicate rates, and are the same bytes for a seed."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from bench.large_inputs import (
    EXACT,
    FIRST_PMCID,
    FIRST_PMID,
    NEAR,
    generate,
    source_plan,
)
from corpus.jats import parse_pmc_file
from corpus.language import detect_languages
from corpus.minhash import MinHashConfig, jaccard, shingle_set
from corpus.pubmed_xml import parse_pubmed_file
from corpus.quality import assess
from corpus.replay_jsonl import parse_replay_file
from spark_jobs.config import load_config

DOCS = 400
DUP, NEAR_DUP = 0.05, 0.05
MINHASH = MinHashConfig()


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("large")
    return out, generate(DOCS, out, seed=3, dup_rate=DUP, near_dup_rate=NEAR_DUP)


def _rows(out: Path, source: str, parse: Any) -> list[dict[str, Any]]:
    rows = [row for path in sorted((out / source).iterdir()) for row in parse(str(path))]
    assert all(isinstance(row, dict) for row in rows), "nothing quarantined"
    return rows


def _check_duplicates(source: str, n: int, texts: list[str]) -> None:
    """Exact copies repeat their original's text; near copies differ from it by a few words,
    nearly all above the MinHash threshold."""
    plan = source_plan(source, n, 3, DUP, NEAR_DUP)
    assert (plan.kinds == EXACT).sum() == round(n * DUP)
    assert (plan.kinds == NEAR).sum() == round(n * NEAR_DUP)
    assert n - len(set(texts)) == round(n * DUP)
    similar = []
    for i in range(n):
        if plan.kinds[i] == EXACT:
            assert texts[i] == texts[plan.parents[i]]
        elif plan.kinds[i] == NEAR:
            original, copy = texts[plan.parents[i]], texts[i]
            assert copy != original
            similar.append(jaccard(shingle_set(original, MINHASH), shingle_set(copy, MINHASH)))
    # A few words in a short abstract can take it just below the threshold.
    assert min(similar) >= 0.75
    assert sum(s >= MINHASH.threshold for s in similar) >= 0.9 * len(similar)


def _check_filters(source: str, texts: list[str]) -> None:
    """Every document passes the quality rules and langdetect calls it English."""
    assert all(assess(t, source).kept for t in texts)
    assert {lang for lang, _ in detect_languages(texts[:50], 2000)} == {"en"}


def test_pubmed(generated: tuple[Path, dict[str, Any]]) -> None:
    out, manifest = generated
    n = manifest["sources"]["pubmed"]["docs"]
    rows = _rows(out, "pubmed", parse_pubmed_file)
    assert [r["pmid"] for r in rows] == list(range(FIRST_PMID, FIRST_PMID + n))
    assert {r["language"] for r in rows} == {"eng"}
    assert all(r["title"] and r["abstract"] and r["doi"] for r in rows)
    texts = [f"{r['title']}\n{r['abstract']}" for r in rows]
    _check_duplicates("pubmed", n, texts)
    _check_filters("pubmed", texts)


def test_pmc(generated: tuple[Path, dict[str, Any]]) -> None:
    out, manifest = generated
    n = manifest["sources"]["pmc"]["docs"]
    rows = _rows(out, "pmc", parse_pmc_file)
    assert [r["pmcid"] for r in rows] == [f"PMC{FIRST_PMCID + i}" for i in range(n)]
    assert all(r["license"].startswith("cc-by") and r["has_body"] for r in rows)
    assert sum("[bib_ref]" in r["body"] for r in rows) == n  # citations of the references
    texts = [f"{r['title']}\n{r['abstract']}\n{r['body']}" for r in rows]
    assert n - len(set(texts)) == manifest["sources"]["pmc"]["exact_duplicates"]
    _check_filters("pmc", texts)


def test_replay(generated: tuple[Path, dict[str, Any]]) -> None:
    out, manifest = generated
    n = manifest["sources"]["replay"]["docs"]
    rows = _rows(out, "replay", parse_replay_file)
    assert len({r["doc_id"] for r in rows}) == n
    assert Counter(r["language"] for r in rows) == {"en": n}
    texts = [r["text"] for r in rows]
    _check_duplicates("replay", n, texts)
    _check_filters("replay", texts)


def test_counts_and_config(generated: tuple[Path, dict[str, Any]]) -> None:
    out, manifest = generated
    assert sum(s["docs"] for s in manifest["sources"].values()) == DOCS
    config = load_config(out / "corpus.yaml")
    for source in ("pubmed", "pmc", "replay"):
        assert config.sources.model_dump()[source]["inputs"] == [str(out / source)]
    assert config.tokenizer.kind == "sentencepiece"


def test_same_seed_same_bytes(generated: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    out, _ = generated
    generate(DOCS, tmp_path, seed=3, dup_rate=DUP, near_dup_rate=NEAR_DUP)
    files = sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    for name in files:
        assert (out / name).read_bytes() == (tmp_path / name).read_bytes(), name
    other = tmp_path / "other"
    generate(DOCS, other, seed=4, dup_rate=DUP, near_dup_rate=NEAR_DUP)
    first = sorted((out / "pubmed").iterdir())[0]
    assert first.read_bytes() != (other / "pubmed" / first.name).read_bytes()
