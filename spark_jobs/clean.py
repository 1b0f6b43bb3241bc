"""Silver job `gapreplay clean`: the bronze tables into `silver/documents` and
`silver/decisions`.

Per-document stages (cleaning, PII, language, quality) run on the executors over Arrow
batches (corpus.silver_stages); the stages that compare documents run as DataFrame
operations: retractions, abstracts whose paper has a full text (MediTron's rule), exact
duplicates by normalised-text hash under the keep rule. Every bronze document ends with
exactly one fate: in `silver/documents`, or dropped with its reason. Both tables are MERGEd,
so a re-run with changed thresholds rewrites only what changed and earlier decisions stay
reachable by Delta time travel.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import to_arrow_schema
from pyspark.sql.types import (
    ArrayType,
    BooleanType,
    DoubleType,
    IntegerType,
    LongType,
    MapType,
    StringType,
    StructField,
    StructType,
)

from corpus.silver_stages import CROSS_STAGES, DOCUMENT_STAGES, SilverConfig, run_document_stages
from schemas.bronze import GUIDELINES, PMC, PUBMED, REPLAY
from schemas.silver import DECISIONS, DOCUMENTS
from schemas.table_spec import TableSpec
from spark_jobs.decisions import merge_decisions
from spark_jobs.runs import StageResult, StageRun
from spark_jobs.tables import (
    read_table,
    sync_table,
)

log = logging.getLogger(__name__)

ARROW_BATCH_ROWS = 256
DECISION = StructType(
    [
        StructField("stage", StringType()),
        StructField("kept", BooleanType()),
        StructField("reason", StringType()),
        StructField("detail", StringType()),
    ]
)
BRONZE_DOCUMENT = StructType(
    [
        StructField("doc_id", StringType()),
        StructField("source", StringType()),
        StructField("title", StringType()),
        StructField("abstract", StringType()),
        StructField("body", StringType()),
        StructField("text", StringType()),
        StructField("origin", StringType()),
        StructField("tagged_language", StringType()),
        StructField("pmid", LongType()),
        StructField("pmcid", StringType()),
        StructField("doi", StringType()),
        StructField("license", StringType()),
        StructField("is_retracted", BooleanType()),
        StructField("is_retraction_notice", BooleanType()),
        StructField("source_file", StringType()),
        StructField("locator", StringType()),
    ]
)
STAGED = StructType(
    [f for f in BRONZE_DOCUMENT.fields if f.name not in ("abstract", "body")]
    + [
        StructField("n_chars", IntegerType()),
        StructField("language", StringType()),
        StructField("language_prob", DoubleType()),
        StructField("text_sha256", StringType()),
        StructField("pii", MapType(StringType(), LongType())),
        StructField("dropped", BooleanType()),
        StructField("decisions", ArrayType(DECISION)),
    ]
)


# Each bronze table's expression for the unified columns it has; the others are null
# (false for flags). doc_id, license, source_file and locator come from every table.
BRONZE_COLUMNS: dict[str, tuple[TableSpec, dict[str, str]]] = {
    "pubmed": (
        PUBMED,
        {
            "title": "title",
            "abstract": "abstract",
            "tagged_language": "language",
            "pmid": "pmid",
            "pmcid": "pmcid",
            "doi": "lower(doi)",
            "is_retracted": "is_retracted",
            "is_retraction_notice": "is_retraction_notice",
        },
    ),
    "pmc": (
        PMC,
        {
            "title": "title",
            "abstract": "abstract",
            "body": "body",
            "tagged_language": "language",
            "pmid": "pmid",
            "pmcid": "pmcid",
            "doi": "lower(doi)",
        },
    ),
    "guidelines": (GUIDELINES, {"title": "title", "text": "raw_text", "origin": "source"}),
    "replay": (REPLAY, {"text": "text", "origin": "subset", "tagged_language": "language"}),
}
_COMMON = {c: c for c in ("doc_id", "license", "source_file", "locator")}


def bronze_documents(spark: SparkSession, root: str) -> DataFrame:
    """All bronze tables in one shape (a table that does not exist yet is empty)."""
    frames = []
    for source, (spec, expressions) in BRONZE_COLUMNS.items():
        expressions = {**_COMMON, **expressions}
        columns = []
        for field in BRONZE_DOCUMENT.fields:
            if field.name == "source":
                value = F.lit(source)
            elif field.name in expressions:
                value = F.expr(expressions[field.name])
            else:
                value = F.lit(False) if field.dataType == BooleanType() else F.lit(None)
            columns.append(value.cast(field.dataType).alias(field.name))
        frames.append(read_table(spark, root, spec).select(*columns))
    return functools.reduce(DataFrame.unionByName, frames)


def _stages_partition(config: SilverConfig):  # type: ignore[no-untyped-def]
    arrow_schema = to_arrow_schema(STAGED)
    names = STAGED.fieldNames()

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            rows = batch.to_pylist()
            for start in range(0, len(rows), ARROW_BATCH_ROWS):
                staged = run_document_stages(rows[start : start + ARROW_BATCH_ROWS], config)
                yield pa.RecordBatch.from_pylist(
                    [{k: r.get(k) for k in names} for r in staged], schema=arrow_schema
                )

    return run


def _decide(df: DataFrame, stage: str, reason: Column, detail: Column) -> DataFrame:
    """Apply a cross-document stage to the live rows: `reason` null means kept."""
    decision = F.struct(
        F.lit(stage).alias("stage"),
        reason.isNull().alias("kept"),
        reason.alias("reason"),
        F.coalesce(detail, F.lit("")).alias("detail"),
    )
    return df.withColumn(
        "decisions",
        F.when(F.col("dropped"), F.col("decisions")).otherwise(
            F.concat(F.col("decisions"), F.array(decision))
        ),
    ).withColumn("dropped", F.col("dropped") | reason.isNotNull())


def cross_document_stages(staged: DataFrame, config: SilverConfig) -> DataFrame:
    live = ~F.col("dropped")
    retraction = F.when(~F.lit(config.drop_retracted), None)
    retraction = retraction.when(F.col("is_retracted"), "retracted").when(
        F.col("is_retraction_notice"), "retraction_notice"
    )
    df = _decide(staged, "retraction", retraction, F.lit(""))

    papers = df.filter(live & (F.col("source") == "pmc")).select(
        F.col("doc_id").alias("paper_id"), "pmid", "pmcid", "doi"
    )
    matches = []
    for key in ("pmid", "pmcid", "doi"):
        matches.append(
            df.filter(live & (F.col("source") == "pubmed") & F.col(key).isNotNull())
            .join(papers.filter(F.col(key).isNotNull()), key)
            .select("doc_id", "paper_id")
        )
    full_text = (
        matches[0]
        .unionByName(matches[1])
        .unionByName(matches[2])
        .groupBy("doc_id")
        .agg(F.min("paper_id").alias("paper_id"))
    )
    df = df.join(full_text, "doc_id", "left")
    has_full_text = F.when(
        F.lit(config.drop_abstracts_with_full_text) & F.col("paper_id").isNotNull(),
        "has_full_text",
    )
    df = _decide(df, "cross_source", has_full_text, F.col("paper_id")).drop("paper_id")

    rank = F.array_position(F.array(*[F.lit(s) for s in config.keep_order]), F.col("source"))
    order = Window.partitionBy("text_sha256").orderBy(
        F.when(rank == 0, 1 << 30).otherwise(rank), F.col("n_chars").desc(), F.col("doc_id")
    )
    live_rows = df.filter(live).withColumn("kept_twin", F.first("doc_id").over(order))
    df = df.join(live_rows.select("doc_id", "kept_twin"), "doc_id", "left")
    duplicate = F.when(
        F.col("kept_twin").isNotNull() & (F.col("kept_twin") != F.col("doc_id")),
        "exact_duplicate",
    )
    return _decide(df, "exact_dedup", duplicate, F.col("kept_twin")).drop("kept_twin")


def clean(spark: SparkSession, root: str, config: SilverConfig) -> StageResult:
    with StageRun(spark, root, "clean", config.model_dump(mode="json")) as run:
        bronze = bronze_documents(spark, root)
        # Kept: the cross-document stages read the staged rows in several branches (the
        # pmid, pmcid and doi joins, the duplicate window), and Spark would run the Python
        # stages again for each branch.
        staged = bronze.mapInArrow(_stages_partition(config), STAGED).persist(
            StorageLevel.MEMORY_AND_DISK
        )
        final = cross_document_stages(staged, config).persist(StorageLevel.MEMORY_AND_DISK)
        try:
            documents = final.filter(~F.col("dropped")).select(
                *[c for c in DOCUMENTS.columns if c != "run_id"], F.lit(run.run_id).alias("run_id")
            )
            decisions = final.select("doc_id", "source", F.explode("decisions").alias("d")).select(
                "doc_id",
                "source",
                "d.stage",
                "d.kept",
                "d.reason",
                "d.detail",
                F.lit(run.run_id).alias("run_id"),
            )
            doc_metrics = sync_table(spark, root, DOCUMENTS, documents)
            decision_metrics = merge_decisions(
                spark, root, decisions, (*DOCUMENT_STAGES, *CROSS_STAGES)
            )
            run.metrics = _metrics(final, doc_metrics, decision_metrics)
        finally:
            final.unpersist()
            staged.unpersist()
        run.rows_in = run.metrics["bronze_documents"]
        run.rows_out = run.metrics["kept"]
        log.info("clean: %d of %d documents kept", run.rows_out, run.rows_in)
        return run.finish(DOCUMENTS, [DOCUMENTS, DECISIONS])


def _metrics(final: DataFrame, docs: dict[str, int], decisions: dict[str, int]) -> dict[str, int]:
    metrics: dict[str, Any] = {}
    counts = final.groupBy("source", "dropped").count().collect()
    metrics["bronze_documents"] = sum(r["count"] for r in counts)
    metrics["kept"] = sum(r["count"] for r in counts if not r["dropped"])
    for r in counts:
        if not r["dropped"]:
            metrics[f"kept.{r['source']}"] = r["count"]
    drops = (
        final.select("source", F.element_at("decisions", -1).alias("d"))
        .filter("NOT d.kept")
        .groupBy("source", "d.stage", "d.reason")
        .count()
        .collect()
    )
    for r in drops:
        metrics[f"dropped.{r['stage']}.{r['reason']}.{r['source']}"] = r["count"]
    pii = (
        final.select("source", F.explode("pii").alias("kind", "n"))
        .groupBy("source", "kind")
        .agg(F.sum("n").alias("n"))
        .collect()
    )
    for r in pii:
        metrics[f"pii_masked.{r['kind']}.{r['source']}"] = int(r["n"])
    metrics["documents_inserted"] = docs.get("numTargetRowsInserted", 0)
    metrics["documents_updated"] = docs.get("numTargetRowsUpdated", 0)
    metrics["documents_deleted"] = docs.get("numTargetRowsDeleted", 0)
    metrics["decisions_written"] = decisions.get("numTargetRowsInserted", 0) + decisions.get(
        "numTargetRowsUpdated", 0
    )
    return metrics
