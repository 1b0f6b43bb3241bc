"""Gold job `gapreplay decontaminate`: documents that contain benchmark test items are kept
out of gold, each with a `decontamination` decision in `silver/decisions` naming the items.

The benchmark files are read on the driver (corpus.benchmarks) and indexed once
(corpus.decontamination.BenchmarkIndex); the index travels to the executors as bytes in a
broadcast and every partition of `silver/documents` is matched over Arrow batches. PubMedQA's
items are PubMed abstracts: a document whose PMID is an item's is contaminated whatever its
wording. The documents stay in `silver/documents` (silver is the clean corpus; what gold may
use is gold's decision): `mix` leaves out those with a `kept = false` decision here.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import to_arrow_schema
from pyspark.sql.types import BooleanType, StringType, StructField, StructType

from corpus.benchmarks import BenchmarkItem, load_benchmarks
from corpus.decontamination import BenchmarkIndex, coverage_report, find_contamination
from schemas.silver import DECISIONS, DOCUMENTS
from spark_jobs.config import DecontaminationConfig
from spark_jobs.decisions import merge_decisions
from spark_jobs.runs import StageResult, StageRun
from spark_jobs.tables import read_table

log = logging.getLogger(__name__)

STAGE = "decontamination"  # the decisions' stage
JOB = "decontaminate"  # the run's stage in _runs
BATCH_ROWS = 256
_MATCHED = StructType(
    [
        StructField("doc_id", StringType(), False),
        StructField("contaminated", BooleanType(), False),
        StructField("reason", StringType()),
        StructField("detail", StringType()),
    ]
)
_ARROW_MATCHED = to_arrow_schema(_MATCHED)


def held_out_items(config: DecontaminationConfig) -> tuple[list[BenchmarkItem], list[str]]:
    """The items to keep out, and what was asked for but not found."""
    if config.benchmarks_dir is None:
        return [], []
    found = load_benchmarks(Path(config.benchmarks_dir), config.benchmarks)
    items = [i for i in found.items if i.split in config.splits.get(i.benchmark, [])]
    return items, found.missing


def _match_partition(index_bytes: object, min_ngram_hits: int, match_pmids: bool):  # type: ignore[no-untyped-def]
    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        index = BenchmarkIndex.from_bytes(index_bytes.value)  # type: ignore[attr-defined]
        pmid_items = {int(i.split(":")[1]): i for i in index.item_ids if i.startswith("pubmedqa:")}
        for batch in batches:
            for start in range(0, batch.num_rows, BATCH_ROWS):
                part = batch.slice(start, BATCH_ROWS)
                ids = part.column("doc_id").to_pylist()
                pmids = part.column("pmid").to_pylist()
                found = find_contamination(part.column("text").to_pylist(), index, min_ngram_hits)
                rows = [
                    _decision(doc_id, pmid, matches, pmid_items if match_pmids else {})
                    for doc_id, pmid, matches in zip(ids, pmids, found, strict=True)
                ]
                yield pa.RecordBatch.from_pylist(rows, schema=_ARROW_MATCHED)

    return run


def _decision(doc_id: str, pmid: int | None, matches: list, pmid_items: dict[int, str]) -> dict:
    items = [
        {"item": m.item_id, "benchmark": m.benchmark, "kind": m.kind, "n": m.n_overlapping}
        for m in matches
    ]
    by_pmid = pmid is not None and pmid in pmid_items
    if by_pmid and all(i["item"] != pmid_items[pmid] for i in items):
        items.insert(0, {"item": pmid_items[pmid], "benchmark": "pubmedqa", "kind": "pmid", "n": 1})
    if not items:
        return {"doc_id": doc_id, "contaminated": False, "reason": None, "detail": ""}
    reason = "benchmark_pmid" if by_pmid and not matches else "benchmark_overlap"
    return {
        "doc_id": doc_id,
        "contaminated": True,
        "reason": reason,
        "detail": json.dumps({"items": items}, separators=(",", ":")),
    }


def match_documents(
    spark: SparkSession, documents: DataFrame, index: BenchmarkIndex, config: DecontaminationConfig
) -> DataFrame:
    """One row per document: contaminated or not, the reason and the matched items (JSON)."""
    shipped = spark.sparkContext.broadcast(index.to_bytes())
    return documents.select("doc_id", "pmid", "text").mapInArrow(
        _match_partition(shipped, config.min_ngram_hits, config.match_pmids), _MATCHED
    )


def decontaminate(spark: SparkSession, root: str, config: DecontaminationConfig) -> StageResult:
    items, missing = held_out_items(config)
    settings = {"decontamination": config.model_dump(mode="json"), "items": len(items)}
    with StageRun(spark, root, JOB, settings, inputs=[config.benchmarks_dir or ""]) as run:
        index = BenchmarkIndex.build(items, config.n)
        documents = read_table(spark, root, DOCUMENTS)
        matched = match_documents(spark, documents, index, config).join(
            documents.select("doc_id", "source"), "doc_id"
        )
        decisions = matched.select(
            "doc_id",
            "source",
            F.lit(STAGE).alias("stage"),
            (~F.col("contaminated")).alias("kept"),
            "reason",
            "detail",
            F.lit(run.run_id).alias("run_id"),
        ).persist()
        try:
            merge_decisions(spark, root, decisions, [STAGE])
            counts = decisions.groupBy("source", "reason").count().collect()
            hits = (
                decisions.filter("NOT kept")
                .select(
                    F.explode(
                        F.from_json("detail", "items array<struct<benchmark:string>>")["items"]
                    ).alias("item")
                )
                .select("item.benchmark")
                .groupBy("benchmark")
                .count()
                .collect()
            )
        finally:
            decisions.unpersist()
        run.rows_in = sum(r["count"] for r in counts)
        run.rows_out = sum(r["count"] for r in counts if r["reason"] is None)
        coverage = coverage_report(items, config.n)
        run.metrics = {
            "benchmark_items": len(items),
            "benchmarks_missing": len(missing),
            **{f"items.{b}": c.items for b, c in coverage.items()},
            # Shares as basis points: `_runs.metrics` holds integers.
            **{f"ngram_coverage_bp.{b}": round(c.ngram_share * 1e4) for b, c in coverage.items()},
            **{f"whole_coverage_bp.{b}": round(c.whole_share * 1e4) for b, c in coverage.items()},
            **{f"dropped.{r['reason']}.{r['source']}": r["count"] for r in counts if r["reason"]},
            **{f"hits.{r['benchmark']}": r["count"] for r in hits},
        }
        for name in missing:
            log.warning("decontaminate: %s not found, its items are not checked", name)
        log.info(
            "decontaminate: %d of %d documents contain benchmark items (%d items indexed)",
            run.rows_in - run.rows_out,
            run.rows_in,
            len(items),
        )
        return run.finish(DECISIONS, [DECISIONS])
