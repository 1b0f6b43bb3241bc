"""`gapreplay decontaminate` on Spark against the real benchmark files: planted copies of a
PubMedQA context, a MedQA question with its options and a short MMLU question are excluded
with a decision naming the item; a text that shares only common medical phrasing is kept."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from corpus.benchmarks import MMLU_MEDICAL, load_benchmarks
from corpus.decontamination import BenchmarkIndex, normalize_tokens
from schemas.silver import DECISIONS
from spark_jobs.config import DecontaminationConfig
from spark_jobs.decontaminate import decontaminate, held_out_items
from spark_jobs.tables import read_table
from tests.conftest import FIXTURES
from tests.silver_rows import add_documents, document_row

BENCHMARKS = FIXTURES / "qa_benchmarks"
CONFIG = DecontaminationConfig(benchmarks_dir=str(BENCHMARKS))
FILLER = (
    "The following notes were collected from a revision website for medical students. "
    "They are shared here with the permission of the authors and edited for length. "
)


@pytest.fixture(scope="module")
def planted(spark, tmp_path_factory):
    items = held_out_items(CONFIG)[0]
    pubmedqa = next(i for i in items if i.benchmark == "pubmedqa")
    medqa = next(i for i in items if i.benchmark == "medqa")
    index = BenchmarkIndex.build(items)
    whole = {index.item_ids[i] for i in index.whole_items.tolist()}
    short = next(i for i in items if i.benchmark == MMLU_MEDICAL and i.item_id in whole)
    paragraph = max(pubmedqa.context.split("\n"), key=len)
    options = " ".join(f"({k}) {v}" for k, v in sorted(medqa.options.items()))
    docs = {
        "replay:pubmedqa-copy": (paragraph, pubmedqa.item_id),
        "replay:medqa-copy": (f"{medqa.question}\n{options}\nAnswer below.", medqa.item_id),
        "replay:mmlu-copy": (
            f"Quiz. {short.question} " + " ".join(short.options.values()) + " Good luck!",
            short.item_id,
        ),
        "replay:common-phrases": (
            "Which of the following is the most likely diagnosis? The patient was treated "
            "with intravenous antibiotics and her blood pressure was monitored closely. A "
            "randomised controlled trial compared the two treatments in older adults.",
            None,
        ),
        # PubMedQA's abstract in the corpus under its own PMID, in other words.
        f"pubmed:{pubmedqa.pmid}": ("An abstract reworded beyond recognition.", pubmedqa.item_id),
    }
    root = str(tmp_path_factory.mktemp("decontaminate") / "lakehouse")
    rows = [
        document_row(
            doc_id,
            doc_id.split(":")[0],
            FILLER + text,
            pmid=pubmedqa.pmid if doc_id.startswith("pubmed:") else None,
        )
        for doc_id, (text, _) in docs.items()
    ]
    add_documents(spark, root, rows)
    result = decontaminate(spark, root, CONFIG)
    decisions = {
        r.doc_id: r
        for r in read_table(spark, root, DECISIONS).filter("stage = 'decontamination'").collect()
    }
    return SimpleNamespace(docs=docs, decisions=decisions, result=result, short=short, root=root)


def test_planted_copies_are_excluded_with_the_item_named(planted) -> None:
    docs, decisions = planted.docs, planted.decisions
    for doc_id, (_, item_id) in docs.items():
        decision = decisions[doc_id]
        if item_id is None:
            assert decision.kept and decision.reason is None, doc_id
            continue
        assert not decision.kept, doc_id
        named = [i["item"] for i in json.loads(decision.detail)["items"]]
        assert item_id in named, (doc_id, named)
    assert decisions["pubmed:" + docs_pmid(docs)].reason == "benchmark_pmid"
    assert decisions["replay:medqa-copy"].reason == "benchmark_overlap"


def docs_pmid(docs: dict) -> str:
    return next(d for d in docs if d.startswith("pubmed:")).split(":")[1]


def test_short_item_is_matched_whole(planted) -> None:
    decisions, short = planted.decisions, planted.short
    assert len(normalize_tokens(short.question)) < 13
    kinds = {i["kind"] for i in json.loads(decisions["replay:mmlu-copy"].detail)["items"]}
    assert kinds == {"whole"}


def test_metrics_report_hits_and_coverage(planted) -> None:
    result = planted.result
    found = load_benchmarks(BENCHMARKS)
    metrics = result.metrics
    assert metrics["benchmark_items"] == len(held_out_items(CONFIG)[0])
    assert metrics["hits.pubmedqa"] == 2 and metrics["hits.medqa"] == 1
    assert metrics["hits.mmlu_medical"] == 1
    assert metrics["dropped.benchmark_overlap.replay"] == 3
    assert metrics["dropped.benchmark_pmid.pubmed"] == 1
    # The fixtures' PubMedQA test split has 500 items; all are indexed by n-grams.
    assert metrics["items.pubmedqa"] == 500
    assert metrics["ngram_coverage_bp.pubmedqa"] == 10000
    assert metrics["benchmarks_missing"] == len(found.missing)


def test_rerun_keeps_the_decisions(spark, planted) -> None:
    decontaminate(spark, planted.root, CONFIG)
    again = read_table(spark, planted.root, DECISIONS).filter("stage = 'decontamination'").collect()
    assert {r.doc_id: r for r in again} == planted.decisions
