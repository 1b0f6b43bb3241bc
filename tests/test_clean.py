"""`gapreplay clean`: every bronze document gets exactly one fate, with its reason."""

from __future__ import annotations

import json

import pytest
from delta.tables import DeltaTable
from pyspark.sql import functions as F

from corpus.silver_stages import SilverConfig
from schemas.bronze import PUBMED
from schemas.silver import DECISIONS, DOCUMENTS
from spark_jobs.clean import bronze_documents, clean
from spark_jobs.config import IngestConfig
from spark_jobs.ingest_guidelines import ingest_guidelines
from spark_jobs.ingest_pmc import ingest_pmc
from spark_jobs.ingest_pubmed import ingest_pubmed
from spark_jobs.ingest_replay import ingest_replay
from spark_jobs.tables import table_path
from tests.bad_inputs import article_set
from tests.conftest import SAMPLE

GERMAN = (
    "Hintergrund: Die Händehygiene ist die wichtigste Maßnahme zur Vermeidung von Infektionen im"
    " Krankenhaus. Methoden: Wir beobachteten 2.400 Gelegenheiten zur Händedesinfektion auf acht"
    " Stationen vor und nach einer Schulung des Personals. Ergebnisse: Die Compliance stieg von"
    " 52 auf 81 Prozent. Schlussfolgerung: Regelmäßige Rückmeldung verbessert die Händehygiene."
)
ABSTRACT_COPY = (
    "In a non-inferiority trial of 380 children with uncomplicated community-acquired pneumonia"
)


def planted_pubmed(path):
    record = f"""<PubmedArticle><MedlineCitation Status="MEDLINE" Owner="NLM">
<PMID Version="1">39500001</PMID><Article><Journal><Title>Deutsche Klinik</Title>
<JournalIssue><PubDate><Year>2021</Year></PubDate></JournalIssue></Journal>
<ArticleTitle>[Hand hygiene on eight wards].</ArticleTitle>
<Abstract><AbstractText>{GERMAN}</AbstractText></Abstract><Language>ger</Language></Article>
</MedlineCitation></PubmedArticle>"""
    path.write_text(article_set(record))


def planted_replay(path, sample_abstract: str):
    lines = [
        {"text": sample_abstract, "meta": {"redpajama_set_name": "c4"}},
        {
            "text": "Copy one. " + "A general text about rivers and the sea. " * 12,
            "meta": {"redpajama_set_name": "c4", "url": "https://a.example/1"},
        },
        {
            "text": "copy ONE " + "a general text about rivers and the sea " * 12,
            "meta": {"redpajama_set_name": "c4", "url": "https://a.example/2"},
        },
    ]
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))


@pytest.fixture(scope="module")
def silver(spark, tmp_path_factory):
    work = tmp_path_factory.mktemp("silver")
    root = str(work / "lakehouse")
    planted_pubmed(work / "planted26n0003.xml")
    ingest_pubmed(
        spark,
        IngestConfig(
            lakehouse=root, inputs=[str(SAMPLE / "pubmed"), str(work / "planted26n0003.xml")]
        ),
    )
    abstract = (
        spark.read.format("delta").load(table_path(root, PUBMED)).filter("pmid = 39000009").first()
    )
    planted_replay(work / "planted.jsonl", f"{abstract.title}\n{abstract.abstract}")
    ingest_pmc(spark, IngestConfig(lakehouse=root, inputs=[str(SAMPLE / "pmc")]))
    ingest_guidelines(
        spark,
        IngestConfig(
            lakehouse=root,
            inputs=[str(SAMPLE / "guidelines")],
            source="sample",
            extra_sources=[{"key": "sample", "publisher": "s", "open": True, "license": "cc0"}],
        ),
    )
    ingest_replay(
        spark,
        IngestConfig(lakehouse=root, inputs=[str(SAMPLE / "replay"), str(work / "planted.jsonl")]),
    )
    result = clean(spark, root, SilverConfig())
    return root, result


def _fates(spark, root):
    decisions = spark.read.format("delta").load(table_path(root, DECISIONS))
    return {r.doc_id: (r.stage, r.reason, r.detail) for r in decisions.filter("NOT kept").collect()}


