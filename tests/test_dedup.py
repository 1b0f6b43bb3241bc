"""`gapreplay dedup`: MinHash LSH near-duplicate removal on Spark, checked against exact
Jaccard on planted copies; deterministic, re-runnable, incremental."""

from __future__ import annotations

import json
import random

import pytest

from corpus.minhash import MinHashConfig, jaccard, shingle_set
from corpus.replay_jsonl import parse_replay_file
from schemas.silver import DECISIONS, DEDUP_CLUSTERS, DOCUMENTS, SIGNATURES
from spark_jobs.dedup import connected_components, dedup, verify_pairs
from spark_jobs.tables import table_path
from tests.conftest import FIXTURES
from tests.silver_rows import add_documents as plant
from tests.silver_rows import document_row

CONFIG = MinHashConfig()


def base_texts() -> list[str]:
    texts = []
    for path in sorted((FIXTURES / "redpajama").glob("*.jsonl")):
        texts += [r["text"] for r in parse_replay_file(str(path)) if isinstance(r, dict)]
    return [t for t in texts if 1500 < len(t) < 6000][:12]


def edited(text: str, every: int, seed: int) -> str:
    """Replace one word in `every` with a new one."""
    rng = random.Random(seed)
    words = text.split()
    for i in range(rng.randrange(every), len(words), every):
        words[i] = f"edit{rng.randrange(10**6)}"
    return " ".join(words)


def add_documents(spark, root: str, docs: list[tuple[str, str, str]]) -> None:
    plant(spark, root, [document_row(doc_id, source, text) for doc_id, source, text in docs])


def planted() -> tuple[list[tuple[str, str, str]], dict[str, float]]:
    """Base texts, close copies (J >= 0.8) and distant ones (J < 0.7), with exact Jaccards."""
    bases = base_texts()
    docs, exact = [], {}
    for i, text in enumerate(bases[:8]):
        docs.append((f"replay:base{i:02d}", "replay", text))
        for kind, every in (("close", 60), ("far", 6)):
            copy = edited(text, every, seed=i)
            doc_id = f"replay:{kind}{i:02d}"
            docs.append((doc_id, "replay", copy))
            exact[doc_id] = jaccard(shingle_set(text, CONFIG), shingle_set(copy, CONFIG))
    short = "Wash hands before and after every patient contact."
    docs += [("replay:short1", "replay", short), ("replay:short2", "replay", short + " Always.")]
    return docs, exact


@pytest.fixture(scope="module")
def deduped(spark, tmp_path_factory):
    root = str(tmp_path_factory.mktemp("dedup") / "lakehouse")
    docs, exact = planted()
    add_documents(spark, root, docs)
    result = dedup(spark, root, CONFIG)
    return root, result, docs, exact


def clusters(spark, root):
    frame = spark.read.format("delta").load(table_path(root, DEDUP_CLUSTERS))
    return sorted((r.doc_id, r.cluster_id, r.representative_id) for r in frame.collect())


def test_planted_copies_removed_by_exact_jaccard(spark, deduped):
    root, result, docs, exact = deduped
    assert all(exact[f"replay:close{i:02d}"] >= 0.8 for i in range(8))
    assert all(exact[f"replay:far{i:02d}"] < 0.7 for i in range(8))
    kept = {
        r.doc_id for r in spark.read.format("delta").load(table_path(root, DOCUMENTS)).collect()
    }
    removed = {d for d, _, _ in docs} - kept
    # Each close copy is removed, or its base is (the keep rule prefers the longer text).
    for i in range(8):
        assert len({f"replay:base{i:02d}", f"replay:close{i:02d}"} & removed) == 1
        assert f"replay:far{i:02d}" in kept
    assert {"replay:short1", "replay:short2"} <= kept  # too short: left to exact dedup
    assert result.metrics["documents_removed"] == 8
    assert result.metrics["verified_pairs"] == 8