def test_every_bronze_document_has_exactly_one_fate(spark, silver):
    root, result = silver
    bronze = {r.doc_id for r in bronze_documents(spark, root).select("doc_id").collect()}
    kept = [
        r.doc_id for r in spark.read.format("delta").load(table_path(root, DOCUMENTS)).collect()
    ]
    dropped = _fates(spark, root)
    assert len(kept) == len(set(kept))
    assert set(kept).isdisjoint(dropped)
    assert set(kept) | set(dropped) == bronze
    assert result.metrics["bronze_documents"] == len(bronze)
    assert result.metrics["kept"] == len(kept)


def test_concrete_fates(spark, silver):
    root, _ = silver
    fates = _fates(spark, root)
    assert fates["pubmed:39000005"][:2] == ("retraction", "retracted")
    assert fates["pubmed:39500001"][:2] == ("language", "language")
    assert "de p=" in fates["pubmed:39500001"][2] and "tagged ger" in fates["pubmed:39500001"][2]
    assert fates["pubmed:39000002"] == ("cross_source", "has_full_text", "pmc:PMC9900001")
    # The replay copy of an abstract gives way to the abstract (pubmed before replay).
    copies = [d for d, f in fates.items() if f[1] == "exact_duplicate"]
    assert len(copies) == 2
    twins = {fates[d][2] for d in copies}
    assert "pubmed:39000009" in twins


def test_french_tagged_record_with_english_abstract_is_kept(spark, silver):
    root, _ = silver
    decision = (
        spark.read.format("delta")
        .load(table_path(root, DECISIONS))
        .filter("doc_id = 'pubmed:39000004' AND stage = 'language'")
        .first()
    )
    assert decision.kept and "tagged fre" in decision.detail


def test_guideline_email_and_phone_are_masked(spark, silver):
    root, result = silver
    docs = spark.read.format("delta").load(table_path(root, DOCUMENTS))
    html = docs.filter("source = 'guidelines' AND text LIKE '%Hand hygiene%'").first()
    assert "guidelines-team@example.org" not in html.text and "<EMAIL>" in html.text
    assert "<PHONE>" in html.text
    assert result.metrics["pii_masked.email.guidelines"] == 1


def test_rerun_with_changed_threshold_rewrites_only_what_changed(spark, silver):
    root, _ = silver
    path = table_path(root, DECISIONS)
    before_version = DeltaTable.forPath(spark, path).history(1).first().version
    before = {
        (r.doc_id, r.stage): (r.kept, r.reason)
        for r in spark.read.format("delta").load(path).collect()
    }
    strict = SilverConfig()
    replay = strict.quality.for_source("replay").model_copy(update={"min_chars": 400})
    strict.quality.sources["replay"] = replay
    result = clean(spark, root, strict)
    after = {
        (r.doc_id, r.stage): (r.kept, r.reason)
        for r in spark.read.format("delta").load(path).collect()
    }
    changed = {k for k in after if before.get(k) != after[k]}
    assert changed and all(doc.startswith("replay:") for doc, _ in changed)
    assert all(after[k] == (False, "too_short") for k in changed)
    was_kept = {doc for doc, stage in before if stage == "exact_dedup" and before[(doc, stage)][0]}
    assert result.metrics["documents_deleted"] == len({d for d, _ in changed} & was_kept)
    # A copy dropped as a duplicate before now fails earlier: its later decision is gone.
    assert not any(k[1] == "exact_dedup" for k in after if k[0] in {d for d, _ in changed})
    old = spark.read.format("delta").option("versionAsOf", before_version).load(path)
    assert {(r.doc_id, r.stage): (r.kept, r.reason) for r in old.collect()} == before
    clean(spark, root, SilverConfig())  # back to the defaults for the other tests
    restored = spark.read.format("delta").load(path)
    assert {(r.doc_id, r.stage): (r.kept, r.reason) for r in restored.collect()} == before
    assert (
        spark.read.format("delta")
        .load(table_path(root, DOCUMENTS))
        .filter(F.col("n_chars") <= 0)
        .count()
        == 0
    )