def test_decisions_name_the_kept_twin_and_jaccard(spark, deduped):
    root, _, docs, _ = deduped
    decisions = (
        spark.read.format("delta")
        .load(table_path(root, DECISIONS))
        .filter("stage = 'near_dedup' AND NOT kept")
    )
    lengths = {d: len(t) for d, _, t in docs}
    for r in decisions.collect():
        detail = json.loads(r.detail)
        assert r.reason == "near_duplicate" and detail["jaccard"] >= 0.6
        pair = {r.doc_id, detail["kept"]}
        assert len({d[-2:] for d in pair}) == 1  # base and copy of the same text
        assert (lengths[detail["kept"]], r.doc_id) >= (lengths[r.doc_id], detail["kept"])


def test_rerun_gives_identical_clusters(spark, deduped):
    root, _, _, _ = deduped
    before = clusters(spark, root)
    again = dedup(spark, root, CONFIG)
    assert clusters(spark, root) == before
    assert again.metrics["signatures_computed"] == 0
    assert again.metrics["documents_removed"] == 8


def test_same_clusters_on_another_partition_count(spark, deduped, tmp_path):
    root, _, docs, _ = deduped
    other = str(tmp_path / "lakehouse")
    add_documents(spark, other, list(reversed(docs)))
    previous = spark.conf.get("spark.sql.shuffle.partitions")
    spark.conf.set("spark.sql.shuffle.partitions", "7")
    try:
        dedup(spark, other, CONFIG)
    finally:
        spark.conf.set("spark.sql.shuffle.partitions", previous)
    assert clusters(spark, other) == clusters(spark, root)


def test_incremental_batch_against_the_existing_corpus(spark, deduped, tmp_path):
    _root, _, docs, _ = deduped
    incremental = str(tmp_path / "lakehouse")
    add_documents(spark, incremental, docs)
    dedup(spark, incremental, CONFIG)
    text = dict((d, t) for d, _, t in docs)["replay:far03"]
    newcomers = [
        # A near copy in the replay source: gives way to the document already kept.
        ("replay:new_copy", "replay", edited(text, 80, seed=99)),
        # The same paper as a PMC full text: the keep rule prefers pmc, the old copy goes.
        ("pmc:PMC0000001", "pmc", edited(text, 90, seed=98)),
    ]
    add_documents(spark, incremental, newcomers)
    result = dedup(spark, incremental, CONFIG)
    assert result.metrics["signatures_computed"] == 2
    kept = {
        r.doc_id
        for r in spark.read.format("delta").load(table_path(incremental, DOCUMENTS)).collect()
    }
    assert "pmc:PMC0000001" in kept
    assert "replay:far03" not in kept and "replay:new_copy" not in kept
    rows_ = spark.read.format("delta").load(table_path(incremental, DEDUP_CLUSTERS))
    reps = {r.doc_id: r.representative_id for r in rows_.collect()}
    assert reps["replay:far03"] == reps["replay:new_copy"] == "pmc:PMC0000001"
    stored = spark.read.format("delta").load(table_path(incremental, SIGNATURES)).count()
    assert stored == len(docs) + 2


def test_verified_jaccard_equals_python(spark, deduped):
    root, _, docs, _ = deduped
    sigs = spark.read.format("delta").load(table_path(root, SIGNATURES))
    pairs = spark.createDataFrame([("replay:base01", "replay:far01")], "a string, b string")
    got = verify_pairs(pairs, sigs, 0.8).first()
    text = dict((d, t) for d, _, t in docs)
    want = jaccard(
        shingle_set(text["replay:base01"], CONFIG), shingle_set(text["replay:far01"], CONFIG)
    )
    assert got.jaccard == pytest.approx(want) and not got.verified


def test_connected_components_of_chains_and_stars(spark):
    edges = [("e", "d"), ("d", "c"), ("c", "b"), ("b", "a"), ("x", "z"), ("y", "z"), ("q", "r")]
    frame = spark.createDataFrame(edges, "a string, b string")
    got = {r.node: r.component for r in connected_components(frame).collect()}
    assert got == {
        "a": "a",
        "b": "a",
        "c": "a",
        "d": "a",
        "e": "a",
        "x": "x",
        "y": "x",
        "z": "x",
        "q": "q",
        "r": "q",
    }
